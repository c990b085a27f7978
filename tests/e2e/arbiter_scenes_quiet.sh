#!/usr/bin/env bash
# tests/e2e/arbiter_scenes_quiet.sh — preoomd signals nobody where the kernel would kill nobody, and
# waits out a shutdown a process asked for; explain decides as the daemon does.
#   ask-line   27% available under --ask 30% --term 5% --kill 2%
#   exposure   a promise of 4 GiB touching 10 MiB in 400 MiB
#   spike      a burst to 92% of the limit that is freed again
#   plateau    a creep that stops at 88%
#   grace      a process that needs 2.5 s to stop (PREOOM_TERM_GRACE_MS): SIGTERM, never
#              SIGKILL above the kill line; without it, SIGKILL after --term-grace
#   explain    `preoom explain --json` names the victim the daemon chose (--avoid)
# Each scene runs TRIALS times in a memory cgroup of its own (lib_scenes.sh); a trial is good
# when the kernel OOM-killed nobody and exactly the processes the scene names were signalled,
# the others finishing their work. Root only: memory cgroups.
. "$(dirname "$0")/lib_scenes.sh"
scene_askline() {
    begin askline 256 --ask 30% --term 5% --kill 2% || return
    # 180 MiB of 256 and the cgroup's own few: ~28% available, under the ask line only.
    run A "$S" grow:180:0 hold:1500
    local a; st "$A"; a=$?; finish
    verdict "$(nobody)$([ "$a" -eq 0 ] || echo " it did not finish ($a);")$([ "$KILLS" -eq 0 ] || echo " kernel oom_kill=$KILLS;")"
}
scene askline "27% available, --ask 30% --term 5% --kill 2%: nobody is signalled"

scene_exposure() {
    begin exposure 400 || return
    run A "$S" promise:4096 grow:10:0 hold:1200
    local a; st "$A"; a=$?; finish
    verdict "$(nobody)$([ "$a" -eq 0 ] || echo " it did not finish ($a);")"
}
scene exposure "4 GiB promised, 10 MiB touched in 400 MiB: nobody is signalled"

scene_spike() {
    begin spike 256 || return
    run A "$T_TMP/base" grow:60:0 hold:3000
    run Q "$T_TMP/spike" hold:500 grow:170:0 hold:600 free:170 hold:1000
    local a b; st "$A"; a=$?; st "$Q"; b=$?; finish
    verdict "$(nobody)$([ "$a$b" = 00 ] || echo " not both finished ($a $b);")$([ "$KILLS" -eq 0 ] || echo " kernel oom_kill=$KILLS;")"
}
scene spike "a burst to 92% that is freed again: nobody is signalled"

scene_plateau() {
    begin plateau 256 || return
    run A "$T_TMP/base" grow:60:0 hold:4000
    run Q "$T_TMP/creep" grow:160:60 hold:1000
    local a b; st "$A"; a=$?; st "$Q"; b=$?; finish
    verdict "$(nobody)$([ "$a$b" = 00 ] || echo " not both finished ($a $b);")$([ "$KILLS" -eq 0 ] || echo " kernel oom_kill=$KILLS;")"
}
scene plateau "a creep that stops at 88%: nobody is signalled"

scene_grace() {
    begin grace 256 --term-grace 1000 || return
    run A env PREOOM_TERM_GRACE_MS=4000 "$T_TMP/db" term:2500 grow:200:0 leak:20:0
    local a; st "$A"; a=$?; finish
    verdict "$([ "$(ev_count "$LOG" sigterm "$A")" -eq 1 ] || echo " not one SIGTERM;")$([ "$(ev_count "$LOG" sigkill)" -eq 0 ] || echo " SIGKILLed mid-shutdown;")$([ "$a" -eq 143 ] || echo " it did not end its own shutdown ($a);")$([ "$KILLS" -eq 0 ] || echo " kernel oom_kill=$KILLS;")"
}
scene grace "a slow shutdown it asked for is waited out above the kill line (no SIGKILL)"
TRIAL=nograce
begin nograce 256 --term-grace 1000
run A "$T_TMP/db" term:2500 grow:200:0 leak:20:0
st "$A"; a=$?; finish
check "without PREOOM_TERM_GRACE_MS the same process gets SIGKILL after --term-grace (status $a)" \
    [ "$(ev_count "$LOG" sigkill "$A")" -eq 1 -a "$a" -eq 137 ]

# explain decides as the daemon does: same flags (published), same victim.
TRIAL=explain
begin explain 1024 --dry-run --ask 99% --term 98% --kill 97% --avoid '^hold$'
ln -sf "$S" "$T_TMP/hold"; ln -sf "$S" "$T_TMP/other"
# Both registered before either grows: a daemon that saw only the avoided one would rightly
# choose it (--avoid yields when no other candidate remains), and the test would race.
run A "$T_TMP/hold" hold:500 grow:60:0 hold:4000
run Q "$T_TMP/other" hold:400 grow:30:0 hold:4000
for _ in $(seq 100); do [ "$(ev_count "$LOG" sigterm)" -ge 1 ] && break; sleep 0.05; done
daemon=$(ev_pids "$LOG" sigterm | head -n 1)
ex=$("$B/preoom" --registry "$T_REG" explain --json 2>"$T_TMP/explain.err" | python3 -c 'import json,sys; print(json.load(sys.stdin)["victim"])' 2>/dev/null)
[ -n "$ex" ] || sed 's/^/# explain: /' "$T_TMP/explain.err"
st "$A"; st "$Q"; finish
check "explain names the daemon's choice (daemon $daemon, explain $ex, not the avoided $A)" \
    [ -n "$daemon" -a "$daemon" = "$ex" -a "$daemon" = "$Q" ]
t_done

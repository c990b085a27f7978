#!/usr/bin/env bash
# tests/e2e/arbiter_scenes_settle.sh — exactly who must go, and only them.
#   prefork    a parent and 8 workers sharing its heap, one worker leaking: that worker (and
#              ls counts the shared heap once by PSS)
#   cache+job  a 150 MiB cache that can give and a job growing to 150 MiB in 256: nobody,
#              both finish
#   growth     three growers of 200 MiB/s to 150, 160, 170 MiB in 300: exactly two
#   hog        an unregistered process filling the cgroup beside a small registered one: the
#              hog; out of --scope, one line names it
# Each scene runs TRIALS times in a memory cgroup of its own (lib_scenes.sh); a trial is good
# when the kernel OOM-killed nobody and exactly the processes the scene names were signalled,
# the others finishing their work. Root only: memory cgroups.
. "$(dirname "$0")/lib_scenes.sh"
scene_prefork() {
    begin prefork 300 || return
    run P "$PROG/prefork" 60 8 20 3 15 6 "$T_TMP/pf.$TRIAL"
    local p; st "$P"; p=$?; finish
    local leaker; leaker=$(awk '$1 == "child" && $2 == 3 {print $3}' "$T_TMP/pf.$TRIAL")
    verdict "$([ "$(signalled "$LOG" | tr '\n' ' ')" = "$leaker " ] || echo " signalled '$(signalled "$LOG" | tr '\n' ' ')', not the leaking worker $leaker alone;")$([ "$p" -eq 0 ] || echo " the parent did not finish ($p);")$([ "$KILLS" -eq 0 ] || echo " kernel oom_kill=$KILLS;")"
}
# What the prefork server really holds: ls counts the shared heap once by PSS (the sum of
# touched counts it in every worker).
TRIAL=ls
CG=$(cg_create scls $((600 << 20)))
run P "$PROG/prefork" 60 8 20 -1 0 3 "$T_TMP/pf.ls"
sleep 1.5
"$B/preoom" --registry "$T_REG" ls --json >"$T_TMP/pf.json" 2>/dev/null
st "$P"; cg_remove "$CG"
read -r tt tp < <(python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["totals"]; print(t["touched"] >> 20, t["touched_pss"] >> 20)' "$T_TMP/pf.json")
check "ls: a prefork server's shared heap counted once by PSS (touched $tt MiB summed, $tp MiB by PSS, ~220 held)" \
    [ "${tp:-0}" -ge 180 -a "${tp:-0}" -le 300 -a "${tt:-0}" -ge 500 ]
control prefork
scene prefork "a prefork server: the leaking worker, not the parent or an idle sibling"

scene_cachejob() {
    begin cachejob 256 || return
    run C "$B/examples/cache" --mib 150 --seconds 5
    for _ in $(seq 100); do grep -q "^RssAnon:.*1[0-9]\{5\} kB" /proc/$C/status 2>/dev/null && break; sleep 0.05; done
    run J "$T_TMP/cache-job" grow:150:60 hold:1000
    local c j; st "$J"; j=$?; st "$C"; c=$?; finish
    verdict "$(nobody)$([ "$c$j" = 00 ] || echo " not both finished (cache $c, job $j);")$([ "$(ev_count "$LOG" ask "$C")" -ge 1 ] || echo " the cache was never asked;")$([ "$KILLS" -eq 0 ] || echo " kernel oom_kill=$KILLS;")"
}
control cachejob
scene cachejob "a cache that can give and a job that needs it: nobody is signalled, both finish"

scene_growth() {
    begin growth 300 || return
    run A "$T_TMP/g150" grow:150:200 hold:1500
    run Q "$T_TMP/g160" grow:160:200 hold:1500
    run C "$T_TMP/g170" grow:170:200 hold:1500
    local a b c; st "$A"; a=$?; st "$Q"; b=$?; st "$C"; c=$?; finish
    local n; n=$(signalled "$LOG" | grep -c .)
    local done=0; for s in $a $b $c; do [ "$s" -eq 0 ] && done=$((done + 1)); done
    verdict "$([ "$n" -eq 2 ] || echo " $n signalled, not 2;")$([ "$done" -eq 1 ] || echo " $done finished, not 1 ($a $b $c);")$([ "$KILLS" -eq 0 ] || echo " kernel oom_kill=$KILLS;")"
}
control growth
scene growth "three growers, room for one: exactly two are stopped, the third finishes"

scene_hog() {
    begin hog 256 || return
    run A "$T_TMP/small" grow:20:0 hold:4000
    cg_run "$CG" "$T_TMP/hog" grow:300:100; local H=$BG_PID
    local h a; st "$H"; h=$?; st "$A"; a=$?; finish
    verdict "$([ "$(signalled "$LOG" | tr '\n' ' ')" = "$H " ] || echo " signalled '$(signalled "$LOG" | tr '\n' ' ')', not the hog $H alone;")$([ "$a" -eq 0 ] || echo " the registered one did not finish ($a);")$([ "$KILLS" -eq 0 ] || echo " kernel oom_kill=$KILLS;")"
}
control hog
scene hog "an unregistered hog fills the cgroup: the hog is stopped, not the small registered one"

# Out of scope the hog cannot be acted on: one line says so (once), and it names the hog.
TRIAL=scope
begin hogscope 256 --scope registered
run A "$T_TMP/small" grow:20:0 hold:3000
cg_run "$CG" "$T_TMP/hog" grow:200:100 hold:1000; H=$BG_PID
st "$H"; st "$A"; finish
check "hog out of --scope: one line names it ($(ev_count "$LOG" hog "$H") of $(ev_count "$LOG" hog))" \
    [ "$(ev_count "$LOG" hog "$H")" -eq 1 -a "$(ev_count "$LOG" hog)" -eq 1 ]

t_done

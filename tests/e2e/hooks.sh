#!/usr/bin/env bash
# tests/e2e/hooks.sh — preoomd's operator hooks under real pressure, each scene in a 256 MiB
# memory cgroup of its own, where one "grow" process (run as "victim", with arguments the log
# must show) goes past the limit so preoomd must SIGTERM it:
#   notify      --notify runs a hook that saves its PREOOM_* environment and its stdin, then
#               sleeps 30 s in a child: the environment names the victim, its command line
#               and the domain; stdin is the event's JSON; the decision loop goes on while
#               the hook sleeps (the victim's exit is logged with the hook still running);
#               at --notify-timeout the hook and its child are killed; with --notify-max 1
#               the next event is dropped and said once. The log lines carry the cmdline.
#   group       --kill-group on a victim that leads its process group: its sleeping child,
#               in the same group, gets the SIGTERM too.
#   nogroup     the same victim without --kill-group: the child lives on (the control).
#   notleader   --kill-group on a victim that does not lead its group: only the victim is
#               signalled, the group's other members live on.
#   cgroup      --protect-cgroup '*/big': of "big" (in a child cgroup big/) and "small" (in
#               small/), which together pass the limit, only small is signalled, and
#               `preoom explain` reads the same setting from what preoomd published.
# Root only (memory cgroups).
. "$(dirname "$0")/lib.sh"

if ! is_root || ! cg_root >/dev/null; then skip "hooks: need root and a memory cgroup"; t_done; fi
D=$B/preoomd
ln -s "$PROG/grow" "$T_TMP/victim"
ln -s "$PROG/grow" "$T_TMP/big"
ln -s "$PROG/grow" "$T_TMP/small"
pre=(env LD_PRELOAD="$LIB" PREOOM_REGISTRY="$T_REG")
cg_run() { local cg=$1; shift; bg bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cg" "$@"; }
alive() { kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
wait_for() { local i; for i in $(seq "$1"); do eval "$2" && return 0; sleep 0.1; done; return 1; }

# ---- notify -------------------------------------------------------------------------------
H=$T_TMP/hook
mkdir "$H"
cat >"$T_TMP/hook.sh" <<'EOF'
#!/bin/sh
# Saves what it was given, then sleeps in a child of its own process group.
d=$1
env | grep '^PREOOM_' | sort >"$d/$PREOOM_EVENT.env.tmp" && mv "$d/$PREOOM_EVENT.env.tmp" "$d/$PREOOM_EVENT.env"
cat >"$d/$PREOOM_EVENT.json"
echo $$ >"$d/$PREOOM_EVENT.pid"
sleep 30 &
echo $! >"$d/$PREOOM_EVENT.child"
wait
EOF
chmod +x "$T_TMP/hook.sh"
cg=$(cg_create notify $((256 << 20))) || { fail "cgroup"; t_done; }
LOG=$T_TMP/notify.log
bg "$D" --registry "$T_REG" --cgroup "$cg" --no-mlock --policy kernel --log-format json \
    --notify "$T_TMP/hook.sh $H" --notify-timeout 3000 --notify-max 1 \
    --notify-events sigterm,exited 2>"$LOG"; dp=$BG_PID
wait_for 50 'grep -q watching "$LOG"'
# 8 MiB every 300 ms: calm for over 5 s, preoomd's slowest look at the processes, so its
# command line is read before pressure (preoomd never reads one while a decision waits).
cg_run "$cg" "${pre[@]}" "$T_TMP/victim" 400 8 300 20000 --marker-arg; V=$BG_PID
wait "$V"; vs=$?
# The victim's exit is the next event: the loop logged it while the hook slept (max 1, so
# the exited hook itself was dropped).
wait_for 50 'grep -q "\"event\":\"exited\"" "$LOG"'
hook=$(cat "$H/sigterm.pid" 2>/dev/null); child=$(cat "$H/sigterm.child" 2>/dev/null)
check "the victim was SIGTERMed ($vs)" [ "$(ev_count "$LOG" sigterm "$V")" -ge 1 ]
check "its exit was logged while the hook still ran (hook ${hook:-none})" \
    bash -c 'grep -q "\"event\":\"exited\"" "$0" && kill -0 "$1"' "$LOG" "${hook:-0}"
env_of() { sed -n "s/^$1=//p" "$H/sigterm.env"; }
check "PREOOM_EVENT=sigterm" [ "$(env_of PREOOM_EVENT)" = sigterm ]
check "PREOOM_PID is the victim ($(env_of PREOOM_PID))" [ "$(env_of PREOOM_PID)" = "$V" ]
check "PREOOM_NAME=victim" [ "$(env_of PREOOM_NAME)" = victim ]
check "PREOOM_UID=$(id -u)" [ "$(env_of PREOOM_UID)" = "$(id -u)" ]
check "PREOOM_CMDLINE has the arguments ($(env_of PREOOM_CMDLINE))" \
    bash -c '[[ "$0" == *"victim 400 8 300 20000 --marker-arg" ]]' "$(env_of PREOOM_CMDLINE)"
# The domain as its metrics label and log lines name it: the cgroup path in its hierarchy.
rel=${cg#/sys/fs/cgroup}; rel=${rel#/memory}; rel=${rel#/unified}
check "PREOOM_DOMAIN is the cgroup's path ($(env_of PREOOM_DOMAIN))" [ "$(env_of PREOOM_DOMAIN)" = "$rel" ]
check "PREOOM_AVAILABLE_BYTES and PREOOM_TOTAL_BYTES are numbers, available < total" \
    bash -c '[ "$0" -ge 0 ] && [ "$1" -gt "$0" ]' "$(env_of PREOOM_AVAILABLE_BYTES)" "$(env_of PREOOM_TOTAL_BYTES)"
check "PREOOM_BYTES is what it frees ($(env_of PREOOM_BYTES))" [ "$(env_of PREOOM_BYTES)" -gt $((100 << 20)) ]
check "stdin is the event's JSON: sigterm, the victim's pid and cmdline" python3 -c '
import json, sys
d = json.loads(open(sys.argv[1]).read())
assert d["event"] == "sigterm" and d["pid"] == int(sys.argv[2]), d
assert d["cmdline"].endswith("--marker-arg"), d
' "$H/sigterm.json" "$V"
check "the log's sigterm line carries the cmdline" grep -q '"event":"sigterm".*"cmdline":"[^"]*victim 400 8 300 20000 --marker-arg"' "$LOG"
check "the exited hook was dropped (--notify-max 1) and said once" \
    [ "$(grep -c 'notify-max hooks are still running' "$LOG")" -eq 1 ] 
check "no hook ran for the exited event" [ ! -e "$H/exited.env" ]
# --notify-timeout 3000: hook and child gone by then (with a margin for the next pass).
wait_for 60 '! alive "$hook" && ! alive "$child"'
check "at --notify-timeout the hook ($hook) and its child ($child) were killed" \
    eval '! alive "$hook" && ! alive "$child"'
check "and preoomd said so once" [ "$(grep -c 'ran past --notify-timeout' "$LOG")" -eq 1 ]
kill -TERM "$dp"; wait "$dp"; rc=$?
check "preoomd stops with status 0 ($rc)" [ "$rc" -eq 0 ]
[ "$T_FAILED" -eq 0 ] || sed 's/^/#   /' "$LOG" | head -20
cg_remove "$cg"

# ---- kill-group -----------------------------------------------------------------------------
# group MODE: the victim in its own session (so it leads its group, unless MODE=notleader,
# where bash leads and the victim is its child), with a sleeping child in the same group.
# Sets V (victim), C (the sleeping group member), L (log).
group() {
    local mode=$1 cg dp flags=()
    [ "$mode" = nogroup ] || flags=(--kill-group)
    cg=$(cg_create "$mode" $((256 << 20))) || { fail "cgroup"; return 1; }
    L=$T_TMP/$mode.log
    rm -f "$T_TMP/child" "$T_TMP/vpid"
    bg "$D" --registry "$T_REG" --cgroup "$cg" --no-mlock --policy kernel --log-format json \
        "${flags[@]}" 2>"$L"; dp=$BG_PID
    wait_for 50 'grep -q watching "$L"'
    if [ "$mode" = notleader ]; then
        cg_run "$cg" setsid "${pre[@]}" bash -c 'sleep 60 & echo $! >"$0/child"; "$0/victim" 400 8 30 20000 & echo $! >"$0/vpid"; wait' "$T_TMP"
    else
        cg_run "$cg" setsid "${pre[@]}" bash -c 'sleep 60 & echo $! >"$0/child"; echo $$ >"$0/vpid"; exec "$0/victim" 400 8 30 20000' "$T_TMP"
    fi
    wait_for 50 '[ -s "$T_TMP/child" ] && [ -s "$T_TMP/vpid" ]'
    C=$(cat "$T_TMP/child"); V=$(cat "$T_TMP/vpid")
    wait_for 200 '! alive "$V"'
    sleep 0.3
    kill -TERM "$dp"; wait "$dp"
}
group group
check "--kill-group: the victim ($V), a group leader, was SIGTERMed" [ "$(ev_count "$L" sigterm "$V")" -ge 1 ]
wait_for 20 '! alive "$C"'
check "--kill-group: its sleeping child ($C), same group, got the signal too" eval '! alive "$C"'
kill -KILL "$C" 2>/dev/null
group nogroup
check "without --kill-group: the victim ($V) was SIGTERMed" [ "$(ev_count "$L" sigterm "$V")" -ge 1 ]
check "without --kill-group: its child ($C) lives on" alive "$C"
kill -KILL "$C" 2>/dev/null
group notleader
check "--kill-group, victim not a leader: the victim ($V) was SIGTERMed" [ "$(ev_count "$L" sigterm "$V")" -ge 1 ]
check "--kill-group, victim not a leader: the group's other member ($C) lives on" alive "$C"
kill -KILL "$C" 2>/dev/null
for c in $(cat /sys/fs/cgroup/memory/preoom-test-*-$$/cgroup.procs 2>/dev/null); do kill -KILL "$c" 2>/dev/null; done

# ---- cgroup patterns ------------------------------------------------------------------------
read -r kind root < <(cg_root)
cg=$(cg_create patterns $((256 << 20))) || { fail "cgroup"; t_done; }
mkdir "$cg/big" "$cg/small"
[ "$kind" = v2 ] && echo "+memory" >"$cg/cgroup.subtree_control" 2>/dev/null
L=$T_TMP/patterns.log
cg_run "$cg/big" "${pre[@]}" "$T_TMP/big" 130 10 30 4000; BIG=$BG_PID
sleep 0.8
bg "$D" --registry "$T_REG" --cgroup "$cg" --no-mlock --policy kernel --log-format json \
    --protect-cgroup '*/big' 2>"$L"; dp=$BG_PID
wait_for 50 'grep -q watching "$L"'
sleep 0.5 # the first pass names preoomd in the registry: explain then reads its settings
"$B/preoom" --registry "$T_REG" explain >"$T_TMP/explain" 2>&1
cg_run "$cg/small" "${pre[@]}" "$T_TMP/small" 130 4 60 3000; SMALL=$BG_PID
wait "$SMALL"; ss=$?
wait "$BIG"; bs=$?
kill -TERM "$dp"; wait "$dp"
check "--protect-cgroup '*/big': small ($SMALL) was signalled ($ss)" [ "$(signalled "$L" | grep -cx "$SMALL")" -eq 1 ]
acted=$(( $(ev_count "$L" sigterm "$BIG") + $(ev_count "$L" sigkill "$BIG") + $(ev_count "$L" ask "$BIG") ))
check "--protect-cgroup '*/big': big ($BIG) never asked nor signalled ($acted), and finished ($bs)" \
    bash -c '[ "$0" -eq 0 ] && [ "$1" -eq 0 ]' "$acted" "$bs"
check "preoom explain reads the published pattern: big is protected" \
    grep -Eq " $BIG +big .*never chosen: protected" "$T_TMP/explain"
[ "$T_FAILED" -eq 0 ] || { sed 's/^/#   /' "$L" | head -20; sed 's/^/#   explain: /' "$T_TMP/explain" | head -20; }
rmdir "$cg/big" "$cg/small" 2>/dev/null
cg_remove "$cg"
t_done

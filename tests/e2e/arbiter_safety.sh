#!/usr/bin/env bash
# tests/e2e/arbiter_safety.sh — preoomd never signals a process a slot merely names.
#
# Under real pressure in a 256 MiB memory cgroup, the registry also holds:
#   - the stale slot of a registered process that was SIGKILLed, whose pid was then taken by
#     an unregistered process (forced with /proc/sys/kernel/ns_last_pid): pid reuse;
#   - forged slots naming an unrelated process with its true start time, pid 1, and the
#     daemon itself, each claiming 8 GiB so that it would rank first if trusted;
#   - a slot of random bytes.
# The daemon must act on the real hog only, and every named process must survive. Root only.
. "$(dirname "$0")/lib.sh"

if ! is_root; then skip "arbiter safety: needs root (memory cgroup, ns_last_pid)"; t_done; fi
if ! cg_root >/dev/null; then skip "arbiter safety: no memory cgroup controller"; t_done; fi
D=$B/preoomd
cg_run() { local cg=$1; shift; bg bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cg" "$@"; }
pre=(env LD_PRELOAD="$LIB" PREOOM_REGISTRY="$T_REG")
cg=$(cg_create safety $((256 << 20))) || { fail "cannot create the cgroup"; t_done; }

# 1. A registered process, big enough to rank first, then killed: its slot stays behind.
cg_run "$cg" "${pre[@]}" "$PROG/grow" 150 30 10 60000; R=$BG_PID
for _ in $(seq 100); do [ -s /dev/shm/preoom.$T_REG ] && grep -q "^RssAnon:.*[0-9]\{6\} kB" /proc/$R/status 2>/dev/null && break; sleep 0.05; done
sleep 0.3   # one publication with its big figures
kill -KILL "$R"; wait "$R" 2>/dev/null
# 2. Its pid goes to an unregistered process.
P=""
if [ -w /proc/sys/kernel/ns_last_pid ]; then
    for _ in $(seq 30); do
        echo $((R - 1)) >/proc/sys/kernel/ns_last_pid 2>/dev/null
        bg sleep 120
        if [ "$BG_PID" -eq "$R" ]; then P=$BG_PID; break; fi
        kill "$BG_PID" 2>/dev/null
    done
fi
if [ -n "$P" ]; then ok "pid $R reused by an unregistered process"; else
    skip "pid reuse: could not get pid $R again through ns_last_pid (busy machine?)"; fi

# 3. Forged slots.
bg sleep 120; U=$BG_PID
"$PROG/forge" "$T_REG" "$U" auto >/dev/null || fail "forge a slot for an unrelated process"
"$PROG/forge" "$T_REG" 1 auto >/dev/null || fail "forge a slot for pid 1"
"$PROG/forge" "$T_REG" "$U" auto garbage >/dev/null || fail "forge a slot of random bytes"

# 4. The daemon, and a slot forged for it too.
log=$T_TMP/preoomd.log
bg "$D" --registry "$T_REG" --cgroup "$cg" --no-mlock --log-format json 2>"$log"; DP=$BG_PID
for _ in $(seq 50); do grep -q watching "$log" && break; sleep 0.05; done
"$PROG/forge" "$T_REG" "$DP" auto >/dev/null || fail "forge a slot for the daemon"

# 5. Real pressure from a registered hog.
cg_run "$cg" "${pre[@]}" "$PROG/grow" 300 5 40 4000; H=$BG_PID
wait "$H"; hs=$?
check "the real hog was acted on (exit status $hs)" [ "$hs" -ne 0 ]
check "the hog was signalled by preoomd" [ "$(signalled "$log" | tr '\n' ' ')" = "$H " ]
# Forged slots claim 8 GiB each: had they counted, "exposure" would have raised the pressure
# and the hog been hit long before memory ran short. Exposure the daemon reports must stay
# within what the real hog can have (its one malloc'ed but unwritten step), and it must have
# been asked only once the cgroup was short.
# Exposure counts at half weight: available - effective is half the exposure preoomd saw.
maxexp=$(python3 -c '
import json, sys
m = 0
for l in open(sys.argv[1]):
    d = json.loads(l) if l.startswith("{") else {}
    if "effective" in d: m = max(m, 2 * (d["available"] - d["effective"]) / 2**20)
print(round(m, 1))' "$log")
check "forged claims raised no pressure: exposure stayed at the hog's own (max ${maxexp} MiB)" \
    awk -v m="$maxexp" 'BEGIN {exit !(m < 32)}'
check "the hog was signalled only once the cgroup was short (<= 20% available)" python3 -c '
import json, sys
t = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{\"event\":\"sigterm\"")]
sys.exit(0 if t and t[0]["available"] <= 0.2 * t[0]["total"] else 1)' "$log"
[ -n "$P" ] && check "the process that took the dead one's pid was never signalled" kill -0 "$P"
check "the unrelated process a forged slot names was never signalled" kill -0 "$U"
check "the daemon itself is alive" kill -0 "$DP"
check "pid 1 is alive (of course) and never targeted" [ -z "$( { ev_pids "$log" ask; signalled "$log"; } | grep -x 1)" ]
check "no action on anything but the hog" [ -z "$( { ev_pids "$log" ask; signalled "$log"; } | grep -vx "$H")" ]
check "the forged slot was recognised and ignored" grep -q "names pid $U (sleep), which does not map .*: ignored (forged or stale)" "$log"
check "every line of the JSON log is one JSON object" python3 -c '
import json, sys
[json.loads(l) for l in open(sys.argv[1])]' "$log"
check "the kernel killed nobody (oom_kill=$(cg_oom_kills "$cg"))" [ "$(cg_oom_kills "$cg")" -eq 0 ]
kill -TERM "$DP"; wait "$DP"; check "preoomd stops on SIGTERM with status 0" [ $? -eq 0 ]
[ "$T_FAILED" -eq 0 ] || sed 's/^/#   /' "$log"
t_done

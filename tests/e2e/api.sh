#!/usr/bin/env bash
# tests/e2e/api.sh — include/preoom.h in use: programs give memory back when asked.
#
# In a 256 MiB memory cgroup the example cache (examples/cache.c) holds 150 MiB while a
# preloaded process grows by 100 MiB:
#   - with its release callback, preoomd asks the cache, the cache drops entries and says how
#     much; its touched memory falls by that much (within 10%), and both processes live;
#   - without the callback, the same scene ends in SIGTERM of the policy's first choice, not
#     a kernel OOM kill;
#   - a callback that is too slow, or gives nothing back, is escalated on time, and the log
#     says so.
# Also: the API's contract call by call, with and without the preload. Scenes need root.
. "$(dirname "$0")/lib.sh"

CACHE=$B/examples/cache
[ -x "$CACHE" ] || { fail "examples/cache not built"; t_done; }
D=$B/preoomd

"$PROG/apitest" | sed 's/^\(not \)\{0,1\}ok - /&no preload: /'
out=$("$CACHE" --mib 8 --seconds 1)
check "the cache runs unchanged without the preload and says so" \
    grep -q "libpreoom.so is not loaded: no release callback" <<<"$out"
LD_PRELOAD=$LIB "$PROG/apitest" | sed 's/^\(not \)\{0,1\}ok - /&preloaded: /'

if ! is_root || ! cg_root >/dev/null; then
    skip "release scenes: need root and a memory cgroup controller"; t_done
fi
cg_run() { local cg=$1; shift; bg bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cg" "$@"; }
pre=(env LD_PRELOAD="$LIB" PREOOM_REGISTRY="$T_REG")

# The pressure level the daemon publishes reaches the app (dry run: ask at 99% available);
# a cache that can give is the one asked, in words only.
bg "$D" --registry "$T_REG" --no-mlock --dry-run --ask 99.9 --term 1 --kill 0.5 2>"$T_TMP/dry.log"; DP=$BG_PID
"${pre[@]}" "$CACHE" --mib 8 --seconds 2 >"$T_TMP/dry.cache"
"${pre[@]}" "$PROG/apitest" 1 | tail -n 1
kill -TERM "$DP"; wait "$DP"
check "dry run: the cache's ask is logged" grep -q "dry-run: would ask pid .*(cache)" "$T_TMP/dry.log"
check "dry run: nothing was sent (the cache was never asked)" bash -c '! grep -q "cache: asked" "$0"' "$T_TMP/dry.cache"

# scene NAME CACHE-ARGS...: sets C_ST G_ST (statuses), C_PID, KILLS, LOG, COUT.
scene() {
    local name=$1; shift
    local cg; cg=$(cg_create "api$name" $((256 << 20))) || { fail "cgroup"; return 1; }
    LOG=$T_TMP/$name.log; COUT=$T_TMP/$name.cache.out
    bg "$D" --registry "$T_REG" --cgroup "$cg" --no-mlock --log-format json 2>"$LOG"; local dp=$BG_PID
    for _ in $(seq 50); do grep -q watching "$LOG" && break; sleep 0.05; done
    cg_run "$cg" "${pre[@]}" "$CACHE" --mib 150 --seconds 6 "$@" >"$COUT"; C_PID=$BG_PID
    for _ in $(seq 100); do grep -q "^RssAnon:.*1[0-9]\{5\} kB" /proc/$C_PID/status 2>/dev/null && break; sleep 0.05; done
    cg_run "$cg" "${pre[@]}" "$PROG/grow" 100 4 60 3000; local gp=$BG_PID; G_PID=$gp
    wait "$gp"; G_ST=$?
    wait "$C_PID"; C_ST=$?
    KILLS=$(cg_oom_kills "$cg")
    kill -TERM "$dp"; wait "$dp"
    cg_remove "$cg"
}

# With the callback: the cache is asked for what the grower needs (not all of it), gives it
# back, and both live.
scene cb >"$T_TMP/cb.stdout"
check "with a callback: the cache was asked" [ "$(ev_count "$LOG" ask "$C_PID")" -ge 1 ]
check "with a callback: the grower, which has nothing to give, was not asked" [ "$(ev_count "$LOG" ask "$G_PID")" -eq 0 ]
check "with a callback: the kernel killed nobody (oom_kill=$KILLS)" [ "$KILLS" -eq 0 ]
check "with a callback: both processes live and finish (cache $C_ST, grower $G_ST)" [ "$C_ST" -eq 0 -a "$G_ST" -eq 0 ]
check "with a callback: the cache ran its full time" grep -q "exiting after 6 s" "$COUT"
check "with a callback: nobody was signalled" [ -z "$(signalled "$LOG")" ]
check "with a callback: the callback ran, allocating its message as it freed entries" \
    grep -q "^cache: asked for .* dropped [0-9]* entries" "$COUT"
check "with a callback: the cache kept most of its entries (asked for the shortfall, not all)" \
    bash -c 'tail -n 1 "$0" | awk "{for (i = 1; i <= NF; i++) if (\$i == \"MiB\" && \$(i-1) + 0 >= 40) ok = 1} END {exit !ok}"' "$COUT"
# Each answer: the fall of touched memory within 10% of what the callbacks said they freed.
bad=$(python3 -c '
import json, sys
n = bad = 0
for l in open(sys.argv[1]):
    if not l.startswith("{"): continue
    d = json.loads(l)
    if d["event"] != "answer": continue
    n += 1
    fell, said = d.get("bytes", 0), d["callback_bytes"]
    if said < 2**20 or abs(fell - said) > said * 0.10: bad += 1
print(n, bad)' "$LOG")
check "with a callback: the bytes reported match the fall of touched memory within 10% (answers, off: $bad)" \
    awk -v s="$bad" 'BEGIN {split(s, a, " "); exit !(a[1] >= 1 && a[2] == 0)}'
[ "$T_FAILED" -eq 0 ] || sed 's/^/#   /' "$LOG" | head -20

# Without the callback: the grower, which causes the pressure, gets SIGTERM; the cache, which
# filled at start and holds still, is not to blame and lives; the kernel kills nobody.
scene nocb --no-callback >/dev/null
check "without a callback: the grower (to blame) got SIGTERM, nobody else" [ "$(signalled "$LOG" | tr '\n' ' ')" = "$G_PID " ]
check "without a callback: the cache lived its full time (status $C_ST)" \
    bash -c '[ "$1" -eq 0 ] && grep -q "exiting after 6 s" "$0"' "$COUT" "$C_ST"
check "without a callback: the kernel killed nobody (oom_kill=$KILLS)" [ "$KILLS" -eq 0 ]
[ "$T_FAILED" -eq 0 ] || sed 's/^/#   /' "$LOG" | head -20

# A callback slower than the grace: its ask times out, said in the log, and the signal gate
# (memory below the term line, still falling) is not held up by it.
scene slow --slow-callback 4000 >/dev/null
check "slow callback: the log says it did not answer in time" [ "$(ev_count "$LOG" no-answer "$C_PID")" -ge 1 ]
check "slow callback: the grower got SIGTERM" [ "$(ev_count "$LOG" sigterm "$G_PID")" -ge 1 ]
check "slow callback: the kernel killed nobody (oom_kill=$KILLS)" [ "$KILLS" -eq 0 ]

# A callback that frees nothing: its empty answer is logged, it is not asked again in the
# episode, and the grower is stopped.
scene useless --useless-callback >/dev/null
check "useless callback: its empty answer is logged" python3 -c '
import json, sys
a = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
a = [d for d in a if d["event"] == "answer" and d["pid"] == int(sys.argv[2])]
sys.exit(0 if a and a[0].get("bytes", 0) < 2**20 and a[0]["callback_bytes"] == 0 else 1)' "$LOG" "$C_PID"
check "useless callback: asked once, not again in the same episode" [ "$(ev_count "$LOG" ask "$C_PID")" -eq 1 ]
check "useless callback: then SIGTERM (of the grower)" [ "$(ev_count "$LOG" sigterm "$G_PID")" -ge 1 ]
check "useless callback: the kernel killed nobody (oom_kill=$KILLS)" [ "$KILLS" -eq 0 ]
t_done

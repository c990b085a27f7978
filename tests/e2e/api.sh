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

# The pressure level the daemon publishes reaches the app (dry run: ask at 99% available).
bg "$D" --registry "$T_REG" --no-mlock --dry-run --ask 99.9 --term 1 --kill 0.5 2>"$T_TMP/dry.log"; DP=$BG_PID
"${pre[@]}" "$PROG/apitest" 1 | tail -n 1
kill -TERM "$DP"; wait "$DP"
check "dry run: decisions logged, nothing sent" grep -q "dry-run: would ask pid" "$T_TMP/dry.log"

# scene NAME CACHE-ARGS...: sets C_ST G_ST (statuses), C_PID, KILLS, LOG, COUT.
scene() {
    local name=$1; shift
    local cg; cg=$(cg_create "api$name" $((256 << 20))) || { fail "cgroup"; return 1; }
    LOG=$T_TMP/$name.log; COUT=$T_TMP/$name.cache.out
    bg "$D" --registry "$T_REG" --cgroup "$cg" --no-mlock 2>"$LOG"; local dp=$BG_PID
    for _ in $(seq 50); do grep -q watching "$LOG" && break; sleep 0.05; done
    cg_run "$cg" "${pre[@]}" "$CACHE" --mib 150 --seconds 6 "$@" >"$COUT"; C_PID=$BG_PID
    for _ in $(seq 100); do grep -q "^RssAnon:.*1[0-9]\{5\} kB" /proc/$C_PID/status 2>/dev/null && break; sleep 0.05; done
    cg_run "$cg" "${pre[@]}" "$PROG/grow" 100 4 60 3000; local gp=$BG_PID
    wait "$gp"; G_ST=$?
    wait "$C_PID"; C_ST=$?
    KILLS=$(cg_oom_kills "$cg")
    kill -TERM "$dp"; wait "$dp"
    cg_remove "$cg"
}

# With the callback: asked, gives back, both live.
scene cb >"$T_TMP/cb.stdout"
check "with a callback: the cache was asked" grep -q "ask pid $C_PID (cache)" "$LOG"
check "with a callback: the kernel killed nobody (oom_kill=$KILLS)" [ "$KILLS" -eq 0 ]
check "with a callback: both processes live and finish (cache $C_ST, grower $G_ST)" [ "$C_ST" -eq 0 -a "$G_ST" -eq 0 ]
check "with a callback: the cache ran its full time" grep -q "exiting after 6 s" "$COUT"
check "with a callback: nobody was signalled" bash -c '! grep -q "SIG" "$0"' "$LOG"
check "with a callback: the callback ran, allocating its message as it freed entries" \
    grep -q "^cache: asked for .* dropped [0-9]* entries" "$COUT"
# "touched memory fell X (its callbacks reported Y freed": X within 10% of Y, for each answer.
ans=$(grep -o "answered in [0-9]*ms: touched memory fell [0-9.]*MiB (its callbacks reported [0-9.]*MiB" "$LOG")
n=$(grep -c . <<<"$ans")
bad=$(sed -E 's/.*fell ([0-9.]+)MiB \(its callbacks reported ([0-9.]+)MiB.*/\1 \2/' <<<"$ans" |
      awk '{d = $1 - $2; if (d < 0) d = -d; if ($2 < 1 || d > $2 * 0.10) b++} END {print b+0}')
check "with a callback: the bytes reported match the fall of touched memory within 10% ($n answers, $bad off)" \
    [ "$n" -ge 1 -a "$bad" -eq 0 ]
[ "$T_FAILED" -eq 0 ] || sed 's/^/#   /' "$LOG" | head -20

# Without the callback: the policy's first choice gets SIGTERM; the kernel kills nobody.
scene nocb --no-callback >/dev/null
check "without a callback: the cache (first choice) got SIGTERM" grep -q "SIGTERM pid $C_PID (cache)" "$LOG"
check "without a callback: the cache ended on it, before its time (status $C_ST)" \
    bash -c 'grep -q "SIGTERM received" "$0" && ! grep -q "exiting after 6 s" "$0"' "$COUT"
check "without a callback: the other finished, the kernel killed nobody (oom_kill=$KILLS)" [ "$G_ST" -eq 0 -a "$KILLS" -eq 0 ]

# A callback slower than the grace: escalated on time, said in the log.
scene slow --slow-callback 4000 >/dev/null
ask_t=$(grep -m1 "ask pid $C_PID" "$LOG" | sed 's/^preoomd \([0-9:.]*\):.*/\1/')
term_t=$(grep -m1 "SIGTERM pid $C_PID" "$LOG" | sed 's/^preoomd \([0-9:.]*\):.*/\1/')
secs() { awk -F: '{printf "%.3f\n", $1*3600 + $2*60 + $3}' <<<"$1"; }
check "slow callback: the log says it did not answer in time" grep -q "pid $C_PID (cache) did not answer within" "$LOG"
check "slow callback: SIGTERM came on time (ask $ask_t, SIGTERM $term_t, grace 1 s at moderate, 250 ms at critical)" \
    awk -v a="$(secs "$ask_t")" -v t="$(secs "$term_t")" 'BEGIN {d = t - a; exit !(d >= 0.2 && d <= 1.5)}'
check "slow callback: the kernel killed nobody (oom_kill=$KILLS)" [ "$KILLS" -eq 0 ]

# A callback that frees nothing: SIGTERM follows its empty answer.
scene useless --useless-callback >/dev/null
check "useless callback: its empty answer is logged" grep -q "pid $C_PID (cache) answered in .*fell 0.0MiB (its callbacks reported 0.0MiB" "$LOG"
check "useless callback: then SIGTERM" grep -q "SIGTERM pid $C_PID (cache): asked for .*gave back 0.0MiB" "$LOG"
check "useless callback: the kernel killed nobody (oom_kill=$KILLS)" [ "$KILLS" -eq 0 ]
t_done

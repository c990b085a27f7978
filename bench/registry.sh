#!/usr/bin/env bash
# bench/registry.sh — what the registry costs (issue 3), medians of RUNS runs:
#   publish:  one publication under the slot's seqlock (ns), in-process (bench/reg_bench.c);
#   walk:     a reader's full snapshot of 1000 live slots (µs; target < 1 ms), in-process;
#   agent:    the CPU a preloaded idle process's agent thread uses per second, at the default
#             100 ms interval (measure, /proc/self/status, publish, futex wait), alone in
#             the registry and among 999 other live slots. Read from the thread's
#             /proc/PID/task/TID/schedstat (nanoseconds on CPU), not from clock ticks, which
#             are too coarse for a thread that runs microseconds a second.
#   BUILD=build bench/registry.sh [RUNS]      SECS=N seconds per agent sample (default 2)
# Standalone; bench/run.sh calls it. Removes every process and /dev/shm file it makes.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) B=$BUILD ;; *) B=$TOP/$BUILD ;; esac
RUNS=${1:-7}
SECS=${SECS:-2}
LIB=$B/libpreoom.so
CORE=$B/libpreoom-core.a
REG=benchreg$$
if [ ! -f "$LIB" ] || [ ! -f "$CORE" ] || [ ! -f "$B/libpreoom-common.a" ]; then
    echo "registry bench: $LIB, $CORE or $B/libpreoom-common.a missing (make all)"; exit 1
fi
mkdir -p "$B/bench"
cc -std=gnu11 -D_GNU_SOURCE -O2 -I"$TOP/include" -I"$TOP/common" -I"$TOP/preload" -o "$B/bench/reg_bench" \
    "$TOP/bench/reg_bench.c" "$CORE" "$B/libpreoom-common.a" -ldl -lpthread -lunwind || exit 1
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -f "/dev/shm/preoom.$REG" "/dev/shm/preoom.$REG-t"
}
trap cleanup EXIT
median() { sort -g | awk '{a[++n] = $1} END { if (!n) { print "nan"; exit }
    print (n % 2) ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2 }'; }

# ---- in-process: publication and full walk ----------------------------------------------------
out=$("$B/bench/reg_bench" time "$REG-t" "$RUNS") || exit 1
val() { echo "$out" | awk -v k="$1" '$1 == k {print $2}'; }
echo "publish: $(val publish_ns) ns per publication (median of $RUNS x 10000)"
echo "walk: full snapshot of 1000 live slots in $(val walk_us) µs (median of $RUNS; min $(val walk_min_us), max $(val walk_max_us); target < 1000 µs)"

# ---- the agent thread of an idle preloaded process ---------------------------------------------
# agent_ns: CPU nanoseconds per second of the agent of a fresh preloaded `sleep`.
agent_ns() {
    local p tid t a b
    env LD_PRELOAD="$LIB" PREOOM_REGISTRY="$REG" PREOOM_INTERVAL_MS=100 sleep 60 &
    p=$!
    pids+=("$p")
    sleep 0.5
    tid=""
    for t in /proc/$p/task/*; do
        # The agent names itself preoom<slot>:<adj> once registered (the proof of its slot).
        case "$(cat "$t/comm" 2>/dev/null)" in preoom-agent|preoom[0-9a-f]*:[0-9]*) tid=${t##*/} ;; esac
    done
    if [ -z "$tid" ]; then kill -KILL "$p"; wait "$p" 2>/dev/null; echo nan; return; fi
    a=$(cut -d' ' -f1 "/proc/$p/task/$tid/schedstat")
    sleep "$SECS"
    b=$(cut -d' ' -f1 "/proc/$p/task/$tid/schedstat")
    kill -TERM "$p"; wait "$p" 2>/dev/null
    echo $(( (b - a) / SECS ))
}
for others in 0 999; do
    holder=""
    if [ "$others" -gt 0 ]; then
        "$B/bench/reg_bench" hold "$REG" "$others" >"$B/bench/reg_bench.$$.ready" &
        holder=$!
        pids+=("$holder")
        for _ in $(seq 100); do grep -q holding "$B/bench/reg_bench.$$.ready" 2>/dev/null && break; sleep 0.05; done
        rm -f "$B/bench/reg_bench.$$.ready"
    fi
    res=()
    for _ in $(seq "$RUNS"); do res+=("$(agent_ns)"); done
    m=$(printf '%s\n' "${res[@]}" | median)
    awk -v m="$m" -v n="$((others + 1))" -v r="$RUNS" -v s="$SECS" 'BEGIN {
        printf "agent: %.1f µs of CPU per second (%.4f%% of a core) with %d live slot%s (median of %d x %d s, 100 ms interval)\n",
               m / 1000, m / 1e7, n, (n > 1 ? "s" : ""), r, s }'
    if [ -n "$holder" ]; then kill -KILL "$holder"; wait "$holder" 2>/dev/null; fi
    rm -f "/dev/shm/preoom.$REG"
done

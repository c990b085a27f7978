#!/usr/bin/env bash
# bench/arbiter.sh — preoomd's reaction time and idle cost (issue 4).
#   reaction: a registered process grows in 1 MiB steps inside a 256 MiB memory cgroup; the
#             time from its cgroup crossing the ask line (15%) to its release callback
#             running, median of RUNS trials (target < 20 ms). Needs root for the cgroup.
#   idle:     the daemon's CPU over 30 s with 20 registered idle processes, far from every
#             threshold, as a share of one core (target < 0.1%); and with 50 registered idle
#             processes in a small (320 MiB) memory cgroup, where the poll interval must follow
#             the time left, not the bytes left (root only).
#   idle, 50 domains: 500 registered idle processes in 50 memory cgroups, one preoomd finding
#             them all: its CPU (target < 0.1%) and its decision pass time (root only).
#   BUILD=build bench/arbiter.sh [RUNS]
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) B=$BUILD ;; *) B=$TOP/$BUILD ;; esac
RUNS=${1:-9}
LIB=$B/libpreoom.so
REG=benchd$$
mkdir -p "$B/bench"
cc -O2 -I"$TOP/include" -o "$B/bench/react" "$TOP/bench/react.c" || exit 1
pids=()
cg=""
cgs=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    [ -n "$cg" ] && rmdir "$cg" 2>/dev/null
    for c in "${cgs[@]}"; do rmdir "$c" 2>/dev/null; done
    rm -f /dev/shm/preoom.$REG /dev/shm/preoom.$REG.preoomd
}
trap cleanup EXIT

if [ "$(id -u)" -eq 0 ] && [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes -o -f /sys/fs/cgroup/cgroup.controllers ]; then
    if [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
        cg=/sys/fs/cgroup/memory/preoom-bench-$$; mkdir "$cg"
        echo $((256 << 20)) >"$cg/memory.limit_in_bytes"; usage=$cg/memory.usage_in_bytes
    else
        cg=/sys/fs/cgroup/preoom-bench-$$; mkdir "$cg"
        echo $((256 << 20)) >"$cg/memory.max"; usage=$cg/memory.current
    fi
    line=$(( (256 << 20) * 85 / 100 ))
    "$B/preoomd" --registry "$REG" --cgroup "$cg" --no-mlock --quiet &
    pids+=($!)
    sleep 0.3
    for mode in jump ramp; do
        res=()
        for _ in $(seq "$RUNS"); do
            r=$(bash -c 'echo $$ >"$0/cgroup.procs" && exec env LD_PRELOAD="$1" PREOOM_REGISTRY="$2" "$3" "$4" "$5" "$6"' \
                "$cg" "$LIB" "$REG" "$B/bench/react" "$usage" "$line" "$mode" 2>/dev/null)
            res+=("${r:-nan}")
            sleep 0.2
        done
        printf '%s\n' "${res[@]}" | sort -g | awk -v n="$RUNS" -v mode="$mode" '
            $1 != "nan" && $1 != "" {a[++k] = $1}
            END { if (!k) { print "reaction (" mode "): no trial completed"; exit }
                  m = (k % 2) ? a[(k+1)/2] : (a[k/2] + a[k/2+1]) / 2;
                  if (mode == "jump")
                      printf "reaction, a jump past the ask line to the release callback: median %.1f ms, min %.1f, max %.1f (%d of %d trials; target < 20 ms)\n", m, a[1], a[k], k, n
                  else
                      printf "reaction, a 500 MiB/s ramp: the ask reaches the callback %.1f ms before the line is crossed (median; min %.1f, max %.1f; %d of %d trials; the forecast asks ahead)\n", -m, -a[k], -a[1], k, n }'
    done
    kill -TERM "${pids[0]}"; wait "${pids[0]}" 2>/dev/null; pids=()
    rmdir "$cg"; cg=""
else
    echo "reaction: skipped (needs root and a memory cgroup)"
fi

# Idle: 20 registered processes doing nothing, the machine far from every threshold.
for _ in $(seq 20); do LD_PRELOAD=$LIB PREOOM_REGISTRY=$REG sleep 90 & pids+=($!); done
"$B/preoomd" --registry "$REG" --no-mlock --quiet &
d=$!; pids+=($d)
sleep 1
tck=$(getconf CLK_TCK)
t0=$(awk '{print $14 + $15}' /proc/$d/stat)
sleep 30
t1=$(awk '{print $14 + $15}' /proc/$d/stat)
awk -v a="$t0" -v b="$t1" -v t="$tck" 'BEGIN {
    printf "idle: preoomd used %.3f%% of one core over 30 s with 20 registered processes (%d ticks of 1/%d s; target < 0.1%%)\n", (b - a) / t / 30 * 100, b - a, t }'

# Idle in a small cgroup: 50 registered processes doing nothing in 320 MiB.
for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; pids=()
if [ "$(id -u)" -eq 0 ] && [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes -o -f /sys/fs/cgroup/cgroup.controllers ]; then
    if [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
        cg=/sys/fs/cgroup/memory/preoom-bench-idle-$$; mkdir "$cg"; echo $((320 << 20)) >"$cg/memory.limit_in_bytes"
    else
        cg=/sys/fs/cgroup/preoom-bench-idle-$$; mkdir "$cg"; echo $((320 << 20)) >"$cg/memory.max"
    fi
    for _ in $(seq 50); do
        bash -c 'echo $$ >"$0/cgroup.procs" && exec env LD_PRELOAD="$1" PREOOM_REGISTRY="$2" sleep 90' "$cg" "$LIB" "$REG" &
        pids+=($!)
    done
    "$B/preoomd" --registry "$REG" --cgroup "$cg" --no-mlock --quiet &
    d=$!; pids+=($d)
    sleep 2
    t0=$(awk '{print $14 + $15}' /proc/$d/stat)
    sleep 30
    t1=$(awk '{print $14 + $15}' /proc/$d/stat)
    awk -v a="$t0" -v b="$t1" -v t="$tck" 'BEGIN {
        printf "idle, small cgroup: preoomd used %.3f%% of one core over 30 s with 50 registered processes in 320 MiB (%d ticks; target < 0.1%%, was 8%% before the engine)\n", (b - a) / t / 30 * 100, b - a }'
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; pids=()
    rmdir "$cg"; cg=""
else
    echo "idle, small cgroup: skipped (needs root and a memory cgroup)"
fi

# Idle with many domains (#16): 50 memory cgroups of 256 MiB, 10 registered idle processes
# in each (500 in all), one preoomd finding them all (no --cgroup): its CPU over 30 s, and
# the decision loop's pass time as its metrics say it, sampled every half second (far from
# every line the textfile is rewritten every 5 s: about a dozen distinct passes).
if [ "$(id -u)" -eq 0 ] && [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes -o -f /sys/fs/cgroup/cgroup.controllers ]; then
    cgs=()
    for i in $(seq 50); do
        if [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
            c=/sys/fs/cgroup/memory/preoom-bench-dom$i-$$; mkdir "$c"; echo $((256 << 20)) >"$c/memory.limit_in_bytes"
        else
            c=/sys/fs/cgroup/preoom-bench-dom$i-$$; mkdir "$c"; echo $((256 << 20)) >"$c/memory.max"
        fi
        cgs+=("$c")
        for _ in $(seq 10); do
            bash -c 'echo $$ >"$0/cgroup.procs" && exec env LD_PRELOAD="$1" PREOOM_REGISTRY="$2" sleep 150' "$c" "$LIB" "$REG" &
            pids+=($!)
        done
    done
    mf=$(mktemp /tmp/preoom-bench-metrics.XXXXXX)
    "$B/preoomd" --registry "$REG" --no-mlock --quiet --metrics "$mf" &
    d=$!; pids+=($d)
    sleep 8  # every domain found, every process looked at once
    t0=$(awk '{print $14 + $15}' /proc/$d/stat)
    passes=()
    for _ in $(seq 120); do
        sleep 0.5
        v=$(awk '$1 == "preoom_pass_seconds" {print $2}' "$mf" 2>/dev/null)
        [ -n "$v" ] && passes+=("$v")
    done
    t1=$(awk '{print $14 + $15}' /proc/$d/stat)
    awk -v a="$t0" -v b="$t1" -v t="$tck" 'BEGIN {
        printf "idle, 50 domains: preoomd used %.3f%% of one core over 60 s with 500 registered processes in 50 memory cgroups, --metrics FILE on (%d ticks; target < 0.1%%)\n", (b - a) / t / 60 * 100, b - a }'
    printf '%s\n' "${passes[@]}" | sort -g | awk '{ v[NR] = $1 * 1e6 } END {
        if (NR) printf "idle, 50 domains: decision pass %.0f us median, %.0f us max (%d samples of the last pass)\n", v[int((NR + 1) / 2)], v[NR], NR }'
    rm -f "$mf"
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; pids=()
    for c in "${cgs[@]}"; do rmdir "$c" 2>/dev/null; done; cgs=()
else
    echo "idle, 50 domains: skipped (needs root and a memory cgroup)"
fi

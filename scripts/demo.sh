#!/usr/bin/env bash
# scripts/demo.sh — `make demo`: preoom settling memory pressure, live.
#
# Creates a 384 MiB memory cgroup, starts preoomd watching it, and inside it three preloaded
# programs: the example cache (gives memory back when asked), a slow leaker, and a batch
# job. Together they want more than the cgroup has. A live table shows each process's memory
# and, in plain words, who was asked, who gave memory back, who was stopped, and whether the
# kernel's OOM killer had to act. Cleans up everything it started, also on Ctrl-C.
#   DEMO_SECONDS=N (default 45) shortens or lengthens it. Needs root (the cgroup).
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) B=$BUILD ;; *) B=$TOP/$BUILD ;; esac
SECONDS_TOTAL=${DEMO_SECONDS:-45}
LIMIT_MIB=384
REG=demo$$
TMP=$(mktemp -d "${TMPDIR:-/tmp}/preoom-demo.XXXXXX")
pids=()
cg=""
tty=0; [ -t 1 ] && tty=1

cleanup() {
    trap - EXIT INT TERM
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    sleep 0.3
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    if [ -n "$cg" ] && [ -d "$cg" ]; then
        for p in $(cat "$cg/cgroup.procs" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        for _ in 1 2 3 4 5 6 7 8 9 10; do rmdir "$cg" 2>/dev/null && break; sleep 0.2; done
    fi
    rm -f "/dev/shm/preoom.$REG"
    rm -rf "$TMP"
    [ "$tty" -eq 1 ] && printf '\033[?25h'
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted, cleaning up"; exit 130' INT TERM

if [ "$(id -u)" -ne 0 ]; then
    echo "demo: needs root, to create a memory cgroup of $LIMIT_MIB MiB (run: sudo make demo)" >&2
    exit 1
fi
for f in "$B/libpreoom.so" "$B/preoomd" "$B/preoom" "$B/examples/cache" "$B/tests/prog/grow"; do
    [ -e "$f" ] || { echo "demo: $f is missing (make demo builds it)" >&2; exit 1; }
done

# The memory cgroup: v2 where it has the memory controller, else v1.
if [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
    cg=/sys/fs/cgroup/preoom-demo-$$
    mkdir "$cg" && echo $((LIMIT_MIB << 20)) >"$cg/memory.max" && echo 0 >"$cg/memory.swap.max" 2>/dev/null
    usage_file=$cg/memory.current; oom_file=$cg/memory.events
elif [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
    cg=/sys/fs/cgroup/memory/preoom-demo-$$
    mkdir "$cg" && echo $((LIMIT_MIB << 20)) >"$cg/memory.limit_in_bytes"
    usage_file=$cg/memory.usage_in_bytes; oom_file=$cg/memory.oom_control
else
    echo "demo: this machine has no memory cgroup controller" >&2
    exit 1
fi
[ -d "$cg" ] || { echo "demo: could not create the cgroup $cg" >&2; exit 1; }
oom_kills() { awk '$1 == "oom_kill" {print $2}' "$oom_file"; }

# The programs get names that say what they are (a process's name is its file's name).
ln -s "$B/tests/prog/grow" "$TMP/leaker"
ln -s "$B/tests/prog/grow" "$TMP/batch-job"
run_in_cgroup() {
    local out=$1; shift
    bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cg" \
        env LD_PRELOAD="$B/libpreoom.so" PREOOM_REGISTRY="$REG" "$@" >"$out" 2>&1 &
    pids+=($!)
}

"$B/preoomd" --registry "$REG" --cgroup "$cg" --no-mlock 2>"$TMP/preoomd.log" &
pids+=($!)
sleep 0.3
run_in_cgroup "$TMP/cache.out" "$B/examples/cache" --mib 200 --refill-mib-per-s 8 --seconds "$SECONDS_TOTAL"
sleep 2
run_in_cgroup "$TMP/batch.out" "$TMP/batch-job" 70 5 100 $(( (SECONDS_TOTAL - 8) * 1000 ))
sleep 1
run_in_cgroup "$TMP/leaker.out" "$TMP/leaker" 400 4 100 $(( SECONDS_TOTAL * 1000 ))

# What the daemon did, in plain words.
story() {
    local P='^preoomd [0-9-]+T([0-9:]+)\.[0-9]+ [a-z]+: '
    sed -n -E \
        -e "s/${P}ask pid ([0-9]+) \(([^)]*)\) uid [0-9]+ to release ([0-9.]+MiB) at ([a-z]+).*/\1  asked \3 (pid \2) to give back \4 (pressure \5)/p" \
        -e "s/${P}pid ([0-9]+) \(([^)]*)\) answered in ([0-9]+ms): touched memory fell ([0-9.]+MiB).*/\1  \3 (pid \2) answered in \4 and gave back \5/p" \
        -e "s/${P}pid ([0-9]+) \(([^)]*)\) did not answer.*/\1  \3 (pid \2) did not answer in time/p" \
        -e "s/${P}SIGTERM pid ([0-9]+) \(([^)]*)\).*/\1  stopped \3 (pid \2) with SIGTERM: memory still falling below the term line/p" \
        -e "s/${P}SIGKILL pid ([0-9]+) \(([^)]*)\).*/\1  killed \3 (pid \2) with SIGKILL: it ignored SIGTERM/p" \
        -e "s/${P}relieved.*/\1  pressure relieved/p" \
        "$TMP/preoomd.log"
}

[ "$tty" -eq 1 ] && printf '\033[?25l'
start=$(date +%s)
while :; do
    now=$(date +%s); el=$((now - start))
    alive=0; for p in "${pids[@]:1}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$el" -ge "$((SECONDS_TOTAL + 3))" ] || [ "$alive" -eq 0 ] && break
    used=$(( $(cat "$usage_file") >> 20 ))
    bar=$(awk -v u="$used" -v l="$LIMIT_MIB" 'BEGIN { n = int(u * 40 / l); if (n > 40) n = 40;
        s = ""; for (i = 0; i < 40; i++) s = s (i < n ? "#" : "."); print s }')
    {
        echo "preoom demo — ${el}s of ${SECONDS_TOTAL}s — memory cgroup limit ${LIMIT_MIB} MiB (Ctrl-C stops)"
        echo
        echo "  cgroup memory [$bar] $used MiB used"
        echo "  kernel OOM kills in the cgroup: $(oom_kills)"
        echo
        "$B/preoom" --registry "$REG" ls 2>/dev/null | sed 's/^/  /'
        echo
        echo "  what preoomd did:"
        story | tail -n 12 | sed 's/^/    /'
    } >"$TMP/frame"
    if [ "$tty" -eq 1 ]; then printf '\033[H\033[2J'; cat "$TMP/frame"; else
        echo "--- t=${el}s: ${used} MiB used of ${LIMIT_MIB}, $(story | wc -l) decisions so far"; fi
    sleep 1
done
[ "$tty" -eq 1 ] && printf '\033[H\033[2J' && cat "$TMP/frame"

kills=$(oom_kills)
asked=$(grep -c ": ask pid" "$TMP/preoomd.log")
gave=$(grep -c "answered in" "$TMP/preoomd.log")
stopped=$(grep -c ": SIG\(TERM\|KILL\) pid" "$TMP/preoomd.log")
echo
echo "== what happened"
story | sed 's/^/  /'
echo
echo "  $asked release request(s), $gave answer(s), $stopped process(es) stopped by preoomd."
tail -n 1 "$TMP/cache.out" | sed 's/^/  the cache, at its end: /'
if [ "$kills" -eq 0 ]; then
    echo "  The kernel's OOM killer killed nobody: preoom settled the pressure first."
else
    echo "  The kernel's OOM killer killed $kills process(es): preoom was too late this time."
fi
echo "  (preoomd's full log had $(wc -l <"$TMP/preoomd.log") lines; the cgroup and every process are cleaned up.)"
exit 0

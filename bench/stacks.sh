#!/usr/bin/env bash
# bench/stacks.sh — the cost of call-site recording (issue 6), side by side on the malloc
# churn (tests/prog/churn): bare (no preload at all), off (the preload counting, no stacks),
# PREOOM_STACKS=sample, PREOOM_STACKS=all, and heaptrack on the same program, alternating run
# by run so drift hits every variant alike. Prints the median wall time and peak RSS of each,
# and the ratios the issue sets targets for: sample <= 1.15x bare; all at least 2x faster
# than heaptrack. sample / off isolates the cost of the call sites from that of counting.
#   BUILD=build bench/stacks.sh [RUNS [THREADS [ITERATIONS]]]
# Standalone (bench/run.sh may call it). Exit 0 even when a target is missed: it measures.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) B=$BUILD ;; *) B=$TOP/$BUILD ;; esac
RUNS=${1:-5}
THREADS=${2:-2}
ITERS=${3:-2000000}
CHURN=$B/tests/prog/churn
LIB=$B/libpreoom.so
for f in "$CHURN" "$LIB"; do
    [ -x "$f" ] || [ -f "$f" ] || { echo "bench/stacks.sh: $f not built (make BUILD=$BUILD all $CHURN)" >&2; exit 1; }
done
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "bench/stacks.sh: needs /usr/bin/time (Debian package time)" >&2; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/preoom-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
export PREOOM_REGISTRY=bench$$

variants="bare off sample sample-nc all"
HT=$(command -v heaptrack || true)
[ -n "$HT" ] && variants="$variants heaptrack"

# one VARIANT: appends "seconds maxrss_kib" to $TMP/VARIANT
one() {
    local v=$1 out=$TMP/$1.run
    case $v in
    bare) $TIME -f '%e %M' -o "$out" "$CHURN" "$THREADS" "$ITERS" >/dev/null ;;
    off | sample | all)
        $TIME -f '%e %M' -o "$out" env LD_PRELOAD="$LIB" PREOOM_STACKS=$v \
            PREOOM_REPORT="$TMP/report.json" "$CHURN" "$THREADS" "$ITERS" >/dev/null ;;
    sample-nc)
        $TIME -f '%e %M' -o "$out" env LD_PRELOAD="$LIB" PREOOM_STACKS=sample \
            PREOOM_STACK_CACHE=off PREOOM_REPORT="$TMP/report.json" "$CHURN" "$THREADS" \
            "$ITERS" >/dev/null ;;
    heaptrack)
        # heaptrack's own launcher is a shell script: time what it runs (the program with
        # libheaptrack_preload and the interpreting process), its output goes to $TMP.
        $TIME -f '%e %M' -o "$out" "$HT" -o "$TMP/ht" "$CHURN" "$THREADS" "$ITERS" >/dev/null 2>&1
        rm -f "$TMP"/ht* ;;
    esac
    cat "$out" >>"$TMP/$v"
}

one bare # warm the page cache
: >"$TMP/bare"
for ((i = 0; i < RUNS; i++)); do
    for v in $variants; do one "$v"; done
done
rm -f "/dev/shm/preoom.$PREOOM_REGISTRY"

median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
echo "churn: $THREADS threads x $ITERS iterations, $RUNS runs each, alternating"
printf '%-10s %10s %14s\n' variant median_s peak_rss_MiB
declare -A med
for v in $variants; do
    med[$v]=$(awk '{print $1}' "$TMP/$v" | median)
    rss=$(awk '{print $2}' "$TMP/$v" | median)
    printf '%-10s %10s %14.1f\n' "$v" "${med[$v]}" "$(awk -v k="$rss" 'BEGIN{print k/1024}')"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo "off / bare        = $(ratio "${med[off]}" "${med[bare]}")  (counting alone)"
echo "sample / bare     = $(ratio "${med[sample]}" "${med[bare]}")  (target <= 1.15)"
echo "sample / off      = $(ratio "${med[sample]}" "${med[off]}")  (call sites alone)"
echo "sample, no cache  = $(ratio "${med[sample-nc]}" "${med[bare]}")  x bare (PREOOM_STACK_CACHE=off)"
echo "all / bare        = $(ratio "${med[all]}" "${med[bare]}")"
if [ -n "$HT" ]; then
    echo "heaptrack / all   = $(ratio "${med[heaptrack]}" "${med[all]}")  (target >= 2)"
else
    echo "heaptrack not installed: no comparison"
fi

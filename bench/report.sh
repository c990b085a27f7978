#!/usr/bin/env bash
# bench/report.sh — how fast `preoom report` renders a large report (issue 14): gcc's cc1
# compiling preload/stacks.c with -O2 -g under PREOOM_STACKS=all (some 20k call sites), then
# the report as text, collapsed stacks, flame graph SVG and pprof, RUNS times each, alternating,
# beside heaptrack_print on heaptrack's recording of the same compilation when heaptrack is
# installed. Prints median wall seconds and the ratios; the target is under 1 s for each.
#   BUILD=build bench/report.sh [RUNS]
# Standalone (bench/run.sh calls it). Exit 0 even when a target is missed: it measures.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) B=$BUILD ;; *) B=$TOP/$BUILD ;; esac
RUNS=${1:-5}
LIB=$B/libpreoom.so
PREOOM=$B/preoom
for f in "$LIB" "$PREOOM"; do
    [ -e "$f" ] || { echo "bench/report.sh: $f not built (make BUILD=$BUILD all)" >&2; exit 1; }
done
CC1=$(gcc -print-prog-name=cc1 2>/dev/null)
[ -x "$CC1" ] || { echo "bench/report.sh: gcc's cc1 not found" >&2; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/preoom-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
export PREOOM_REGISTRY=bench$$

line=$(cd "$TMP" && gcc -### -std=gnu11 -D_GNU_SOURCE -I "$TOP/include" -I "$TOP/common" -I "$TOP/preload" \
    -O2 -g -c "$TOP/preload/stacks.c" -o "$TMP/x.o" 2>&1 | grep -m1 '/cc1 ')
eval "cmd=($line)"
args=("${cmd[@]:1}")
for ((i = 0; i < ${#args[@]}; i++)); do [ "${args[$i]}" = -o ] && args[$((i + 1))]=$TMP/x.s; done
env PREOOM_STACKS=all PREOOM_REPORT="$TMP/r.json" LD_PRELOAD="$LIB" "$CC1" "${args[@]}"
rm -f "/dev/shm/preoom.$PREOOM_REGISTRY"
[ -s "$TMP/r.json" ] || { echo "bench/report.sh: cc1 wrote no report" >&2; exit 1; }
read -r sites frames addrs < <(python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["stacks"]["sites"]
print(len(s), sum(len(x["frames"]) for x in s), len({f for x in s for f in x["frames"]}))' \
    "$TMP/r.json" 2>/dev/null || echo "? ? ?")
echo "cc1 report: $(du -k "$TMP/r.json" | cut -f1) KiB, $sites sites, $frames frames, $addrs distinct addresses"

variants="text collapsed svg pprof"
HTP=$(command -v heaptrack_print || true)
if [ -n "$HTP" ] && command -v heaptrack >/dev/null; then
    heaptrack -o "$TMP/ht" "$CC1" "${args[@]}" >/dev/null 2>&1
    HTF=$(ls "$TMP"/ht.* 2>/dev/null | head -1)
    [ -n "$HTF" ] && variants="$variants heaptrack_print"
fi
TIME=/usr/bin/time
one() {
    local v=$1
    case $v in
    heaptrack_print) $TIME -f %e -o "$TMP/t" "$HTP" -f "$HTF" --print-leaks 1 >/dev/null 2>&1 ;;
    *) $TIME -f %e -o "$TMP/t" "$PREOOM" report "$TMP/r.json" --format "$v" -o "$TMP/out" ;;
    esac
    tail -1 "$TMP/t" >>"$TMP/$v"
}
for ((i = 0; i < RUNS; i++)); do
    for v in $variants; do one "$v"; done
done
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
printf '%-16s %10s\n' variant median_s
declare -A med
for v in $variants; do
    med[$v]=$(median <"$TMP/$v")
    printf '%-16s %10s%s\n' "$v" "${med[$v]}" \
        "$(awk -v t="${med[$v]}" -v v="$v" 'BEGIN { if (v != "heaptrack_print") print (t < 1 ? "  (target < 1 s: met)" : "  (target < 1 s: MISSED)") }')"
done
if [ -n "${med[heaptrack_print]:-}" ]; then
    for v in text collapsed svg; do
        echo "$v / heaptrack_print = $(awk -v a="${med[$v]}" -v b="${med[heaptrack_print]}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')"
    done
fi

#!/usr/bin/env bash
# tests/run.sh — runs every test (unit binaries and end-to-end scripts) and counts the
# "ok -", "not ok -" and "skip -" lines they print. A test that exits non-zero without
# printing a "not ok" line (a crash, a timeout) counts as one failure. Ends with the line
# "N passed, N failed, N skipped" that CI reads.
#   tests/run.sh [FILTER]   FILTER: run only tests whose path contains it.
set -u
BUILD=${BUILD:-build}
export BUILD
TOP=$(cd "$(dirname "$0")/.." && pwd)
export TOP
cd "$TOP" || exit 2
filter=${1:-}
per_test_timeout=${PREOOM_TEST_TIMEOUT:-300}
pass=0 fail=0 skip=0
failed_names=()
logdir=$(mktemp -d "${TMPDIR:-/tmp}/preoom-tests.XXXXXX")
trap 'rm -rf "$logdir"' EXIT

tests=()
for t in "$BUILD"/tests/unit/test_*; do [ -x "$t" ] && tests+=("$t"); done
for t in tests/e2e/*.sh; do case "$(basename "$t")" in lib*) continue ;; esac; [ -f "$t" ] && tests+=("$t"); done

for t in "${tests[@]}"; do
    case "$t" in *"$filter"*) ;; *) continue ;; esac
    log="$logdir/$(basename "$t").log"
    start=$(date +%s)
    if [[ "$t" == *.sh ]]; then
        timeout --kill-after=10 "$per_test_timeout" bash "$t" >"$log" 2>&1
    else
        timeout --kill-after=10 "$per_test_timeout" "$t" >"$log" 2>&1
    fi
    rc=$?
    secs=$(( $(date +%s) - start ))
    p=$(grep -c '^ok - ' "$log"); f=$(grep -c '^not ok - ' "$log"); s=$(grep -c '^skip - ' "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        echo "not ok - $t: exited with status $rc" >>"$log"
    fi
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
    printf '%-40s %3d ok %3d failed %3d skipped  (%ds)\n' "$t" "$p" "$f" "$s" "$secs"
    grep -E '^(not ok|skip) - ' "$log" | sed 's/^/    /'
    if [ "$f" -gt 0 ]; then
        failed_names+=("$t")
        echo "    --- last lines of $t:"; tail -n 25 "$log" | sed 's/^/    | /'
    fi
done
echo
[ ${#failed_names[@]} -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]

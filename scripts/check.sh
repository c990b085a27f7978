#!/usr/bin/env bash
# scripts/check.sh — `make check`: build, run every test, then the unit tests again under ASan
# and UBSan and the two concurrency tests under TSan, each in a build tree of its own,
# and end with one line that adds the runs up:
# "total: N passed, N failed, N skipped" (what CI reads). Exit status 1 if anything failed.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP" || exit 2
BUILD=${BUILD:-build}
MAKE=${MAKE:-make}
logs=$(mktemp -d "${TMPDIR:-/tmp}/preoom-check.XXXXXX")
trap 'rm -rf "$logs"' EXIT
status=0

if "$MAKE" BUILD="$BUILD" test-build; then
    BUILD=$BUILD tests/run.sh | tee "$logs/main" || status=1
else
    echo "check: the build failed"; echo "0 passed, 1 failed" >"$logs/main"; status=1
fi
echo
echo "== the unit tests again under AddressSanitizer and UndefinedBehaviorSanitizer"
if "$MAKE" BUILD="$BUILD/asan" SANITIZE=address,undefined unit; then
    BUILD=$BUILD/asan tests/run.sh tests/unit | tee "$logs/asan" || status=1
else
    echo "check: the sanitizer build failed"; echo "0 passed, 1 failed" >"$logs/asan"; status=1
fi
echo
# The lock-free parts run once more under ThreadSanitizer: the registry's seqlock and claims
# (writers publishing while readers snapshot) and the call sites' per-thread counts (threads
# recording while reports are read). Only these two are built there, so the unit directory
# holds nothing else.
echo "== the concurrency tests under ThreadSanitizer"
if "$MAKE" BUILD="$BUILD/tsan" SANITIZE=thread "$BUILD/tsan/tests/unit/test_registry" \
    "$BUILD/tsan/tests/unit/test_stacks"; then
    BUILD=$BUILD/tsan tests/run.sh tests/unit/test_ | tee "$logs/tsan" || status=1
else
    echo "check: the ThreadSanitizer build failed"; echo "0 passed, 1 failed" >"$logs/tsan"; status=1
fi
echo
tail -q -n 1 "$logs/main" "$logs/asan" "$logs/tsan" | awk '
    { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^skipped/) s += $i } }
    END { printf "total: %d passed, %d failed, %d skipped\n", p, f, s; exit (f > 0) }' || status=1
exit "$status"

#!/usr/bin/env bash
# tests/e2e/fuzz.sh — a short, bounded libFuzzer run of the registry reader
# (tests/fuzz/fuzz_registry.c: header validation and the snapshot walk over arbitrary bytes).
# Builds the target with `make fuzz` in this build tree, seeds a corpus in a temporary
# directory, and runs FUZZ_SECONDS (default 20) or FUZZ_RUNS. Skips, saying why, when clang's
# libFuzzer is not installed. A longer run: see the comment at the top of the target.
. "$(dirname "$0")/lib.sh"

FUZZ_CC=${FUZZ_CC:-clang}
if ! command -v "$FUZZ_CC" >/dev/null; then
    skip "fuzz registry reader: $FUZZ_CC is not installed"; exit 0
fi
# Does this clang have libFuzzer (Debian: libclang-rt-NN-dev)?
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' >"$T_TMP/probe.c"
if ! "$FUZZ_CC" -fsanitize=fuzzer -o "$T_TMP/probe" "$T_TMP/probe.c" 2>"$T_TMP/probe.err"; then
    skip "fuzz registry reader: $FUZZ_CC cannot link -fsanitize=fuzzer ($(head -n1 "$T_TMP/probe.err"))"; exit 0
fi
if ! make -s -C "$TOP" BUILD="$BUILD" FUZZ_CC="$FUZZ_CC" fuzz >"$T_TMP/build.log" 2>&1; then
    cat "$T_TMP/build.log"
    fail "fuzz registry reader: the target builds"; t_done
fi
FUZZER=$B/tests/fuzz/fuzz_registry

# Seeds: the first byte is the target's mode (see fuzz_registry.c). A stamped header with
# empty slots, and arbitrary bytes with and without a stamped header.
corpus=$T_TMP/corpus; mkdir -p "$corpus"
{ printf '\007'; head -c $((256 + 4 * 512)) /dev/zero; } >"$corpus/stamped-empty"
{ printf '\003'; head -c $((256 + 3 * 512)) /dev/urandom; } >"$corpus/stamped-random"
{ printf '\000'; head -c 2048 /dev/urandom; } >"$corpus/random"

limit=(-max_total_time="${FUZZ_SECONDS:-20}")
[ -n "${FUZZ_RUNS:-}" ] && limit=(-runs="$FUZZ_RUNS")
"$FUZZER" "${limit[@]}" -max_len=8192 -timeout=10 -rss_limit_mb=1024 \
    -artifact_prefix="$T_TMP/" -print_final_stats=1 "$corpus" >"$T_TMP/fuzz.log" 2>&1
rc=$?
grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|Done )' "$T_TMP/fuzz.log" | sed 's/^/# /'
if [ "$rc" -eq 0 ]; then
    ok "fuzz registry reader: no crash, leak or undefined behaviour (${limit[*]})"
else
    tail -n 40 "$T_TMP/fuzz.log"
    for a in "$T_TMP"/crash-* "$T_TMP"/leak-* "$T_TMP"/timeout-*; do
        [ -e "$a" ] && echo "# artifact: $(basename "$a"): $(od -An -tx1 -N64 "$a" | tr -d '\n')"
    done
    fail "fuzz registry reader: no crash, leak or undefined behaviour (exit $rc)"
fi
t_done

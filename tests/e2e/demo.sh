#!/usr/bin/env bash
# tests/e2e/demo.sh — `make demo` does what the README says: in a short run without a
# terminal, act 1 (no preoomd) ends with the kernel's OOM kill named; in act 2 preoomd asks the
# cache, the cache gives memory back, the leaker is stopped and the kernel kills nobody; the
# table shows exposure, the bar the thresholds, and a chart of each act (and its SVG) the
# decisions; everything the demo started is gone afterwards. Root only.
. "$(dirname "$0")/lib.sh"

if ! is_root || ! cg_root >/dev/null; then skip "demo: needs root and a memory cgroup"; t_done; fi
svg=$T_TMP/demo.svg
out=$(DEMO_SECONDS=25 DEMO_SVG=$svg BUILD=$BUILD "$TOP/scripts/demo.sh" 2>&1); rc=$?
echo "$out" | sed -n '/== act 1/,$p' | sed 's/^/# /'
check "the demo exits 0" [ "$rc" -eq 0 ]
# Act 1, without preoomd: the kernel's OOM killer acts, and the demo names its victim.
check "act 1 (no preoomd): the demo names whom the kernel killed" \
    grep -Eq "^  [0-9:]+ the kernel killed [a-z-]+ \(pid [0-9]+\) with SIGKILL" <<<"$out"
# Act 2, with preoomd.
check "act 2: the cache asked" grep -q "asked cache (pid [0-9]*) to give back" <<<"$out"
check "act 2: the cache gives memory back" grep -Eq "cache \(pid [0-9]+\) answered in [0-9]+ms and gave back [1-9][0-9.]*MiB" <<<"$out"
check "act 2: the leaker stopped" grep -q "stopped leaker (pid [0-9]*) with SIGTERM" <<<"$out"
check "act 2: the kernel killed nobody" grep -q "The kernel's OOM killer killed nobody" <<<"$out"
# What the viewer is shown: exposure in the table, the thresholds on the bar, the charts.
check "the table shows the reservation's exposure" \
    bash -c 'grep -E "^ +[0-9]+ reservation +[0-9.]+ MiB +[0-9.]+ [KM]iB +[1-9][0-9.]* MiB" <<<"$1" >/dev/null' _ "$out"
check "the usage bar marks the ask, SIGTERM and SIGKILL lines" \
    grep -Eq "cgroup memory \[[#.]*A[#.]*T[#.]*K[#.]*\] [0-9]+ of 384 MiB used" <<<"$out"
check "a chart of each act, with the kernel's kill (X) and preoomd's decisions (a, T) marked" \
    bash -c 'a1=$(sed -n "/act 1, without preoomd:/,/act 2, with preoomd:/p" <<<"$1"); a2=$(sed -n "/  act 2, with preoomd:/,\$p" <<<"$1")
             grep -q "^ *X" <<<"$(grep -A1 "^       +---" <<<"$a1")" && grep -Eq "a.*T|T.*a" <<<"$(grep -A1 "^       +---" <<<"$a2")"' _ "$out"
check "the chart's picture is written ($svg)" [ -s "$svg" ]
if command -v xmllint >/dev/null; then
    check "the picture is well-formed SVG, with a line for each act" \
        bash -c 'xmllint --noout "$1" && [ "$(grep -c "<polyline" "$1")" -eq 2 ]' _ "$svg"
else
    skip "SVG check: xmllint is not installed"
fi
demo_cg=$(sed -n 's/^demo: memory cgroup \([^ ]*\) .*/\1/p' <<<"$out")
demo_reg=$(sed -n 's/^demo: .*registry \([^ ]*\)$/\1/p' <<<"$out")
check "the demo removed its cgroup (${demo_cg:-not named})" bash -c '[ -n "$1" ] && [ ! -e "$1" ]' _ "$demo_cg"
check "the demo removed its registry (${demo_reg:-not named})" bash -c '[ -n "$1" ] && [ ! -e "$1" ]' _ "$demo_reg"
t_done

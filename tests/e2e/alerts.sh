#!/usr/bin/env bash
# tests/e2e/alerts.sh — the shipped alerting rules (systemd/preoom-alerts.yml) against
# preoomd's real metrics: every preoom_* series a rule names is one preoomd writes (always,
# from a textfile it writes here); with promtool installed (Debian package prometheus),
# `promtool check rules` accepts the file and `promtool test rules` runs the cases in
# tests/fixtures/alerts/ (each alert fires on what should fire it, and not otherwise), and
# `promtool check metrics` accepts preoomd's output. Needs no root.
. "$(dirname "$0")/lib.sh"

RULES=$TOP/systemd/preoom-alerts.yml
D=$B/preoomd
check "the rule file is there" [ -s "$RULES" ]

bg "$D" --registry "$T_REG" --no-mlock --metrics "$T_TMP/m.prom" 2>"$T_TMP/d.log"; dp=$BG_PID
for _ in $(seq 50); do [ -s "$T_TMP/m.prom" ] && break; sleep 0.1; done
cp "$T_TMP/m.prom" "$T_TMP/snap.prom" 2>/dev/null
kill -TERM "$dp"; wait "$dp"
check "preoomd wrote its metrics" [ -s "$T_TMP/snap.prom" ]
# The series names in the rules' expressions (not in their comments or texts).
names=$(grep -E '^\s*expr:' "$RULES" | grep -oE 'preoom_[a-z0-9_]+' | sort -u)
check "the rules name preoom series ($(wc -w <<<"$names"))" [ "$(wc -w <<<"$names")" -ge 6 ]
for n in $names; do
    check "rule series $n is one preoomd writes" grep -qE "^$n(\{| )" "$T_TMP/snap.prom"
done
# Label values the rules select on are ones preoomd writes.
for v in sigterm sigkill dropped timed_out failed; do
    check "label value \"$v\" a rule selects is written" grep -q "=\"$v\"" "$T_TMP/snap.prom"
done

if ! command -v promtool >/dev/null; then
    skip "promtool checks: promtool is not installed (Debian package prometheus)"
    t_done
fi
# test rules finds rule files relative to the test file: both in one directory.
cp "$RULES" "$TOP/tests/fixtures/alerts/preoom-alerts_test.yml" "$T_TMP/"
promtool check rules "$T_TMP/preoom-alerts.yml" >"$T_TMP/pc" 2>&1; rc=$?
check "promtool check rules: $(tr '\n' ' ' <"$T_TMP/pc")" [ "$rc" -eq 0 ]
promtool test rules "$T_TMP/preoom-alerts_test.yml" >"$T_TMP/pt" 2>&1; rc=$?
check "promtool test rules: each alert fires when it should, only then" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || sed 's/^/#   /' "$T_TMP/pt" | head -30
promtool check metrics <"$T_TMP/snap.prom" >"$T_TMP/pm" 2>&1; rc=$?
check "promtool check metrics accepts preoomd's output $(tr '\n' ' ' <"$T_TMP/pm")" [ "$rc" -eq 0 ]
t_done

#!/usr/bin/env bash
# tests/e2e/cli.sh — the command-line conventions of `preoom` and its subcommands, one table
# row per case: --version and -V everywhere, one error style (exit 2, one line on stderr that
# names the command, the value's unit and where help is), option-like values refused, and the
# JSON of `ls --json` against its documented schema (preoom(1)). Starts one small preloaded
# process in a registry of its own; removes it and the registry at the end.
. "$(dirname "$0")/lib.sh"

PREOOM=$B/preoom
[ -x "$PREOOM" ] || { fail "cli: $PREOOM is not built"; t_done; }

# ---- --version, everywhere -----------------------------------------------------------------
for args in "--version" "-V" "ls --version" "ls -V" "top --version" "top -V" "run --version" \
    "run -V" "explain --version" "explain -V" "report --version" "report -V"; do
    out=$($PREOOM $args 2>"$T_TMP/err"); rc=$?
    check "version: preoom $args prints one line, exit 0 ($out)" \
        bash -c '[ "$1" -eq 0 ] && [[ "$2" =~ ^preoom(\ [a-z]+)?\ [0-9]+\.[0-9]+\.[0-9]+$ ]] && [ ! -s "$3" ]' _ "$rc" "$out" "$T_TMP/err"
done

# ---- errors: ARGS | exit status | the one stderr line, as an extended regex -----------------
# Every usage error says "preoom: CMD: ..." and ends with where the help is.
see='\(see preoom( [a-z]+)? --help\)$'
while IFS='|' read -r args want re; do
    [ -z "$args" ] && continue
    eval "set -- $args"
    "$PREOOM" "$@" >"$T_TMP/out" 2>"$T_TMP/err"; rc=$?
    lines=$(wc -l <"$T_TMP/err"); msg=$(head -n1 "$T_TMP/err")
    if [ "$rc" -eq "$want" ] && [ "$lines" -eq 1 ] && [[ "$msg" =~ $re ]] && [ ! -s "$T_TMP/out" ]; then
        ok "error: preoom $args -> $want: $msg"
    else
        fail "error: preoom $args -> want $want and /$re/, got $rc, $lines line(s): $msg"
    fi
done <<EOF_TABLE
--bogus|2|^preoom: unknown option '--bogus' $see
bogus|2|^preoom: unknown command 'bogus' $see
--registry -v ls|2|^preoom: --registry wants a value, not the option-like '-v' $see
--registry|2|^preoom: --registry wants a value $see
ls --registry -v|2|^preoom: ls: --registry wants a value, not the option-like '-v' $see
ls --registry=|2|^preoom: ls: --registry wants a value, not '' $see
ls --sort|2|^preoom: ls: --sort wants a value $see
ls --sort size|2|^preoom: ls: --sort wants a column \(committed, .*\), not 'size' $see
ls --bogus|2|^preoom: ls: unknown option '--bogus' $see
ls extra|2|^preoom: ls: unknown option 'extra' $see
top -d 0|2|^preoom: top: -d wants seconds from 0.01 to 3600, not '0' $see
top -d 1x|2|^preoom: top: -d wants seconds from 0.01 to 3600, not '1x' $see
top -d -1|2|^preoom: top: -d wants a value, not the option-like '-1' $see
top -n 0|2|^preoom: top: -n wants a number of frames, 1 or more, not '0' $see
top -n|2|^preoom: top: -n wants a value $see
top --sort -n 1|2|^preoom: top: --sort wants a value, not the option-like '-n' $see
run|2|^preoom: run: no command given .* $see
run --registry -v -- true|2|^preoom: run: --registry wants a value, not the option-like '-v' $see
run --registry 'a/b' -- true|2|^preoom: run: --registry wants a name of letters, .*, not 'a/b' $see
run --interval 0 -- true|2|^preoom: run: --interval wants milliseconds from 1 to 60000, not '0' $see
run --interval 10s -- true|2|^preoom: run: --interval wants milliseconds from 1 to 60000, not '10s' $see
run --stacks some -- true|2|^preoom: run: --stacks wants off, sample or all, not 'some' $see
run --report '' -- true|2|^preoom: run: --report wants a value, not '' $see
run --bogus -- true|2|^preoom: run: unknown option '--bogus' $see
explain --registry -v|2|^preoom: explain: --registry wants a value, not the option-like '-v' $see
explain --bogus|2|^preoom: explain: unknown option '--bogus' $see
explain -x|2|^preoom: explain: unknown option '-x' $see
explain --policy|2|^preoom: explain: --policy wants a value $see
explain --policy --json|2|^preoom: explain: --policy wants a value, not the option-like '--json' $see
explain --cgroup -v|2|^preoom: explain: --cgroup wants a value, not the option-like '-v' $see
explain --policy nicest|2|^preoom: explain: --policy wants preoom, kernel or classic, not 'nicest' $see
report --registry -v x.json|2|^preoom: report: --registry wants a value, not the option-like '-v' $see
EOF_TABLE
check "no registry called '-v' was made" [ ! -e /dev/shm/preoom.-v ]

# --registry reaches explain and report too (preoom(1): every command takes it).
"$PREOOM" explain --registry "nx$$" >/dev/null 2>"$T_TMP/err"; rc=$?
check "explain --registry NAME reads that registry ($(head -c 120 "$T_TMP/err"))" \
    bash -c '[ "$1" -eq 1 ] && grep -q "preoom.nx$2" "$3"' _ "$rc" "$$" "$T_TMP/err"

# ---- ls --json: the documented schema ---------------------------------------------------------
bg env LD_PRELOAD="$LIB" "$PROG/hold" -m 4 -t 2 -s 30 -r "$T_TMP/ready"; held=$BG_PID
for _ in $(seq 100); do [ -e "$T_TMP/ready" ] && break; sleep 0.05; done
sleep 0.3
"$PREOOM" ls --json >"$T_TMP/ls.json" 2>"$T_TMP/ls.err"
check "ls --json: exit 0" [ $? -eq 0 ]
if command -v jq >/dev/null; then
    top_keys=$(jq -r 'keys_unsorted | join(" ")' "$T_TMP/ls.json")
    check "ls --json: top-level keys in order ($top_keys)" \
        [ "$top_keys" = "schema registry slot_count slots_in_use reaped pressure processes totals domains arbiter" ]
    check "ls --json: schema is 1" [ "$(jq '.schema' "$T_TMP/ls.json")" = 1 ]
    check "ls --json: pressure is a name, as in explain --json" \
        bash -c 'jq -e ".pressure | type == \"string\" and test(\"^(none|moderate|critical|complete)$\")" "$1" >/dev/null' _ "$T_TMP/ls.json"
    proc_keys=$(jq -r '.processes[0] | keys_unsorted | join(" ")' "$T_TMP/ls.json")
    check "ls --json: process keys ($proc_keys)" \
        [ "$proc_keys" = "slot pid name committed touched exposure slack peak_committed peak_touched malloc mmap brk rss_anon swap adj pss age_s domain" ]
    tot_keys=$(jq -r '.totals | keys_unsorted | join(" ")' "$T_TMP/ls.json")
    check "ls --json: totals keys ($tot_keys)" [ "$tot_keys" = "processes committed touched touched_pss exposure slack" ]
    dom_keys=$(jq -r '.domains[0] | keys_unsorted | join(" ")' "$T_TMP/ls.json")
    check "ls --json: domain keys ($dom_keys)" \
        [ "$dom_keys" = "domain path dir cgroup parent depth limit usage available time_to_limit_ms processes" ]
    check "ls --json: the host is domain 0, first, and holds every domain" \
        bash -c 'jq -e ".domains[0].domain == 0 and .domains[0].path == \"/\" and .domains[0].parent == -1 and ([.domains[1:][].parent] | all(. >= 0))" "$1" >/dev/null' _ "$T_TMP/ls.json"
    check "ls --json: every process names a domain that is listed" \
        bash -c 'jq -e "[.domains[].domain] as \$d | [.processes[].domain] | all(. as \$x | \$d | index(\$x) != null)" "$1" >/dev/null' _ "$T_TMP/ls.json"
    check "ls --json: the held process is listed" \
        bash -c 'jq -e --argjson p "$2" "[.processes[].pid] | index(\$p) != null" "$1" >/dev/null' _ "$T_TMP/ls.json" "$held"
    # Every key is in preoom(1), in the paragraph on ls --json.
    doc=$(sed -n '/^\.SS ls/,/^\.SS top/p' "$TOP/man/preoom.1" | tr -d '\\')
    missing=""
    for k in $top_keys $proc_keys $tot_keys $dom_keys; do grep -qw -- "$k" <<<"$doc" || missing="$missing $k"; done
    check "ls --json: every key is documented in preoom(1) (missing:${missing:- none})" [ -z "$missing" ]
else
    skip "ls --json schema: jq is not installed"
fi
kill -TERM "$held"; wait "$held" 2>/dev/null

# ---- the report file of PREOOM_REPORT: every top-level key in preoom(7) ---------------------------
if command -v jq >/dev/null && command -v python3 >/dev/null; then
    PREOOM_REGISTRY=off PREOOM_STACKS=sample PREOOM_REPORT="$T_TMP/report.json" LD_PRELOAD="$LIB" \
        python3 -c 'x = [bytes(1000) for _ in range(20000)]'
    keys=$(jq -r 'keys_unsorted | join(" ")' "$T_TMP/report.json" 2>/dev/null)
    doc=$(sed -n '/^\.B PREOOM_REPORT/,/^\.TP/p' "$TOP/man/preoom.7" | tr -d '\\')
    missing=""
    for k in $keys; do grep -qw -- "$k" <<<"$doc" || missing="$missing $k"; done
    check "PREOOM_REPORT: every key ($keys) is in preoom(7) (missing:${missing:- none})" \
        bash -c '[ -n "$1" ] && [ -z "$2" ]' _ "$keys" "$missing"
else
    skip "report keys: jq or python3 is not installed"
fi
t_done

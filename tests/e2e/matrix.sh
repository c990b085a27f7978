#!/usr/bin/env bash
# tests/e2e/matrix.sh — real programs run with and without libpreoom.so: the same output and
# the same exit status, no crash, no hang (tests/run.sh times each test out). Three times:
# counting only, with sampled call stacks, and with every allocation's stack recorded and
# each stack-cache hit checked against the unwinder (no hit may differ).
. "$(dirname "$0")/lib.sh"

[ -f "$LIB" ] || { fail "libpreoom.so not built ($LIB)"; t_done; }

# same NAME CMD...: run CMD bare and preloaded (with $MODE's settings), compare stdout+stderr
# and status.
same() {
    local name=$1; shift
    local a b ra rb
    a=$("$@" 2>&1); ra=$?
    # shellcheck disable=SC2086 # MODE is a list of settings
    b=$(env LD_PRELOAD="$LIB" PREOOM_REPORT="$T_TMP/$TAG.%p.json" $MODE "$@" 2>&1); rb=$?
    if [ "$a" = "$b" ] && [ "$ra" -eq "$rb" ]; then
        ok "$TAG: $name: same output and status ($ra)"
    else
        fail "$TAG: $name: differs (status $ra vs $rb)"
        diff <(echo "$a") <(echo "$b") | head -5 | sed 's/^/#   /'
    fi
}

have() { command -v "$1" >/dev/null 2>&1; }

sql="create table t(id integer primary key, k text, v blob);
with recursive c(x) as (select 1 union all select x+1 from c where x < 20000)
insert into t(k, v) select 'key' || (x * 7919 % 20000), randomblob(64) from c;
create index ik on t(k);
select count(*), count(distinct k), sum(length(v)) from t where k like 'key1%';"
py='import json, collections
d = collections.Counter()
for i in range(200000): d[str(i * 2654435761 % 1000)] += 1
s = json.dumps(sorted(d.items())[:50])
print(len(s), sum(d.values()), json.loads(s)[0])'
pl='my %h; for my $i (1..200000) { $h{$i % 7777} .= "x" } my $t = 0; $t += length($h{$_}) for keys %h; print "$t\n";'

for TAG in counting sample all-verify; do
    case $TAG in
    counting) MODE= ;;
    sample) MODE="PREOOM_STACKS=sample" ;;
    all-verify) MODE="PREOOM_STACKS=all PREOOM_STACK_CACHE=verify" ;;
    esac
    if have sqlite3; then same "sqlite3 in-memory insert and index" sqlite3 :memory: "$sql"
    else skip "$TAG: sqlite3: not installed"; fi
    if have python3; then same "python3 dict and json" python3 -c "$py"
    else skip "$TAG: python3: not installed"; fi
    if have perl; then same "perl hash churn" perl -e "$pl"
    else skip "$TAG: perl: not installed"; fi

    same "bash pipeline (sort, awk, sed, every stage preloaded)" \
        bash -c 'seq 1 200000 | sort -rn | awk "{s += \$1} END {print s}" | sed "s/^/total=/"'

    if have gcc; then
        gcc -O2 -c "$TOP/tests/prog/churn.c" -o "$T_TMP/bare.o" 2>&1
        # shellcheck disable=SC2086
        env LD_PRELOAD="$LIB" $MODE gcc -O2 -c "$TOP/tests/prog/churn.c" -o "$T_TMP/pre.o" 2>&1
        check "$TAG: gcc compiling a C file: identical object" cmp -s "$T_TMP/bare.o" "$T_TMP/pre.o"
    else skip "$TAG: gcc: not installed"; fi

    same "C++ program" bash -c "\"$PROG/cxx\" | head -n 1"
    same "16-thread churn" "$PROG/churn" 16 50000
    same "200 children forked, each exec'ing" "$PROG/forker" exec 200 /bin/true
    same "a failing command's status and message" ls /nonexistent-preoom-matrix
    # The host's descriptors are its own: preoom keeps its few (the /proc files the agent
    # reads; with call stacks, libunwind's pipe, guarded: see fdsweep in stacks.sh) at the
    # top of the table (preload/fds.c), where lowest-first opens come last.
    fdlist() { "$@" find /proc/self/fd -mindepth 1 -printf '%f %l\n' |
        sed -e 's/:\[[0-9]*\]$//' -e 's|/proc/[0-9]*/|/proc/PID/|' | sort -n; }
    lim=$(ulimit -n); top=$(( lim < 1024 ? lim : 1024 )); lo=$((top - 8))
    bare=$(fdlist env)
    # shellcheck disable=SC2086
    pre=$(fdlist env LD_PRELOAD="$LIB" $MODE)
    below_same=no
    [ "$(awk -v lo=$lo '$1 < lo' <<<"$bare")" = "$(awk -v lo=$lo '$1 < lo' <<<"$pre")" ] && below_same=yes
    ours=$(awk -v lo=$lo '$1 >= lo {print $2}' <<<"$pre" | sort | tr '\n' ' ')
    want="/proc/PID/status /proc/PID/statm "; [ -n "$MODE" ] && want="pipe pipe $want"
    want=$(tr ' ' '\n' <<<"$want" | grep . | sort | tr '\n' ' ')
    check "$TAG: the host's descriptors are the bare run's; ours are at $lo and up (${ours:-none})" \
        test "$below_same/$ours" = "yes/$want"
    n=$(ls "$T_TMP"/$TAG.*.json 2>/dev/null | wc -l)
    check "$TAG: every preloaded process wrote its report ($n)" [ "$n" -ge 200 ]
done
# Every report of the verify pass: the stack cache was used and never disagreed.
got=$(python3 -c '
import glob, json, sys
hits = bad = broken = 0
for f in glob.glob(sys.argv[1] + "/all-verify.*.json"):
    try:
        c = json.load(open(f))["stacks"]["stack_cache"]
    except Exception:
        broken += 1
        continue
    hits += c["hits"]
    bad += c["mismatches"]
print(hits, bad, broken)' "$T_TMP")
read -r hits bad broken <<<"$got"
check "all-verify: every report readable, no cache hit differed from the unwinder (hits $hits, differed $bad, unreadable $broken)" \
    test "${bad:-x} ${broken:-x}" = "0 0"
check "all-verify: the stack cache served the real programs ($hits hits)" test "${hits:-0}" -gt 1000
t_done

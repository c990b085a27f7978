#!/usr/bin/env bash
# tests/e2e/matrix.sh — real programs run with and without libpreoom.so: the same output and
# the same exit status, no crash, no hang (tests/run.sh times each test out).
. "$(dirname "$0")/lib.sh"

[ -f "$LIB" ] || { fail "libpreoom.so not built ($LIB)"; t_done; }

# same NAME CMD...: run CMD bare and preloaded, compare stdout+stderr and status.
same() {
    local name=$1; shift
    local a b ra rb
    a=$("$@" 2>&1); ra=$?
    b=$(LD_PRELOAD=$LIB PREOOM_REPORT="$T_TMP/m.%p.json" "$@" 2>&1); rb=$?
    if [ "$a" = "$b" ] && [ "$ra" -eq "$rb" ]; then
        ok "$name: same output and status ($ra)"
    else
        fail "$name: differs (status $ra vs $rb)"
        diff <(echo "$a") <(echo "$b") | head -5 | sed 's/^/#   /'
    fi
}

have() { command -v "$1" >/dev/null 2>&1; }

sql="create table t(id integer primary key, k text, v blob);
with recursive c(x) as (select 1 union all select x+1 from c where x < 20000)
insert into t(k, v) select 'key' || (x * 7919 % 20000), randomblob(64) from c;
create index ik on t(k);
select count(*), count(distinct k), sum(length(v)) from t where k like 'key1%';"
if have sqlite3; then same "sqlite3 in-memory insert and index" sqlite3 :memory: "$sql"
else skip "sqlite3: not installed"; fi

py='import json, collections
d = collections.Counter()
for i in range(200000): d[str(i * 2654435761 % 1000)] += 1
s = json.dumps(sorted(d.items())[:50])
print(len(s), sum(d.values()), json.loads(s)[0])'
if have python3; then same "python3 dict and json" python3 -c "$py"
else skip "python3: not installed"; fi

pl='my %h; for my $i (1..200000) { $h{$i % 7777} .= "x" } my $t = 0; $t += length($h{$_}) for keys %h; print "$t\n";'
if have perl; then same "perl hash churn" perl -e "$pl"
else skip "perl: not installed"; fi

same "bash pipeline (sort, awk, sed, every stage preloaded)" \
    bash -c 'seq 1 200000 | sort -rn | awk "{s += \$1} END {print s}" | sed "s/^/total=/"'

if have gcc; then
    gcc -O2 -c "$TOP/tests/prog/churn.c" -o "$T_TMP/bare.o" 2>&1
    LD_PRELOAD=$LIB gcc -O2 -c "$TOP/tests/prog/churn.c" -o "$T_TMP/pre.o" 2>&1
    check "gcc compiling a C file: identical object" cmp -s "$T_TMP/bare.o" "$T_TMP/pre.o"
else skip "gcc: not installed"; fi

same "C++ program" bash -c "\"$PROG/cxx\" | head -n 1"
same "16-thread churn" "$PROG/churn" 16 50000
same "200 children forked, each exec'ing" "$PROG/forker" exec 200 /bin/true
same "a failing command's status and message" ls /nonexistent-preoom-matrix
same "the host finds no file descriptor of ours among its own" ls /proc/self/fd
n=$(ls "$T_TMP"/m.*.json 2>/dev/null | wc -l)
check "every preloaded process wrote its report ($n)" [ "$n" -ge 200 ]
t_done

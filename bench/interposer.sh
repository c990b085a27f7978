#!/usr/bin/env bash
# bench/interposer.sh — what counting costs a host (issue 2): each workload run bare and with
# libpreoom.so (counting mode, no stacks), alternating run by run so drift hits both alike;
# prints the median wall time and peak RSS of each and their ratios. Targets: <= 1.10 on the
# multi-threaded malloc churn (16 B .. 1 MiB), <= 1.05 on sqlite3, peak RSS <= 1.05.
#   BUILD=build bench/interposer.sh [RUNS]
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) B=$BUILD ;; *) B=$TOP/$BUILD ;; esac
RUNS=${1:-11}
LIB=$B/libpreoom.so
RUNONE=$B/bench/runone
mkdir -p "$B/bench"
cc -O2 -o "$RUNONE" "$TOP/bench/runone.c" || exit 1
TMP=$(mktemp -d "${TMPDIR:-/tmp}/preoom-bench.XXXXXX")
export PREOOM_REGISTRY=bench$$
trap 'rm -rf "$TMP"; rm -f /dev/shm/preoom.bench$$' EXIT

cat >"$TMP/sqlite.sql" <<'SQL'
create table t(id integer primary key, k text, v blob, n integer);
with recursive c(x) as (select 1 union all select x+1 from c where x < 200000)
insert into t(k, v, n) select 'key' || (x * 7919 % 200000), randomblob(48), x % 1000 from c;
create index ik on t(k);
create index ink on t(n, k);
select count(*), sum(length(v)) from t where n between 100 and 200;
SQL
cat >"$TMP/py.py" <<'PY'
d = {}
for i in range(600000):
    d[str(i)] = [i] * (i % 7)
print(sum(len(v) for v in d.values()))
PY

# workload NAME CMD...
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
printf '%-36s %8s %8s %6s %8s %8s %6s %9s %9s %6s\n' workload "bare s" "pre s" ratio "bare cpu" "pre cpu" ratio "bare RSS" "pre RSS" ratio
workload() {
    local name=$1; shift
    : >"$TMP/bare"; : >"$TMP/pre"
    for _ in $(seq "$RUNS"); do
        "$RUNONE" "$@" >>"$TMP/bare"
        LD_PRELOAD=$LIB "$RUNONE" "$@" >>"$TMP/pre"
    done
    local bt pt br pr bc pc
    bt=$(cut -d' ' -f1 "$TMP/bare" | median); pt=$(cut -d' ' -f1 "$TMP/pre" | median)
    br=$(cut -d' ' -f2 "$TMP/bare" | median); pr=$(cut -d' ' -f2 "$TMP/pre" | median)
    bc=$(cut -d' ' -f4 "$TMP/bare" | median); pc=$(cut -d' ' -f4 "$TMP/pre" | median)
    awk -v n="$name" -v bt="$bt" -v pt="$pt" -v br="$br" -v pr="$pr" -v bc="$bc" -v pc="$pc" 'BEGIN {
        printf "%-36s %8.3f %8.3f %6.3f %8.3f %8.3f %6.3f %8.1fM %8.1fM %6.3f\n", n, bt, pt, pt/bt, bc, pc, pc/bc, br/1024, pr/1024, pr/br }'
}
# runone itself is preloaded in the "pre" runs, so the child inherits LD_PRELOAD.
workload "churn 4 threads x 400k (16B..1MiB)" "$B/tests/prog/churn" 4 400000
workload "churn 16 threads x 100k" "$B/tests/prog/churn" 16 100000
command -v sqlite3 >/dev/null && workload "sqlite3 :memory: 200k rows, 2 indexes" sh -c "sqlite3 :memory: <$TMP/sqlite.sql"
command -v python3 >/dev/null && workload "python3 dict of 600k lists" python3 "$TMP/py.py"
# The mapping tracker: 60,000 disjoint mappings, half unmapped one by one, then the rest at
# once (a sorted array made this 2.7x bare; the tree keeps each change O(log n)).
workload "60k disjoint mmaps, munmap (tracker)" "$B/tests/prog/manymaps" 60000
echo "(medians of $RUNS alternating runs; ratio = preoom / bare; cpu = user + system of the"
echo " program, steadier than wall time on a shared machine)"

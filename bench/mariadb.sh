#!/usr/bin/env bash
# bench/mariadb.sh — what libpreoom.so costs a real MySQL-like server: mariadb-slap
# throughput and latency against a bare MariaDB and a preloaded one, side by side.
#
# Two servers run at once from copies of one datadir, each on its own socket file (no TCP);
# only one is driven at a time, in the order A B B A ... so that drift (page cache, CPU
# frequency) falls on both alike. Each run is one mariadb-slap iteration: 8 clients,
# $QUERIES auto-generated mixed queries on InnoDB. Prints the median of each side, the
# ratios (target: overhead <= 3%), and each server's peak RSS (VmHWM) before shutdown.
# slap gives the time of a whole run, not per query: latency here is the mean time one
# client waits per query (seconds x clients / queries).
#
#   bench/mariadb.sh            BUILD (default build), RUNS (11), QUERIES (40000) from the environment
# Standalone; `make bench` calls it. Needs root or a user that may run mariadbd; exits 0 with
# a reason when MariaDB is not installed.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) B=$BUILD ;; *) B=$TOP/$BUILD ;; esac
LIB=$B/libpreoom.so
RUNS=${RUNS:-11}
QUERIES=${QUERIES:-40000}
CONC=8
PATH=$PATH:/usr/sbin:/sbin

[ -f "$LIB" ] || { echo "bench mariadb: $LIB not built (make BUILD=$BUILD)" >&2; exit 1; }
for b in mariadbd mariadb-install-db mariadb-slap mariadb-admin; do
    command -v "$b" >/dev/null || { echo "bench mariadb: skipped, $b not installed (scripts/deps.sh bench installs it)"; exit 0; }
done
[ "$RUNS" -ge 5 ] 2>/dev/null || { echo "bench mariadb: RUNS must be 5 or more" >&2; exit 2; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/preoom-bench-mariadb.XXXXXX")
export PREOOM_REGISTRY=bench$$
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -f "/dev/shm/preoom.$PREOOM_REGISTRY"
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

admin() { mariadb-admin --no-defaults --socket="$TMP/$1/sock" --user=root "${@:2}"; }

. "$TOP/scripts/mariadb.sh"
mariadb_template "$TMP/template" "$TMP/install.log" ||
    { echo "bench mariadb: mariadb-install-db failed:" >&2; tail -n 20 "$TMP/install.log" >&2; exit 1; }

# start SIDE (bare|preoom): a server from a fresh copy of the template.
start() {
    local side=$1 dir=$TMP/$1 i
    mkdir -p "$dir" && cp -a "$TMP/template" "$dir/data"
    mariadb_args "$dir" 128M 16M 64
    local args=("${MARIADB_ARGS[@]}")
    if [ "$side" = bare ]; then
        "${args[@]}" 2>"$dir/stderr" &
    else
        # The settings preoom run would give it, by hand: the bench measures the library only.
        LD_PRELOAD=$LIB "${args[@]}" 2>"$dir/stderr" &
    fi
    PIDS+=($!)
    for i in $(seq 300); do admin "$side" ping >/dev/null 2>&1 && break; sleep 0.1; done
    admin "$side" ping >/dev/null 2>&1 || { echo "bench mariadb: $side server did not start" >&2; tail "$dir/err.log" >&2; exit 1; }
    PIDS+=("$(cat "$dir/pid")")
}

# slap SIDE: one run; appends its seconds to $TMP/SIDE.secs.
slap() {
    local out
    out=$(mariadb-slap --no-defaults --socket="$TMP/$1/sock" --user=root --concurrency=$CONC \
        --number-of-queries="$QUERIES" --iterations=1 --auto-generate-sql \
        --auto-generate-sql-load-type=mixed --auto-generate-sql-add-autoincrement \
        --engine=innodb 2>&1) || { echo "bench mariadb: mariadb-slap failed on $1: $out" >&2; exit 1; }
    awk -F': ' '/Average number of seconds/ { print $2 + 0 }' <<<"$out" >>"$TMP/$1.secs"
}

start bare
start preoom
spid() { cat "$TMP/$1/pid"; }
echo "load average: $(cut -d" " -f1-3 /proc/loadavg) on $(nproc) CPUs (other work on the machine shows up as noise)"
echo "mariadb: $(mariadbd --version | sed 's/^.*Ver //; s/ for .*//'), $CONC clients x $QUERIES mixed queries, $RUNS runs each, alternating"
# One warm-up each, not counted: the first run creates the buffer pool's working set.
slap bare; slap preoom; : >"$TMP/bare.secs"; : >"$TMP/preoom.secs"
for i in $(seq "$RUNS"); do
    if [ $((i % 2)) -eq 1 ]; then slap bare; slap preoom; else slap preoom; slap bare; fi
done
hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$(spid "$1")/status"; }
hwm_bare=$(hwm bare); hwm_preoom=$(hwm preoom)
admin bare shutdown; admin preoom shutdown
for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
PIDS=()

median() { sort -g "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mb=$(median "$TMP/bare.secs"); mp=$(median "$TMP/preoom.secs")
awk -v b="$mb" -v p="$mp" -v q="$QUERIES" -v c="$CONC" -v hb="$hwm_bare" -v hp="$hwm_preoom" \
    -v rb="$(tr '\n' ' ' <"$TMP/bare.secs")" -v rp="$(tr '\n' ' ' <"$TMP/preoom.secs")" 'BEGIN {
    printf "  runs (s)  bare:    %s\n  runs (s)  preoom:  %s\n", rb, rp
    printf "  %-28s %12s %12s %8s\n", "median", "bare", "preoom", "ratio"
    printf "  %-28s %12.0f %12.0f %8.3f\n", "throughput (queries/s)", q / b, q / p, (q / p) / (q / b)
    printf "  %-28s %12.1f %12.1f %8.3f\n", "mean latency per query (us)", b * c / q * 1e6, p * c / q * 1e6, p / b
    printf "  %-28s %12d %12d %8.3f\n", "peak RSS, VmHWM (KiB)", hb, hp, hp / hb
    # Each preoom run beside the bare run next to it: drift between the pairs cancels.
    n = split(rb, xb, " "); split(rp, xp, " ")
    for (i = 1; i <= n; i++) r[i] = xp[i] / xb[i]
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (r[j] < r[i]) { t = r[i]; r[i] = r[j]; r[j] = t }
    pr = (n % 2) ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2
    printf "  %-28s %34.3f\n", "median of paired time ratios", pr
    over = (pr - 1) * 100
    printf "  overhead %.1f%% (median of paired ratios; target <= 3%%): %s\n", over, over <= 3 ? "met" : "NOT met"
}'

#!/usr/bin/env bash
# bench/run.sh — `make bench`: every benchmark of the project, side by side in one run. Each
# part alternates the variants it compares and prints ratios of medians; none fails on a
# missed target (they measure; the figures go into the closing notes).
#   BUILD=build bench/run.sh          RUNS=N to change the run count of each part
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
export BUILD=${BUILD:-build}
RUNS=${RUNS:-7}
cd "$TOP" || exit 2
echo "== machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(uname -r)"
part() { echo; echo "== $1"; shift; "$@" || echo "(part failed: $*)"; }
part "interposer: counting cost (issue 2)" bench/interposer.sh "$RUNS"
part "instructions under callgrind: counting, sample, all (issue 13)" bench/instructions.sh
[ -x bench/registry.sh ] && part "registry: publishing and snapshots (issue 3)" bench/registry.sh
part "arbiter: reaction time and idle cost (issue 4)" bench/arbiter.sh
part "call sites: sample / all vs heaptrack (issue 6)" bench/stacks.sh "$((RUNS < 5 ? 5 : RUNS))"
part "call-site reports: rendering cc1's report (issue 14)" bench/report.sh "$((RUNS < 5 ? 5 : RUNS))"
part "MariaDB under mariadb-slap (issue 7)" bench/mariadb.sh

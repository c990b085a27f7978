# tests/e2e/lib.sh — sourced by the end-to-end tests: result lines, paths, a memory cgroup
# the test creates and always removes, and cleanup of every process a test starts (by pid,
# never by name). Not a test itself (the runner skips files starting with "lib").
set -u
TOP=${TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${BUILD:-build}
case "$BUILD" in /*) B=$BUILD ;; *) B=$TOP/$BUILD ;; esac
LIB=$B/libpreoom.so
PROG=$B/tests/prog
T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/preoom-e2e.XXXXXX")
T_PIDS=()
T_REG="t$$"            # a registry name of this test's own
export PREOOM_REGISTRY=$T_REG
# A bad PREOOM_REGISTRY, or a setuid program (which ignores it), registers in "default": if a
# test creates that registry, its cleanup removes it.
T_HAD_DEFAULT=0; [ -e /dev/shm/preoom.default ] && T_HAD_DEFAULT=1

ok()   { echo "ok - $*"; }
fail() { echo "not ok - $*"; T_FAILED=1; }
skip() { echo "skip - $*"; }
T_FAILED=0
# check NAME CONDITION-COMMAND...: ok when the command succeeds.
check() { local n=$1; shift; if "$@"; then ok "$n"; else fail "$n"; fi; }

t_cleanup() {
    local p
    for p in "${T_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    for p in "${T_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    local cg
    # cg_create runs in $(...) subshells, so it records its cgroups in a file, not an array.
    if [ -f "$T_TMP/cgroups" ]; then
        while read -r cg; do cg_remove "$cg"; done <"$T_TMP/cgroups"
    fi
    rm -f "/dev/shm/preoom.$T_REG" "/dev/shm/preoom.$T_REG.preoomd"*
    [ "$T_HAD_DEFAULT" -eq 1 ] || rm -f /dev/shm/preoom.default
    rm -rf "$T_TMP"
}
trap t_cleanup EXIT

is_root() { [ "$(id -u)" -eq 0 ]; }

# The memory cgroup root: v2 where the memory controller is there, else v1.
cg_root() {
    local r
    for r in /sys/fs/cgroup /sys/fs/cgroup/unified; do
        if [ -f "$r/cgroup.controllers" ] && grep -qw memory "$r/cgroup.controllers"; then
            echo "v2 $r"; return 0
        fi
    done
    if [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then echo "v1 /sys/fs/cgroup/memory"; return 0; fi
    return 1
}

# cg_create NAME LIMIT_BYTES: prints the new cgroup's path. Needs root.
cg_create() {
    local name=$1 limit=$2 kind root path
    read -r kind root < <(cg_root) || return 1
    path=$root/preoom-test-$name-$$
    mkdir "$path" || return 1
    echo "$path" >>"$T_TMP/cgroups"
    if [ "$kind" = v2 ]; then
        echo "+memory" >"$root/cgroup.subtree_control" 2>/dev/null
        echo "$limit" >"$path/memory.max" || return 1
        echo 0 >"$path/memory.swap.max" 2>/dev/null
    else
        echo "$limit" >"$path/memory.limit_in_bytes" || return 1
    fi
    echo "$path"
}

# The kernel's OOM-kill count for a cgroup.
cg_oom_kills() {
    local path=$1
    if [ -f "$path/memory.events" ]; then
        awk '$1=="oom_kill"{print $2}' "$path/memory.events"
    else
        awk '$1=="oom_kill"{print $2}' "$path/memory.oom_control"
    fi
}

# Move a pid into a cgroup.
cg_enter() { echo "$2" >"$1/cgroup.procs"; }

cg_remove() {
    local path=$1 p i sub
    [ -d "$path" ] || return 0
    # Nested cgroups first: a cgroup with children cannot be removed.
    for sub in "$path"/*/; do [ -d "$sub" ] && cg_remove "${sub%/}"; done
    for i in 1 2 3 4 5 6 7 8 9 10; do
        for p in $(cat "$path/cgroup.procs" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        rmdir "$path" 2>/dev/null && return 0
        sleep 0.2
    done
    echo "# could not remove cgroup $path" >&2
}

# Start a command in the background, remembering its pid for cleanup. Sets BG_PID.
bg() { "$@" & BG_PID=$!; T_PIDS+=("$BG_PID"); }

# json_get FILE KEY: a number from one of our flat JSON reports.
json_get() { sed -n "s/.*\"$2\": *\([0-9-]*\).*/\1/p" "$1" | head -n1; }

# within A B PCT MIN: |A-B| <= max(PCT% of B, MIN)
within() {
    awk -v a="$1" -v b="$2" -v pct="$3" -v min="$4" 'BEGIN {
        d = a - b; if (d < 0) d = -d; tol = b * pct / 100; if (tol < min) tol = min;
        exit !(d <= tol) }'
}

# preoomd's decisions (--log-format json: one object a line). ev_pids LOG EVENT: the pids of
# every decision of that kind ("ask", "sigterm", "sigkill", "answer", "exited", "hog", ...),
# one a line, in order; ev_count LOG EVENT [PID]: how many there are (for that pid).
ev_pids() {
    python3 -c '
import json, sys
for line in open(sys.argv[1], errors="replace"):
    line = line.strip()
    if not line.startswith("{"): continue
    try: d = json.loads(line)
    except ValueError: print("bad-json", file=sys.stderr); continue
    if d.get("event") == sys.argv[2]: print(d.get("pid", 0))
' "$1" "$2"
}
ev_count() {
    if [ $# -ge 3 ]; then ev_pids "$1" "$2" | grep -cx "$3"; else ev_pids "$1" "$2" | grep -c .; fi
}
# signalled LOG: every pid that got SIGTERM or SIGKILL, sorted, unique.
signalled() { { ev_pids "$1" sigterm; ev_pids "$1" sigkill; } | sort -un; }

t_done() { exit "$T_FAILED"; }

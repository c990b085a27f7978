#!/usr/bin/env bash
# tests/e2e/lib_domains.sh — sourced by the arbiter_domains_*.sh tests (the runner skips files
# starting with "lib"): one preoomd for a parent memory cgroup and three children, each with
# its own limit, the parent's smaller than the children's sum; the domains are found by
# preoomd itself from the registered processes (no --cgroup). Built on lib_scenes.sh.
. "$(dirname "${BASH_SOURCE[0]}")/lib_scenes.sh"

# nest NAME PARENT_MIB CHILD_MIB: P and its children A B C; preoomd (DP) logging to LOG with
# the flags that follow, watching every domain it finds.
nest() {
    local name=$1 plimit=$2 climit=$3 kind root c; shift 3
    read -r kind root < <(cg_root)
    P=$(cg_create "dom$name" $((plimit << 20))) || { fail "$name: cannot create the cgroup"; return 1; }
    for c in a b c; do
        mkdir "$P/$c" || { fail "$name: cannot create $P/$c"; return 1; }
        if [ "$kind" = v2 ]; then
            echo "+memory" >"$P/cgroup.subtree_control"
            echo $((climit << 20)) >"$P/$c/memory.max"
            echo 0 >"$P/$c/memory.swap.max" 2>/dev/null
        else
            echo $((climit << 20)) >"$P/$c/memory.limit_in_bytes"
        fi
    done
    CG=$P
    LOG=$T_TMP/$name.$TRIAL.log
    : >"$LOG"
    DP=""
    [ "${NO_DAEMON:-0}" -eq 1 ] && return 0
    bg "$D" --registry "$T_REG" --no-mlock --log-format json "$@" 2>"$LOG"; DP=$BG_PID
    for _ in $(seq 100); do grep -q watching "$LOG" && break; sleep 0.02; done
}
# in CHILD PIDVAR CMD...: start CMD preloaded in child cgroup CHILD (a, b or c) of P.
in_child() { local c=$1 v=$2; shift 2; cg_run "$P/$c" "${pre[@]}" "$@"; printf -v "$v" '%s' "$BG_PID"; }
# The kernel's OOM kills in P and its children, summed.
nest_kills() {
    local k=0 c n
    for c in "$P" "$P/a" "$P/b" "$P/c"; do n=$(cg_oom_kills "$c"); k=$((k + ${n:-0})); done
    echo "$k"
}
unnest() {
    KILLS=$(nest_kills)
    [ -n "$DP" ] && { kill -TERM "$DP" 2>/dev/null; wait "$DP" 2>/dev/null; }
    cg_remove "$P"
}
# dom_events LOG DOMAIN-SUFFIX: how many decisions a domain (its path ending so) logged.
dom_events() {
    python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1], errors="replace"):
    if not line.startswith("{"): continue
    try: d = json.loads(line)
    except ValueError: continue
    if d.get("event") not in (None, "message") and d.get("domain", "").endswith(sys.argv[2]): n += 1
print(n)' "$1" "$2"
}

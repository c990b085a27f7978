#!/usr/bin/env bash
# tests/e2e/domains_views.sh — `preoom ls`, `ls --json`, `top` and `explain --domain` on real
# memory cgroups (v2 where the memory controller is there, else v1): a parent with a limit
# smaller than the sum of its three children's, an unlimited leaf under the parent, and one
# process on the host. Each process must show under its innermost domain, each domain with
# its own limit; explain --domain must rank only the processes inside the domain; a process
# moved to another cgroup, and a cgroup removed, must show at the next look.
#
# Needs root (to make cgroups). Creates no memory pressure: each process holds 2 MiB, far
# below every limit; the cgroups are this test's own and are removed at the end (lib.sh).
. "$(dirname "$0")/lib.sh"

PREOOM=$B/preoom
is_root || { skip "domains views: needs root to create memory cgroups"; t_done; }
read -r kind root < <(cg_root) || { skip "domains views: no memory cgroup hierarchy here"; t_done; }
command -v jq >/dev/null || { skip "domains views: jq is not installed"; t_done; }

MIB=$((1024 * 1024))
parent=$(cg_create dom $((96 * MIB))) || { fail "domains views: cannot create a cgroup under $root"; t_done; }
# Children: made here, not by cg_create (which makes them at the root); lib.sh's cleanup
# removes what $T_TMP/cgroups lists in order, so the children go first and the parent last.
[ "$kind" = v2 ] && echo "+memory" >"$parent/cgroup.subtree_control"
: >"$T_TMP/cgroups"
for c in c1 c2 c3 free; do
    mkdir "$parent/$c" && echo "$parent/$c" >>"$T_TMP/cgroups"
done
echo "$parent" >>"$T_TMP/cgroups"
limit_file=memory.limit_in_bytes; [ "$kind" = v2 ] && limit_file=memory.max
for c in c1 c2 c3; do echo $((64 * MIB)) >"$parent/$c/$limit_file"; done
rel=${parent#"$root"}   # the parent's path as /proc/PID/cgroup names it

# start CGROUP|host NAME: one small registered process there; its pid in ${P[NAME]}.
declare -A P
start() {
    local where=$1 name=$2
    if [ "$where" = host ]; then
        bg env LD_PRELOAD="$LIB" "$PROG/hold" -m 2 -t 2 -s 60 -r "$T_TMP/ready.$name"
    else
        bg bash -c 'echo $$ >"$1/cgroup.procs" && exec env LD_PRELOAD="$2" "$3" -m 2 -t 2 -s 60 -r "$4"' \
            _ "$where" "$LIB" "$PROG/hold" "$T_TMP/ready.$name"
    fi
    P[$name]=$BG_PID
}
start "$parent/c1" c1
start "$parent/c2" c2
start "$parent/c3" c3
start "$parent/free" free
start host host
for _ in $(seq 200); do
    n=$(ls "$T_TMP"/ready.* 2>/dev/null | wc -l); [ "$n" -eq 5 ] && break; sleep 0.05
done
sleep 0.3

# ---- ls: the table ------------------------------------------------------------------------------
"$PREOOM" ls >"$T_TMP/ls.txt" 2>"$T_TMP/ls.err"
check "ls: exit 0" [ $? -eq 0 ]
# The domain a pid is listed under: the last "domain" line above its row.
under() { awk -v p="$2" '$1 == "domain" {d = $2; sub(/:$/, "", d)} $1 == p {print d}' "$1"; }
check "ls: the host process is under the host ($(under "$T_TMP/ls.txt" "${P[host]}"))" \
    [ "$(under "$T_TMP/ls.txt" "${P[host]}")" = host ]
for c in c1 c2 c3; do
    check "ls: the $c process is under $rel/$c ($(under "$T_TMP/ls.txt" "${P[$c]}"))" \
        [ "$(under "$T_TMP/ls.txt" "${P[$c]}")" = "$rel/$c" ]
done
check "ls: the process in the unlimited leaf is under its limited parent" \
    [ "$(under "$T_TMP/ls.txt" "${P[free]}")" = "$rel" ]
check "ls: the parent's line says its limit (96.0 MiB), indented once" \
    grep -qE "^  domain $rel: limit 96\.0 MiB, usage [0-9.]+ [KMG]?i?B, available " "$T_TMP/ls.txt"
check "ls: a child's line says its own limit (64.0 MiB), indented twice" \
    grep -qE "^    domain $rel/c2: limit 64\.0 MiB" "$T_TMP/ls.txt"
check "ls: the host's line comes first, against RAM" \
    bash -c 'grep -m1 "domain" "$1" | grep -qE "^domain host: RAM "' _ "$T_TMP/ls.txt"
check "ls: no domain line for the unlimited leaf" bash -c '! grep -q "domain .*/free:" "$1"' _ "$T_TMP/ls.txt"

# ---- ls --json --------------------------------------------------------------------------------
"$PREOOM" ls --json >"$T_TMP/ls.json"
jdom() { jq -r --argjson p "$2" '(.processes[] | select(.pid == $p) | .domain) as $d | .domains[] | select(.domain == $d) | .path' "$1"; }
check "ls --json: c1's process has c1's domain ($(jdom "$T_TMP/ls.json" "${P[c1]}"))" \
    [ "$(jdom "$T_TMP/ls.json" "${P[c1]}")" = "$rel/c1" ]
check "ls --json: the host process has the host's domain" [ "$(jdom "$T_TMP/ls.json" "${P[host]}")" = / ]
check "ls --json: c3's domain has the limit, its parent the parent's, available below both" \
    jq -e --arg c "$rel/c3" --arg p "$rel" '
        (.domains[] | select(.path == $c)) as $d | (.domains[] | select(.path == $p)) as $q |
        $d.limit == 67108864 and $q.limit == 100663296 and $d.parent == $q.domain and
        $d.depth == 2 and $d.available <= $q.available and $d.cgroup >= 1' "$T_TMP/ls.json" >/dev/null

# ---- top: the time to the limit, from the second frame ---------------------------------------
"$PREOOM" top -n 3 -d 0.3 >"$T_TMP/top.txt" 2>&1
check "top: later frames tell each domain's time to the limit or that it is not growing" \
    bash -c '[ "$(grep -cE "^ *domain .*(s to the limit|not growing)$" "$1")" -ge 5 ]' _ "$T_TMP/top.txt"

# ---- explain --domain -----------------------------------------------------------------------
ranked() { jq -r '[.ranking[].pid] | sort | map(tostring) | join(" ")' "$1"; }
sorted() { tr ' ' '\n' <<<"$*" | sort | tr '\n' ' ' | sed 's/ $//'; }
"$PREOOM" explain --json --domain "$rel/c2" >"$T_TMP/ex.c2.json" 2>"$T_TMP/ex.err"
check "explain --domain $rel/c2: only c2's process ($(ranked "$T_TMP/ex.c2.json"))" \
    [ "$(ranked "$T_TMP/ex.c2.json")" = "${P[c2]}" ]
check "explain --domain $rel/c2: against its own limit" \
    jq -e '.total == 67108864 and (.domain | endswith("/c2"))' "$T_TMP/ex.c2.json" >/dev/null
"$PREOOM" explain --json --domain "$rel" >"$T_TMP/ex.p.json" 2>>"$T_TMP/ex.err"
want=$(sorted "${P[c1]}" "${P[c2]}" "${P[c3]}" "${P[free]}")
check "explain --domain $rel: the four processes inside it, not the host's ($(ranked "$T_TMP/ex.p.json"))" \
    [ "$(ranked "$T_TMP/ex.p.json")" = "$(sorted $want)" ]
"$PREOOM" explain --json --domain host >"$T_TMP/ex.h.json" 2>>"$T_TMP/ex.err"
check "explain --domain host: every registered process" \
    bash -c '[ "$(jq "[.ranking[] | select(.registered)] | length" "$1")" -eq 5 ]' _ "$T_TMP/ex.h.json"
"$PREOOM" explain --domain "$rel/nothing" >/dev/null 2>"$T_TMP/ex.none"; rc=$?
check "explain --domain of no domain: exit 1, the domains listed ($(head -c 160 "$T_TMP/ex.none"))" \
    bash -c '[ "$1" -eq 1 ] && grep -q "the domains are: host, .*/c1" "$2"' _ "$rc" "$T_TMP/ex.none"
"$PREOOM" explain --domain "$rel" --cgroup "$parent" >/dev/null 2>"$T_TMP/ex.both"; rc=$?
check "explain --domain with --cgroup: exit 2, one line" \
    bash -c '[ "$1" -eq 2 ] && [ "$(wc -l <"$2")" -eq 1 ]' _ "$rc" "$T_TMP/ex.both"

# ---- change: a process moves, a cgroup goes ----------------------------------------------------
cg_enter "$parent/c2" "${P[c1]}"
kill -KILL "${P[c3]}"; wait "${P[c3]}" 2>/dev/null
for _ in $(seq 50); do rmdir "$parent/c3" 2>/dev/null && break; sleep 0.1; done
"$PREOOM" ls >"$T_TMP/ls2.txt"
check "ls after a move: c1's process is under c2 now" [ "$(under "$T_TMP/ls2.txt" "${P[c1]}")" = "$rel/c2" ]
check "ls after a move: c1, empty, is no domain line (no process on its path)" \
    bash -c '! grep -q "domain .*/c1:" "$1"' _ "$T_TMP/ls2.txt"
check "ls after c3 was removed: no line for it" bash -c '! grep -q "domain .*/c3:" "$1"' _ "$T_TMP/ls2.txt"
t_done

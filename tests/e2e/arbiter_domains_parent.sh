#!/usr/bin/env bash
# tests/e2e/arbiter_domains_parent.sh — one preoomd, many domains (#16): pressure in the
# parent is settled by the best candidate across its children.
#   P 400 MiB holding A, B, C of 250 MiB each (750 in all): no child comes near its own
#   limit. A steady 170 MiB service in A (the biggest: the kernel's choice), a steady 100 MiB
#   one in B, and in C a job leaking 25 MiB/s from 50 MiB: P overflows. The job is stopped,
#   by P's domain; the services finish; no kernel OOM kill. The control overflows P.
. "$(dirname "$0")/lib_domains.sh"
for n in big-a svc-b leak-c; do ln -s "$S" "$T_TMP/$n"; done

scene_parent() {
    nest parent 400 250 || return
    in_child a SA "$T_TMP/big-a" grow:170:0 hold:8000
    in_child b SB "$T_TMP/svc-b" grow:100:0 hold:8000
    sleep 0.5
    in_child c LC "$T_TMP/leak-c" grow:50:0 leak:25:0
    local sa sb; st "$SA"; sa=$?; st "$SB"; sb=$?
    kill -KILL "$LC" 2>/dev/null; st "$LC"; unnest
    local why=""
    [ "$(signalled "$LOG" | tr '\n' ' ')" = "$LC " ] || why+=" signalled '$(signalled "$LOG" | tr '\n' ' ')', not the leak $LC alone;"
    [ "$sa$sb" = 00 ] || why+=" services did not finish ($sa $sb);"
    [ "$KILLS" -eq 0 ] || why+=" kernel oom_kill=$KILLS;"
    [ -z "$DP" ] || grep -q "\"event\":\"sig[a-z]*\",\"domain\":\"[^\"]*domparent[^/\"]*\"" "$LOG" || why+=" the signal was not the parent's;"
    verdict "$why"
}
control parent
scene parent "pressure in the parent is settled by the best candidate across its children"
t_done

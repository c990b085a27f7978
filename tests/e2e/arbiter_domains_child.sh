#!/usr/bin/env bash
# tests/e2e/arbiter_domains_child.sh — one preoomd, many domains (#16): pressure inside one
# child cgroup is settled inside it, the siblings and the parent untouched.
#   P 520 MiB holding A, B, C of 200 MiB each (600 in all). In A a steady 60 MiB service and
#   a job growing to 170 MiB at 100 MiB/s (230 > 200); in B and C steady 80 MiB services.
#   Only the job is signalled, and only by A's domain; A's service, B and C finish; no
#   kernel OOM kill. The control without preoomd overflows A.
. "$(dirname "$0")/lib_domains.sh"
for n in svc-a job-a svc-b svc-c; do ln -s "$S" "$T_TMP/$n"; done

scene_child() {
    nest child 520 200 || return
    in_child a SA "$T_TMP/svc-a" grow:60:0 hold:5000
    in_child b SB "$T_TMP/svc-b" grow:80:0 hold:5000
    in_child c SC "$T_TMP/svc-c" grow:80:0 hold:5000
    sleep 0.5
    in_child a JA "$T_TMP/job-a" grow:170:100 hold:2500
    local sa sb sc; st "$SA"; sa=$?; st "$SB"; sb=$?; st "$SC"; sc=$?
    kill -KILL "$JA" 2>/dev/null; st "$JA"; unnest
    local why=""
    [ "$(signalled "$LOG" | tr '\n' ' ')" = "$JA " ] || why+=" signalled '$(signalled "$LOG" | tr '\n' ' ')', not the job $JA alone;"
    [ "$sa$sb$sc" = 000 ] || why+=" services did not finish ($sa $sb $sc);"
    [ "$KILLS" -eq 0 ] || why+=" kernel oom_kill=$KILLS;"
    [ "$(dom_events "$LOG" /b)$(dom_events "$LOG" /c)" = 00 ] || why+=" B or C acted;"
    [ -z "$DP" ] || grep -q "\"event\":\"sig[a-z]*\",\"domain\":\"[^\"]*/a\"" "$LOG" || why+=" the signal was not A's;"
    verdict "$why"
}
control child
scene child "pressure in one child is settled inside it; siblings and parent untouched"
# The domains were found: P, A, B, C and the host, each said once.
check "the parent and three children were found as domains" \
    [ "$(grep -c 'watching memory cgroup .*/preoom-test-domchild' "$T_TMP/child.1.log")" -eq 4 ]
t_done

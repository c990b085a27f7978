#!/usr/bin/env bash
# tests/e2e/lib_scenes.sh — sourced by the arbiter_scenes_*.sh tests (the runner skips files
# starting with "lib"): a memory cgroup and preoomd per trial, programs started in it with
# the preload, a scene run TRIALS times (PREOOM_TRIALS, default 10) and counted, and a control
# run without preoomd that must overflow, or the scene proves nothing.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if ! is_root || ! cg_root >/dev/null; then skip "arbiter scenes: need root and a memory cgroup"; t_done; fi
D=$B/preoomd
S=$PROG/shape
TRIALS=${PREOOM_TRIALS:-10}
for n in mysqld sidecar db hog small cache-job g150 g160 g170 spike base creep; do ln -s "$S" "$T_TMP/$n"; done
pre=(env LD_PRELOAD="$LIB" PREOOM_REGISTRY="$T_REG")
cg_run() { local cg=$1; shift; bg bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cg" "$@"; }

# begin NAME LIMIT_MIB [preoomd flags...]: a cgroup CG and preoomd (pid DP) logging to LOG.
begin() {
    local name=$1 limit=$2; shift 2
    CG=$(cg_create "sc$name" $((limit << 20))) || { fail "$name: cannot create the cgroup"; return 1; }
    LOG=$T_TMP/$name.$TRIAL.log
    : >"$LOG"
    DP=""
    [ "${NO_DAEMON:-0}" -eq 1 ] && return 0
    bg "$D" --registry "$T_REG" --cgroup "$CG" --no-mlock --log-format json "$@" 2>"$LOG"; DP=$BG_PID
    for _ in $(seq 100); do grep -q watching "$LOG" && break; sleep 0.02; done
}
# finish: preoomd stopped, KILLS set, the cgroup removed.
finish() {
    KILLS=$(cg_oom_kills "$CG")
    [ -n "$DP" ] && { kill -TERM "$DP" 2>/dev/null; wait "$DP" 2>/dev/null; }
    cg_remove "$CG"
}
# run PIDVAR CMD...: start CMD preloaded in the cgroup; sets the named variable to its pid.
run() { local v=$1; shift; cg_run "$CG" "${pre[@]}" "$@"; printf -v "$v" '%s' "$BG_PID"; }
# st PID: wait for it; its status in $? (a $(...) subshell cannot wait for our children).
st() { wait "$1" 2>/dev/null; }

# trial_ok WHY: count the trial; a failing one prints its log.
GOOD=0
verdict() {
    if [ -z "$1" ]; then GOOD=$((GOOD + 1)); else
        echo "# $SCENE trial $TRIAL:$1"; grep -v '"message"' "$LOG" | head -12 | sed 's/^/#   /'
    fi
}
# control SCENE: the same scene once without preoomd must overflow (the kernel OOM-kills),
# or the scene proves nothing.
control() {
    SCENE=$1 TRIAL=control NO_DAEMON=1 "scene_$1" >/dev/null 2>&1
    check "$1 without preoomd overflows: the kernel OOM-killed (oom_kill=$KILLS)" [ "${KILLS:-0}" -ge 1 ]
}
scene() {
    SCENE=$1; GOOD=0
    for TRIAL in $(seq "$TRIALS"); do "scene_$1"; done
    check "$SCENE: $2 ($GOOD/$TRIALS trials)" [ "$GOOD" -eq "$TRIALS" ]
}
nobody() { [ -z "$(signalled "$LOG")" ] || echo " signalled $(signalled "$LOG" | tr '\n' ' ');"; }


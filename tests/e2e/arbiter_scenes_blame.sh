#!/usr/bin/env bash
# tests/e2e/arbiter_scenes_blame.sh — the slow leak is blamed, not the big steady service.
#   leak       a steady 200 MiB "mysqld" and a sidecar leaking 10 MiB/s in 300 MiB: the
#              sidecar, also with --avoid '^mysqld$'.
# Each scene runs TRIALS times in a memory cgroup of its own (lib_scenes.sh); a trial is good
# when the kernel OOM-killed nobody and exactly the processes the scene names were signalled,
# the others finishing their work. Root only: memory cgroups.
. "$(dirname "$0")/lib_scenes.sh"
scene_leak() {
    begin leak 300 "${LEAK_FLAGS[@]}" || return
    run DB "$T_TMP/mysqld" grow:200:0 hold:6500
    sleep 0.5
    run SC "$T_TMP/sidecar" grow:50:0 leak:10:0
    local db; st "$DB"; db=$?; kill -KILL "$SC" 2>/dev/null; st "$SC"; finish
    verdict "$([ "$(signalled "$LOG" | tr '\n' ' ')" = "$SC " ] || echo " signalled '$(signalled "$LOG" | tr '\n' ' ')', not the sidecar $SC alone;")$([ "$db" -eq 0 ] || echo " mysqld did not finish ($db);")$([ "$KILLS" -eq 0 ] || echo " kernel oom_kill=$KILLS;")"
}
LEAK_FLAGS=()
control leak
scene leak "a 10 MiB/s sidecar beside a steady 200 MiB mysqld: the sidecar is stopped"
LEAK_FLAGS=(--avoid '^mysqld$')
SCENE_NOTE="with --avoid"
scene leak "the same with --avoid '^mysqld\$': the sidecar, never mysqld"

scene_prefork() {
    begin prefork 300 || return
    run P "$PROG/prefork" 60 8 20 3 15 6 "$T_TMP/pf.$TRIAL"
    local p; st "$P"; p=$?; finish
    local leaker; leaker=$(awk '$1 == "child" && $2 == 3 {print $3}' "$T_TMP/pf.$TRIAL")
    verdict "$([ "$(signalled "$LOG" | tr '\n' ' ')" = "$leaker " ] || echo " signalled '$(signalled "$LOG" | tr '\n' ' ')', not the leaking worker $leaker alone;")$([ "$p" -eq 0 ] || echo " the parent did not finish ($p);")$([ "$KILLS" -eq 0 ] || echo " kernel oom_kill=$KILLS;")"
}
t_done

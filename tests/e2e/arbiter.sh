#!/usr/bin/env bash
# tests/e2e/arbiter.sh — preoomd settles memory pressure before the kernel's OOM killer.
#
# Three preloaded processes grow inside a 256 MiB memory cgroup until together they would
# pass the limit (160 + 70 + 60 MiB). Without preoomd the kernel OOM-kills one (the cgroup's
# oom_kill count rises: the scene really overflows). With preoomd, ten trials in a row: the
# kernel kills nobody, preoomd acts only on the process its policy ranks first (the largest,
# fastest grower), and the other two finish their work. Needs root for the cgroup.
. "$(dirname "$0")/lib.sh"

if ! is_root; then skip "arbiter scenes: need root to create a memory cgroup"; t_done; fi
if ! cg_root >/dev/null; then skip "arbiter scenes: no memory cgroup controller on this machine"; t_done; fi
D=$B/preoomd
[ -x "$D" ] || { fail "preoomd not built"; t_done; }

# cg_run CG CMD...: start CMD inside the cgroup (in the background; sets BG_PID).
cg_run() { local cg=$1; shift; bg bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cg" "$@"; }

# scene N with|without: sets S_A S_B S_C (exit statuses), S_APID..., S_KILLS, S_LOG.
scene() {
    local n=$1 mode=$2 cg dpid=""
    cg=$(cg_create "arb$n" $((256 << 20))) || { fail "cannot create the cgroup"; return 1; }
    S_LOG=$T_TMP/preoomd.$n.log
    : >"$S_LOG"
    if [ "$mode" = with ]; then
        bg "$D" --registry "$T_REG" --cgroup "$cg" --no-mlock --log-format json 2>"$S_LOG"
        dpid=$BG_PID
        for _ in $(seq 50); do grep -q watching "$S_LOG" && break; sleep 0.05; done
    fi
    local pre="env LD_PRELOAD=$LIB PREOOM_REGISTRY=$T_REG"
    cg_run "$cg" $pre "$PROG/grow" 160 8 60 1500; S_APID=$BG_PID
    cg_run "$cg" $pre "$PROG/grow" 70 4 60 1500; S_BPID=$BG_PID
    cg_run "$cg" $pre "$PROG/grow" 60 4 60 1500; S_CPID=$BG_PID
    wait "$S_APID"; S_A=$?
    wait "$S_BPID"; S_B=$?
    wait "$S_CPID"; S_C=$?
    S_KILLS=$(cg_oom_kills "$cg")
    if [ -n "$dpid" ]; then kill -TERM "$dpid"; wait "$dpid"; fi
    cg_remove "$cg"
}

scene 0 without
check "without preoomd the scene overflows: the kernel OOM-killed (oom_kill=$S_KILLS)" [ "${S_KILLS:-0}" -ge 1 ]

good=0
for n in 1 2 3 4 5 6 7 8 9 10; do
    scene "$n" with
    why=""
    [ "$S_KILLS" -eq 0 ] || why="$why kernel oom_kill=$S_KILLS;"
    [ "$S_B" -eq 0 ] && [ "$S_C" -eq 0 ] || why="$why the others did not finish ($S_B, $S_C);"
    [ "$(signalled "$S_LOG" | tr '\n' ' ')" = "$S_APID " ] || why="$why signalled $(signalled "$S_LOG" | tr '\n' ' ')instead of only the largest grower $S_APID;"
    [ "$S_A" -ne 0 ] || why="$why the largest grower finished (no pressure?);"
    [ "$(ev_count "$S_LOG" ask)" -eq 0 ] || why="$why asked processes that have nothing to give;"
    if [ -z "$why" ]; then good=$((good + 1)); else
        echo "# trial $n:$why"; sed 's/^/#   /' "$S_LOG" | head -20
    fi
done
check "10 trials in a row: kernel kills nobody, preoomd acts on its first choice only, the others finish ($good/10)" [ "$good" -eq 10 ]
# What a decision line says (the last trial's).
check "each decision is one JSON object with the pressure, the lines, the forecast and the score's terms" \
    python3 -c '
import json, sys
ds = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
t = [d for d in ds if d["event"] == "sigterm"][0]
need = ["pid", "uid", "name", "available", "total", "ask_line", "term_line", "kill_line", "time_to_kill_ms", "score", "terms"]
sys.exit(0 if all(k in t for k in need) and t["available"] <= t["term_line"] + 64 * 2**20 and "blame=" in t["terms"] else 1)' "$S_LOG"
t_done

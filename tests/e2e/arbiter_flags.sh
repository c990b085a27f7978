#!/usr/bin/env bash
# tests/e2e/arbiter_flags.sh — protection and preference come from preoomd's own flags.
# In a 256 MiB memory cgroup, "big" holds 130 MiB and "small" grows to 130 MiB: together past
# the limit, so someone must go (preoomd signals nobody where the kernel would kill nobody). Under the kernel policy, which ranks by size alone (the preoom policy would weigh
# small's growth too), big goes first: the control. With --protect <big's pid> the daemon
# must act on small instead and leave big alone; with --prefer small, small goes first.
# --prefer is a bias of 30% of the limit, not an exclusion: it flips the choice here because
# the two differ by less than that. Root only.
. "$(dirname "$0")/lib.sh"

if ! is_root || ! cg_root >/dev/null; then skip "arbiter flags: need root and a memory cgroup"; t_done; fi
D=$B/preoomd
ln -s "$PROG/grow" "$T_TMP/big"
ln -s "$PROG/grow" "$T_TMP/small"
cg_run() { local cg=$1; shift; bg bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cg" "$@"; }
pre=(env LD_PRELOAD="$LIB" PREOOM_REGISTRY="$T_REG")

# scene NAME FLAG-MODE: sets BIG SMALL (pids), BS SS (statuses), LOG, KILLS
scene() {
    local name=$1 mode=$2 cg dp
    cg=$(cg_create "flags$name" $((256 << 20))) || { fail "cgroup"; return 1; }
    LOG=$T_TMP/$name.log
    cg_run "$cg" "${pre[@]}" "$T_TMP/big" 130 10 30 4000; BIG=$BG_PID
    sleep 0.8  # big is there first, and largest
    local flags=()
    case "$mode" in
        protect) flags=(--protect "$BIG") ;;
        prefer) flags=(--prefer '^small$') ;;
    esac
    bg "$D" --registry "$T_REG" --cgroup "$cg" --no-mlock --policy kernel "${flags[@]}" 2>"$LOG"; dp=$BG_PID
    for _ in $(seq 50); do grep -q watching "$LOG" && break; sleep 0.05; done
    cg_run "$cg" "${pre[@]}" "$T_TMP/small" 130 4 60 3000; SMALL=$BG_PID
    wait "$SMALL"; SS=$?
    wait "$BIG"; BS=$?
    KILLS=$(cg_oom_kills "$cg")
    kill -TERM "$dp"; wait "$dp"
    cg_remove "$cg"
}

scene none none
check "control: without flags the largest (big) is acted on" grep -Eq "SIG(TERM|KILL) pid $BIG \(big\)" "$LOG"
scene protect protect
check "--protect big: small is acted on" grep -Eq "SIG(TERM|KILL) pid $SMALL \(small\)" "$LOG"
check "--protect big: big is never asked or signalled, and finishes ($BS)" \
    bash -c '! grep -Eq "(ask|SIGTERM|SIGKILL) pid $1 " "$0" && [ "$2" -eq 0 ]' "$LOG" "$BIG" "$BS"
check "--protect big: the kernel killed nobody ($KILLS)" [ "$KILLS" -eq 0 ]
scene prefer prefer
check "--prefer small: small is chosen first" bash -c \
    'grep -E "(ask|SIGTERM|SIGKILL) pid " "$0" | head -n 1 | grep -q "pid $1 (small)"' "$LOG" "$SMALL"
check "--prefer small: the score shows the preference term" grep -q "pid $SMALL (small).*prefer" "$LOG"
check "--prefer small: the kernel killed nobody ($KILLS)" [ "$KILLS" -eq 0 ]
[ "$T_FAILED" -eq 0 ] || sed 's/^/#   /' "$LOG" | head -20
t_done

#!/usr/bin/env bash
# tests/e2e/preoomd_cli.sh — preoomd's command line and outputs without memory pressure:
# bad options, a missing cgroup and a corrupted registry each get one clear line and the
# documented exit status, and nothing is touched; the Prometheus metrics appear in the
# textfile and on the loopback port; SIGTERM stops it with status 0. Needs no root.
. "$(dirname "$0")/lib.sh"

D=$B/preoomd
[ -x "$D" ] || { fail "preoomd not built"; t_done; }

# bad NAME STATUS ARGS...: exits with STATUS and says one line on stderr.
bad() {
    local name=$1 want=$2; shift 2
    "$D" --registry "$T_REG" "$@" >"$T_TMP/out" 2>"$T_TMP/err"; local rc=$?
    if [ "$rc" -eq "$want" ] && [ "$(wc -l <"$T_TMP/err")" -eq 1 ] && grep -q '^preoomd' "$T_TMP/err"; then
        ok "$name: exit $rc, one line: $(cat "$T_TMP/err")"
    else
        fail "$name: exit $rc (want $want), stderr: $(head -c 300 "$T_TMP/err")"
    fi
}
bad "a malformed threshold" 2 --ask 15x
bad "thresholds out of order" 2 --ask 5 --term 10
bad "an unknown policy" 2 --policy nicest
bad "a bad regex" 2 --prefer '('
bad "a bad pid to protect" 2 --protect -3
bad "an unknown option" 2 --frobnicate
bad "a stray argument" 2 extra
bad "a missing cgroup" 1 --cgroup /sys/fs/cgroup/memory/preoom-no-such-cgroup-$$
printf 'this is not a registry at all, just text of some length...' >"/dev/shm/preoom.$T_REG"
bad "a corrupted registry" 1
check "the corrupted registry was left as it was" grep -q "not a registry at all" "/dev/shm/preoom.$T_REG"
rm -f "/dev/shm/preoom.$T_REG"
"$D" --help >"$T_TMP/help" 2>&1; check "--help exits 0 and shows the usage" grep -q "usage: preoomd" "$T_TMP/help"
"$D" --version | grep -q "^preoomd [0-9]"; check "--version" [ $? -eq 0 ]

# Metrics: a free loopback port, the textfile, SIGTERM.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
bg "$D" --registry "$T_REG" --no-mlock --metrics "$T_TMP/preoom.prom" --metrics-port "$port" 2>"$T_TMP/d.log"; dp=$BG_PID
bg env LD_PRELOAD="$LIB" PREOOM_REGISTRY="$T_REG" sleep 30; sp=$BG_PID
for _ in $(seq 60); do [ -s "$T_TMP/preoom.prom" ] && grep -q "preoom_registered_processes 1" "$T_TMP/preoom.prom" && break; sleep 0.1; done
check "metrics textfile written, with the registered process" grep -q "^preoom_registered_processes 1$" "$T_TMP/preoom.prom"
check "metrics textfile in the Prometheus format" bash -c 'grep -q "^# TYPE preoom_pressure_level gauge$" "$0" && grep -q "^preoom_actions_total{action=\"sigkill\"} 0$" "$0"' "$T_TMP/preoom.prom"
http=$(python3 -c "
import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$port/metrics', timeout=5).read().decode())" 2>&1)
check "metrics served on 127.0.0.1:$port" grep -q "^preoom_memory_available_bytes [0-9]" <<<"$http"
# /proc/net/tcp: local address as hex "0100007F:PORT", state 0A = listening. The socket must
# be found at all (so this cannot pass vacuously), and only on 127.0.0.1.
hexport=$(printf '%04X' "$port")
listen=$(awk -v p=":$hexport" '$4 == "0A" && substr($2, length($2) - 4) == p {print $2}' /proc/net/tcp /proc/net/tcp6 2>/dev/null)
check "the port is bound to loopback only (${listen:-not found})" [ "$listen" = "0100007F:$hexport" ]
kill -TERM "$dp"; wait "$dp"; rc=$?
check "SIGTERM stops preoomd with status 0" [ "$rc" -eq 0 ]
check "and it says so" grep -q "stopping on signal 15" "$T_TMP/d.log"
kill -TERM "$sp"; wait "$sp" 2>/dev/null
t_done

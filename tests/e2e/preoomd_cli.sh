#!/usr/bin/env bash
# tests/e2e/preoomd_cli.sh — preoomd's command line and outputs without memory pressure:
# bad options, a missing cgroup and a corrupted registry each get one clear line and the
# documented exit status, and nothing is touched; a failed start (missing cgroup, busy port)
# leaves no registry behind; the Prometheus metrics appear in the textfile and on the
# loopback port, valid for our strict parser (test_metrics --check) and for promtool when
# it is installed, with the registered process's own series; only /metrics answers 200;
# SIGTERM stops it with status 0 and removes the textfile. Needs no root.
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
bad "a port out of range names ports" 2 --metrics-port 70000
grep -q "is not a TCP port in 1..65535" "$T_TMP/err"; check "  ... and says TCP port, 1..65535" [ $? -eq 0 ]
bad "a cgroup pattern that is not a path" 2 --protect-cgroup 'mariadb'
bad "an unknown notify event" 2 --notify true --notify-events ask,sigstop
bad "a notify timeout of 0" 2 --notify true --notify-timeout 0
bad "an empty notify command" 2 --notify ''
bad "too many hooks at once" 2 --notify true --notify-max 17
bad "an unknown option" 2 --frobnicate
bad "a stray argument" 2 extra
bad "a missing cgroup" 1 --cgroup /sys/fs/cgroup/memory/preoom-no-such-cgroup-$$
check "a missing cgroup leaves no registry behind" [ ! -e "/dev/shm/preoom.$T_REG" ]
# A busy port: held by a listener of our own for the length of the attempt.
busy=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
bg python3 -c "import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', $busy)); s.listen(1); time.sleep(30)"; hold=$BG_PID
for _ in $(seq 50); do grep -q ":$(printf '%04X' "$busy") .* 0A" /proc/net/tcp && break; sleep 0.1; done
bad "a busy metrics port" 1 --metrics-port "$busy"
check "a busy port leaves no registry behind" [ ! -e "/dev/shm/preoom.$T_REG" ]
kill "$hold"; wait "$hold" 2>/dev/null
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
for _ in $(seq 60); do [ -s "$T_TMP/preoom.prom" ] && grep -q 'preoom_registered_processes{domain="/"} 1' "$T_TMP/preoom.prom" && break; sleep 0.1; done
check "metrics textfile written, with the registered process" grep -q '^preoom_registered_processes{domain="/"} 1$' "$T_TMP/preoom.prom"
check "metrics textfile in the Prometheus format" bash -c 'grep -q "^# TYPE preoom_pressure_level gauge$" "$0" && grep -q "^preoom_actions_total{domain=\"/\",action=\"sigkill\"} 0$" "$0"' "$T_TMP/preoom.prom"
check "the kernel's OOM kills are a counter named _total" grep -q '^# TYPE preoom_cgroup_kernel_oom_kills_total counter$' "$T_TMP/preoom.prom"
check "build info, start time and the lines as gauges" bash -c 'grep -q "^preoom_build_info{version=\"[0-9.]*\"} 1$" "$0" && grep -q "^preoom_start_time_seconds [0-9]\{10\}$" "$0" && grep -q "^preoom_term_line_bytes{domain=\"/\"} [1-9]" "$0"' "$T_TMP/preoom.prom"
check "the registered process has its own series (pid $sp)" grep -q "^preoom_process_touched_bytes{domain=\"/\",pid=\"$sp\",name=\"sleep\"} [0-9]" "$T_TMP/preoom.prom"
"$B/tests/unit/test_metrics" --check "$T_TMP/preoom.prom" >"$T_TMP/strict" 2>&1; rc=$?
check "the textfile passes the strict parser: $(cat "$T_TMP/strict")" [ "$rc" -eq 0 ]
if command -v promtool >/dev/null; then
    promtool check metrics <"$T_TMP/preoom.prom" >"$T_TMP/promtool" 2>&1; rc=$?
    check "promtool check metrics accepts the textfile $(tr '\n' ' ' <"$T_TMP/promtool")" [ "$rc" -eq 0 ]
else
    skip "promtool check metrics: promtool is not installed (Debian package prometheus)"
fi
# Into a file as served: a $(...) would drop the final newline the format requires.
python3 -c "
import sys, urllib.request; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:$port/metrics', timeout=5).read().decode())" >"$T_TMP/http.prom" 2>&1
check "metrics served on 127.0.0.1:$port" grep -q '^preoom_memory_available_bytes{domain="/"} [0-9]' "$T_TMP/http.prom"
"$B/tests/unit/test_metrics" --check "$T_TMP/http.prom" >"$T_TMP/strict" 2>&1; rc=$?
check "the served text passes the strict parser: $(cat "$T_TMP/strict")" [ "$rc" -eq 0 ]
for path in / /metricsx /foo; do
    code=$(python3 -c "
import urllib.request, urllib.error
try:
    print(urllib.request.urlopen('http://127.0.0.1:$port$path', timeout=5).status)
except urllib.error.HTTPError as e:
    print(e.code)" 2>&1)
    check "GET $path answers 404 ($code)" [ "$code" = 404 ]
done
# /proc/net/tcp: local address as hex "0100007F:PORT", state 0A = listening. The socket must
# be found at all (so this cannot pass vacuously), and only on 127.0.0.1.
hexport=$(printf '%04X' "$port")
listen=$(awk -v p=":$hexport" '$4 == "0A" && substr($2, length($2) - 4) == p {print $2}' /proc/net/tcp /proc/net/tcp6 2>/dev/null)
check "the port is bound to loopback only (${listen:-not found})" [ "$listen" = "0100007F:$hexport" ]
kill -TERM "$dp"; wait "$dp"; rc=$?
check "SIGTERM stops preoomd with status 0" [ "$rc" -eq 0 ]
check "and it says so" grep -q "stopping on signal 15" "$T_TMP/d.log"
check "the metrics textfile is removed when preoomd stops" [ ! -e "$T_TMP/preoom.prom" ]
kill -TERM "$sp"; wait "$sp" 2>/dev/null
t_done

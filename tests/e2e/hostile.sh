#!/usr/bin/env bash
# tests/e2e/hostile.sh — what a registry file, a peer or a full /dev/shm can do to hosts and
# preoomd: each attack must leave the host and preoomd alive, signal nobody, and be said in
# one clear line.
#
#   truncate -s 0 of a mapped registry · a full registry directory (a 64 KiB tmpfs) ·
#   a squatter's file at the registry path · a forged slot naming an innocent process with
#   hint 1000, under real pressure · a registry deleted and recreated under preoomd · a stale
#   empty or zero-header file · a daemon that reused fd 2 · preoomd 2>&- · FIFOs at the
#   metrics temporary path and at a report path · 100 idle HTTP clients.
#
# Root only (a tmpfs mount, another user's files, a memory cgroup). Every process is started
# with bg and killed by pid at exit; every file, mount and cgroup is removed at exit.
. "$(dirname "$0")/lib.sh"

if ! is_root; then skip "hostile registry: needs root (tmpfs mount, chown, cgroup)"; t_done; fi
D=$B/preoomd
PREOOM=$B/preoom
HOLD=$PROG/hold
for f in "$D" "$PREOOM" "$HOLD" "$LIB" "$PROG/fd2reuse" "$PROG/forge" "$PROG/grow"; do
    if [ ! -e "$f" ]; then skip "hostile registry: $f not built (make test-build)"; t_done; fi
done
MNT=$T_TMP/shm
SHM_EXTRA=()
for s in trunc sq stale zero fd2 null rec met; do SHM_EXTRA+=("/dev/shm/preoom.$T_REG-$s"); done
cleanup() {
    mountpoint -q "$MNT" 2>/dev/null && umount "$MNT"
    rm -f "${SHM_EXTRA[@]}" /dev/shm/.preoom-new."$T_REG"*
    t_cleanup
}
trap cleanup EXIT
export PREOOM_INTERVAL_MS=50

# wait_for SECONDS CMD...: until CMD succeeds.
wait_for() { local n=$(( $1 * 20 )); shift; for _ in $(seq "$n"); do "$@" && return 0; sleep 0.05; done; return 1; }
alive() { kill -0 "$1" 2>/dev/null; }
lines() { grep -c "$1" "$2" 2>/dev/null; }
# start_daemon REGISTRY LOG [ARGS]: preoomd in dry-run (no decision can signal anyone).
start_daemon() {
    local r=$1 log=$2; shift 2
    bg "$D" --registry "$r" --dry-run --no-mlock "$@" 2>"$log"; DP=$BG_PID
    wait_for 5 grep -q watching "$log"
}
# host REGISTRY NAME [ENV...]: a preloaded hold in the background; sets HP.
host() {
    local r=$1 n=$2; shift 2
    bg env "$@" PREOOM_REGISTRY="$r" LD_PRELOAD="$LIB" "$HOLD" -m 2 -t 1 -s 60 -r "$T_TMP/ready.$n" 2>"$T_TMP/$n.err"
    HP=$BG_PID
    wait_for 5 test -e "$T_TMP/ready.$n"
}

# ---- 1. truncate -s 0 of a mapped registry --------------------------------------------------
r=$T_REG-trunc
start_daemon "$r" "$T_TMP/d1.log"
host "$r" h1; H1=$HP
host "$r" h2; H2=$HP
sleep 0.3
truncate -s 0 "/dev/shm/preoom.$r"
sleep 1
check "truncate: host 1 alive" alive "$H1"
check "truncate: host 2 alive" alive "$H2"
check "truncate: preoomd alive" alive "$DP"
check "truncate: each host says so in one line" \
    bash -c '[ "$(grep -c shrank "$1")" -eq 1 ] && [ "$(grep -c shrank "$2")" -eq 1 ] && [ "$(wc -l <"$1")" -eq 1 ]' _ "$T_TMP/h1.err" "$T_TMP/h2.err"
check "truncate: preoomd says so in one line and reopens" \
    bash -c '[ "$(grep -c "was truncated: reopened" "$1")" -eq 1 ]' _ "$T_TMP/d1.log"
check "truncate: the registry is whole again (preoom ls exit 0)" bash -c '"$0" --registry "$1" ls >/dev/null' "$PREOOM" "$r"
kill -TERM "$H1" "$H2"; wait "$H1"; s1=$?; wait "$H2"; s2=$?
check "truncate: the hosts end normally on SIGTERM (status $s1, $s2)" [ "$s1" -eq 0 -a "$s2" -eq 0 ]
kill -TERM "$DP"; wait "$DP"; check "truncate: preoomd stops with status 0" [ $? -eq 0 ]

# ---- 2. a full registry directory ------------------------------------------------------------
mkdir -p "$MNT"
if mount -t tmpfs -o size=64k,mode=1777 tmpfs "$MNT"; then
    # 64 slots take 33 KiB: they fit the 64 KiB, but not beside a 40 KB filler.
    export PREOOM_REGISTRY_SLOTS=64
    head -c 40000 /dev/zero >"$MNT/filler"
    PREOOM_REGISTRY_DIR=$MNT PREOOM_REGISTRY=full LD_PRELOAD="$LIB" "$HOLD" -m 1 -s 0 2>"$T_TMP/full.err"; rc=$?
    check "full: the host runs and exits 0 (status $rc, not SIGBUS)" [ "$rc" -eq 0 ]
    check "full: one line, saying there is no space" \
        bash -c '[ "$(wc -l <"$1")" -eq 1 ] && grep -q "no space left" "$1"' _ "$T_TMP/full.err"
    "$D" --registry-dir "$MNT" --registry full --slots 64 --dry-run --no-mlock 2>"$T_TMP/dfull.log"; rc=$?
    check "full: preoomd exits 1 with one line (status $rc, not 135)" \
        bash -c '[ "$1" -eq 1 ] && [ "$(wc -l <"$2")" -eq 1 ] && grep -q "no space left" "$2"' _ "$rc" "$T_TMP/dfull.log"
    check "full: nothing is left behind in the directory" \
        bash -c '[ "$(ls -A "$1")" = filler ]' _ "$MNT"
    rm -f "$MNT/filler"
    PREOOM_REGISTRY_DIR=$MNT PREOOM_REGISTRY=full LD_PRELOAD="$LIB" "$HOLD" -m 1 -s 0 2>"$T_TMP/full2.err"; rc=$?
    check "full: with room again, a host runs silently (status $rc) and made the registry" \
        bash -c '[ "$1" -eq 0 ] && [ ! -s "$2" ] && [ -f "$3/preoom.full" ]' _ "$rc" "$T_TMP/full2.err" "$MNT"
    unset PREOOM_REGISTRY_SLOTS
    umount "$MNT"
else
    skip "full: cannot mount a tmpfs here"
fi

# ---- 3. a squatter's file -----------------------------------------------------------------------
r=$T_REG-sq
setpriv --reuid=65534 --regid=65534 --clear-groups bash -c \
    'umask 022; printf "PPREOOM1" >"$0"; truncate -s 4096 "$0"' "/dev/shm/preoom.$r"
check "squat: nobody's file is there" [ "$(stat -c %u "/dev/shm/preoom.$r")" -eq 65534 ]
PREOOM_REGISTRY=$r LD_PRELOAD="$LIB" "$HOLD" -m 1 -s 0 2>"$T_TMP/sq.err"; rc=$?
check "squat: root's host runs on (status $rc) and says why in one line" \
    bash -c '[ "$1" -eq 0 ] && [ "$(wc -l <"$2")" -eq 1 ] && grep -q "another user" "$2"' _ "$rc" "$T_TMP/sq.err"
"$PREOOM" --registry "$r" ls >/dev/null 2>"$T_TMP/sq-ls.err"; rc=$?
check "squat: preoom ls refuses it (exit 1, one line)" \
    bash -c '[ "$1" -eq 1 ] && [ "$(wc -l <"$2")" -eq 1 ] && grep -q "another user" "$2"' _ "$rc" "$T_TMP/sq-ls.err"
start_daemon "$r" "$T_TMP/d3.log"
check "squat: preoomd runs, and says in one line that it replaced the squatter's file" \
    bash -c 'alive() { kill -0 "$1"; }; alive "$1" && [ "$(grep -c "another user (squatted)" "$2")" -eq 1 ]' _ "$DP" "$T_TMP/d3.log"
check "squat: the registry is root's now" [ "$(stat -c %u "/dev/shm/preoom.$r")" -eq 0 ]
host "$r" sqh
check "squat: a host registers in it" bash -c '"$1" --registry "$2" ls --json | grep -q "\"pid\": $3"' _ "$PREOOM" "$r" "$HP"
kill -TERM "$HP" "$DP"; wait "$HP" "$DP"

# ---- 4. a stale empty or zero-header registry ------------------------------------------------
r=$T_REG-stale
: >"/dev/shm/preoom.$r"
t0=$(date +%s%N)
PREOOM_REGISTRY=$r LD_PRELOAD="$LIB" "$HOLD" -s 0 2>"$T_TMP/stale.err"; rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "stale empty, ours: the host runs (status $rc), repairs it in one line" \
    bash -c '[ "$1" -eq 0 ] && [ "$(wc -l <"$2")" -eq 1 ] && grep -q "replaced a stale registry" "$2"' _ "$rc" "$T_TMP/stale.err"
check "stale empty, ours: it is a registry again" bash -c '"$0" --registry "$1" ls >/dev/null' "$PREOOM" "$r"
r=$T_REG-zero
head -c 1048576 /dev/zero >"/dev/shm/preoom.$r"; chown 65534:65534 "/dev/shm/preoom.$r"; chmod 0666 "/dev/shm/preoom.$r"
for i in 1 2 3; do PREOOM_REGISTRY=$r LD_PRELOAD="$LIB" "$HOLD" -s 0 2>/dev/null; done
t0=$(date +%s%N)
for i in 1 2 3 4 5; do PREOOM_REGISTRY=$r LD_PRELOAD="$LIB" "$HOLD" -s 0 2>"$T_TMP/zero.err"; done
zero_ms=$(( ($(date +%s%N) - t0) / 5000000 ))
t0=$(date +%s%N)
for i in 1 2 3 4 5; do PREOOM_REGISTRY=off LD_PRELOAD="$LIB" "$HOLD" -s 0 2>/dev/null; done
off_ms=$(( ($(date +%s%N) - t0) / 5000000 ))
echo "# exec with a zero-header registry: ${zero_ms} ms; with none: ${off_ms} ms"
check "stale zero header, not ours: refused in one line" \
    bash -c '[ "$(wc -l <"$1")" -eq 1 ] && grep -q "another user\|stale" "$1"' _ "$T_TMP/zero.err"
check "stale zero header: costs no wait (exec ${zero_ms} ms vs ${off_ms} ms without, < +20 ms)" \
    [ "$zero_ms" -lt $(( off_ms + 20 )) ]
chown 0:0 "/dev/shm/preoom.$r"; chmod 0600 "/dev/shm/preoom.$r"
PREOOM_REGISTRY=$r LD_PRELOAD="$LIB" "$HOLD" -s 0 2>"$T_TMP/zero2.err"
check "stale zero header, ours: repaired in one line" \
    bash -c '[ "$(wc -l <"$1")" -eq 1 ] && grep -q "replaced a stale registry" "$1"' _ "$T_TMP/zero2.err"

# ---- 5. deleted and recreated under preoomd --------------------------------------------------
r=$T_REG-rec
start_daemon "$r" "$T_TMP/d5.log" --metrics "$T_TMP/m5.prom"
rm -f "/dev/shm/preoom.$r"
check "recreate: preoomd says the registry was deleted, and reopens it" \
    wait_for 5 grep -q "was deleted: reopened" "$T_TMP/d5.log"
host "$r" rech
check "recreate: a new host is seen by preoomd (registered 1 in its metrics)" \
    wait_for 5 grep -qx 'preoom_registered_processes{domain="/"} 1' "$T_TMP/m5.prom"
ino1=$(stat -c %i "/dev/shm/preoom.$r")
cp "/dev/shm/preoom.$r" "$T_TMP/copy"; mv "$T_TMP/copy" "/dev/shm/preoom.$r"
check "replace: preoomd says the registry was replaced, and reopens it" \
    wait_for 5 grep -q "was replaced by another file: reopened" "$T_TMP/d5.log"
check "recreate: preoomd alive, the host alive" bash -c 'kill -0 "$1" && kill -0 "$2"' _ "$DP" "$HP"
[ "$ino1" != "$(stat -c %i "/dev/shm/preoom.$r")" ] || fail "replace: the inode did not change"
kill -TERM "$HP" "$DP"; wait "$HP" "$DP"

# ---- 6. descriptor 2 reused, and PREOOM_LOG ---------------------------------------------------
r=$T_REG-fd2
host "$r" fd2h PREOOM_REGISTRY_SLOTS=1   # fills the registry: the workers' claims fail
PREOOM_REGISTRY=$r PREOOM_VERBOSE=1 LD_PRELOAD="$LIB" "$PROG/fd2reuse" "$T_TMP/journal" 4 2>/dev/null
check "fd 2 reused: the journal holds only the daemon's own lines" \
    bash -c '[ "$(grep -vc "^journal: " "$1")" -eq 0 ] && [ "$(grep -c "^journal: worker" "$1")" -eq 4 ]' _ "$T_TMP/journal"
PREOOM_REGISTRY=$r PREOOM_VERBOSE=1 PREOOM_LOG=$T_TMP/plog LD_PRELOAD="$LIB" "$PROG/fd2reuse" "$T_TMP/journal2" 4 2>/dev/null
check "PREOOM_LOG: the lines go there (registry full: the daemon and its 4 workers)" \
    bash -c '[ "$(grep -c "is full" "$1")" -eq 5 ] && [ "$(grep -vc "^journal: " "$2")" -eq 0 ]' _ "$T_TMP/plog" "$T_TMP/journal2"
kill -TERM "$HP"; wait "$HP"

# ---- 7. preoomd started without descriptors 0-2 --------------------------------------------
r=$T_REG-null
bg "$D" --registry "$r" --dry-run --no-mlock 0<&- 1>&- 2>&-; DP=$BG_PID
wait_for 5 test -s "/dev/shm/preoom.$r"
sleep 0.3
host "$r" nullh
check "2>&-: preoomd alive" alive "$DP"
check "2>&-: its log did not overwrite the registry (preoom ls exit 0, lists the host)" \
    bash -c '"$1" --registry "$2" ls --json | grep -q "\"pid\": $3"' _ "$PREOOM" "$r" "$HP"
check "2>&-: the host registered without a word" test ! -s "$T_TMP/nullh.err"
check "2>&-: preoomd holds /dev/null on 0, 1 and 2" \
    bash -c 'for f in 0 1 2; do [ "$(readlink /proc/$1/fd/$f)" = /dev/null ] || exit 1; done' _ "$DP"
kill -TERM "$HP" "$DP"; wait "$HP" "$DP"

# ---- 8. FIFOs at the metrics temporary path and at a report path ----------------------------
r=$T_REG-met
mdir=$T_TMP/metrics; mkdir -p "$mdir"
bg bash -c 'mkfifo "$1.tmp.$$" && exec "$2" --registry "$3" --dry-run --no-mlock --metrics "$1"' _ \
    "$mdir/m.prom" "$D" "$r" 2>"$T_TMP/d8.log"; DP=$BG_PID
sleep 2.5
check "FIFO at the metrics temp path: preoomd alive and looping" \
    bash -c 'kill -0 "$1" && grep -q watching "$2"' _ "$DP" "$T_TMP/d8.log"
check "FIFO at the metrics temp path: one line saying it cannot write" \
    bash -c '[ "$(grep -c "cannot write" "$1")" -eq 1 ]' _ "$T_TMP/d8.log"
check "FIFO at the metrics temp path: still a FIFO, never opened" test -p "$mdir/m.prom.tmp.$DP"
kill -TERM "$DP"; wait "$DP"
mkfifo "$T_TMP/rep.json"
PREOOM_REGISTRY=off PREOOM_REPORT=$T_TMP/rep.json LD_PRELOAD="$LIB" timeout 10 "$HOLD" -m 1 -s 0 2>"$T_TMP/rep.err"; rc=$?
check "FIFO at a report path: the host exits at once, status 0 ($rc)" [ "$rc" -eq 0 ]
check "FIFO at a report path: one line" \
    bash -c '[ "$(wc -l <"$1")" -eq 1 ] && grep -q "cannot write report" "$1"' _ "$T_TMP/rep.err"
(exec 3<>"$T_TMP/rep.json"; PREOOM_REGISTRY=off PREOOM_REPORT=$T_TMP/rep.json LD_PRELOAD="$LIB" timeout 10 "$HOLD" -m 1 -s 0 2>"$T_TMP/rep2.err"; echo $? >"$T_TMP/rep2.rc")
check "FIFO with a reader at a report path: refused in one line, status 0" \
    bash -c '[ "$(cat "$1")" -eq 0 ] && [ "$(wc -l <"$2")" -eq 1 ] && grep -q "not a regular file" "$2"' _ "$T_TMP/rep2.rc" "$T_TMP/rep2.err"

# ---- 9. 100 idle HTTP clients -----------------------------------------------------------------
r=$T_REG-met
port=$(( 20000 + $$ % 20000 ))
start_daemon "$r" "$T_TMP/d9.log" --metrics-port "$port" --metrics "$T_TMP/m9.prom" --min-poll 5 --max-poll 5
sleep 1.2
before=$(awk '$1=="preoom_pass_seconds"{print $2}' "$T_TMP/m9.prom")
python3 - "$port" "$T_TMP/http" <<'EOF' &
import socket, sys, time
port, out = int(sys.argv[1]), sys.argv[2]
socks = []
for _ in range(100):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2); socks.append(s)
    except OSError:
        pass
time.sleep(1.5)
open(out + ".idle", "w").write("%d\n" % len(socks))
time.sleep(1.5)   # past the server's per-connection deadline
def get(path):
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    s.sendall(("GET %s HTTP/1.0\r\n\r\n" % path).encode())
    data = b""
    while True:
        d = s.recv(65536)
        if not d: break
        data += d
    return data.split(b"\r\n", 1)[0].decode()
open(out, "w").write("%s\n%s\n" % (get("/metrics"), get("/")))
EOF
PY=$!; T_PIDS+=("$PY")
sleep 1.2
during=$(awk '$1=="preoom_pass_seconds"{print $2}' "$T_TMP/m9.prom")
wait "$PY"
echo "# decision pass: ${before}s before, ${during}s with 100 idle clients connected ($(cat "$T_TMP/http.idle" 2>/dev/null) connected)"
check "100 idle clients: the decision pass stays under 20 ms (${during}s)" \
    awk -v d="${during:-9}" 'BEGIN {exit !(d < 0.020)}'
check "100 idle clients: afterwards GET /metrics answers 200" grep -q "^HTTP/1.0 200" <(sed -n 1p "$T_TMP/http")
check "only /metrics: GET / answers 404" grep -q "^HTTP/1.0 404" <(sed -n 2p "$T_TMP/http")
check "100 idle clients: preoomd alive" alive "$DP"
kill -TERM "$DP"; wait "$DP"

# ---- 10. a forged steering slot, under real pressure -----------------------------------------
# An innocent registered process I, and a forged slot naming it (its true start time) with
# hint 1000; its own slot's hint is forged too, written every millisecond. Trusted, hint 1000
# would put I first; the hog H must be the one acted on, and I never signalled.
if cg_root >/dev/null && cg=$(cg_create steer $((256 << 20))); then
    r=$T_REG
    cg_run() { local c=$1; shift; bg bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$c" "$@"; }
    pre=(env LD_PRELOAD="$LIB" PREOOM_REGISTRY="$r")
    log=$T_TMP/d10.log
    bg "$D" --registry "$r" --cgroup "$cg" --no-mlock 2>"$log"; DP=$BG_PID
    wait_for 5 grep -q watching "$log"
    cg_run "$cg" "${pre[@]}" "$PROG/grow" 60 20 10 30000; I=$BG_PID
    wait_for 5 grep -q "^RssAnon:.*[0-9]\{5\} kB" /proc/$I/status
    sleep 0.3
    "$PROG/forge" "$r" "$I" auto >/dev/null || fail "steer: forge a slot naming the innocent process"
    bg "$PROG/forge" "$r" "$I" inplace 12; FP=$BG_PID
    cg_run "$cg" "${pre[@]}" "$PROG/grow" 200 5 40 4000; H=$BG_PID
    wait "$H"; hs=$?
    check "steer: the hog was acted on (exit status $hs)" [ "$hs" -ne 0 ]
    check "steer: the innocent process is alive" alive "$I"
    check "steer: the innocent process was never asked or signalled" \
        bash -c '! grep -Eq "(ask|SIGTERM|SIGKILL) pid $1 " "$0"' "$log" "$I"
    check "steer: the forged hint was ignored and said once" \
        bash -c '[ "$(grep -c "names pid $1 (grow) with hint 1000 but is not its own slot .*: hint ignored" "$0")" -eq 1 ]' "$log" "$I"
    check "steer: no slot_adj term in any score" bash -c '! grep -q "slot_adj=[1-9]" "$0"' "$log"
    check "steer: the kernel killed nobody (oom_kill=$(cg_oom_kills "$cg"))" [ "$(cg_oom_kills "$cg")" -eq 0 ]
    check "steer: preoomd alive" alive "$DP"
    [ "$T_FAILED" -eq 0 ] || sed 's/^/#   /' "$log" | head -30
    kill -TERM "$DP" "$I" "$FP" 2>/dev/null; wait "$DP" "$I" "$FP" 2>/dev/null
else
    skip "steer: no memory cgroup to create pressure in"
fi

# ---- 11. a registry directory nobody else can write ---------------------------------------------
rd=$T_TMP/run-preoom
start_daemon "$T_REG-rd" "$T_TMP/d11.log" --registry-dir "$rd"
check "--registry-dir: preoomd made the directory, root's and 0755" \
    bash -c '[ "$(stat -c "%u %a" "$0")" = "0 755" ] && [ -f "$0/preoom.$1" ]' "$rd" "$T_REG-rd"
host "$T_REG-rd" rdh PREOOM_REGISTRY_DIR="$rd"
check "--registry-dir: a host given PREOOM_REGISTRY_DIR registers there" \
    bash -c 'PREOOM_REGISTRY_DIR=$0 "$1" --registry "$2" ls --json | grep -q "\"pid\": $3"' "$rd" "$PREOOM" "$T_REG-rd" "$HP"
kill -TERM "$HP" "$DP"; wait "$HP" "$DP"
mkdir -p "$T_TMP/open-dir"; chmod 0777 "$T_TMP/open-dir"
"$D" --registry-dir "$T_TMP/open-dir" --registry x --dry-run --no-mlock 2>"$T_TMP/d11b.log"; rc=$?
check "--registry-dir: a directory anyone may write into (no sticky bit) is refused, exit 1, one line" \
    bash -c '[ "$0" -eq 1 ] && [ "$(wc -l <"$1")" -eq 1 ] && grep -q "squat" "$1"' "$rc" "$T_TMP/d11b.log"

t_done

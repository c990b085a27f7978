#!/usr/bin/env bash
# tests/e2e/servers.sh — preoom on two more real servers, each run bare and preloaded on a
# socket file only (no TCP), loaded with a few thousand writes and reads, and stopped cleanly:
#   memcached   — glibc malloc: 1 MiB slab pages it fills at once, so committed ≈ touched;
#   redis-server — Debian links it with the system jemalloc, an allocator in a shared library:
#                 its malloc/free reach our hooks (live bytes follow Redis's own used_memory
#                 and never go negative); the mmap calls jemalloc makes for its own extents,
#                 inside malloc, are not counted again as the program's mappings.
# Each part checks touched against /proc (within 5% of RssAnon + VmSwap), the figures that
# are true for that allocator, the same answers and exit status as the bare run, and no log
# line of warning or error that the bare run lacks. Each part skips, with the reason, when
# its server is not installed (scripts/deps.sh check installs them).
. "$(dirname "$0")/lib.sh"

[ -f "$LIB" ] || { fail "libpreoom.so not built ($LIB)"; t_done; }
PATH=$PATH:/usr/sbin:/sbin
PREOOM_CMD=$B/preoom
# `preoom run` and `preoom ls --json` are part of this project: if they do not work, that
# is a failure, not a reason to check less.
if ! "$PREOOM_CMD" run -- true 2>/dev/null || ! "$PREOOM_CMD" ls --json >/dev/null 2>&1; then
    fail "servers: preoom run and preoom ls --json must work"; t_done
fi

# launch MODE DIR CMD...: start CMD bare or preloaded (publishing every 50 ms, exit report in
# DIR); sets SRV to the pid to wait for (preoom run passes signals on to CMD).
launch() {
    local mode=$1 dir=$2; shift 2
    if [ "$mode" = bare ]; then
        bg "$@" 2>"$dir/stderr"
    else
        bg "$PREOOM_CMD" run --interval 50 --report "$dir/rep.%p.json" -- "$@" 2>"$dir/stderr"
    fi
    SRV=$BG_PID
}

# wait_for PIDFILE SOCKET: the server's own pid once both exist (30 s at most).
wait_for() {
    local i
    for i in $(seq 300); do
        [ -s "$1" ] && [ -S "$2" ] && { T_PIDS+=("$(cat "$1")"); cat "$1"; return 0; }
        kill -0 "$SRV" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# stop_wait: the exit status of $SRV, after at most 30 s.
stop_wait() {
    local i
    for i in $(seq 300); do kill -0 "$SRV" 2>/dev/null || break; sleep 0.1; done
    wait "$SRV"
}

valid_json() { [ -n "$1" ] && python3 -m json.tool "$1" >/dev/null 2>&1; }
proc_touched() { awk '/^(RssAnon|VmSwap):/ { s += $2 } END { print s * 1024 }' "/proc/$1/status" 2>/dev/null; }
ls_get() { grep "\"pid\": $2," <<<"$1" | sed -n "s/.*\"$3\": \([0-9]*\).*/\1/p" | head -n1; }

# live NAME PID: the registry's line for PID, read between two reads of /proc and retried
# until touched is within 5% of one of them (memory moves). Sets LJ (the ls --json output),
# LT (touched) and checks the match. Also keeps the largest malloc figure seen in MAXMALLOC.
MAXMALLOC=0
live() {
    local name=$1 pid=$2 i before after m
    close() { [ -n "$LT" ] && { within "$LT" "$before" 5 0 || within "$LT" "$after" 5 0; }; }
    for i in 1 2 3 4 5 6 7 8 9 10; do
        before=$(proc_touched "$pid"); LJ=$("$PREOOM_CMD" ls --json); after=$(proc_touched "$pid")
        LT=$(ls_get "$LJ" "$pid" touched)
        close && break
        sleep 0.3
    done
    m=$(ls_get "$LJ" "$pid" malloc)
    [ -n "$m" ] && [ "$m" -gt "$MAXMALLOC" ] && MAXMALLOC=$m
    check "$name: registry touched ($LT) within 5% of RssAnon+VmSwap ($before..$after), try $i" close
    echo "# $name live: committed $(ls_get "$LJ" "$pid" committed), touched $LT, malloc $m," \
         "mmap $(ls_get "$LJ" "$pid" mmap), brk $(ls_get "$LJ" "$pid" brk), exposure" \
         "$(ls_get "$LJ" "$pid" exposure), slack $(ls_get "$LJ" "$pid" slack)," \
         "$(awk '/^VmSize:/ { print "virtual " $2 " kB" }' "/proc/$pid/status")"
}

# ---------------------------------------------------------------------------------------
# memcached: its text protocol on a socket file, driven by python3.
mc_client() {
    python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile('rwb')
val = lambda i: b'v%d-' % i * (i % 200 + 50)
for i in range(3000):
    v = val(i)
    f.write(b'set key:%d 0 0 %d\r\n%s\r\n' % (i, len(v), v)); f.flush()
    if f.readline() != b'STORED\r\n': sys.exit('set %d failed' % i)
good = 0
for i in range(3000):
    f.write(b'get key:%d\r\n' % i); f.flush()
    head = f.readline().split()
    if len(head) != 4: continue
    v = f.read(int(head[3]) + 2)[:-2]
    good += f.readline() == b'END\r\n' and v == val(i)
f.write(b'stats\r\n'); f.flush()
stats = {}
while True:
    l = f.readline().split()
    if not l or l[0] == b'END': break
    stats[l[1].decode()] = l[2].decode()
print(good, stats['bytes'], stats['curr_items'])
EOF
}

mc_run() {
    local mode=$1 dir=$T_TMP/mc-$1 pid out rc
    mkdir -p "$dir"
    launch "$mode" "$dir" memcached -s "$dir/sock" -a 0700 -m 64 -t 4 -u root -P "$dir/pid"
    if ! pid=$(wait_for "$dir/pid" "$dir/sock"); then
        fail "memcached ($mode): did not come up"; cat "$dir/stderr"; return
    fi
    out=$(mc_client "$dir/sock"); rc=$?
    read -r good bytes items <<<"$out"
    check "memcached ($mode): 3000 sets, 3000 gets, all values back ($good)" [ $rc -eq 0 -a "${good:-0}" -eq 3000 ]
    eval "MC_${mode}_OUT=\$out"
    if [ "$mode" = preoom ]; then
        live memcached "$pid"
        local c m mm
        c=$(ls_get "$LJ" "$pid" committed); m=$(ls_get "$LJ" "$pid" malloc); mm=$(ls_get "$LJ" "$pid" mmap)
        # Slab pages are malloc'ed 1 MiB at a time and carved into items at once, which
        # writes every page: nearly all it commits it touches.
        check "memcached: committed ($c) within 10% of touched ($LT): glibc malloc, slabs written at once" within "$c" "$LT" 10 0
        check "memcached: its item bytes ($bytes) are inside its live malloc bytes ($m)" [ "$m" -ge "$bytes" ]
        check "memcached: no mmap of its own (mmap $mm): glibc's arenas are internal and uncounted" [ "$mm" -eq 0 ]
    fi
    kill -TERM "$SRV"; stop_wait; rc=$?
    check "memcached ($mode): exits with status 0 on SIGTERM ($rc)" [ $rc -eq 0 ]
}

if command -v memcached >/dev/null; then
    mc_run bare
    mc_run preoom
    check "memcached: same answers bare and preloaded (good, bytes, items: $MC_preoom_OUT)" [ "$MC_bare_OUT" = "$MC_preoom_OUT" ]
    extra=$(comm -13 <(sort -u "$T_TMP/mc-bare/stderr") <(sort -u "$T_TMP/mc-preoom/stderr"))
    check "memcached: nothing on stderr that the bare run lacks${extra:+ ($extra)}" [ -z "$extra" ]
    rep=$(ls "$T_TMP"/mc-preoom/rep.*.json 2>/dev/null | head -n1)
    check "memcached: exit report written and valid JSON" valid_json "$rep"
else
    skip "memcached: not installed (scripts/deps.sh check installs memcached)"
fi

# ---------------------------------------------------------------------------------------
# redis-server: jemalloc in a shared library; redis-cli on a socket file.
rcli() { redis-cli -s "$RSOCK" "$@"; }

redis_run() {
    local mode=$1 dir=$T_TMP/redis-$1 pid rc n m0 m1 m2 used
    MAXMALLOC=0
    mkdir -p "$dir"
    RSOCK=$dir/sock
    launch "$mode" "$dir" redis-server --port 0 --unixsocket "$dir/sock" --unixsocketperm 700 \
        --save '' --appendonly no --daemonize no --pidfile "$dir/pid" --logfile "$dir/log" --dir "$dir"
    if ! pid=$(wait_for "$dir/pid" "$dir/sock"); then
        fail "redis ($mode): did not come up"; cat "$dir/stderr" "$dir/log"; return
    fi
    [ "$mode" = preoom ] && { live "redis (idle)" "$pid"; m0=$(ls_get "$LJ" "$pid" malloc); }
    python3 -c "
for i in range(5000): print('SET key:%d %s' % (i, 'x' * (100 + i % 2000)))" | rcli >"$dir/set.out"
    python3 -c "
for i in range(5000): print('GET key:%d' % i)" | rcli >"$dir/get.out"
    n=$(rcli DBSIZE)
    check "redis ($mode): 5000 SETs stored ($n keys)" [ "$n" = 5000 -a "$(grep -c '^OK$' "$dir/set.out")" -eq 5000 ]
    python3 -c "
for i in range(5000): print('x' * (100 + i % 2000))" | cmp -s - "$dir/get.out"
    check "redis ($mode): 5000 GETs return what was set" [ $? -eq 0 ]
    if [ "$mode" = preoom ]; then
        live "redis (loaded)" "$pid"
        m1=$(ls_get "$LJ" "$pid" malloc)
        used=$(rcli INFO memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p')
        echo "# redis: used_memory (Redis's own count of its allocations) $used, preoom's live malloc bytes $m1"
        # Redis counts its allocations by jemalloc's usable size, as we do.
        check "redis: live malloc bytes ($m1) within 10% of Redis's used_memory ($used)" within "$m1" "$used" 10 0
        local mm c1; mm=$(ls_get "$LJ" "$pid" mmap); c1=$(ls_get "$LJ" "$pid" committed)
        check "redis: jemalloc's own extent mappings are not counted twice (mmap $mm)" [ "$mm" -lt $((m1 / 10)) ]
        check "redis: committed ($c1) within 15% of Redis's used_memory ($used)" within "$c1" "$used" 15 0
        rcli FLUSHALL >/dev/null
        sleep 0.3
        live "redis (flushed)" "$pid"
        m2=$(ls_get "$LJ" "$pid" malloc)
        check "redis: FLUSHALL gives the malloc bytes back (idle $m0, loaded $m1, flushed $m2)" [ "$m2" -lt $((m0 + (m1 - m0) / 5)) ]
        # A free of memory we never counted must not drive the total below zero (it would
        # wrap to an absurd unsigned number).
        check "redis: live malloc bytes never negative (largest seen $MAXMALLOC)" [ "$MAXMALLOC" -lt $((1 << 40)) ]
    fi
    rcli SHUTDOWN NOSAVE >/dev/null 2>&1
    stop_wait; rc=$?
    check "redis ($mode): exits with status 0 on SHUTDOWN ($rc)" [ $rc -eq 0 ]
}

if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
    echo "# $(redis-server --version)"
    redis_run bare
    redis_run preoom
    # Warnings (#) and errors: without pid, role and time stamp; the preloaded run may add none.
    warnings() { sed -n 's/^[0-9]*:[A-Z] [0-9]* [A-Za-z]* [0-9]* [0-9:.]* # //p' "$T_TMP/redis-$1/log" | sed -e "s|$T_TMP/redis-$1|DIR|g" -e "s/pid=[0-9]*/pid=N/g" | sort -u; }
    extra=$(comm -13 <(warnings bare) <(warnings preoom))
    check "redis: no warning in the preloaded log that the bare run lacks (bare has $(warnings bare | wc -l))${extra:+ ($extra)}" [ -z "$extra" ]
    rep=$(ls "$T_TMP"/redis-preoom/rep.*.json 2>/dev/null | head -n1)
    check "redis: exit report written and valid JSON" valid_json "$rep"
    if [ -n "$rep" ]; then
        read -r nm nf nu nmm < <(python3 -c "import json,sys; c=json.load(open(sys.argv[1]))['calls']; \
print(c['malloc'], c['free'], c['malloc_usable_size'], c['mmap'])" "$rep")
        echo "# redis calls: malloc $nm, free $nf, malloc_usable_size $nu, mmap $nmm"
        check "redis: malloc, free and malloc_usable_size reach the hooks under jemalloc" [ "$nm" -gt 5000 -a "$nf" -gt 5000 -a "$nu" -gt 0 ]
    fi
else
    skip "redis: redis-server or redis-cli not installed (scripts/deps.sh check installs redis-server)"
fi
t_done

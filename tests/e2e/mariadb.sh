#!/usr/bin/env bash
# tests/e2e/mariadb.sh — preoom on a real MySQL-like server: Debian's MariaDB, started in a
# temporary datadir on a socket file only, once bare and once preloaded, each driven by
# mariadb-slap (8 clients, 4000 auto-generated queries) and shut down with mariadb-admin; a
# third time with every allocation's call stack recorded and checked (PREOOM_STACK_CACHE=verify).
# Checks that the preloaded server's registry figures match /proc (touched within 5% of
# RssAnon + VmSwap), that committed and touched really differ for it (InnoDB maps its buffer
# pool and log buffer long before it touches them), that every run exits 0, and that the
# preloaded run's log has no error line the bare run lacks. Installs nothing: scripts/deps.sh
# check does; without mariadbd it skips with the reason. Never listens on TCP.
. "$(dirname "$0")/lib.sh"

[ -f "$LIB" ] || { fail "libpreoom.so not built ($LIB)"; t_done; }
PATH=$PATH:/usr/sbin:/sbin
for b in mariadbd mariadb-install-db mariadb-slap mariadb-admin; do
    if ! command -v "$b" >/dev/null; then
        skip "mariadb: $b not installed (scripts/deps.sh check installs mariadb-server and mariadb-client)"
        t_done
    fi
done
PREOOM_CMD=$B/preoom
# `preoom run` and `preoom ls --json` are part of this project: if they do not work, that
# is a failure, not a reason to check less.
if ! "$PREOOM_CMD" run -- true 2>/dev/null || ! "$PREOOM_CMD" ls --json >/dev/null 2>&1; then
    fail "mariadb: preoom run and preoom ls --json must work"; t_done
fi
echo "# mariadb: $(mariadbd --version)"

# A datadir made once and copied for each run, so both runs start from the same bytes.
tmpl=$T_TMP/template
. "$TOP/scripts/mariadb.sh"
if ! mariadb_template "$tmpl" "$T_TMP/install.log"; then
    fail "mariadb-install-db failed"; tail -n 20 "$T_TMP/install.log"; t_done
fi

valid_json() { [ -n "$1" ] && python3 -m json.tool "$1" >/dev/null 2>&1; }
proc_touched() { awk '/^(RssAnon|VmSwap):/ { s += $2 } END { print s * 1024 }' "/proc/$1/status" 2>/dev/null; }
# ls_get JSON PID KEY: a number from the line of `preoom ls --json` that names PID.
ls_get() { grep "\"pid\": $2," <<<"$1" | sed -n "s/.*\"$3\": \([0-9]*\).*/\1/p" | head -n1; }

# The figures checked live, while the preloaded server runs; read from the registry and /proc
# close together, /proc both before and after, and retried because memory moves.
check_live() {
    local pid=$1 i j before after t c
    for i in 1 2 3 4 5 6 7 8 9 10; do
        before=$(proc_touched "$pid"); j=$("$PREOOM_CMD" ls --json); after=$(proc_touched "$pid")
        t=$(ls_get "$j" "$pid" touched)
        [ -n "$t" ] && { within "$t" "$before" 5 0 || within "$t" "$after" 5 0; } && break
        sleep 0.3
    done
    c=$(ls_get "$j" "$pid" committed)
    close_enough() { [ -n "$t" ] && { within "$t" "$before" 5 0 || within "$t" "$after" 5 0; }; }
    check "mariadb: registry touched ($t) within 5% of RssAnon+VmSwap ($before..$after), try $i" close_enough
    echo "# mariadb live: committed $c, touched $t, malloc $(ls_get "$j" "$pid" malloc)," \
         "mmap $(ls_get "$j" "$pid" mmap), brk $(ls_get "$j" "$pid" brk), exposure" \
         "$(ls_get "$j" "$pid" exposure), slack $(ls_get "$j" "$pid" slack)," \
         "$(awk '/^VmSize:/ { print "virtual " $2 " kB" }' "/proc/$pid/status")"
    # InnoDB maps its buffer pool (64 MiB here) and more at start and touches what it uses:
    # committed must stand clearly above touched (twice, and 64 MiB more).
    clear_margin() { [ -n "$c" ] && [ "$c" -gt $((2 * t)) ] && [ "$c" -gt $((t + (64 << 20))) ]; }
    check "mariadb: committed ($c) clearly above touched ($t)" clear_margin
}

# run_server MODE (bare|preoom): one whole life of a server. Leaves its log in $T_TMP/MODE.
run_server() {
    local mode=$1 dir=$T_TMP/$1 srv rc i mpid
    mkdir -p "$dir" && cp -a "$tmpl" "$dir/data"
    mariadb_args "$dir" 64M 8M 32
    local args=("${MARIADB_ARGS[@]}")
    if [ "$mode" = bare ]; then
        bg "${args[@]}" 2>"$dir/stderr"
    elif [ "$mode" = stacks ]; then
        # Every allocation's call stack, each stack-cache hit checked against the unwinder.
        PREOOM_STACK_CACHE=verify bg "$PREOOM_CMD" run --stacks all --report "$dir/rep.%p.json" \
            -- "${args[@]}" 2>"$dir/stderr"
    else
        bg "$PREOOM_CMD" run --interval 50 --report "$dir/rep.%p.json" -- "${args[@]}" 2>"$dir/stderr"
    fi
    srv=$BG_PID
    for i in $(seq 300); do
        mariadb-admin --no-defaults --socket="$dir/sock" --user=root ping >/dev/null 2>&1 && break
        kill -0 "$srv" 2>/dev/null || break
        sleep 0.1
    done
    if ! mariadb-admin --no-defaults --socket="$dir/sock" --user=root ping >/dev/null 2>&1; then
        fail "mariadb ($mode): server did not come up"; tail -n 20 "$dir/err.log"; return
    fi
    mpid=$(cat "$dir/pid"); T_PIDS+=("$mpid")
    ok "mariadb ($mode): server up (pid $mpid)"

    mariadb-slap --no-defaults --socket="$dir/sock" --user=root --concurrency=8 \
        --number-of-queries=4000 --iterations=1 --auto-generate-sql \
        --auto-generate-sql-load-type=mixed --auto-generate-sql-add-autoincrement \
        --engine=innodb >"$dir/slap.out" 2>&1
    rc=$?
    check "mariadb ($mode): mariadb-slap, 8 clients, 4000 queries ($(awk -F': ' '/Average number of seconds/ { print $2 }' "$dir/slap.out"))" [ $rc -eq 0 ]
    [ $rc -eq 0 ] || tail -n 5 "$dir/slap.out"

    [ "$mode" = preoom ] && check_live "$mpid"
    echo "# mariadb ($mode): peak RSS $(awk '/^VmHWM:/ { print $2 " kB" }' "/proc/$mpid/status")"

    mariadb-admin --no-defaults --socket="$dir/sock" --user=root shutdown >"$dir/shutdown.out" 2>&1
    check "mariadb ($mode): mariadb-admin shutdown accepted" [ $? -eq 0 ]
    for i in $(seq 300); do kill -0 "$srv" 2>/dev/null || break; sleep 0.1; done
    wait "$srv"; rc=$?
    check "mariadb ($mode): server exited with status 0 ($rc)" [ $rc -eq 0 ]
    check "mariadb ($mode): log says 'Shutdown complete'" grep -q 'Shutdown complete' "$dir/err.log"
    check "mariadb ($mode): no crash in the log" \
        bash -c '! grep -Eq "got signal|Assertion|mysqld got|mariadbd got|Segmentation" "$1"' _ "$dir/err.log"
    if [ "$mode" = stacks ]; then
        local got
        got=$(python3 -c '
import glob, json, sys
d = json.load(open(glob.glob(sys.argv[1] + "/rep.*.json")[0]))["stacks"]
c = d["stack_cache"]
print(c["hits"], c["mismatches"], len(d["sites"]))' "$dir" 2>&1)
        local hits mism sites
        read -r hits mism sites <<<"$got"
        check "mariadb (stacks): every allocation's site recorded ($sites sites); no stack-cache hit differed from the unwinder ($mism of $hits)" \
            test "${mism:-x}" = 0 -a "${hits:-0}" -gt 1000 -a "${sites:-0}" -gt 100
    fi
}

run_server bare
run_server preoom
run_server stacks

# The exit report of the preloaded server.
rep=$(ls "$T_TMP"/preoom/rep.*.json 2>/dev/null | head -n1)
check "mariadb: the server wrote its exit report" [ -n "$rep" ]
if [ -n "$rep" ]; then
    check "mariadb: exit report is valid JSON" valid_json "$rep"
    pc=$(json_get "$rep" peak_committed); pt=$(json_get "$rep" peak_touched)
    echo "# mariadb exit report: peak_committed $pc, peak_touched $pt"
    check "mariadb: peak committed ($pc) above peak touched ($pt)" [ "$pc" -gt "$pt" ]
    read -r nm nn nmm < <(python3 -c "import json,sys; c=json.load(open(sys.argv[1]))['calls']; \
print(c['malloc'], c['operator_new'], c['mmap'])" "$rep")
    echo "# mariadb calls: malloc $nm, operator new $nn, mmap $nmm"
    all_counted() { [ "$nm" -gt 1000 ] && [ "$nn" -gt 1000 ] && [ "$nmm" -gt 0 ]; }
    check "mariadb: malloc, C++ new and mmap calls all counted" all_counted
fi

# Error and warning lines, without their time stamps, thread ids and directories: the
# preloaded run may not have one the bare run lacks.
errors() {
    sed -n 's/^[0-9-]* *[0-9:]* [0-9]* \(\[ERROR\]\|\[Warning\]\) /\1 /p' "$T_TMP/$1/err.log" |
        sed "s|$T_TMP/$1|DIR|g" | sort -u
}
extra=$(comm -13 <(errors bare) <(errors preoom))
check "mariadb: no error or warning line in the preloaded log that the bare run lacks (bare has $(errors bare | wc -l))${extra:+ ($extra)}" [ -z "$extra" ]
t_done

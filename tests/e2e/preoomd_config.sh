#!/usr/bin/env bash
# tests/e2e/preoomd_config.sh — preoomd's configuration file (#16): --check-config on good and
# bad files (one line naming file:line, exit 2), the precedence (defaults, [preoomd], the
# command line, then [domain] sections), drop-ins, and a running daemon giving a domain the
# settings of its section, published so `preoom explain` still reads them.
. "$(dirname "$0")/lib.sh"
D=$B/preoomd
C=$T_TMP/preoomd.conf

cat >"$C" <<'CONF'
# an operator's file
[preoomd]
ask = 20%
log-format = json
[domain /system.slice/mariadb.service]
term-grace = 300000
avoid = ^mariadbd$
[domain "/workers.slice/*"]
ask = 30
term = 20
kill = 10
CONF
out=$("$D" --config "$C" --check-config 2>&1); rc=$?
check "--check-config on a good file exits 0" [ "$rc" -eq 0 ]
check "--check-config says what each section gives" \
    grep -q 'domain /system.slice/mariadb.service.*term-grace 300000 ms, avoid ^mariadbd\$' <<<"$out"
check "--check-config: sections take the file's [preoomd] defaults" \
    grep -q 'domain /system.slice/mariadb.service.*ask 20.00%' <<<"$out"
check "--check-config counts the sections" grep -q 'settings good (1 file, 2 \[domain\] sections)' <<<"$out"
out=$("$D" --config "$C" --ask 25 --check-config 2>&1)
check "the command line wins over [preoomd]" grep -q 'mariadb.service.*ask 25.00%' <<<"$out"
check "a [domain] section wins over the command line" grep -q 'workers.slice/\*.*ask 30.00%' <<<"$out"

mkdir "$C.d"
printf '[domain /batch.slice]\nask = 35\n' >"$C.d/50-batch.conf"
printf 'garbage that is never read\n' >"$C.d/README"
out=$("$D" --config "$C" --check-config 2>&1)
check "drop-ins in FILE.d/*.conf are read, other files not" grep -q 'settings good (2 files, 3 \[domain\] sections)' <<<"$out"

# Bad files: one line, naming the file and line, exit 2, nothing created.
bad() { # NAME CONTENT EXPECTED
    printf '%b' "$2" >"$T_TMP/bad.conf"
    local o r; o=$("$D" --registry "$T_REG" --config "$T_TMP/bad.conf" --no-mlock 2>&1); r=$?
    check "bad config ($1): exit 2, one line, names it" \
        bash -c '[ "$1" -eq 2 ] && [ "$(printf "%s\n" "$2" | wc -l)" -eq 1 ] && grep -qF -- "$3" <<<"$2"' _ "$r" "$o" "$4"
    check "bad config ($1): no registry left behind" [ ! -e "/dev/shm/preoom.$T_REG" ]
}
bad "unknown setting" 'ask = 10\nasks = 10\n' x "bad.conf:2: unknown setting 'asks'"
bad "bad value in a section" '[domain /a]\nterm = half\n' x "bad.conf:2: --term 'half' is not a threshold"
bad "daemon-wide key in a section" '[domain /a]\nslots = 10\n' x "bad.conf:2: 'slots' is a daemon-wide setting"
bad "thresholds out of order in a section" '[domain /a]\nask = 5\nterm = 10\n' x "bad.conf:1: [domain /a]:"
bad "no section name" '[domain ]\n' x "bad.conf:1:"
out=$("$D" --config "$T_TMP/none.conf" --check-config 2>&1); rc=$?
check "--config naming a missing file: exit 2 and says so" \
    bash -c '[ "$1" -eq 2 ] && grep -q "none.conf: No such file" <<<"$2"' _ "$rc" "$out"

# A running daemon: a domain gets its section's settings.
if ! is_root || ! cg_root >/dev/null; then
    skip "a domain's own settings in a running preoomd: need root and a memory cgroup"
    t_done
fi
CG=$(cg_create cfg $((256 << 20)))
rel=${CG#*/sys/fs/cgroup}; rel=${rel#/memory}; rel=${rel#/unified}
printf '[domain %s]\nask = 40%%\nterm = 30%%\nkill = 20%%\n' "$rel" >"$T_TMP/run.conf"
LOG=$T_TMP/run.log
bg "$D" --registry "$T_REG" --config "$T_TMP/run.conf" --no-mlock 2>"$LOG"; DP=$BG_PID
# shape_in CGROUP NAME OPS...: the shape program, preloaded, named NAME, in CGROUP (BG_PID).
shape_in() {
    ln -sf "$PROG/shape" "$T_TMP/$2"
    bg bash -c 'echo $$ >"$0/cgroup.procs" && shift && exec env LD_PRELOAD="$1" PREOOM_REGISTRY="$2" "$3" "${@:4}"' \
        "$1" x "$LIB" "$T_REG" "$T_TMP/$2" "${@:3}"
}
shape_in "$CG" held grow:20:0 hold:4000; HP=$BG_PID
for _ in $(seq 100); do grep -q "watching memory cgroup $rel" "$LOG" && break; sleep 0.05; done
check "the cgroup's domain was found and took its section (40%/30%/20%)" \
    grep -q "watching memory cgroup $rel (limit 256 MiB).*1 config section.*<= 40.00%.*<= 30.00%.*<= 20.00%" "$LOG"
check "the host kept the defaults" grep -q "watching the host .*<= 15.00%" "$LOG"
check "the settings are published with the section" \
    grep -q "^\[domain $rel\]" "/dev/shm/preoom.$T_REG.preoomd"
"$B/preoom" explain --registry "$T_REG" >"$T_TMP/explain.out" 2>&1; rc=$?
check "preoom explain reads the published settings with sections in them (exit $rc)" [ "$rc" -eq 0 ]
"$B/preoom" explain --registry "$T_REG" --domain "$rel" >"$T_TMP/explain.dom" 2>&1; rc=$?
check "explain --domain decides with the domain's own section (ask 102.4 MiB = 40% of 256; exit $rc)" \
    bash -c '[ "$1" -eq 0 ] && grep -q "with the \[domain\] sections that match" "$2" && grep -q "lines: ask 102.4 MiB, SIGTERM 76.8 MiB.*SIGKILL 51.2 MiB" "$2"' _ "$rc" "$T_TMP/explain.dom"
"$B/preoom" explain --registry "$T_REG" --domain host >"$T_TMP/explain.host" 2>&1
check "explain --domain host keeps the defaults" bash -c '! grep -q "sections that match" "$1"' _ "$T_TMP/explain.host"
wait "$HP" 2>/dev/null
kill -TERM "$DP"; wait "$DP" 2>/dev/null
# --cgroup names a domain from the start, before any process is in it (with --scope cgroup
# its unregistered processes are candidates, and none of them registers to make it known).
EMPTY=$(cg_create empty $((64 << 20)))
"$D" --registry "$T_REG" --cgroup "$EMPTY" --no-mlock 2>"$T_TMP/empty.log" & EP=$!; T_PIDS+=("$EP")
for _ in $(seq 50); do grep -q watching "$T_TMP/empty.log" && break; sleep 0.05; done
check "--cgroup names a domain before any process is in it, and the host is not watched" \
    bash -c 'grep -q "watching memory cgroup .*preoom-test-empty.*(limit 64 MiB).*scope cgroup" "$1" && ! grep -q "watching the host" "$1"' _ "$T_TMP/empty.log"
kill -TERM "$EP"; wait "$EP" 2>/dev/null
cg_remove "$EMPTY"
cg_remove "$CG"

# A domain's cgroup removed under preoomd: said in one line, not watched any more, and the
# daemon does not spin on a file that is gone.
GONE=$(cg_create gone $((64 << 20)))
"$D" --registry "$T_REG" --no-mlock 2>"$T_TMP/gone.log" & GP=$!; T_PIDS+=("$GP")
shape_in "$GONE" gonehost grow:5:0 hold:30000; GH=$BG_PID
for _ in $(seq 100); do grep -q "watching memory cgroup .*preoom-test-gone" "$T_TMP/gone.log" && break; sleep 0.05; done
check "a registered process's cgroup becomes a domain of a running preoomd" \
    grep -q "watching memory cgroup .*preoom-test-gone.*(limit 64 MiB)" "$T_TMP/gone.log"
kill -KILL "$GH"; wait "$GH" 2>/dev/null
cg_remove "$GONE"
for _ in $(seq 100); do grep -q "preoom-test-gone.* is gone" "$T_TMP/gone.log" && break; sleep 0.05; done
check "its cgroup removed: said in one line" \
    bash -c '[ "$(grep -c "preoom-test-gone.* is gone" "$1")" -eq 1 ]' _ "$T_TMP/gone.log"
t0=$(awk '{print $14 + $15}' /proc/$GP/stat); sleep 2; t1=$(awk '{print $14 + $15}' /proc/$GP/stat)
check "and preoomd does not spin afterwards ($((t1 - t0)) ticks of CPU in 2 s)" [ $((t1 - t0)) -lt 20 ]
kill -TERM "$GP"; wait "$GP" 2>/dev/null
t_done

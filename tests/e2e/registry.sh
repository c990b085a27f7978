#!/usr/bin/env bash
# tests/e2e/registry.sh — the registry end to end, with real preloaded processes and the real
# `preoom ls`, `top` and `run`: 64 processes at once (no slot lost or shared), 32 SIGKILLed
# and reclaimed by the next reader, figures against PREOOM_REPORT and /proc, a full registry,
# hostile files (symlink, random bytes, truncated, truncated while being read), another user,
# and `preoom run`'s exit status and warnings.
#
# Every process is started with bg (killed by pid at exit); every /dev/shm file it makes is
# named after this test's registry and removed at exit. Small amounts only: never memory
# pressure.
. "$(dirname "$0")/lib.sh"

PREOOM=$B/preoom
HOLD=$PROG/hold
# Registries of this test besides $T_REG, all removed at exit.
one=$T_REG-one sym=$T_REG-sym rnd=$T_REG-rand trn=$T_REG-trunc bus=$T_REG-bus usr=$T_REG-user
SHM_EXTRA=()
for r in "$one" "$sym" "$rnd" "$trn" "$bus" "$usr" "$T_REG-x"; do SHM_EXTRA+=("/dev/shm/preoom.$r"); done
trap 'rm -f "${SHM_EXTRA[@]}"; t_cleanup' EXIT

for f in "$PREOOM" "$HOLD" "$LIB"; do
    if [ ! -e "$f" ]; then skip "registry e2e: $f not built (make all $BUILD/tests/prog/hold)"; exit 0; fi
done
if ! command -v jq >/dev/null; then skip "registry e2e: jq is not installed"; exit 0; fi
if "$PREOOM" ls --help 2>&1 | grep -q "not available"; then
    fail "preoom ls is linked into $PREOOM"; t_done
fi

export PREOOM_INTERVAL_MS=100
# Foreground only: in the background a function's pid would be a subshell's, not the
# program's; there use `bg env LD_PRELOAD=$LIB ...` (env execs the program: same pid).
preloaded() { LD_PRELOAD=$LIB "$@"; }
# wait_files N FILE...: until all exist (10 s at most).
wait_files() {
    local i f missing
    for i in $(seq 200); do
        missing=0
        for f in "$@"; do [ -e "$f" ] || { missing=1; break; }; done
        [ "$missing" -eq 0 ] && return 0
        sleep 0.05
    done
    return 1
}
# ls_json [REGISTRY]: `preoom ls --json` into $T_TMP/ls.json, its stderr into ls.err.
ls_json() { "$PREOOM" ${1:+--registry "$1"} ls --json >"$T_TMP/ls.json" 2>"$T_TMP/ls.err"; }
jqn() { jq -r "$1" "$T_TMP/ls.json"; }
# one_line FILE: exactly one line, starting "preoom: ".
one_line() { [ "$(wc -l <"$1")" -eq 1 ] && grep -q '^preoom: ' "$1"; }

# ---- 64 at once, 32 killed -------------------------------------------------------------------
export PREOOM_REGISTRY_SLOTS=64
pids=()
for i in $(seq 64); do
    bg env LD_PRELOAD="$LIB" "$HOLD" -m 1 -t 1 -s 60 -r "$T_TMP/ready.$i" 2>"$T_TMP/hold.$i.err"
    pids+=("$BG_PID")
done
check "64 preloaded processes start" wait_files $(for i in $(seq 64); do echo "$T_TMP/ready.$i"; done)
sleep 0.3   # three intervals: every agent has published
ls_json
printf '%s\n' "${pids[@]}" | sort -n >"$T_TMP/want"
jqn '.processes[].pid' | sort -n >"$T_TMP/got"
check "64 live: ls lists exactly our 64 pids" cmp -s "$T_TMP/want" "$T_TMP/got"
check "64 live: 64 distinct slots, none shared" test "$(jqn '[.processes[].slot] | unique | length')" -eq 64
check "64 live: every slot's pid is alive" bash -c 'for p in $(cat "$1"); do kill -0 "$p" || exit 1; done' _ "$T_TMP/got"
check "64 live: every slot published (committed >= 1 MiB)" \
    test "$(jqn '[.processes[] | select(.committed >= 1048576)] | length')" -eq 64
check "64 live: registry full, 64/64 in use" test "$(jqn .slots_in_use)" -eq 64

killed=("${pids[@]:0:32}")
kept=("${pids[@]:32}")
# Waited for: a zombie still has its /proc entry. (Braces: no "Killed" job notices.)
{ kill -KILL "${killed[@]}"; for p in "${killed[@]}"; do wait "$p"; done; } 2>/dev/null
sleep 0.1   # one interval
ls_json
check "32 SIGKILLed: the next reader reaps their 32 slots" test "$(jqn .reaped)" -eq 32
check "32 SIGKILLed: 32 slots in use after the reap" test "$(jqn .slots_in_use)" -eq 32
printf '%s\n' "${kept[@]}" | sort -n >"$T_TMP/want"
jqn '.processes[].pid' | sort -n >"$T_TMP/got"
check "32 SIGKILLed: ls lists exactly the 32 survivors" cmp -s "$T_TMP/want" "$T_TMP/got"
# The freed slots are claimable again: 32 newcomers fit without a "full" warning.
more=()
for i in $(seq 65 96); do
    bg env LD_PRELOAD="$LIB" "$HOLD" -m 1 -s 60 -r "$T_TMP/ready.$i" 2>"$T_TMP/hold.$i.err"
    more+=("$BG_PID")
done
check "32 newcomers start" wait_files $(for i in $(seq 65 96); do echo "$T_TMP/ready.$i"; done)
ls_json
check "32 newcomers: 64 listed again, 64 distinct slots" \
    test "$(jqn '[.processes[].slot] | unique | length')" -eq 64
check "no process warned (no full registry, no error)" \
    bash -c '! cat "$@" | grep -q .' _ $(for i in $(seq 33 96); do echo "$T_TMP/hold.$i.err"; done)
# All leave at once: each gives its slot back itself.
kill -TERM "${kept[@]}" "${more[@]}"
for p in "${kept[@]}" "${more[@]}"; do wait "$p" 2>/dev/null; done
ls_json
check "all left: no process listed, no slot in use, nothing to reap" \
    test "$(jqn '.totals.processes + .slots_in_use + .reaped')" -eq 0
unset PREOOM_REGISTRY_SLOTS

# ---- figures against PREOOM_REPORT and /proc ----------------------------------------------------
rm -f "$T_TMP/ready.fig"
bg env PREOOM_REPORT="$T_TMP/report.json" LD_PRELOAD="$LIB" "$HOLD" -m 48 -t 24 -a 16 -s 30 -r "$T_TMP/ready.fig"
fig=$BG_PID
wait_files "$T_TMP/ready.fig"
sleep 0.35
ls_json
proc_touched=$(awk '/^RssAnon:/{a=$2} /^VmSwap:/{s=$2} END{print (a+s)*1024}' "/proc/$fig/status")
kill -TERM "$fig"; wait "$fig"
ls_committed=$(jqn ".processes[] | select(.pid == $fig) | .committed")
ls_touched=$(jqn ".processes[] | select(.pid == $fig) | .touched")
rep_committed=$(json_get "$T_TMP/report.json" committed)
echo "# figures: ls committed $ls_committed, report committed $rep_committed; ls touched $ls_touched, /proc $proc_touched"
check "ls committed within 1% of the PREOOM_REPORT total" within "${ls_committed:-0}" "${rep_committed:-1}" 1 0
check "ls committed covers what hold asked for (64 MiB)" test "${ls_committed:-0}" -ge $((64 << 20))
check "ls touched within 5% of /proc RssAnon+VmSwap" within "${ls_touched:-0}" "$proc_touched" 5 0
check "ls touched covers what hold wrote (40 MiB)" test "${ls_touched:-0}" -ge $((40 << 20))

# ---- a registry of one slot ----------------------------------------------------------------------
bg env PREOOM_REGISTRY="$one" PREOOM_REGISTRY_SLOTS=1 LD_PRELOAD="$LIB" "$HOLD" -s 30 -r "$T_TMP/ready.one"
first=$BG_PID
wait_files "$T_TMP/ready.one"
PREOOM_REGISTRY=$one preloaded "$HOLD" -m 1 -s 0 2>"$T_TMP/second.err"; rc=$?
check "1 slot: the second process runs and exits 0" test "$rc" -eq 0
check "1 slot: a full registry is not every worker's stderr (nothing said)" \
    test ! -s "$T_TMP/second.err"
PREOOM_REGISTRY=$one PREOOM_VERBOSE=1 preloaded "$HOLD" -m 1 -s 0 2>"$T_TMP/second.err"
check "1 slot: verbose, it says the registry is full, in one line" \
    bash -c '[ "$(grep -c "full" "$1")" -eq 1 ]' _ "$T_TMP/second.err"
ls_json "$one"
check "1 slot: ls lists the first process only" test "$(jqn '.processes[].pid')" = "$first"
kill -TERM "$first"; wait "$first"

# ---- hostile files -----------------------------------------------------------------------------
echo precious >"$T_TMP/victim"
ln -s "$T_TMP/victim" "/dev/shm/preoom.$sym"
PREOOM_REGISTRY=$sym preloaded "$HOLD" -m 1 -s 0 2>"$T_TMP/sym.err"; rc=$?
check "symlink: the host runs and exits 0" test "$rc" -eq 0
check "symlink: refused, in one line" bash -c 'grep -q "symbolic link" "$1" && [ "$(wc -l <"$1")" -eq 1 ]' _ "$T_TMP/sym.err"
check "symlink: its target untouched, the link still a link" \
    bash -c '[ "$(cat "$1")" = precious ] && [ -L "$2" ]' _ "$T_TMP/victim" "/dev/shm/preoom.$sym"
ls_json "$sym"; rc=$?
check "symlink: preoom ls exits 1 with one line" bash -c '[ "$1" -eq 1 ] && [ ! -s "$2" ]' _ "$rc" "$T_TMP/ls.json"
check "symlink: ls's line" one_line "$T_TMP/ls.err"

head -c 600000 /dev/urandom >"/dev/shm/preoom.$rnd"; chmod 600 "/dev/shm/preoom.$rnd"
ls_json "$rnd"; rc=$?
check "random bytes: preoom ls exits 1, one line, no output" \
    bash -c '[ "$1" -eq 1 ] && [ ! -s "$2" ]' _ "$rc" "$T_TMP/ls.json"
check "random bytes: ls's line" one_line "$T_TMP/ls.err"
"$PREOOM" --registry "$rnd" top -n 1 >"$T_TMP/top.out" 2>"$T_TMP/top.err"; rc=$?
check "random bytes: preoom top exits 1, no output" bash -c '[ "$1" -eq 1 ] && [ ! -s "$2" ]' _ "$rc" "$T_TMP/top.out"
check "random bytes: top's line" one_line "$T_TMP/top.err"
PREOOM_REGISTRY=$rnd preloaded "$HOLD" -m 1 -s 0 2>"$T_TMP/rnd.err"; rc=$?
check "random bytes: a preloaded program runs normally" test "$rc" -eq 0

PREOOM_REGISTRY=$trn preloaded "$HOLD" -s 0   # creates a good registry
truncate -s 1000 "/dev/shm/preoom.$trn"
ls_json "$trn"; rc=$?
check "truncated: preoom ls exits 1, one line saying so" \
    bash -c '[ "$1" -eq 1 ] && grep -q truncated "$2"' _ "$rc" "$T_TMP/ls.err"
check "truncated: ls's line" one_line "$T_TMP/ls.err"
PREOOM_REGISTRY=$trn preloaded "$HOLD" -m 1 -s 0 2>/dev/null; rc=$?
check "truncated: a preloaded program runs normally" test "$rc" -eq 0
: >"/dev/shm/preoom.$trn"
ls_json "$trn"; rc=$?
check "empty file: preoom ls exits 1 with one line" bash -c '[ "$1" -eq 1 ]' _ "$rc"
check "empty file: ls's line" one_line "$T_TMP/ls.err"

# Truncated while being read: the walk of 65536 slots races a file whose size flips. Whatever
# it sees, ls must end with 0 or 1 and at most one line: never SIGBUS (exit 135).
PREOOM_REGISTRY=$bus PREOOM_REGISTRY_SLOTS=65536 preloaded "$HOLD" -s 0
full=$(stat -c %s "/dev/shm/preoom.$bus")
( end=$((SECONDS + 4)); while [ $SECONDS -lt $end ]; do
      truncate -s 768 "/dev/shm/preoom.$bus"; truncate -s "$full" "/dev/shm/preoom.$bus"; done ) &
flipper=$!; T_PIDS+=("$flipper")
bad=0 shrank=0 sigbus=0 runs=0
end=$((SECONDS + 3))
while [ $SECONDS -lt $end ]; do
    "$PREOOM" --registry "$bus" ls >/dev/null 2>"$T_TMP/bus.err"; rc=$?
    runs=$((runs + 1))
    if [ "$rc" -gt 1 ] || [ "$(wc -l <"$T_TMP/bus.err")" -gt 1 ]; then bad=$((bad + 1)); echo "# rc $rc: $(head -c 200 "$T_TMP/bus.err")"; fi
    grep -q "shrank" "$T_TMP/bus.err" && shrank=$((shrank + 1))
    grep -q "SIGBUS" "$T_TMP/bus.err" && sigbus=$((sigbus + 1))
done
kill "$flipper" 2>/dev/null; wait "$flipper" 2>/dev/null
echo "# truncation race: $runs runs of ls, $shrank saw the file shrink under them, $sigbus of them by SIGBUS"
check "truncated under the reader: ls never crashes ($runs runs)" test "$bad" -eq 0

# ---- another user --------------------------------------------------------------------------------
if ! is_root; then
    skip "another user cannot open a 0600 registry: needs root to switch users"
elif ! command -v setpriv >/dev/null; then
    skip "another user cannot open a 0600 registry: setpriv is not installed"
else
    PREOOM_REGISTRY=$usr preloaded "$HOLD" -s 0
    # nobody must reach our binaries: copies in a directory anyone may enter.
    pub=$T_TMP/pub; mkdir -p "$pub"; chmod 755 "$T_TMP" "$pub"
    cp "$PREOOM" "$LIB" "$HOLD" "$pub/"; chmod 755 "$pub"/*
    as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
    check "another user: the registry is 0600" test "$(stat -c %a "/dev/shm/preoom.$usr")" = 600
    as_nobody "$pub/preoom" --registry "$usr" ls >/dev/null 2>"$T_TMP/user.err"; rc=$?
    check "another user: preoom ls cannot open it (exit 1, one line)" \
        bash -c '[ "$1" -eq 1 ] && grep -q "permission denied" "$2"' _ "$rc" "$T_TMP/user.err"
    PREOOM_REGISTRY=$usr as_nobody env LD_PRELOAD="$pub/libpreoom.so" "$pub/hold" -m 1 -s 0 2>"$T_TMP/user2.err"; rc=$?
    check "another user: a preloaded program of theirs runs on, uncounted" test "$rc" -eq 0
    check "another user: ... and says nothing (it would, on every exec and fork)" \
        test ! -s "$T_TMP/user2.err"
    PREOOM_REGISTRY=$usr PREOOM_VERBOSE=1 as_nobody env LD_PRELOAD="$pub/libpreoom.so" "$pub/hold" -m 1 -s 0 2>"$T_TMP/user3.err"
    check "another user: with PREOOM_VERBOSE, one line says why" \
        bash -c '[ "$(grep -c "registry" "$1")" -eq 1 ] && grep -q "permission denied" "$1"' _ "$T_TMP/user3.err"
    check "another user: the registry is still root's and 0600" \
        test "$(stat -c %U:%a "/dev/shm/preoom.$usr")" = root:600
fi

# ---- preoom run ----------------------------------------------------------------------------------
"$PREOOM" run -- sh -c 'exit 7' 2>"$T_TMP/run.err"; rc=$?
check "run: returns the child's exit status (7)" test "$rc" -eq 7
check "run: no warning for a dynamic program" test ! -s "$T_TMP/run.err"
"$PREOOM" run -- sh -c 'kill -TERM $$'; rc=$?
check "run: 128+signal when the child is killed (143)" test "$rc" -eq 143
"$PREOOM" run -- "$T_TMP/no-such-program" 2>"$T_TMP/run.err"; rc=$?
check "run: 127 and one line for a command that does not exist" \
    bash -c '[ "$1" -eq 127 ] && [ "$(wc -l <"$2")" -eq 1 ]' _ "$rc" "$T_TMP/run.err"
"$PREOOM" run --report "$T_TMP/run.json" --interval 50 -- "$HOLD" -m 4 -t 4 -s 0; rc=$?
check "run: the child is preloaded (its report shows 4 MiB committed)" \
    bash -c '[ "$1" -eq 0 ] && [ "$(sed -n "s/.*\"committed\": *\([0-9]*\).*/\1/p" "$2")" -ge 4194304 ]' _ "$rc" "$T_TMP/run.json"
real_lib=$(readlink -f "$LIB")
got=$(LD_PRELOAD=libm.so.6 "$PREOOM" run -- printenv LD_PRELOAD)
check "run: prepends libpreoom.so to LD_PRELOAD" test "$got" = "$real_lib:libm.so.6"
got=$(LD_PRELOAD=$real_lib "$PREOOM" run -- printenv LD_PRELOAD)
check "run: does not add libpreoom.so twice" test "$got" = "$real_lib"
got=$("$PREOOM" run --registry "$T_REG-x" --interval 250 --stacks sample --verbose -- \
      sh -c 'echo "$PREOOM_REGISTRY $PREOOM_INTERVAL_MS $PREOOM_STACKS $PREOOM_VERBOSE"' 2>/dev/null)
check "run: passes the settings" test "$got" = "$T_REG-x 250 sample 1"
"$PREOOM" run --interval 0 -- true 2>"$T_TMP/run.err"; rc=$?
check "run: a bad setting is a usage error (2)" test "$rc" -eq 2
# A signal sent to `preoom run` reaches the child, which exits cleanly.
bg "$PREOOM" run -- "$HOLD" -s 10 -r "$T_TMP/ready.fwd"
runner=$BG_PID
wait_files "$T_TMP/ready.fwd"
kill -TERM "$runner"; wait "$runner"; rc=$?
check "run: forwards SIGTERM to the child (which exits 0)" test "$rc" -eq 0

printf 'int main(void) { return 3; }\n' >"$T_TMP/static.c"
if cc -static -o "$T_TMP/static" "$T_TMP/static.c" 2>/dev/null; then
    "$PREOOM" run -- "$T_TMP/static" 2>"$T_TMP/run.err"; rc=$?
    check "run: warns in one line that a static binary runs uncounted, and runs it (3)" \
        bash -c '[ "$1" -eq 3 ] && grep -q "statically linked" "$2" && [ "$(wc -l <"$2")" -eq 1 ]' _ "$rc" "$T_TMP/run.err"
else
    skip "run: static binary warning: cc -static failed (glibc's static library not installed)"
fi
if is_root; then
    cp "$HOLD" "$T_TMP/suid-hold"; chown nobody "$T_TMP/suid-hold"; chmod 4755 "$T_TMP/suid-hold"
    "$PREOOM" run -- "$T_TMP/suid-hold" -s 0 2>"$T_TMP/run.err"; rc=$?
    check "run: warns that a set-user-ID binary runs uncounted, and runs it" \
        bash -c '[ "$1" -eq 0 ] && grep -q "set-user-ID" "$2" && [ "$(wc -l <"$2")" -eq 1 ]' _ "$rc" "$T_TMP/run.err"
    if command -v setcap >/dev/null && cp "$HOLD" "$T_TMP/cap-hold" &&
       setcap cap_net_raw+ep "$T_TMP/cap-hold" 2>/dev/null; then
        "$PREOOM" run -- "$T_TMP/cap-hold" -s 0 2>"$T_TMP/run.err"; rc=$?
        check "run: warns that a binary with file capabilities runs uncounted" \
            bash -c '[ "$1" -eq 0 ] && grep -q "file capabilities" "$2"' _ "$rc" "$T_TMP/run.err"
    else
        skip "run: file capabilities warning: setcap unavailable or not permitted here"
    fi
else
    skip "run: set-user-ID warning: needs root to make a binary set-user-ID to another user"
fi

# ---- top -----------------------------------------------------------------------------------------
bg env LD_PRELOAD="$LIB" "$HOLD" -m 8 -t 8 -s 30 -r "$T_TMP/ready.big"; big=$BG_PID
bg env LD_PRELOAD="$LIB" "$HOLD" -m 2 -t 2 -s 30 -r "$T_TMP/ready.small"; small=$BG_PID
wait_files "$T_TMP/ready.big" "$T_TMP/ready.small"
sleep 0.3
"$PREOOM" top -n 2 -d 0.1 --sort touched >"$T_TMP/top.out" 2>"$T_TMP/top.err"; rc=$?
check "top: two frames to a pipe, exit 0" \
    bash -c '[ "$1" -eq 0 ] && [ "$(grep -c "^preoom top:" "$2")" -eq 2 ]' _ "$rc" "$T_TMP/top.out"
check "top: no escape codes when stdout is not a terminal" bash -c '! grep -q $'"'"'\033'"'"' "$1"' _ "$T_TMP/top.out"
first_pid=$(awk '$1 ~ /^[0-9]+$/ {print $1; exit}' "$T_TMP/top.out")
check "top --sort touched: the larger process first" test "$first_pid" = "$big"
"$PREOOM" top -n 1 --sort pid >"$T_TMP/top.out"
first_pid=$(awk '$1 ~ /^[0-9]+$/ {print $1; exit}' "$T_TMP/top.out")
lower=$(( big < small ? big : small ))
check "top --sort pid: the lower pid first" test "$first_pid" = "$lower"
"$PREOOM" top --sort nonsense -n 1 >/dev/null 2>&1; rc=$?
check "top: an unknown column is a usage error (2)" test "$rc" -eq 2
kill -TERM "$big" "$small"; wait "$big" "$small"

# ---- a zombie's slot ----------------------------------------------------------------------------
# A preloaded child SIGKILLed while its parent does not wait for it stays a zombie with the
# same start time; it has freed its memory and will never publish again: readers reap it.
bg bash -c 'env LD_PRELOAD="$0" "$1" -m 1 -s 30 -r "$2" & echo $! >"$3"; exec sleep 20' \
    "$LIB" "$HOLD" "$T_TMP/ready.zombie" "$T_TMP/zombie.pid"; zparent=$BG_PID
wait_files "$T_TMP/ready.zombie"
z=$(cat "$T_TMP/zombie.pid")
sleep 0.2
kill -KILL "$z"
for _ in $(seq 50); do grep -q '^State:.*Z' "/proc/$z/status" 2>/dev/null && break; sleep 0.05; done
check "zombie: the killed child is a zombie its parent has not reaped" grep -q '^State:.*Z' "/proc/$z/status"
ls_json
check "zombie: its slot is reaped by the next reader, not listed" bash -c '! grep -q "\"pid\": $0[,}]" "$1"' "$z" "$T_TMP/ls.json"
kill -KILL "$zparent"; wait "$zparent" 2>/dev/null

t_done

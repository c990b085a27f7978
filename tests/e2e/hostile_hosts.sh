#!/usr/bin/env bash
# tests/e2e/hostile_hosts.sh — hosts that make an interposer's life hard, each run bare and with
# libpreoom.so (counting, sampled stacks, every stack): the output and exit status must be
# the bare run's. Fork while other threads dlopen, allocate and unwind; a seccomp sandbox that
# forbids open after start-up; RLIMIT_NOFILE=5; another user's process under our registry;
# 60,000 disjoint mappings.
# Must never: hang (each program bounds its own waits), or leave a process behind.
. "$(dirname "$0")/lib.sh"

[ -f "$LIB" ] || { fail "libpreoom.so not built ($LIB)"; t_done; }

MODES="counting sample all"
mode_env() {
    case $1 in
    counting) echo "" ;;
    sample) echo "PREOOM_STACKS=sample PREOOM_SAMPLE_BYTES=4KiB" ;;
    all) echo "PREOOM_STACKS=all PREOOM_STACK_CACHE=verify" ;;
    esac
}

# same NAME MODE CMD...: CMD bare, then preloaded with MODE's settings.
same() {
    local name=$1 mode=$2; shift 2
    local a b ra rb
    a=$("$@" 2>&1); ra=$?
    # shellcheck disable=SC2046 # the settings are words
    b=$(env LD_PRELOAD="$LIB" $(mode_env "$mode") "$@" 2>&1); rb=$?
    if [ "$a" = "$b" ] && [ "$ra" -eq "$rb" ]; then
        ok "$mode: $name: same output and status ($ra)"
    else
        fail "$mode: $name: differs (status $ra vs $rb)"
        diff <(echo "$a") <(echo "$b") | head -5 | sed 's/^/#   /'
    fi
}

# 1. fork while two threads dlopen and dlclose, two allocate and one walks the loaded objects
# (as a C++ exception does): 200 children, each allocating (unwound under `all`), each given
# 10 s before it counts as hung. glibc leaves the loader's list lock as it was in a child, and
# libunwind its own locks.
for m in $MODES; do
    same "200 forks while threads dlopen, allocate and unwind" "$m" \
        "$PROG/forkdl" "$PROG/libdlalloc.so" 200 10
done

# 2. A sandbox: after start-up the program forbids open and openat to all its threads
# (seccomp, TSYNC, the process killed on a try), works 1.5 s (the agent measures every 10 ms,
# /proc/self/status once a second) and forks a child that works too.
rc=0; "$PROG/sandbox" 100 >/dev/null 2>&1 || rc=$?
if [ "$rc" -eq 2 ]; then
    skip "seccomp sandbox: the kernel refuses the filter"
else
    for m in $MODES; do
        same "a seccomp sandbox forbidding open after start-up" "$m" \
            env PREOOM_INTERVAL_MS=10 "$PROG/sandbox" 1500
    done
fi

# 3. RLIMIT_NOFILE=5: standard input, output and error leave two descriptors, and the program
# must have them (libunwind's pipe took both: `cat FILE` failed with EMFILE).
if command -v prlimit >/dev/null; then
    seq 1 5000 >"$T_TMP/lines"
    seq 5000 -1 1 >"$T_TMP/lines2"
    for m in $MODES; do
        same "RLIMIT_NOFILE=5: cat FILE" "$m" prlimit --nofile=5 cat "$T_TMP/lines"
        same "RLIMIT_NOFILE=5: sort -m FILE FILE2 (both open at once)" "$m" \
            prlimit --nofile=5 sort -n -m "$T_TMP/lines" "$T_TMP/lines2"
    done
else
    skip "RLIMIT_NOFILE=5: prlimit (util-linux) not installed"
fi

# 5. Another user's processes inherit LD_PRELOAD and the registry name, and the registry is
# ours (0600): each of their execs and forks must print exactly what it prints bare.
if ! is_root || ! command -v setpriv >/dev/null; then
    skip "another user's process: needs root and setpriv to switch users"
else
    PREOOM_REGISTRY=$T_REG "$PROG/churn" 1 10 >/dev/null  # not preloaded: nothing made
    env LD_PRELOAD="$LIB" PREOOM_REGISTRY=$T_REG "$PROG/churn" 1 10 >/dev/null
    pub=$T_TMP/pub; mkdir -p "$pub"; chmod 755 "$T_TMP" "$pub"
    cp "$LIB" "$pub/"; chmod 755 "$pub/libpreoom.so"
    script='echo start; for i in 1 2 3; do /bin/echo "exec $i"; (echo "fork $i"); done | sort; ls /nonexistent 2>&1 | wc -l'
    for m in $MODES; do
        a=$(setpriv --reuid=nobody --regid=nogroup --clear-groups bash -c "$script" 2>&1); ra=$?
        # shellcheck disable=SC2046
        b=$(setpriv --reuid=nobody --regid=nogroup --clear-groups env LD_PRELOAD="$pub/libpreoom.so" \
            PREOOM_REGISTRY=$T_REG $(mode_env "$m") bash -c "$script" 2>&1); rb=$?
        if [ "$a" = "$b" ] && [ "$ra" -eq "$rb" ] && [ -e "/dev/shm/preoom.$T_REG" ]; then
            ok "$m: another user's shell, execs and forks, root's 0600 registry: same output and status ($ra)"
        else
            fail "$m: another user's shell: differs (status $ra vs $rb)"
            diff <(echo "$a") <(echo "$b") | head -5 | sed 's/^/#   /'
        fi
    done
fi

# 6. Many mappings: 60,000 disjoint one-page writable mappings, half unmapped one by one,
# the rest by one munmap across them all. The program checks the counted bytes of each stage
# itself (its "ok -" lines, printed only under the preload, are compared apart).
for m in counting; do
    a=$("$PROG/manymaps" 60000 2>&1); ra=$?
    # shellcheck disable=SC2046
    b=$(env LD_PRELOAD="$LIB" $(mode_env $m) "$PROG/manymaps" 60000 2>&1); rb=$?
    check "$m: 60,000 disjoint mappings: same output and status ($ra, $rb)" \
        [ "$a" = "$(grep -v '^\(not \)\?ok - ' <<<"$b")" ] && [ "$ra" -eq "$rb" ]
    check "$m: 60,000 disjoint mappings: every stage counted exactly ($(grep -c '^ok - ' <<<"$b") of 3)" \
        [ "$(grep -c '^ok - ' <<<"$b")" -eq 3 ] && ! grep -q '^not ok - ' <<<"$b"
done

t_done

#!/usr/bin/env bash
# tests/e2e/hostile.sh — hosts that make an interposer's life hard, each run bare and with
# libpreoom.so (counting, sampled stacks, every stack): the output and exit status must be
# the bare run's. Fork while other threads dlopen, allocate and unwind.
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

t_done

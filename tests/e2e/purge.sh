#!/usr/bin/env bash
# tests/e2e/purge.sh — a release request gives back what jemalloc and tcmalloc hold free
# (issue 15): a host frees 64 MiB of small blocks, is asked through the registry as preoomd
# asks (tests/e2e/ask.c), and its answer and its resident memory must show at least half of
# it returned with PREOOM_PURGE on, against nothing with malloc_trim alone (PREOOM_PURGE=0:
# malloc_trim is glibc's, and these allocators have none). Each allocator preloaded after
# preoom, before it, and linked into the program. glibc's host is asked too: nothing to
# purge, said as such. Skips an allocator that is not installed, saying so.
# Must never: leave a process, a registry or a temporary file behind. 64 MiB is no pressure.
. "$(dirname "$0")/lib.sh"

[ -f "$LIB" ] || { fail "libpreoom.so not built ($LIB)"; t_done; }
[ -x "$PROG/freeall" ] || { fail "tests/prog/freeall not built"; t_done; }
[ -f "$B/libpreoom-common.a" ] || { fail "libpreoom-common.a not built"; t_done; }
D=/usr/lib/x86_64-linux-gnu
[ -d "$D" ] || D=$(dirname "$(ldconfig -p | awk '/libc.so.6/ {print $NF; exit}')")
ASK=$T_TMP/ask
cc -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -I"$TOP/include" -I"$TOP/common" -o "$ASK" \
    "$TOP/tests/e2e/ask.c" "$B/libpreoom-common.a" -lpthread || { fail "ask.c does not build"; t_done; }
MIB=64
HALF=$((MIB / 2 * 1024 * 1024))

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

# run LABEL PURGE ENV... -- CMD...: start CMD (freeall) under ENV, ask it once it has freed
# everything; sets ANS ("bytes callback trim"), FELL_KIB (its VmRSS before - after the ask)
# and LOGLINE (the agent's verbose line about the request).
run() {
    local label=$1 purge=$2; shift 2
    local envs=()
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    local ready=$T_TMP/ready.$label.$purge
    rm -f "$ready"
    bg env "${envs[@]}" PREOOM_PURGE="$purge" PREOOM_VERBOSE=1 "$@" -m "$MIB" -s 30 -r "$ready" \
        2>"$T_TMP/host.err"
    local hp=$BG_PID i
    for i in $(seq 200); do [ -s "$ready" ] && break; sleep 0.05; done
    ANS= FELL_KIB=0 LOGLINE=
    if [ ! -s "$ready" ]; then
        kill "$hp" 2>/dev/null; wait "$hp" 2>/dev/null
        return 1
    fi
    local r1 r2
    r1=$(rss_kib "$hp")
    ANS=$("$ASK" "$T_REG" "$hp" 1 1073741824 2>>"$T_TMP/ask.err")
    r2=$(rss_kib "$hp")
    FELL_KIB=$(( ${r1:-0} - ${r2:-0} ))
    kill "$hp" 2>/dev/null; wait "$hp" 2>/dev/null
    LOGLINE=$(grep -m1 "release request" "$T_TMP/host.err")
    [ -n "$ANS" ]
}

# compare NAME WORD ENV... -- CMD...: with the purge, at least half given back (answer, trim
# field and resident memory agree) and WORD in the agent's line; without it, less than that
# by at least a quarter of what was freed.
compare() {
    local name=$1 word=$2; shift 2
    if ! run "$name" 0 "$@"; then fail "$name: the host did not start or did not answer"; return; fi
    local off_bytes off_trim
    read -r off_bytes _ off_trim <<<"$ANS"
    if ! run "$name" 1 "$@"; then fail "$name: the host did not start or did not answer"; return; fi
    local on_bytes on_trim
    read -r on_bytes _ on_trim <<<"$ANS"
    echo "# $name: trim alone gave $off_bytes bytes (trim field $off_trim); with the purge $on_bytes (trim field $on_trim), VmRSS fell $FELL_KIB KiB"
    echo "#   $LOGLINE"
    check "$name: with the purge, the answer says at least half of $MIB MiB came back" \
        [ "$on_bytes" -ge "$HALF" ]
    check "$name: the allocator's share is in the answer's trim field" [ "$on_trim" -ge "$HALF" ]
    check "$name: the host's VmRSS fell by at least half of $MIB MiB" \
        [ "$FELL_KIB" -ge $((HALF / 1024)) ]
    check "$name: more than with malloc_trim alone, by a quarter of what was freed" \
        [ "$on_bytes" -ge $((off_bytes + HALF / 2)) ]
    check "$name: the agent's line names the $word" grep -q "$word [0-9]" <<<"$LOGLINE"
}

tried=0
for a in libjemalloc.so.2 libtcmalloc_minimal.so.4 libtcmalloc.so.4; do
    if [ ! -f "$D/$a" ]; then
        skip "$a: not installed (scripts/deps.sh check installs it)"
        continue
    fi
    tried=$((tried + 1))
    A=$D/$a
    case $a in libjemalloc*) word="jemalloc purge" ;; *) word="tcmalloc release" ;; esac
    compare "$a after preoom" "$word" LD_PRELOAD="$LIB:$A" PREOOM_REGISTRY="$T_REG" -- "$PROG/freeall"
    compare "$a before preoom" "$word" LD_PRELOAD="$A:$LIB" PREOOM_REGISTRY="$T_REG" -- "$PROG/freeall"
    # Linked into the program: the allocator is in charge without any preload of its own.
    linked=$T_TMP/freeall-${a%%.so*}
    if cc -std=gnu11 -O2 -o "$linked" "$TOP/tests/prog/freeall.c" "$A" 2>"$T_TMP/cc.err"; then
        compare "$a linked" "$word" LD_PRELOAD="$LIB" PREOOM_REGISTRY="$T_REG" -- "$linked"
    else
        fail "$a: cannot link a program with it ($(head -1 "$T_TMP/cc.err"))"
    fi
done
[ "$tried" -gt 0 ] || skip "purge: neither jemalloc nor tcmalloc is installed"

# glibc in charge: no purge to make, and the request is answered as before.
if run glibc 1 LD_PRELOAD="$LIB" PREOOM_REGISTRY="$T_REG" -- "$PROG/freeall"; then
    check "glibc: answered, no purge (malloc_trim is glibc's way)" grep -q "no purge 0" <<<"$LOGLINE"
else
    fail "glibc: the host did not start or did not answer"
fi
t_done

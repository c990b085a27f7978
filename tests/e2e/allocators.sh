#!/usr/bin/env bash
# tests/e2e/allocators.sh — libpreoom.so beside the allocators Debian ships (tcmalloc minimal
# and full, jemalloc, mimalloc): preloaded after preoom, before it, and linked into the
# program; C and C++ programs; counting, sampled and every stack. Each run must print what the
# run without preoom prints (the allocator alone) and exit the same. Where preoom comes first
# it must count (new and delete once each, as tests/prog/cxx checks itself); where the
# allocator comes first preoom counts no malloc and must not break anything either, and
# `preoom run` puts itself first so that counting works.
# Must never: leave a process, a registry or a temporary file behind.
. "$(dirname "$0")/lib.sh"

[ -f "$LIB" ] || { fail "libpreoom.so not built ($LIB)"; t_done; }
PREOOM=$B/preoom
D=/usr/lib/x86_64-linux-gnu
[ -d "$D" ] || D=$(dirname "$(ldconfig -p | awk '/libc.so.6/ {print $NF; exit}')")

# same NAME BARE-ENV PRELOAD-ENV CMD...: CMD run under each environment (`env` words), same
# stdout+stderr and status.
same() {
    local name=$1 envb=$2 envp=$3; shift 3
    local a b ra rb
    # shellcheck disable=SC2086 # the environments are lists of words
    a=$(env $envb "$@" 2>&1); ra=$?
    # shellcheck disable=SC2086
    b=$(env $envp "$@" 2>&1); rb=$?
    if [ "$a" = "$b" ] && [ "$ra" -eq "$rb" ]; then
        ok "$name: same output and status ($ra)"
    else
        fail "$name: differs (status $ra vs $rb)"
        diff <(echo "$a") <(echo "$b") | head -5 | sed 's/^/#   /'
    fi
}

cprog="$PROG/churn 2 3000"
pipeline='seq 1 30000 | sort -rn | awk "{s += \$1} END {print s}"'
tried=0
for a in libtcmalloc_minimal.so.4 libtcmalloc.so.4 libjemalloc.so.2 libmimalloc.so.2; do
    if [ ! -f "$D/$a" ]; then
        skip "$a: not installed (scripts/deps.sh check installs it)"
        continue
    fi
    tried=$((tried + 1))
    A=$D/$a
    # mimalloc (a C build) aborts on an over-large new[] instead of throwing, with or without
    # preoom: its run leaves that case out.
    nohuge=; [ "$a" = libmimalloc.so.2 ] && nohuge=nohuge
    cxxprog="$PROG/cxx $nohuge"
    for mode in counting sample all; do
        case $mode in
        counting) M= ;;
        sample) M="PREOOM_STACKS=sample PREOOM_SAMPLE_BYTES=64KiB" ;;
        all) M="PREOOM_STACKS=all" ;;
        esac
        for order in after before; do
            if [ $order = after ]; then P="$LIB:$A"; else P="$A:$LIB"; fi
            bare="LD_PRELOAD=$A"
            pre="LD_PRELOAD=$P $M"
            same "$a $order preoom, $mode: /bin/true" "$bare" "$pre" /bin/true
            # shellcheck disable=SC2086
            same "$a $order preoom, $mode: C churn, 2 threads" "$bare" "$pre" $cprog
            same "$a $order preoom, $mode: C++ containers, new/delete" "$bare" "$pre" \
                bash -o pipefail -c "$cxxprog | grep -v ' - '"
            same "$a $order preoom, $mode: a pipeline, every stage preloaded" "$bare" "$pre" \
                bash -c "$pipeline"
        done
    done
    # Counting works where preoom is first: the C++ program checks that new and delete are
    # counted once each (it prints "ok - ..." lines only with the preload there).
    out=$(env LD_PRELOAD="$LIB:$A" $cxxprog 2>&1 | tail -n +2)
    check "$a after preoom: new counted once, delete gives it back" \
        [ "$(grep -c '^ok - ' <<<"$out")" -eq 2 ]
    env LD_PRELOAD="$LIB $A" PREOOM_REPORT="$T_TMP/after.json" $cprog >/dev/null 2>&1
    nm=$(sed -n 's/.*"calls": {"malloc": \([0-9]*\).*/\1/p' "$T_TMP/after.json" 2>/dev/null)
    brk=$(json_get "$T_TMP/after.json" brk)
    check "$a after preoom: malloc counted (${nm:-none} calls), heap growth inside malloc not counted as brk (${brk:-?})" \
        [ "${nm:-0}" -ge 6000 ] && [ "${brk:-1}" -lt 1048576 ]
    out=$(env LD_PRELOAD="$A $LIB" PREOOM_VERBOSE=1 /bin/true 2>&1)
    check "$a before preoom: one line with PREOOM_VERBOSE says malloc is not counted" \
        grep -q "malloc is served by $A, loaded before libpreoom.so" <<<"$out"

    # Linked into the program: preoom (preloaded) comes before it in the global scope.
    base=${a%%.so*}
    if gcc -O2 -o "$T_TMP/churn-$base" "$TOP/tests/prog/churn.c" "$A" -lpthread 2>"$T_TMP/cc.log" &&
        g++ -std=gnu++17 -O2 -Iinclude -I"$TOP/include" -o "$T_TMP/cxx-$base" "$TOP/tests/prog/cxx.cc" "$A" 2>>"$T_TMP/cc.log"; then
        for mode in counting all; do
            M=; [ $mode = all ] && M="PREOOM_STACKS=all"
            same "$a linked, $mode: C churn" "" "LD_PRELOAD=$LIB $M" "$T_TMP/churn-$base" 2 3000
            same "$a linked, $mode: C++" "" "LD_PRELOAD=$LIB $M" \
                bash -o pipefail -c "$T_TMP/cxx-$base $nohuge | grep -v ' - '"
        done
        if [ -x "$PREOOM" ]; then
            # run says nothing about an allocator linked as a library: preoom comes first.
            b=$("$T_TMP/cxx-$base" $nohuge 2>&1 | head -n 1)
            p=$(PREOOM_LIB=$LIB "$PREOOM" run --registry off --stacks all -- "$T_TMP/cxx-$base" $nohuge 2>&1)
            check "$a linked, under preoom run --stacks all: same first line, counting works" \
                [ "$b" = "$(head -n 1 <<<"$p")" ] && [ "$(grep -c '^ok - ' <<<"$p")" -eq 2 ]
        fi
    else
        fail "$a: cannot link a program with it"; sed 's/^/#   /' "$T_TMP/cc.log" | head -5
    fi

    if [ -x "$PREOOM" ]; then
        # `LD_PRELOAD=allocator preoom run`: run puts itself first, and counting works.
        same "LD_PRELOAD=$a preoom run -- C++" "LD_PRELOAD=$A" "LD_PRELOAD=$A" \
            bash -o pipefail -c "PREOOM_LIB=$LIB $PREOOM run --registry off -- $cxxprog | grep -v ' - '"
        out=$(LD_PRELOAD=$A PREOOM_LIB=$LIB "$PREOOM" run --registry off -- $cxxprog 2>&1 | tail -n +2)
        check "LD_PRELOAD=$a preoom run: counting works (new and delete counted once)" \
            [ "$(grep -c '^ok - ' <<<"$out")" -eq 2 ]
        # The user's own order, allocator first: run moves preoom to the front and says so
        # in one line when asked to be verbose.
        out=$(LD_PRELOAD="$A:$LIB" PREOOM_LIB=$LIB "$PREOOM" run --registry off -- $cxxprog 2>&1 | tail -n +2)
        check "LD_PRELOAD=$a:libpreoom.so preoom run: preoom put first, counting works" \
            [ "$(grep -c '^ok - ' <<<"$out")" -eq 2 ]
    fi
done
[ "$tried" -gt 0 ] || skip "no foreign allocator installed"

# A program that defines malloc itself (an allocator linked in statically): the loader binds
# every malloc to it, ahead of any preload. preoom forwards the family to it and counts none
# of it; run says so in one line.
cat >"$T_TMP/ownmalloc.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
extern void *__libc_malloc(size_t), *__libc_calloc(size_t, size_t), *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
static long mine;
void *malloc(size_t n) { mine++; return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { mine++; return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { mine++; return __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }
int main(void)
{
    char *s = strdup("own malloc"), *t = NULL;
    for (int i = 0; i < 1000; i++) { free(t); t = malloc((size_t)i * 16 + 1); memset(t, 1, (size_t)i * 16 + 1); }
    free(t);
    printf("%s: %s\n", s, mine >= 1000 ? "served" : "bypassed");
    free(s);
    return 0;
}
C
if gcc -O1 -fno-builtin -o "$T_TMP/ownmalloc" "$T_TMP/ownmalloc.c" 2>"$T_TMP/cc.log"; then
    for mode in counting all; do
        M=; [ $mode = all ] && M="PREOOM_STACKS=all"
        same "a program defining malloc itself, $mode" "" "LD_PRELOAD=$LIB $M" "$T_TMP/ownmalloc"
    done
    if [ -x "$PREOOM" ]; then
        out=$(PREOOM_LIB=$LIB "$PREOOM" run --registry off -- "$T_TMP/ownmalloc" 2>&1)
        check "preoom run on a program defining malloc: its output and one line saying so" \
            [ "$(grep -c 'defines malloc itself' <<<"$out")" -eq 1 ] && grep -q '^own malloc: served$' <<<"$out" && [ "$(wc -l <<<"$out")" -eq 2 ]
        out=$(PREOOM_LIB=$LIB "$PREOOM" run --registry off -- "$PROG/churn" 1 10 2>&1)
        check "preoom run on a program using glibc's malloc: no such line" \
            [ "$(grep -c 'defines malloc' <<<"$out")" -eq 0 ]
    fi
else
    fail "cannot build a program defining malloc"; sed 's/^/#   /' "$T_TMP/cc.log" | head -5
fi
t_done

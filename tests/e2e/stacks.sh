#!/usr/bin/env bash
# tests/e2e/stacks.sh — call-site reports end to end (issue 6): PREOOM_STACKS=all gives each
# leaking function with its exact bytes and counts; sample estimates within 20%; a path that
# frees everything shows no leak; deep recursion, an allocating signal handler, threads and a
# dlclose'd library neither crash nor lose their names; collapsed and svg outputs are
# well-formed; `preoom report PID` asks a running process. Runs inside a 512 MiB memory
# cgroup when root.
. "$(dirname "$0")/lib.sh"
PREOOM=$B/preoom
LEAKY=$PROG/leaky
for f in "$LIB" "$PREOOM" "$LEAKY" "$PROG/libstkleak.so" "$PROG/fdsweep" \
    "$PROG/sigstale"; do
    [ -e "$f" ] || { skip "stacks: $f not built"; t_done; }
done

CG=
if is_root && CG=$(cg_create stacks $((512 << 20)) 2>/dev/null); then :; else CG=; fi
# run_in_cg CMD...: the command in the test's memory cgroup when there is one.
run_in_cg() {
    if [ -n "$CG" ]; then
        sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG" "$@"
    else
        "$@"
    fi
}
# preloaded MODE REPORT CMD...: run CMD with the preload, stacks in MODE, report to REPORT.
preloaded() {
    local mode=$1 report=$2; shift 2
    run_in_cg env PREOOM_STACKS="$mode" PREOOM_REPORT="$report" LD_PRELOAD="$LIB" "$@"
}
json_ok() { python3 -m json.tool "$1" >/dev/null 2>&1; }

# site_of TEXT FUNC: "LIVE_BYTES LIVE_BLOCKS" of the first site in the leaked table whose
# innermost frame is FUNC.
site_of() {
    awk -v fn="$2" '
        /^== / && ++tables > 1 { exit }
        /^#[0-9]+ live/ { hdr = $0; getline; split($0, w, " ");
            if (w[1] == fn) { gsub("~", "", hdr); split(hdr, h, " "); print h[3], h[6]; exit } }' "$1"
}

# ---- all: exact --------------------------------------------------------------------------
# leaky prints the usable sizes it left (malloc_usable_size): these checks read --bytes
# usable; requested bytes are checked in cxxleak.sh.
R=$T_TMP/all.json
preloaded all "$R" "$LEAKY" paths 2 >"$T_TMP/all.expect"
check "all: leaky runs and writes a valid JSON report" json_ok "$R"
"$PREOOM" report "$R" --top 50 --bytes usable >"$T_TMP/all.txt" 2>"$T_TMP/all.err"
check "all: preoom report FILE succeeds" test -s "$T_TMP/all.txt"
while read -r fn bytes count; do
    got=$(site_of "$T_TMP/all.txt" "$fn")
    check "all: $fn leaks exactly $bytes bytes in $count blocks (got '${got}')" \
        test "$got" = "$bytes $count"
done <"$T_TMP/all.expect"
check "all: free_delta leaks nothing" test -z "$(site_of "$T_TMP/all.txt" free_delta)"
check "all: free_delta appears in the peak table" \
    grep -A1 '^#[0-9]* live 0 bytes' "$T_TMP/all.txt" -q
check "all: frames have file:line" grep -q 'leak_alpha  .*leaky\.c:[0-9]' "$T_TMP/all.txt"

# ---- all: sites shared by threads, and look-alike stacks -----------------------------------
# Each thread keeps its changes to a site in a table of its own until it flushes them; the
# report must add every thread's part, including threads that are gone.
R=$T_TMP/shared.json
preloaded all "$R" "$LEAKY" shared >"$T_TMP/shared.expect"
check "shared: leaky shared runs and writes a valid JSON report" json_ok "$R"
"$PREOOM" report "$R" --top 50 --bytes usable >"$T_TMP/shared.txt" 2>&1
# collapsed WEIGHT FUNCS: the weight of the collapsed stack ending in ";FUNCS".
collapsed() { "$PREOOM" report "$R" --format collapsed --bytes usable --weight "$1" | awk -v s=";$2" '
    { n = split($0, a, " "); st = substr($0, 1, length($0) - length(a[n]) - 1);
      sub(/\.constprop\.[0-9]+/, "", st);
      if (substr(st, length(st) - length(s) + 1) == s) { print a[n]; exit } }'; }
read -r _ bytes count < <(grep '^thread_shared_alloc ' "$T_TMP/shared.expect")
got=$(site_of "$T_TMP/shared.txt" thread_shared_alloc)
check "shared: 4 threads at one site leak exactly $bytes bytes in $count blocks (got '$got')" \
    test "$got" = "$bytes $count"
check "shared: allocated by one thread, freed by another: no leak" \
    test -z "$(site_of "$T_TMP/shared.txt" handoff_make)"
got=$(collapsed count producer\;handoff_make)
check "shared: ... and all 20000 of its allocations counted (got '$got')" test "$got" = 20000
read -r _ _ peak < <(grep '^peak_once_alloc ' "$T_TMP/shared.expect")
got=$(collapsed peak shared\;peak_once_alloc)
check "shared: a single thread's peak is exact: $peak (got '$got')" test "$got" = "$peak"
for via in via_a via_b; do
    read -r _ bytes count < <(grep "^$via " "$T_TMP/shared.expect")
    got="$(collapsed live "$via;twin_alloc") $(collapsed count "$via;twin_alloc")"
    check "shared: $via's calls are told from its twin's: $bytes bytes, $count calls (got '$got')" \
        test "$got" = "$bytes $count"
done

# ---- sample: estimates ---------------------------------------------------------------------
# The relative error of a sampled estimate is about sqrt(S / bytes): at 16 MiB a path gets
# ~1/sqrt(256) = 6% with S = 64 KiB, so 20% is over three standard deviations (with the
# default 512 KiB it would be 18%, one: see preload/stacks.c).
R=$T_TMP/sample.json
PREOOM_SAMPLE_BYTES=64KiB preloaded sample "$R" "$LEAKY" paths 16 >"$T_TMP/sample.expect"
check "sample: valid JSON report" json_ok "$R"
"$PREOOM" report "$R" --top 50 --bytes usable >"$T_TMP/sample.txt" 2>&1
while read -r fn bytes count; do
    got=$(site_of "$T_TMP/sample.txt" "$fn")
    check "sample: $fn estimate ${got%% *} within 20% of $bytes" within "${got%% *}" "$bytes" 20 0
    # Counts only for the one-size paths: leak_gamma's few tiny blocks (24 B) each stand
    # for thousands of calls when sampled, so its count estimate is far noisier than its bytes.
    [ "$fn" = leak_gamma ] ||
        check "sample: $fn count estimate ${got##* } within 20% of $count" within "${got##* }" "$count" 20 0
done <"$T_TMP/sample.expect"
check "sample: free_delta shows no leak" test -z "$(site_of "$T_TMP/sample.txt" free_delta)"
check "sample: the text says figures are estimates" grep -q 'estimates' "$T_TMP/sample.txt"

# ---- edge programs -------------------------------------------------------------------------
for mode in all sample; do
    R=$T_TMP/edge-$mode.json
    PREOOM_SAMPLE_BYTES=4KiB preloaded $mode "$R" "$LEAKY" edge "$PROG" >"$T_TMP/edge.out" 2>&1
    rc=$?
    check "edge/$mode: deep recursion, signals, threads, dlclose: exit 0 (got $rc)" test $rc -eq 0
    check "edge/$mode: valid JSON report" json_ok "$R"
    "$PREOOM" report "$R" --top 100000 >"$T_TMP/edge-$mode.txt" 2>&1
    txt=$T_TMP/edge-$mode.txt
    if [ $mode = all ]; then
        check "edge/$mode: deep recursion named and marked truncated" \
            sh -c "grep -q deep_recurse '$txt' && grep -q 'stack truncated' '$txt'"
        check "edge/$mode: the signal handler's allocations are named" grep -q on_alarm "$txt"
        check "edge/$mode: the alternate-stack handler's allocations are named" grep -q on_usr1 "$txt"
        check "edge/$mode: the coroutine's allocations are named" grep -q coro_leak "$txt"
        check "edge/$mode: thread allocations are named" grep -q thread_leak "$txt"
        check "edge/$mode: dlclose'd library named or module+offset" \
            grep -Eq 'stkleak_make|libstkleak\.so\+0x' "$txt"
        check "edge/$mode: the dlclose'd module is recorded as unloaded" \
            grep -q '"path": "[^"]*libstkleak.so"[^}]*"loaded": false' "$R"
    fi
done

# ---- the stack cache -------------------------------------------------------------------------
# PREOOM_STACK_CACHE=verify unwinds on every cache hit as well and counts the hits whose site
# is not the one the unwinder finds. None may differ, on any of the programs above, and the
# cache must really be used (most of leaky shared's records are hits).
for prog in "shared" "edge $PROG" "paths 2"; do
    R=$T_TMP/verify.json
    # shellcheck disable=SC2086 # prog is a command line
    PREOOM_STACK_CACHE=verify preloaded all "$R" "$LEAKY" $prog >/dev/null 2>&1
    got=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["stacks"]
c = d["stack_cache"]
print(c["mode"], c["hits"], c["mismatches"], sum(s["samples"] for s in d["sites"]))' "$R" 2>&1)
    read -r vmode hits mism records <<<"$got"
    check "cache/verify, leaky ${prog%% *}: no hit differs from the unwinder ($got)" \
        test "$vmode $mism" = "verify 0"
    check "cache/verify, leaky ${prog%% *}: the cache found records (hits $hits of $records)" \
        test "${hits:-0}" -gt 0
done
pct=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["stacks"]
print(d["stack_cache"]["hits"] * 100 // sum(s["samples"] for s in d["sites"]))' "$T_TMP/shared.json")
check "cache: most of leaky shared's records come from the cache ($pct%)" test "${pct:-0}" -ge 50
# A signal handler that allocates while the loop it interrupts keeps calling one function:
# the interrupted frame has no return-address slot, and the word where one would be holds
# the loop's last return address. The cache must not be fooled (it was, three hits in four).
PREOOM_STACK_CACHE=verify preloaded all "$T_TMP/sig.json" "$PROG/sigstale" 20000000
got=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["stacks"]
c = d["stack_cache"]
print(c["mismatches"], sum(s["samples"] for s in d["sites"]))' "$T_TMP/sig.json" 2>&1)
read -r mism recs <<<"$got"
check "cache/verify, a signal landing in a calling loop: no wrong hit ($mism of $recs records)" \
    test "${mism:-x}" = 0 -a "${recs:-0}" -gt 100
PREOOM_STACK_CACHE=off preloaded all "$T_TMP/off.json" "$LEAKY" paths 2 >"$T_TMP/off.expect"
"$PREOOM" report "$T_TMP/off.json" --top 50 >"$T_TMP/off.txt" 2>&1
got=$(site_of "$T_TMP/off.txt" leak_alpha)
read -r _ bytes count < <(grep '^leak_alpha ' "$T_TMP/off.expect")
check "cache off: leak_alpha still exact ($bytes $count, got '$got')" test "$got" = "$bytes $count"

# ---- descriptor sweeps ------------------------------------------------------------------------
# libunwind keeps a pipe open and reads and writes a byte through it on many unwinds. A program
# that closes every descriptor it did not open and then opens its own files must not have
# them read or written by the unwinder (before this guard, fdsweep lost 13-18 bytes of its
# input and found as many stray bytes in its output). dup2 onto the pipe stops unwinding.
for how in closefrom close close_range dup2; do
    for mode in all sample; do
        d=$T_TMP/fd-$how-$mode
        mkdir -p "$d"
        PREOOM_SAMPLE_BYTES=1KiB preloaded $mode "$d/r.json" "$PROG/fdsweep" $how "$d" \
            >"$d/out" 2>"$d/err"
        rc=$?
        check "fdsweep $how/$mode: the program's own files untouched (rc $rc: $(head -c 200 "$d/err"))" \
            sh -c "[ $rc -eq 0 ] && grep -q 'fdsweep ok' '$d/out'"
        check "fdsweep $how/$mode: report written" json_ok "$d/r.json"
        if [ $how = dup2 ]; then
            check "fdsweep dup2/$mode: one line says unwinding stopped" \
                sh -c "[ \$(grep -c 'no more unwinding' '$d/err') -eq 1 ]"
            check "fdsweep dup2/$mode: the report, frameless site and all, still reads" \
                sh -c "'$PREOOM' report '$d/r.json' | grep -q '\\[no frames\\]'"
        else
            "$PREOOM" report "$d/r.json" --top 1000 >"$d/rep.txt" 2>&1
            # (all mode records every allocation of the threads started after the sweep;
            # sampling may miss them, but never leaves a stack without frames)
            want=worker
            [ $mode = sample ] && want=main
            check "fdsweep $how/$mode: unwinding went on (named stacks, none without frames)" \
                sh -c "! grep -q 'no more unwinding' '$d/err' && grep -q $want '$d/rep.txt' &&
                       ! grep -q 'no frames' '$d/rep.txt'"
        fi
    done
done

# A program started with standard input and output closed still gets 0 and 1 from its first
# two opens: libunwind's pipe is made while /dev/null holds those numbers.
if command -v python3 >/dev/null; then
    P="import os; a = os.open('/dev/null', os.O_RDONLY); b = os.open('/dev/null', os.O_RDONLY)
open('$T_TMP/fds.txt', 'w').write('%d %d' % (a, b))"
    preloaded all "$T_TMP/fds.json" python3 -c "$P" 0<&- 1>&- 2>"$T_TMP/fds.err"
    check "closed stdio: the program's first opens still take 0 and 1 (got '$(cat "$T_TMP/fds.txt")')" \
        test "$(cat "$T_TMP/fds.txt")" = "0 1"
else
    skip "closed stdio: python3 not installed"
fi

# ---- collapsed and svg -----------------------------------------------------------------------
R=$T_TMP/all.json
"$PREOOM" report "$R" --format collapsed --bytes usable >"$T_TMP/c.txt"
check "collapsed: every line is 'a;b;c COUNT'" \
    awk 'NF < 2 || $NF !~ /^[0-9]+$/ { bad = 1 } END { exit bad || NR == 0 }' "$T_TMP/c.txt"
alpha=$(awk '$1=="leak_alpha"{print $2}' "$T_TMP/all.expect")
sum=$(awk '{ n = split($0, a, " "); if ($0 ~ /;leak_alpha [0-9]+$/) s += a[n] } END { print s + 0 }' "$T_TMP/c.txt")
check "collapsed: root first, leak_alpha's live bytes $sum = $alpha" test "$sum" = "$alpha"
# paths() is inlined into main: its frame is shown all the same.
check "collapsed: main comes before leak_alpha" grep -Eq 'main;(paths;)?run_path;leak_alpha ' "$T_TMP/c.txt"
"$PREOOM" report "$R" --format collapsed --weight count | grep -q ';leak_beta [0-9]' &&
    ok "collapsed: --weight count" || fail "collapsed: --weight count"
"$PREOOM" report "$R" --format svg --weight peak -o "$T_TMP/f.svg"
if command -v xmllint >/dev/null; then
    check "svg: well-formed XML (xmllint)" xmllint --noout "$T_TMP/f.svg"
else
    check "svg: structural check" sh -c "head -c 200 '$T_TMP/f.svg' | grep -q '<svg' && tail -n1 '$T_TMP/f.svg' | grep -q '</svg>'"
fi
check "svg: names the leaking functions" grep -q 'leak_gamma' "$T_TMP/f.svg"

# ---- bad input ----------------------------------------------------------------------------------
printf '{"pid": 1, "stacks": {"version": 1, "mode": "all", "sites": [' >"$T_TMP/bad.json"
"$PREOOM" report "$T_TMP/bad.json" >/dev/null 2>"$T_TMP/bad.err"
rc=$?
check "bad report: exit 1 with one line (rc $rc)" \
    sh -c "[ $rc -eq 1 ] && [ \$(wc -l <'$T_TMP/bad.err') -eq 1 ]"

# ---- on demand -------------------------------------------------------------------------------------
GO=$T_TMP/go
bg env PREOOM_STACKS=all LD_PRELOAD="$LIB" "$LEAKY" wait "$GO" >"$T_TMP/wait.out"
pid=$BG_PID
for _ in $(seq 100); do grep -q ready "$T_TMP/wait.out" 2>/dev/null && break; sleep 0.05; done
"$PREOOM" report "$pid" >"$T_TMP/pid.txt" 2>"$T_TMP/pid.err"
rc=$?
check "on demand: preoom report PID exits 0 (rc $rc: $(head -c 200 "$T_TMP/pid.err"))" test $rc -eq 0
check "on demand: the running process's leak_alpha is there" grep -q '^    leak_alpha' "$T_TMP/pid.txt"
check "on demand: the dump file was cleaned up" \
    sh -c "! ls /tmp/preoom-report.$T_REG.$pid.json 2>/dev/null"
touch "$GO"
wait "$pid"
check "on demand: the process ran on and exited 0" test $? -eq 0
"$PREOOM" report 999999999 >/dev/null 2>&1
check "on demand: an unknown pid is an error" test $? -eq 1
t_done

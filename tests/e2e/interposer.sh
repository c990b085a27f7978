#!/usr/bin/env bash
# tests/e2e/interposer.sh — libpreoom.so's counts and hard cases on our own test programs:
# accuracy through every entry point, fork, fork+exec, dlopen/dlclose, C++ new/delete,
# allocation before our constructor, 16 threads churning, the exit report and the settings.
. "$(dirname "$0")/lib.sh"

[ -f "$LIB" ] || { fail "libpreoom.so not built ($LIB)"; t_done; }

# Accuracy: writes 128 MiB, so inside a memory cgroup when we can make one.
if is_root && cg=$(cg_create accuracy $((768 << 20))); then
    out=$(bash -c 'echo $$ >"'"$cg"'/cgroup.procs"; exec env LD_PRELOAD="'"$LIB"'" "'"$PROG"'/accuracy"')
    echo "$out"
else
    skip "accuracy in a memory cgroup: not root, running without a cgroup (writes 128 MiB)"
    LD_PRELOAD=$LIB "$PROG/accuracy"
fi

LD_PRELOAD=$LIB "$PROG/forker" fork
LD_PRELOAD=$LIB "$PROG/dl" "$PROG/libdlalloc.so"
out=$(LD_PRELOAD=$LIB "$PROG/cxx"); echo "$out" | grep -- ' - '
bare=$("$PROG/cxx")
check "C++ program: same output with and without the preload" [ "$(echo "$out" | head -1)" = "$bare" ]

# dlsym that calls calloc before the real symbols are known: the bootstrap arena serves it,
# and everything still counts right (the accuracy checks, run again under it).
out=$(LD_PRELOAD="$PROG/libdlsymcalloc.so $LIB" "$PROG/accuracy" 2>&1); rc=$?
check "an allocating dlsym ahead of ours: the program runs, exit 0" [ "$rc" -eq 0 ]
nboot=$(sed -n 's/^dlsymcalloc: \([0-9]*\) of .*/\1/p' <<<"$out")
check "an allocating dlsym ahead of ours: its blocks came from the bootstrap arena (${nboot:-none})" \
    [ "${nboot:-0}" -ge 1 ]
check "an allocating dlsym ahead of ours: every accuracy check still holds ($(grep -c '^ok' <<<"$out") ok)" \
    bash -c '! grep -q "^not ok" <<<"$1" && [ "$(grep -c "^ok" <<<"$1")" -gt 40 ]' _ "$out"

# Allocation before our constructor (another preloaded library's constructor), both orders.
for order in "$PROG/libearlyalloc.so $LIB" "$LIB $PROG/libearlyalloc.so"; do
    r=$(LD_PRELOAD="$order" "$PROG/cxx" 2>&1 | head -1)
    check "allocating constructor preloaded beside ours ($(basename ${order%% *}) first)" [ "$r" = "$bare" ]
done

# The exit report: valid JSON with the keys the issue names, %p expanded.
rep=$T_TMP/rep.%p.json
LD_PRELOAD=$LIB PREOOM_REPORT=$rep "$PROG/churn" 16 20000 >"$T_TMP/churn.out"
check "16-thread churn exits 0 under the preload" [ $? -eq 0 ]
f=$(ls "$T_TMP"/rep.*.json 2>/dev/null | head -1)
check "report written with %p expanded to the pid" [ -n "$f" ]
if [ -n "$f" ]; then
    check "report is valid JSON" python3 -m json.tool "$f" >/dev/null
    missing=""
    for k in pid committed touched peak_committed peak_touched malloc mmap brk slack exposure; do
        grep -q "\"$k\": " "$f" || missing="$missing $k"
    done
    check "report has every key (missing:${missing:-none})" [ -z "$missing" ]
    # Every thread freed its working set: what is left is the program's few small blocks.
    m=$(json_get "$f" malloc)
    check "churn: live malloc bytes back near zero at exit ($m)" [ "$m" -lt 1048576 ]
    calls=$(python3 -c "import json,sys; d=json.load(open('$f')); print(d['calls']['malloc'])")
    check "churn: malloc calls counted ($calls >= 16 x 20000)" [ "$calls" -ge 320000 ]
    pk=$(json_get "$f" peak_committed)
    # 16 threads x 256 blocks of mean ~64 KiB: tens of MiB at the peak.
    check "churn: peak committed seen ($pk bytes)" [ "$pk" -gt $((16 << 20)) ]
    pid=$(json_get "$f" pid)
    check "report names the process's pid" [ "$f" = "$T_TMP/rep.$pid.json" ]
fi

# fork + exec: children inherit the preload and report too.
rm -f "$T_TMP"/rep.*.json
LD_PRELOAD=$LIB PREOOM_REPORT=$rep "$PROG/forker" exec 20 "$PROG/churn" 1 100 >/dev/null
n=$(ls "$T_TMP"/rep.*.json 2>/dev/null | wc -l)
check "fork+exec: 20 exec'd children and the parent each wrote a report ($n of 21)" [ "$n" -eq 21 ]

# Settings: a bad value gets one line naming it and the default; the host runs on.
err=$(LD_PRELOAD=$LIB PREOOM_INTERVAL_MS=fast PREOOM_SAMPLE_BYTES=12XB PREOOM_STACKS=maybe \
      PREOOM_REGISTRY=../etc/passwd /bin/echo hello 2>&1 >"$T_TMP/echo.out")
check "bad settings: the host's output is unchanged" [ "$(cat "$T_TMP/echo.out")" = hello ]
check "bad PREOOM_INTERVAL_MS named with its default" grep -q "PREOOM_INTERVAL_MS='fast' is not .*; using 100" <<<"$err"
check "bad PREOOM_SAMPLE_BYTES named with its default" grep -q "PREOOM_SAMPLE_BYTES='12XB' is not .*; using 512KiB" <<<"$err"
check "bad PREOOM_STACKS named with its default" grep -q "PREOOM_STACKS='maybe' is not .*; using off" <<<"$err"
check "a registry name with a path in it is refused" grep -q "PREOOM_REGISTRY='../etc/passwd' is not" <<<"$err"
check "one line per bad setting (4)" [ "$(grep -c 'is not' <<<"$err")" -eq 4 ]
out=$(LD_PRELOAD=$LIB PREOOM_VERBOSE=1 PREOOM_INTERVAL_MS=250 /bin/true 2>&1)
check "PREOOM_VERBOSE=1 prints the effective settings" grep -q "PREOOM_INTERVAL_MS=250" <<<"$out"
err=$(LD_PRELOAD=$LIB PREOOM_REPORT=/nonexistent-dir/x.json /bin/true 2>&1; echo "rc=$?")
check "an unwritable report path: one line, exit status kept" \
    bash -c '[ "$(grep -c "cannot write report" <<<"$1")" -eq 1 ] && grep -q "rc=0" <<<"$1"' _ "$err"

# Exit status and errno behaviour pass through unchanged.
LD_PRELOAD=$LIB sh -c 'exit 7'; check "exit status passes through (7)" [ $? -eq 7 ]
a=$(ls /nonexistent-preoom 2>&1; echo "rc=$?"); b=$(LD_PRELOAD=$LIB ls /nonexistent-preoom 2>&1; echo "rc=$?")
check "errors and their errno text pass through unchanged" [ "$a" = "$b" ]
t_done

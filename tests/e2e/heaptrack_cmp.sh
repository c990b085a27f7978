#!/usr/bin/env bash
# tests/e2e/heaptrack_cmp.sh — preoom's call-site report against heaptrack's on a real
# program (issue 14): gcc's cc1 compiling one of our own source files (tools/stackreport.c,
# -O2 -g), under PREOOM_STACKS=all and under heaptrack. The top 5 stacks by leaked bytes and
# by bytes at the heap's peak (heaptrack_print's flame graph costs "leaked" and "peak") must be
# the same in the same order: the same frames, bytes within 1%; so must the heap's peak. The
# program's own mappings (cc1's garbage collector maps its pages) are preoom's alone:
# heaptrack does not follow mmap. Stacks through static initialisers (call_init) are left out on both sides:
# heaptrack's own libstdc++ allocates its emergency pool there, which cc1's run without
# heaptrack has not. Skipped, with a line, when heaptrack or cc1 is not installed. Runs inside
# a 512 MiB memory cgroup when root; heaptrack's interpreting process holds about 170 MiB for
# this file (preload/stacks.c took more than 512 MiB), and the test checks no OOM kill came.
. "$(dirname "$0")/lib.sh"
PREOOM=$B/preoom
HT=$(command -v heaptrack || true)
HTP=$(command -v heaptrack_print || true)
CC1=$(gcc -print-prog-name=cc1 2>/dev/null)
[ -n "$HT" ] && [ -n "$HTP" ] || { skip "heaptrack_cmp: heaptrack is not installed (Debian package heaptrack)"; t_done; }
[ -x "$CC1" ] || { skip "heaptrack_cmp: gcc's cc1 not found"; t_done; }
for f in "$LIB" "$PREOOM"; do [ -e "$f" ] || { skip "heaptrack_cmp: $f not built"; t_done; }; done
CG=
if is_root && CG=$(cg_create htcmp $((512 << 20)) 2>/dev/null); then :; else CG=; fi
run_in_cg() {
    if [ -n "$CG" ]; then
        sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG" "$@"
    else
        "$@"
    fi
}

# cc1 straight (the gcc driver would be what heaptrack traces), with the arguments the
# driver gives it (gcc -###), the output moved to a file of each run's own.
line=$(cd "$T_TMP" && gcc -### -std=gnu11 -D_GNU_SOURCE -I "$TOP/include" -I "$TOP/preload" \
    -I "$TOP/tools" -O2 -g -c "$TOP/tools/stackreport.c" -o "$T_TMP/x.o" 2>&1 | grep -m1 '/cc1 ')
eval "cmd=($line)"
check "gcc -### names cc1 ($CC1)" test "${cmd[0]:-}" = "$CC1"
cc1_run() { # OUT.s PREFIX...: cc1 with its -o pointed at OUT.s
    local out=$1 a i; shift
    a=("${cmd[@]:1}")
    for ((i = 0; i < ${#a[@]}; i++)); do [ "${a[$i]}" = -o ] && a[$((i + 1))]=$out; done
    run_in_cg "$@" "$CC1" "${a[@]}"
}
cc1_run "$T_TMP/p.s" env PREOOM_STACKS=all PREOOM_REPORT="$T_TMP/p.json" LD_PRELOAD="$LIB" \
    2>"$T_TMP/p.err"
rc=$?
check "cc1 under the preload compiles (rc $rc) and writes its report" \
    sh -c "[ $rc -eq 0 ] && [ -s '$T_TMP/p.json' ] && [ -s '$T_TMP/p.s' ]"
cc1_run "$T_TMP/h.s" "$HT" -o "$T_TMP/ht" >"$T_TMP/heaptrack.log" 2>&1
rc=$?
ht_file=$(ls "$T_TMP"/ht.* 2>/dev/null | head -1)
check "cc1 under heaptrack exits 0 (rc $rc) and writes its data ($ht_file)" \
    sh -c "[ $rc -eq 0 ] && [ -s '$ht_file' ]"
[ -n "$CG" ] && check "no OOM kill in the test's cgroup" test "$(cg_oom_kills "$CG")" = 0
check "both compilations give the same assembly" cmp -s "$T_TMP/p.s" "$T_TMP/h.s"

# top5 FILE: "BYTES<TAB>INNERMOST<TAB>STACK" of the 5 heaviest stacks ("a;b;c COST", root
# first), identical stacks added up. Frames are compared by name: heaptrack's may end in
# " (file.c)" and its stacks in ';'; a frame without a symbol is the call's address in both,
# absolute in heaptrack's and "module+0x..." from the module's load bias in preoom's, which
# for cc1 (not position independent: its bias is 0) are the same once "module+" is cut.
top5() {
    grep -v -e call_init -e '\[mmap\]' "$1" | awk '{ n = split($0, a, " "); c = a[n];
            s = substr($0, 1, length($0) - length(c) - 1); sub(/;$/, "", s);
            m = split(s, f, ";"); s = "";
            for (i = 1; i <= m; i++) { g = f[i]; sub(/ \([^()]*\)$/, "", g); sub(/^[^;]*\+0x/, "0x", g);
                s = s (i > 1 ? ";" : "") g }
            t[s] += c }
        END { for (k in t) if (t[k] > 0) { m = split(k, f, ";"); print t[k] "\t" f[m] "\t" k } }' |
        sort -t$'\t' -k1,1nr -k3 | head -5
}
for kind in leaked peak; do
    case $kind in leaked) w=live ;; peak) w=peak ;; esac
    "$HTP" -f "$ht_file" -t 0 --disable-builtin-suppressions -F "$T_TMP/h.$kind" \
        --flamegraph-cost-type "$kind" >/dev/null 2>&1
    "$PREOOM" report "$T_TMP/p.json" --format collapsed --weight "$w" >"$T_TMP/p.$kind" 2>/dev/null
    top5 "$T_TMP/h.$kind" >"$T_TMP/h5.$kind"
    top5 "$T_TMP/p.$kind" >"$T_TMP/p5.$kind"
    check "$kind: heaptrack has 5 stacks to compare" test "$(wc -l <"$T_TMP/h5.$kind")" -eq 5
    for i in 1 2 3 4 5; do
        IFS=$'\t' read -r hb hf hs < <(sed -n "${i}p" "$T_TMP/h5.$kind")
        IFS=$'\t' read -r pb pf ps < <(sed -n "${i}p" "$T_TMP/p5.$kind")
        check "$kind #$i: preoom '$pf' $pb bytes, heaptrack '$hf' $hb bytes, the same $(echo "$hs" | tr ';' '\n' | wc -l) frames" \
            awk -v a="${pb:-0}" -v b="${hb:-0}" -v f="$ps" -v g="$hs" \
            'BEGIN { d = a - b; if (d < 0) d = -d; exit !(b > 0 && f == g && d <= b / 100) }'
    done
done
# The heap's peak itself: the sum of the peak costs (heaptrack's, and the shares preoom's
# header adds up), the same stacks left out.
total() { grep -v -e call_init -e '\[mmap\]' "$1" | awk '{ s += $NF } END { print s + 0 }'; }
hp=$(total "$T_TMP/h.peak")
pp=$(total "$T_TMP/p.peak")
# heaptrack's own figure for the same compilation moves between runs (by 32 KiB here: a buffer
# whose life straddles the peak), so a second heaptrack run is taken and preoom's peak must
# be within 1% of one of the two.
cc1_run "$T_TMP/h2.s" "$HT" -o "$T_TMP/hu" >/dev/null 2>&1
ht2=$(ls "$T_TMP"/hu.* 2>/dev/null | head -1)
hp2=0
if [ -n "$ht2" ]; then
    "$HTP" -f "$ht2" -t 0 --disable-builtin-suppressions -F "$T_TMP/h2.peak" \
        --flamegraph-cost-type peak >/dev/null 2>&1
    hp2=$(total "$T_TMP/h2.peak")
fi
check "the heap's peak: preoom $pp bytes, heaptrack $hp and $hp2 bytes in two runs (within 1% of one)" \
    awk -v a="$pp" -v b="$hp" -v c="$hp2" 'function ok(x) { d = a - x; if (d < 0) d = -d; return x > 0 && d <= x / 100 }
        BEGIN { exit !(ok(b) || ok(c)) }'
t_done

#!/usr/bin/env bash
# tests/e2e/cxxleak.sh — call-site reports read as a leak hunter reads heaptrack's (issue 14):
# a C++ program of known leaks (containers, make_shared on adjacent lines, strings, a thread, a
# function pointer, a C library's inlined helper) under PREOOM_STACKS=all; every leaking place
# of the program is named by its own function (demangled) and line, with exactly the bytes it
# asked for; allocator and preload frames are folded away and the preload's own allocations
# are not listed. Then diffs: two snapshots of a growing process (--save), compared, name the
# growing site first; --every --diff shows growth live; the differential flame graph is
# well-formed. Runs inside a 256 MiB memory cgroup when root.
. "$(dirname "$0")/lib.sh"
PREOOM=$B/preoom
CXXLEAK=$PROG/cxxleak
for f in "$LIB" "$PREOOM" "$CXXLEAK" "$PROG/libinlhelp.so" "$PROG/grow"; do
    [ -e "$f" ] || { skip "cxxleak: $f not built"; t_done; }
done
CG=
if is_root && CG=$(cg_create cxxleak $((256 << 20)) 2>/dev/null); then :; else CG=; fi
run_in_cg() {
    if [ -n "$CG" ]; then
        sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG" "$@"
    else
        "$@"
    fi
}

# ---- a C++ program's leaks -----------------------------------------------------------------
R=$T_TMP/cx.json
run_in_cg env PREOOM_STACKS=all PREOOM_REPORT="$R" LD_PRELOAD="$LIB" "$CXXLEAK" "$PROG" \
    >"$T_TMP/expect" 2>"$T_TMP/run.err"
check "cxxleak runs and writes its report" test -s "$R"
"$PREOOM" report "$R" --top 1000 >"$T_TMP/r.txt" 2>"$T_TMP/r.err"
check "preoom report FILE succeeds" test -s "$T_TMP/r.txt"
check "the header says requested bytes are shown" grep -q '^bytes: requested' "$T_TMP/r.txt"

# by_place: "FUNC LINE BYTES BLOCKS" per place of cxxleak.cc: each leaked site is put at its
# first frame in cxxleak.cc (frames are "    FUNC  FILE:LINE[  (inlined)]"), sites at one
# place added up.
by_place() {
    awk '/^== / && ++tables > 1 { exit }
        /^#[0-9]+ live/ { split($0, h, " "); b = h[3]; n = h[6]; want = 1; next }
        want && /^    / {
            line = substr($0, 5); split(line, part, "  ");
            if (part[2] ~ /cxxleak\.cc:[0-9]+$/) {
                l = part[2]; sub(/.*:/, "", l); key = part[1] " " l
                bytes[key] += b; blocks[key] += n; want = 0 }
        }
        END { for (k in bytes) print k, bytes[k], blocks[k] }' "$1"
}
by_place "$T_TMP/r.txt" >"$T_TMP/places"
n=0
while read -r _ fn line bytes blocks; do
    n=$((n + 1))
    got=$(awk -v f="$fn" -v l="$line" '$1 == f && $2 == l { print $3, $4 }' "$T_TMP/places")
    check "$fn at cxxleak.cc:$line leaks $bytes requested bytes in $blocks blocks (got '$got')" \
        test "$got" = "$bytes $blocks"
done < <(grep '^EXPECT ' "$T_TMP/expect")
check "the program announced its 9 leaking places (got $n)" test "$n" -eq 9
# main's own places hold the runtime's (stdio's buffer, dlopen's, the thread's TLS) and the
# library's blocks: only the leaking functions are checked for strays.
extra=$(awk 'NR == FNR { want[$2 " " $3] = 1; next } $1 != "main" && !(($1 " " $2) in want)' \
    <(grep '^EXPECT ' "$T_TMP/expect") "$T_TMP/places")
check "no other place of cxxleak.cc's functions leaks (got '$extra')" test -z "$extra"

# The library's helper, inlined: shown with its own line, then the caller at the call's line.
make_line=$(grep -n 'INLHELP_MAKE_LINE' "$TOP/tests/prog/lib/inlhelp.c" | cut -d: -f1)
call_line=$(grep -n 'INLHELP_CALL_LINE' "$TOP/tests/prog/lib/inlhelp.c" | cut -d: -f1)
read -r _ _ lbytes lblocks < <(grep '^EXPECT-LIB ' "$T_TMP/expect")
got=$(awk -v m="inlhelp.c:$make_line" -v c="inlhelp.c:$call_line" '
    /^== / && ++tables > 1 { exit }
    /^#[0-9]+ live/ { split($0, h, " "); hdr = h[3] " " h[6]; getline a; getline b;
        if (a ~ ("^    inlhelp_make  .*" m "  \\(inlined\\)$") && b ~ ("^    inlhelp_outer  .*" c "$"))
            print hdr }' "$T_TMP/r.txt")
check "the library's inlined helper: inlhelp_make at inlhelp.c:$make_line (inlined) in inlhelp_outer at :$call_line, $lbytes bytes in $lblocks blocks (got '$got')" \
    test "$got" = "$lbytes $lblocks"

# Folding and noise.
check "names are demangled (no _Z symbol in any frame)" \
    sh -c "! grep -E '^    _Z' '$T_TMP/r.txt'"
check "no site starts in an allocation function or the preload" \
    sh -c "! grep -A1 -E '^#[0-9]+ live' '$T_TMP/r.txt' | grep -E '^    (operator new|malloc|calloc|realloc|libpreoom)'"
check "no preload frame anywhere" sh -c "! grep -q libpreoom '$T_TMP/r.txt'"
check "the preload's own allocation is left out, and said so" \
    grep -q "^not shown: [0-9]* sites of preoom's own" "$T_TMP/r.txt"
check "the freed churn leaks nothing" \
    sh -c "! awk '/^== / && ++tables > 1 { exit } { print }' '$T_TMP/r.txt' | grep -q '^    churn()'"
"$PREOOM" report "$R" --top 1000 --bytes usable >"$T_TMP/u.txt" 2>&1
check "--bytes usable says so" grep -q '^bytes: usable' "$T_TMP/u.txt"
got=$(by_place "$T_TMP/u.txt" | awk '$1 == "leak_strings()" { print $3 }')
want=$(grep '^EXPECT leak_strings()' "$T_TMP/expect" | awk '{ print $4 }')
check "--bytes usable: the strings show more than the $want bytes asked for (got $got)" \
    test "${got:-0}" -gt "$want"
"$PREOOM" report "$R" --bytes sideways >/dev/null 2>"$T_TMP/bad.err"
rc=$?
check "a bad --bytes is a usage error (rc $rc) with one line" \
    sh -c "[ $rc -eq 2 ] && [ \$(wc -l <'$T_TMP/bad.err') -eq 1 ]"

# ---- the heap's peak, temporaries, sample mode ------------------------------------------------
# heaptrack's peak: each site's live bytes when the heap peaked. cxxleak's heap peaks in churn()
# or after it, with every leak of the heap already made and none freed: the peak holds them
# all, and at most churn()'s one vector (4000 bytes) and stdio's buffer more. Its second
# thread makes the preload find the peak to within each thread's unadded changes (4 KiB at
# this size, preload/stacks.c), so two of those are allowed below.
peak=$(sed -n 's/^peak heap: \([0-9]*\) bytes requested.*/\1/p' "$T_TMP/r.txt")
heap_leak=$(awk '/^== / && ++tables > 1 { exit } /^#[0-9]+ live/ && !/mapped/ { s += $3 }
    END { print s + 0 }' "$T_TMP/r.txt")
check "the heap's peak ($peak) holds every heap leak ($heap_leak, less 8 KiB) and at most 8 KiB more" \
    sh -c "[ -n '$peak' ] && [ '$peak' -ge \$(( $heap_leak - 8192 )) ] && [ '$peak' -le \$(( $heap_leak + 8192 )) ]"
tmp=$(awk '/^== top sites by temporary/ { on = 1; next } /^== / { on = 0 }
    on && /^#1 / { want = 1; next } on && want && /cxxleak\.cc:/ { print $1; exit }' "$T_TMP/r.txt")
check "the most temporary allocations come from churn() (got '$tmp')" test "$tmp" = "churn()"
run_in_cg env PREOOM_STACKS=sample PREOOM_SAMPLE_BYTES=64KiB PREOOM_REPORT="$T_TMP/s.json" LD_PRELOAD="$LIB" "$CXXLEAK" \
    >/dev/null 2>&1
"$PREOOM" report "$T_TMP/s.json" --top 1000 >"$T_TMP/s.txt" 2>&1
got=$(grep -A1 'mapped (mmap)' "$T_TMP/s.txt" | awk '/^#/ { print $3, $6 } /^    / { print $1 }' | head -2 | tr '\n' ' ')
check "sample mode: mappings are exact, not estimated (got '$got')" \
    test "$got" = "2097152 2 leak_mappings() "
check "sample mode: estimates are marked and their error stated" \
    sh -c "grep -q 'live ~' '$T_TMP/s.txt' && grep -q '(+-[0-9]*%)' '$T_TMP/s.txt'"

# ---- pprof ---------------------------------------------------------------------------------
# Decoded by a real protobuf reader (protoc) against profile.proto's messages, written out here
# from the format's published field numbers (only the fields the checks read, and the ones
# preoom writes; protoc keeps the rest as unknown fields).
"$PREOOM" report "$R" --format pprof -o "$T_TMP/p.pb.gz" 2>"$T_TMP/pprof.err"
check "--format pprof writes a gzip file" sh -c "gzip -t '$T_TMP/p.pb.gz'"
if command -v protoc >/dev/null; then
    cat >"$T_TMP/profile.proto" <<'PROTO'
syntax = "proto3";
package prof;
message ValueType { int64 type = 1; int64 unit = 2; }
message Sample { repeated uint64 location_id = 1; repeated int64 value = 2; }
message Mapping { uint64 id = 1; uint64 memory_start = 2; uint64 memory_limit = 3;
  uint64 file_offset = 4; int64 filename = 5; int64 build_id = 6; bool has_functions = 7;
  bool has_filenames = 8; bool has_line_numbers = 9; bool has_inline_frames = 10; }
message Line { uint64 function_id = 1; int64 line = 2; }
message Location { uint64 id = 1; uint64 mapping_id = 2; uint64 address = 3;
  repeated Line line = 4; bool is_folded = 5; }
message Function { uint64 id = 1; int64 name = 2; int64 system_name = 3; int64 filename = 4;
  int64 start_line = 5; }
message Profile { repeated ValueType sample_type = 1; repeated Sample sample = 2;
  repeated Mapping mapping = 3; repeated Location location = 4; repeated Function function = 5;
  repeated string string_table = 6; int64 drop_frames = 7; int64 keep_frames = 8;
  int64 time_nanos = 9; int64 duration_nanos = 10; ValueType period_type = 11;
  int64 period = 12; repeated int64 comment = 13; int64 default_sample_type = 14; }
PROTO
    gunzip -c "$T_TMP/p.pb.gz" | (cd "$T_TMP" && protoc --decode=prof.Profile profile.proto) \
        >"$T_TMP/p.decoded" 2>"$T_TMP/protoc.err"
    check "pprof: protoc decodes it as a Profile ($(head -c 200 "$T_TMP/protoc.err"))" \
        test -s "$T_TMP/p.decoded"
    check "pprof: no field protoc does not know" sh -c "! grep -qE '^ *[0-9]+:' '$T_TMP/p.decoded'"
    check "pprof: the string table starts with \"\"" \
        sh -c "grep -m1 '^string_table:' '$T_TMP/p.decoded' | grep -qx 'string_table: \"\"'"
    check "pprof: the four value types of a heap profile" \
        sh -c "for s in alloc_objects alloc_space inuse_objects inuse_space; do grep -q \"^string_table: \\\"\$s\\\"\" '$T_TMP/p.decoded' || exit 1; done"
    check "pprof: demangled names with their lines" \
        sh -c "grep -q '^string_table: \"leak_strings()\"' '$T_TMP/p.decoded'"
    # inuse_space (each sample's 4th value) adds up to the leaked bytes of the text header.
    got=$(awk '/^sample \{/ { n = 0; s = 1 } s && /^  value:/ { n++; if (n == 4) sum += $2 }
        /^\}/ { s = 0 } END { print sum + 0 }' "$T_TMP/p.decoded")
    want=$(sed -n 's/^total: .* bytes allocated, \([0-9]*\) bytes leaked.*/\1/p' "$T_TMP/r.txt")
    check "pprof: inuse_space adds up to the $want bytes leaked (got $got)" test "$got" = "$want"
    nloc=$(grep -c '^location {' "$T_TMP/p.decoded")
    check "pprof: locations with inlined lines (some have several)" \
        sh -c "awk '/^location \\{/ { n = 0 } /^  line \\{/ { n++ } /^\\}/ && n > 1 { m = 1 } END { exit !m }' '$T_TMP/p.decoded'"
    check "pprof: $nloc locations" test "$nloc" -gt 10
else
    skip "pprof: protoc (Debian package protobuf-compiler) not installed: not decoded"
fi
# And by pprof itself, when a Go toolchain is installed (Debian's golang-go carries it).
if command -v go >/dev/null; then
    HOME=$T_TMP GOCACHE=$T_TMP/go PPROF_TMPDIR=$T_TMP timeout 120 go tool pprof -top \
        -sample_index=inuse_space "$T_TMP/p.pb.gz" >"$T_TMP/pprof.top" 2>&1
    check "go tool pprof reads it: an inuse_space profile naming leak_mappings() and leak_strings()" \
        sh -c "grep -q 'Type: inuse_space' '$T_TMP/pprof.top' && grep -q ' leak_mappings()\$' '$T_TMP/pprof.top' && grep -q ' leak_strings()\$' '$T_TMP/pprof.top'"
    # Its total is rounded to two decimals of its unit: within 1% of the leaked bytes.
    total=$(sed -n 's/^Showing nodes accounting for .* of \([0-9.]*\)\([kMG]*\)B total.*/\1 \2/p' "$T_TMP/pprof.top")
    check "go tool pprof: its total ($total B) is the $want bytes leaked, within 1%" \
        awk -v t="${total% *}" -v u="${total#* }" -v w="$want" 'BEGIN {
            m = u == "k" ? 1024 : u == "M" ? 1048576 : u == "G" ? 1073741824 : 1; b = t * m;
            d = b - w; if (d < 0) d = -d; exit !(w > 0 && t != "" && d <= w / 100) }'
else
    skip "pprof: go tool pprof (Debian package golang-go) not installed: read by protoc only"
fi
"$PREOOM" report "$R" "$R" --format pprof >/dev/null 2>"$T_TMP/pp2.err"
check "pprof of a diff is refused with one line" test "$(wc -l <"$T_TMP/pp2.err")" -eq 1

# ---- diffs of a growing process ---------------------------------------------------------------
# Started straight (no wrapper function, which would fork), so $! is grow's own pid.
if [ -n "$CG" ]; then
    bg sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG" \
        env PREOOM_STACKS=all LD_PRELOAD="$LIB" "$PROG/grow" 96 1 40 5000
else
    bg env PREOOM_STACKS=all LD_PRELOAD="$LIB" "$PROG/grow" 96 1 40 5000
fi
pid=$BG_PID
sleep 0.5
"$PREOOM" report "$pid" --save "$T_TMP/a.json" >"$T_TMP/a.txt" 2>"$T_TMP/a.err"
check "--save: the first snapshot is kept (rc $?: $(head -c 200 "$T_TMP/a.err"))" test -s "$T_TMP/a.json"
sleep 0.6
"$PREOOM" report "$pid" --save "$T_TMP/b.json" >/dev/null 2>&1
check "--save: the second snapshot is kept" test -s "$T_TMP/b.json"
check "--save: nothing is left in /tmp" sh -c "! ls /tmp/preoom-report.$T_REG.$pid.json* 2>/dev/null"
"$PREOOM" report "$T_TMP/a.json" "$T_TMP/b.json" >"$T_TMP/d.txt" 2>&1
first=$(grep -A1 '^#1 +' "$T_TMP/d.txt" | tail -1)
check "diff A B: the growing site comes first (got '$first')" \
    sh -c "echo '$first' | grep -q '^    main  .*grow\.c:[0-9]'"
grows=$(awk '/^== sites that grew/ { on = 1; next } /^== / { on = 0 } on && /^#/ { print $2 }' "$T_TMP/d.txt" | head -1)
check "diff A B: it grew by whole MiB steps (got $grows)" \
    sh -c "[ \"${grows#+}\" -ge $((1 << 20)) ] && [ \$(( ${grows#+} % (1 << 20) )) -eq 0 ]"
"$PREOOM" report "$T_TMP/b.json" --base "$T_TMP/a.json" >"$T_TMP/d2.txt" 2>&1
check "--base A is the same diff" cmp -s "$T_TMP/d.txt" "$T_TMP/d2.txt"
"$PREOOM" report "$T_TMP/a.json" "$T_TMP/b.json" --format collapsed >"$T_TMP/d.folded"
check "diff collapsed: 'stack BEFORE AFTER' lines" \
    awk 'NF < 3 || $NF !~ /^[0-9]+$/ || $(NF-1) !~ /^[0-9]+$/ { bad = 1 } END { exit bad || NR == 0 }' "$T_TMP/d.folded"
"$PREOOM" report "$T_TMP/a.json" "$T_TMP/b.json" --format svg -o "$T_TMP/d.svg"
if command -v xmllint >/dev/null; then
    check "diff svg: well-formed XML" xmllint --noout "$T_TMP/d.svg"
else
    skip "diff svg: xmllint (libxml2-utils) not installed"
fi
check "diff svg: the growing frame is drawn red" grep -q 'fill="rgb(255,[0-9]*,[0-9]*)"' "$T_TMP/d.svg"
"$PREOOM" report "$pid" --every 300ms --diff --count 2 >"$T_TMP/live.txt" 2>&1
check "--every 300ms --diff: growth of a running process, main first" \
    sh -c "grep -A1 '^#1 +' '$T_TMP/live.txt' | grep -q '^    main  .*grow\.c'"
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
t_done

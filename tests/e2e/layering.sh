#!/usr/bin/env bash
# tests/e2e/layering.sh — the boundaries the tree promises: tools/ cannot include the
# preload's private header (the compiler is given no path to it), no file under tools/ names
# a preload/ header, and `preoom` and `preoomd` link no libunwind (the floor, common/, is all
# they take from the preload's side); no import circle among the preload's modules (as the
# linker sees them: which object uses which object's symbols, tests/e2e/imports.py). Also: the one JSON escaper turns a process name's
# bytes >= 0x7f into \u00XX, so `preoom ls --json` and `preoom explain --json` stay valid
# JSON whatever a process calls itself.
. "$(dirname "$0")/lib.sh"

for f in "$B/preoom" "$B/preoomd" "$LIB"; do
    [ -e "$f" ] || { skip "layering: $f not built"; t_done; }
done
cd "$TOP" || exit 1

# 1. The compiler's view: with the tools' include path, the preload's header does not exist.
echo '#include "internal.h"' >"$T_TMP/probe.c"
if cc -std=gnu11 -Iinclude -Icommon -Itools -fsyntax-only "$T_TMP/probe.c" 2>/dev/null; then
    fail "tools' include path reaches preload/internal.h"
else
    ok "tools' include path does not reach preload/internal.h"
fi
echo '#include "floor.h"' >"$T_TMP/probe.c"
check "tools' include path reaches the floor (common/floor.h)" \
    cc -std=gnu11 -D_GNU_SOURCE -Iinclude -Icommon -Itools -fsyntax-only "$T_TMP/probe.c"
# 2. No file under tools/ names a preload header, by name or by path.
hdrs=$(cd preload && ls -- *.h)
bad=""
for h in $hdrs; do bad+=$(grep -ln "#include *[<\"]\(\.\./\)*\(preload/\)*$h[>\"]" tools/*.[ch] 2>/dev/null); done
bad+=$(grep -ln '#include *["<][^">]*preload/' tools/*.[ch] 2>/dev/null)
check "no file under tools/ includes a preload/ header (${bad:-none})" [ -z "$bad" ]
# 3. No libunwind in the tools.
for t in preoom preoomd; do
    check "$t: ldd shows no libunwind" bash -c '! ldd "$0" | grep -qi unwind' "$B/$t"
    check "$t: nm shows no libunwind symbol (unw_*, _U*)" bash -c '! nm "$0" | grep -Eq " [UTtDd] (unw_|_U[A-Z]|_Ux86)"' "$B/$t"
done
check "libpreoom.so itself still links libunwind (the check above can see it)" \
    bash -c 'ldd "$0" | grep -qi unwind' "$LIB"

# 4. No import circle in the preload: each module only calls modules below it.
if command -v python3 >/dev/null && command -v nm >/dev/null; then
    python3 "$TOP/tests/e2e/imports.py" "$B" >"$T_TMP/imports.txt" 2>&1; rc=$?
    grep '^circle' "$T_TMP/imports.txt"
    check "imports.py read the preload's objects (an edge hooks -> account among them)" \
        grep -q '^edge hooks -> account ' "$T_TMP/imports.txt"
    check "no import circle among the preload's modules" [ "$rc" -eq 0 ]
else
    skip "layering: python3 or nm (binutils) is not installed (import circles)"
fi

# 5. A process whose name holds bytes >= 0x7f: valid JSON from ls and explain.
if command -v python3 >/dev/null; then
    name=$(printf 'sl\377\303')
    cp /bin/sleep "$T_TMP/$name"
    bg env LD_PRELOAD="$LIB" "$T_TMP/$name" 30; sp=$BG_PID
    for _ in $(seq 60); do "$B/preoom" ls --json 2>/dev/null | grep -q "\"pid\": $sp" && break; sleep 0.05; done
    "$B/preoom" ls --json >"$T_TMP/ls.json" 2>/dev/null
    valid() { python3 -c 'import json,sys; d=open(sys.argv[1],"rb").read(); d.decode("utf-8"); json.loads(d); assert b"\\u00ff" in d, "no escape"' "$1"; }
    check "ls --json with a process name of bytes >= 0x7f: valid JSON, the bytes as \\u00XX" valid "$T_TMP/ls.json"
    # explain names processes as /proc shows them (made printable); what it prints raw is
    # the cgroup path, which may hold any byte but '/'.
    if is_root && read -r kind root < <(cg_root); then
        cgd="$root/preoom-test-$(printf '\377')-$$"
        if mkdir "$cgd" 2>/dev/null; then
            # A limit, so explain measures against this cgroup and names it.
            if [ "$kind" = v2 ]; then echo 104857600 >"$cgd/memory.max"; else echo 104857600 >"$cgd/memory.limit_in_bytes"; fi
            "$B/preoom" explain --json --cgroup "$cgd" >"$T_TMP/ex.json" 2>"$T_TMP/ex.err"
            check "explain --json with a cgroup path of bytes >= 0x7f: valid JSON, the bytes as \\u00XX" valid "$T_TMP/ex.json"
            rmdir "$cgd"
        else
            skip "explain: cannot make a cgroup named with a byte >= 0x7f"
        fi
    else
        skip "explain: needs root and a memory cgroup for a cgroup path of bytes >= 0x7f"
    fi
    kill "$sp"; wait "$sp" 2>/dev/null
else
    skip "layering: python3 is not installed (JSON check)"
fi
t_done

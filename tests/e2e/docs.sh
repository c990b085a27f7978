#!/usr/bin/env bash
# tests/e2e/docs.sh — the documentation runs: every command in README's ```sh blocks and in
# the EXAMPLES section of each man page is run as written, and a command that fails fails the
# test. The only substitution is the one the text itself states: a man page whose EXAMPLES
# say to use build/... for the installed paths gets $BUILD first on PATH and
# build/libpreoom.so for /usr/local/lib/libpreoom.so. README's block is run from the source
# tree in one shell, line by line, as a reader would paste it. Commands a page says run
# "until stopped" count as working when they are still running after 3 s. Everything runs
# in a registry of this test's own (PREOOM_REGISTRY, an environment setting, not a text
# change); the background processes are stopped by pid, and the files the examples write are
# removed.
. "$(dirname "$0")/lib.sh"

if [ "$BUILD" != build ]; then
    skip "docs: README's commands name build/, and this run's BUILD is $BUILD"; t_done
fi
written="/tmp/r.json /tmp/flame.svg"
trap 'rm -f $written; t_cleanup' EXIT
# The %p reports the examples ask for: removed by pid at the end.
ls /tmp/[0-9]*.json 2>/dev/null | sort >"$T_TMP/reports.before"

# ---- README -------------------------------------------------------------------------------
# Each ```sh block; a line ending in "\" continues. `make demo`, `make check` and `make bench`
# are not run here: check is the suite this test is part of, demo has tests/e2e/demo.sh, bench
# takes half an hour.
awk '/^```sh$/ {on=1; next} /^```/ {on=0} on' "$TOP/README.md" |
    awk '{ if (sub(/\\$/, "")) { buf = buf $0; next } print buf $0; buf = "" }' |
    grep -vE '^\s*(#|$)' >"$T_TMP/readme.cmds"
n_readme=$(wc -l <"$T_TMP/readme.cmds")
check "README: commands found ($n_readme)" [ "$n_readme" -ge 10 ]
{
    echo 'cd "$TOP" || exit 99'
    n=0
    while IFS= read -r line; do
        n=$((n + 1))
        case "$line" in
            "make demo"*|"make check"*|"make bench"*)
                echo "echo 'docs-skip $n'"; continue ;;
        esac
        printf '%s\n' "$line"
        # Background: report the pid; foreground: the status.
        if [[ "${line%% # *}" =~ \&[[:space:]]*$ ]]; then
            echo "echo \"docs-bg $n \$!\""
        else
            echo "echo \"docs-status $n \$?\""
        fi
    done <"$T_TMP/readme.cmds"
} >"$T_TMP/readme.sh"
( export TOP; timeout 240 bash "$T_TMP/readme.sh" >"$T_TMP/readme.out" 2>"$T_TMP/readme.err" )
grep '^docs-skip ' "$T_TMP/readme.out" | while read -r _ n; do
    skip "README line $n: $(sed -n "${n}p" "$T_TMP/readme.cmds" | cut -c1-60): run by make check or tests/e2e/demo.sh, not here"
done
n=0
while IFS= read -r line; do
    n=$((n + 1))
    case "$line" in "make demo"*|"make check"*|"make bench"*) continue ;; esac
    st=$(awk -v n="$n" '$1 == "docs-status" && $2 == n {print $3}' "$T_TMP/readme.out")
    bgp=$(awk -v n="$n" '$1 == "docs-bg" && $2 == n {print $3}' "$T_TMP/readme.out")
    short=$(cut -c1-90 <<<"$line")
    if [ -n "$bgp" ]; then
        T_PIDS+=("$bgp")
        check "README line $n runs (still running in the background): $short" kill -0 "$bgp"
    elif [ "$st" = 0 ]; then
        ok "README line $n: $short"
    else
        fail "README line $n exits ${st:-without running}: $short"
        grep -v '^docs-' "$T_TMP/readme.err" | tail -n 5 | sed 's/^/#   /'
    fi
done <"$T_TMP/readme.cmds"
check "README: the flame graph was written" [ -s /tmp/flame.svg ]
# Stop what README left in the background (preoom run passes SIGTERM on to its program).
for p in "${T_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
for p in "${T_PIDS[@]}"; do wait "$p" 2>/dev/null; done
T_PIDS=()

# ---- man pages: EXAMPLES -------------------------------------------------------------------------
# roff to shell: \- is -, \(aq is ', \(dq is ", \e is \.
unroff() { sed -e 's/\\-/-/g' -e "s/\\\\(aq/'/g" -e 's/\\(dq/"/g' -e 's/\\e/\\/g'; }
for page in "$TOP"/man/*.[1-8]; do
    name=$(basename "$page")
    sed -n '/^\.SH EXAMPLES/,/^\.SH /p' "$page" >"$T_TMP/ex.roff"
    if [ ! -s "$T_TMP/ex.roff" ]; then skip "$name: no EXAMPLES section"; continue; fi
    prose=$(grep -v '^\.' "$T_TMP/ex.roff" | tr '\n' ' ')
    awk '/^\.nf/ {on=1; next} /^\.fi/ {on=0} on' "$T_TMP/ex.roff" | unroff >"$T_TMP/ex.cmds"
    # The substitution the page states, and only then.
    path=$PATH subst=""
    if grep -q 'build/preoom' "$T_TMP/ex.roff"; then path=$B:$PATH; subst=" (build/ for the installed paths, as the page says)"; fi
    until_stopped=0
    grep -q 'runs until stopped' <<<"$prose" && until_stopped=1
    mkdir -p "$T_TMP/cwd.$name"
    while IFS= read -r line; do
        [ -z "$line" ] && continue
        cmd=$line
        grep -q 'build/libpreoom.so' "$T_TMP/ex.roff" && cmd=${cmd//\/usr\/local\/lib\/libpreoom.so/$B/libpreoom.so}
        short=$(cut -c1-90 <<<"$line")
        if [[ "${cmd%% # *}" =~ \&[[:space:]]*$ ]]; then
            # A background command: started, then checked alive after the rest of the page.
            # exec all the way down: the pid is the command's, so a TERM reaches it.
            (cd "$T_TMP/cwd.$name" && PATH=$path exec bash -c "exec ${cmd%&*}" >/dev/null 2>"$T_TMP/bg.err") &
            T_PIDS+=("$!"); sleep 1
            check "$name: $short$subst (running)" kill -0 "$!"
            continue
        fi
        if [ "$until_stopped" = 1 ]; then
            (cd "$T_TMP/cwd.$name" && PATH=$path timeout 3 bash -c "$cmd" >"$T_TMP/ex.out" 2>&1); rc=$?
            if [ "$rc" -eq 124 ]; then ok "$name: $short$subst (running after 3 s)"; continue; fi
        else
            (cd "$T_TMP/cwd.$name" && PATH=$path timeout 60 bash -c "$cmd" >"$T_TMP/ex.out" 2>&1); rc=$?
            [ "$rc" -eq 0 ] && { ok "$name: $short$subst"; continue; }
        fi
        fail "$name: $short$subst: exit $rc"
        tail -n 5 "$T_TMP/ex.out" | sed 's/^/#   /'
    done <"$T_TMP/ex.cmds"
    for p in "${T_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${T_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    T_PIDS=()
done
# The %p reports written meanwhile (by pid, so nothing else is touched).
ls /tmp/[0-9]*.json 2>/dev/null | sort | comm -13 "$T_TMP/reports.before" - | xargs -r rm -f
t_done

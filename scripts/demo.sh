#!/usr/bin/env bash
# scripts/demo.sh — `make demo`: what the kernel does to a memory cgroup that overflows, then
# what preoom does to the same one.
#
# A 384 MiB memory cgroup holds four preloaded programs: the example cache (gives memory back
# when asked), a batch job, a reservation that promises far more than it touches (exposure),
# and a slow leaker. Together they want more than the cgroup has. Act 1 runs them without
# preoomd: the kernel's OOM killer picks its victim, usually the largest (the cache, which
# could have given memory back). Act 2 runs them again with preoomd watching. Each act shows
# a live usage bar with the ask, SIGTERM and SIGKILL lines marked on it, the registry's table
# (committed, touched, exposure) and, in plain words, who was asked, who gave memory back,
# who was stopped and whom the kernel killed. An act ends when its story is over (the leaker
# gone, or the kernel's kill seen), not at a fixed time. At the end, a chart of used memory
# over time for both acts, decisions marked, on the terminal and as an SVG file.
# Cleans up everything it started (by pid), also on Ctrl-C; it never touches memory outside
# its cgroup. Needs root (the cgroup).
#   DEMO_SECONDS=N (default 45): the longest an act runs (each ends when its story is over).
#   DEMO_SVG=PATH (default /tmp/preoom-demo.svg): where the chart's picture goes.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) B=$BUILD ;; *) B=$TOP/$BUILD ;; esac
SECONDS_TOTAL=${DEMO_SECONDS:-45}
SVG=${DEMO_SVG:-/tmp/preoom-demo.svg}
LIMIT_MIB=384
# preoomd's thresholds of available memory, shown on the bar as used memory.
ASK_PCT=15 TERM_PCT=10 KILL_PCT=5
REG=demo$$
TMP=$(mktemp -d "${TMPDIR:-/tmp}/preoom-demo.XXXXXX")
pids=()
cg=""
tty=0; [ -t 1 ] && tty=1
width=200; [ "$tty" -eq 1 ] && width=$(tput cols 2>/dev/null || echo 80)

stop_pids() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    sleep 0.3
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    pids=()
}
cleanup() {
    trap - EXIT INT TERM
    stop_pids
    local p
    if [ -n "$cg" ] && [ -d "$cg" ]; then
        for p in $(cat "$cg/cgroup.procs" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        for _ in 1 2 3 4 5 6 7 8 9 10; do rmdir "$cg" 2>/dev/null && break; sleep 0.2; done
    fi
    rm -f "/dev/shm/preoom.$REG" "/dev/shm/preoom.$REG.preoomd"
    [ -n "${DEMO_KEEP:-}" ] && cp -r "$TMP" "$DEMO_KEEP"
    rm -rf "$TMP"
    [ "$tty" -eq 1 ] && printf '\033[?25h'
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted, cleaning up"; exit 130' INT TERM

if [ "$(id -u)" -ne 0 ]; then
    echo "demo: needs root, to create a memory cgroup of $LIMIT_MIB MiB (run: sudo make demo)" >&2
    exit 1
fi
for f in "$B/libpreoom.so" "$B/preoomd" "$B/preoom" "$B/examples/cache" "$B/tests/prog/grow" \
    "$B/tests/prog/hold"; do
    [ -e "$f" ] || { echo "demo: $f is missing (make demo builds it)" >&2; exit 1; }
done

# The memory cgroup: v2 where it has the memory controller, else v1.
if [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
    cg=/sys/fs/cgroup/preoom-demo-$$
    mkdir "$cg" && echo $((LIMIT_MIB << 20)) >"$cg/memory.max" && echo 0 >"$cg/memory.swap.max" 2>/dev/null
    usage_file=$cg/memory.current; oom_file=$cg/memory.events
elif [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
    cg=/sys/fs/cgroup/memory/preoom-demo-$$
    mkdir "$cg" && echo $((LIMIT_MIB << 20)) >"$cg/memory.limit_in_bytes"
    usage_file=$cg/memory.usage_in_bytes; oom_file=$cg/memory.oom_control
else
    echo "demo: this machine has no memory cgroup controller" >&2
    exit 1
fi
[ -d "$cg" ] || { echo "demo: could not create the cgroup $cg" >&2; exit 1; }
oom_kills() { awk '$1 == "oom_kill" {print $2}' "$oom_file"; }
echo "demo: memory cgroup $cg (limit $LIMIT_MIB MiB), registry /dev/shm/preoom.$REG"

# The programs get names that say what they are (a process's name is its file's name).
ln -s "$B/tests/prog/grow" "$TMP/leaker"
ln -s "$B/tests/prog/grow" "$TMP/batch-job"
ln -s "$B/tests/prog/hold" "$TMP/reservation"
declare -A name_of=()
run_in_cgroup() {
    local name=$1 out=$2; shift 2
    bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cg" \
        env LD_PRELOAD="$B/libpreoom.so" PREOOM_REGISTRY="$REG" "$@" >"$out" 2>&1 &
    pids+=($!)
    name_of[$!]=$name
}

# Seconds since midnight, local time, as preoomd's log lines have it.
now_s() { date +%H:%M:%S.%N | awk -F: '{ printf "%.3f", $1 * 3600 + $2 * 60 + $3 }'; }

# preoomd's lines without the "[/cgroup/path] " that names the domain which decided.
undomain() { sed -E 's/^(preoomd [^ ]+ [a-z]+: )\[[^]]*\] /\1/' "$1" 2>/dev/null; }

# What preoomd did, in plain words, from its log (one event a line: clock, then words).
story() {
    local P='^preoomd [0-9-]+T([0-9:]+)\.[0-9]+ [a-z]+: '
    sed -n -E \
        -e "s/${P}ask pid ([0-9]+) \(([^)]*)\) uid [0-9]+ to release ([0-9.]+MiB) at ([a-z]+).*\| available [0-9.]+MiB of [0-9.]+MiB \(cgroup\), lines [0-9./]+MiB, ([0-9.]+MiB) less exposure.*/\1  asked \3 (pid \2) to give back \4 (pressure \5; exposure counted)/p" \
        -e "s/${P}ask pid ([0-9]+) \(([^)]*)\) uid [0-9]+ to release ([0-9.]+MiB) at ([a-z]+).*/\1  asked \3 (pid \2) to give back \4 (pressure \5)/p" \
        -e "s/${P}pid ([0-9]+) \(([^)]*)\) answered in ([0-9]+ms): touched memory fell ([0-9.]+MiB).*/\1  \3 (pid \2) answered in \4 and gave back \5/p" \
        -e "s/${P}pid ([0-9]+) \(([^)]*)\) did not answer.*/\1  \3 (pid \2) did not answer in time/p" \
        -e "s/${P}SIGTERM pid ([0-9]+) \(([^)]*)\).*/\1  stopped \3 (pid \2) with SIGTERM: memory still falling below the term line/p" \
        -e "s/${P}SIGKILL pid ([0-9]+) \(([^)]*)\).*/\1  killed \3 (pid \2) with SIGKILL: it ignored SIGTERM/p" \
        -e "s/${P}relieved.*/\1  pressure relieved/p" \
        < <(undomain "$1")
}
# The same events as chart marks: seconds-of-day and a letter (a ask, T SIGTERM, K SIGKILL).
marks() {
    local P='^preoomd [0-9-]+T([0-9]+):([0-9]+):([0-9.]+) [a-z]+: '
    sed -n -E \
        -e "s/${P}ask pid .*/\1 \2 \3 a/p" \
        -e "s/${P}SIGTERM pid .*/\1 \2 \3 T/p" \
        -e "s/${P}SIGKILL pid .*/\1 \2 \3 K/p" \
        < <(undomain "$1") | awk '{ printf "%.3f %s\n", $1 * 3600 + $2 * 60 + $3, $4 }'
}

# The usage bar: 50 cells for 0..limit, the ask (A), SIGTERM (T) and SIGKILL (K) lines where
# used memory reaches them (available at 15/10/5 % of the limit).
BAR=50
bar() {
    awk -v u="$1" -v l="$LIMIT_MIB" -v w="$BAR" -v a="$ASK_PCT" -v t="$TERM_PCT" -v k="$KILL_PCT" 'BEGIN {
        n = int(u * w / l); if (n > w) n = w
        pa = int((100 - a) * w / 100); pt = int((100 - t) * w / 100); pk = int((100 - k) * w / 100)
        s = ""
        for (i = 0; i < w; i++) {
            c = (i < n) ? "#" : "."
            if (i == pa) c = "A"; else if (i == pt) c = "T"; else if (i == pk) c = "K"
            s = s c
        }
        print s }'
}

# One act: start the four programs (and preoomd when $1 is "with"), watch, and end when the
# story is over. Samples go to $TMP/$1.samples ("seconds used_mib"), kernel kills to
# $TMP/$1.kills ("seconds name pid").
act() {
    local mode=$1 limit_s=$2 log=$TMP/$1.preoomd.log
    ended=()
    : >"$TMP/$mode.samples"; : >"$TMP/$mode.kills"; : >"$log"
    local kills0; kills0=$(oom_kills)
    if [ "$mode" = with ]; then
        "$B/preoomd" --registry "$REG" --cgroup "$cg" --no-mlock --ask "$ASK_PCT" \
            --term "$TERM_PCT" --kill "$KILL_PCT" 2>"$log" &
        pids+=($!); name_of[$!]=preoomd
        sleep 0.3
    fi
    run_in_cgroup cache "$TMP/$mode.cache.out" "$B/examples/cache" --mib 200 --refill-mib-per-s 8 \
        --seconds "$SECONDS_TOTAL"
    # Promises 40 MiB, touches 2: exposure that preoomd counts and the kernel does not.
    run_in_cgroup reservation "$TMP/$mode.res.out" "$TMP/reservation" -m 40 -t 2 -s "$SECONDS_TOTAL"
    sleep 2
    run_in_cgroup batch-job "$TMP/$mode.batch.out" "$TMP/batch-job" 70 5 100 $(( (SECONDS_TOTAL - 8) * 1000 ))
    sleep 1
    run_in_cgroup leaker "$TMP/$mode.leaker.out" "$TMP/leaker" 400 4 100 $(( SECONDS_TOTAL * 1000 ))
    local leaker=${pids[-1]} start now el over_at="" p st title
    start=$(date +%s)
    if [ "$mode" = with ]; then title="act 2: the same programs, with preoomd"; else
        title="act 1: without preoomd (what the kernel does)"; fi
    while :; do
        now=$(date +%s); el=$((now - start))
        # Programs that ended: SIGKILL without preoomd can only be the kernel's.
        for p in "${pids[@]}"; do
            [ "${name_of[$p]}" = preoomd ] && continue
            if [ -z "${ended[$p]:-}" ] && ! kill -0 "$p" 2>/dev/null; then
                wait "$p" 2>/dev/null; st=$?; ended[$p]=$st
                if [ "$st" -eq 137 ] && [ "$(oom_kills)" -gt "$kills0" ] && [ "$mode" = without ]; then
                    echo "$(now_s) ${name_of[$p]} $p" >>"$TMP/$mode.kills"
                fi
            fi
        done
        # The story is over when the leaker is gone (stopped, or killed by the kernel), or
        # the kernel killed anyone; then two more seconds to see what follows.
        if [ -z "$over_at" ] && { [ -n "${ended[$leaker]:-}" ] || [ -s "$TMP/$mode.kills" ]; }; then
            over_at=$now
        fi
        [ -n "$over_at" ] && [ $((now - over_at)) -ge 2 ] && break
        [ "$el" -ge "$limit_s" ] && break
        local used=$(( $(cat "$usage_file") >> 20 ))
        echo "$(now_s) $used" >>"$TMP/$mode.samples"
        {
            echo "preoom demo, $title: ${el}s (Ctrl-C stops)"
            echo
            echo "  cgroup memory [$(bar "$used")] $used of $LIMIT_MIB MiB used"
            echo "  A ask, T SIGTERM, K SIGKILL: where preoomd acts ($ASK_PCT, $TERM_PCT, $KILL_PCT % of the limit left)"
            echo "  kernel OOM kills in the cgroup: $(( $(oom_kills) - kills0 ))"
            echo
            # Cut to the terminal: a wrapped table is unreadable.
            "$B/preoom" --registry "$REG" ls 2>/dev/null | sed 's/^/  /' | cut -c "1-$width"
            echo
            if [ "$mode" = with ]; then
                echo "  what preoomd did:"
                story "$log" | tail -n 10 | sed 's/^/    /'
            fi
            kernel_story "$mode" | sed 's/^/    /'
        } >"$TMP/frame"
        if [ "$tty" -eq 1 ]; then printf '\033[H\033[2J'; cat "$TMP/frame"; else
            echo "--- $mode preoomd, t=${el}s: ${used} MiB used of ${LIMIT_MIB}, $(story "$log" | wc -l) decisions, $(wc -l <"$TMP/$mode.kills") kernel kill(s)"; fi
        sleep 0.5
    done
    # The last view stays on the screen; to a pipe it is printed once, at the act's end.
    [ "$tty" -eq 1 ] && printf '\033[H\033[2J'
    cat "$TMP/frame"
    ACT_KILLS=$(( $(oom_kills) - kills0 ))
    stop_pids
}
kernel_story() {
    awk '{ printf "%s  the kernel killed %s (pid %s) with SIGKILL\n", $1, $2, $3 }' "$TMP/$1.kills" |
        awk '{ s = $1; h = int(s / 3600); m = int((s - h * 3600) / 60); x = s - h * 3600 - m * 60
               $1 = sprintf("%02d:%02d:%02d", h, m, int(x)); print }'
}

# The chart: used MiB over time, 60 columns by 20 rows on the terminal, the thresholds as
# dashed rows, each decision's letter under its column (X the kernel's kill).
chart() {
    local mode=$1
    { marks "$TMP/$mode.preoomd.log"; awk '{ print $1, "X" }' "$TMP/$mode.kills"; } >"$TMP/$mode.marks"
    awk -v l="$LIMIT_MIB" -v a="$ASK_PCT" -v t="$TERM_PCT" -v k="$KILL_PCT" -v W=60 -v H=20 '
        BEGIN { n = 0; m = 0 }
        FNR == 1 { f++ }
        f == 1 { ts[n] = $1; us[n] = $2; n++; next }
        f == 2 { mt[m] = $1; ml[m] = $2; m++ }
        END {
            if (n == 0) { print "  (no samples)"; exit }
            t0 = ts[0]; t1 = ts[n - 1]; if (t1 <= t0) t1 = t0 + 1
            for (r = 0; r < H; r++) for (c = 0; c < W; c++) g[r, c] = " "
            la = int((100 - a) * H / 100); lt = int((100 - t) * H / 100); lk = int((100 - k) * H / 100)
            for (c = 0; c < W; c += 2) { g[la, c] = "-"; g[lt, c] = "-"; g[lk, c] = "-" }
            half = int(H / 2)
            # Each column the highest sample that falls in it; a column without one holds the
            # last value (sampling is slower than the columns are narrow).
            for (i = 0; i < n; i++) {
                c = int((ts[i] - t0) * (W - 1) / (t1 - t0))
                if (!(c in v) || us[i] > v[c]) v[c] = us[i]
            }
            prev = 0
            for (c = 0; c < W; c++) {
                if (c in v) prev = v[c]; else v[c] = prev
                r = int(v[c] * H / l); if (r >= H) r = H - 1
                for (y = 0; y <= r; y++) g[y, c] = (y == r) ? "*" : ":"
            }
            for (r = H - 1; r >= 0; r--) {
                lab = "     "
                if (r == half) lab = sprintf("%4d ", l / 2)
                if (r == la) lab = "  A  "; if (r == lt) lab = "  T  "; if (r == lk) lab = "  K  "
                if (r == 0) lab = "   0 "
                s = ""; for (c = 0; c < W; c++) s = s g[r, c]
                printf "  %s|%s\n", lab, s
            }
            s = ""; for (c = 0; c < W; c++) d[c] = " "
            for (j = 0; j < m; j++) {
                if (mt[j] < t0 || mt[j] > t1 + 2) continue
                c = int((mt[j] - t0) * (W - 1) / (t1 - t0)); if (c >= W) c = W - 1
                if (d[c] == " " || ml[j] == "X" || ml[j] == "K" || (ml[j] == "T" && d[c] == "a")) d[c] = ml[j]
            }
            for (c = 0; c < W; c++) s = s d[c]
            axis = ""; for (c = 0; c < W; c++) axis = axis "-"
            printf "       +%s\n        %s\n", axis, s
            printf "        0s%" (W - 2) "s\n", sprintf("%.0fs", t1 - t0)
        }' "$TMP/$mode.samples" "$TMP/$mode.marks"
}

# The same, as an SVG picture: both acts side by side, one polyline each, the thresholds as
# dashed lines, a labelled tick for each decision.
svg() {
    awk -v l="$LIMIT_MIB" -v a="$ASK_PCT" -v t="$TERM_PCT" -v k="$KILL_PCT" '
        BEGIN { n[1] = n[2] = m[1] = m[2] = 0 }
        FNR == 1 { f++ }
        { act = (f <= 2) ? 1 : 2 }
        f == 1 || f == 3 { ts[act, n[act]] = $1; us[act, n[act]] = $2; n[act]++; next }
        f == 2 || f == 4 { mt[act, m[act]] = $1; ml[act, m[act]] = $2; m[act]++ }
        END {
            PW = 420; PH = 240; X0 = 50; Y0 = 40; G = 60
            printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", X0 + 2 * PW + G + 20, Y0 + PH + 60
            printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
            split("without preoomd (the kernel acts)|with preoomd", title, "|")
            for (A = 1; A <= 2; A++) {
                x0 = X0 + (A - 1) * (PW + G)
                printf "<text x=\"%d\" y=\"%d\" font-size=\"14\">%s</text>\n", x0, Y0 - 15, title[A]
                printf "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#888\"/>\n", x0, Y0, PW, PH
                printf "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%d MiB</text>\n", x0 - 4, Y0 + 4, l
                printf "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">0</text>\n", x0 - 4, Y0 + PH
                split(a " " t " " k, p, " "); split("ask SIGTERM SIGKILL", nm, " ")
                for (i = 1; i <= 3; i++) {
                    y = Y0 + PH - (100 - p[i]) * PH / 100
                    printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#c60\" stroke-dasharray=\"4 3\"/>\n", x0, y, x0 + PW, y
                    printf "<text x=\"%d\" y=\"%.1f\" fill=\"#c60\" font-size=\"10\">%s</text>\n", x0 + PW + 2, y + 3, nm[i]
                }
                if (n[A] == 0) continue
                t0 = ts[A, 0]; t1 = ts[A, n[A] - 1]; if (t1 <= t0) t1 = t0 + 1
                printf "<polyline fill=\"none\" stroke=\"#36c\" stroke-width=\"2\" points=\""
                for (i = 0; i < n[A]; i++)
                    printf "%.1f,%.1f ", x0 + (ts[A, i] - t0) * PW / (t1 - t0), Y0 + PH - us[A, i] * PH / l
                printf "\"/>\n"
                for (j = 0; j < m[A]; j++) {
                    if (mt[A, j] < t0 || mt[A, j] > t1 + 2) continue
                    x = x0 + (mt[A, j] - t0) * PW / (t1 - t0); if (x > x0 + PW) x = x0 + PW
                    c = (ml[A, j] == "a") ? "#393" : "#c33"
                    w = (ml[A, j] == "a") ? "ask" : (ml[A, j] == "T") ? "SIGTERM" : (ml[A, j] == "K") ? "SIGKILL" : "kernel OOM kill"
                    printf "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\"/>\n", x, Y0, x, Y0 + PH, c
                    printf "<text x=\"%.1f\" y=\"%d\" fill=\"%s\" font-size=\"10\" transform=\"rotate(90 %.1f %d)\">%s</text>\n", x + 2, Y0 + PH + 4, c, x + 2, Y0 + PH + 4, w
                }
                printf "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.0f s</text>\n", x0 + PW, Y0 + PH + 50, t1 - t0
            }
            printf "</svg>\n"
        }' "$TMP/without.samples" "$TMP/without.marks" "$TMP/with.samples" "$TMP/with.marks" >"$SVG"
}

declare -A ended=()
[ "$tty" -eq 1 ] && printf '\033[?25l'
act without "$SECONDS_TOTAL"
act1_kills=$ACT_KILLS
[ "$tty" -eq 1 ] && sleep 3
act with "$SECONDS_TOTAL"

asked=$(grep -c ": ask pid" "$TMP/with.preoomd.log")
gave=$(grep -c "answered in" "$TMP/with.preoomd.log")
stopped=$(grep -c ": SIG\(TERM\|KILL\) pid" "$TMP/with.preoomd.log")
echo
echo "== act 1, without preoomd"
if [ -s "$TMP/without.kills" ]; then
    kernel_story without | sed 's/^/  /'
    echo "  The kernel's OOM killer killed $act1_kills process(es): it takes the largest, whether or"
    echo "  not it could have given memory back, and without a warning."
else
    echo "  The kernel's OOM killer killed $act1_kills process(es) in this run."
fi
echo
echo "== act 2, with preoomd: what happened"
story "$TMP/with.preoomd.log" | sed 's/^/  /'
echo
echo "  $asked release request(s), $gave answer(s), $stopped process(es) stopped by preoomd."
tail -n 1 "$TMP/with.cache.out" | sed 's/^/  the cache, at its end: /'
if [ "$ACT_KILLS" -eq 0 ]; then
    echo "  The kernel's OOM killer killed nobody: preoom settled the pressure first."
else
    echo "  The kernel's OOM killer killed $ACT_KILLS process(es): preoom was too late this time."
fi
echo
echo "== used memory over time (MiB of the $LIMIT_MIB MiB limit; the dashed rows are the A ask, T SIGTERM"
echo "   and K SIGKILL lines; under the axis, a ask, T SIGTERM, K SIGKILL by preoomd, X the kernel's kill)"
echo "  act 1, without preoomd:"
chart without
echo "  act 2, with preoomd:"
chart with
svg && echo "  The same as a picture: $SVG"
echo "  (preoomd's full log had $(wc -l <"$TMP/with.preoomd.log") lines; the cgroup and every process are cleaned up.)"
exit 0

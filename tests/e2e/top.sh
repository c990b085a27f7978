#!/usr/bin/env bash
# tests/e2e/top.sh — `preoom top` on a real pseudo-terminal (tmux), at 80x24 and 40x10: every
# line fits the width (nothing wraps: tmux's joined capture would show it) and the height,
# rows that do not fit are counted, the alternate screen is used and given back, the keys act
# (sort, pause, quit), a redraw never clears the whole screen (ncurses rewrites only what
# changed), the table follows a resize, and a registry removed under it ends it with one line
# after the screen is given back. Runs its own tmux server (-L) and kills only that; six small
# preloaded processes in a registry of its own.
. "$(dirname "$0")/lib.sh"

PREOOM=$B/preoom
if ! command -v tmux >/dev/null; then skip "top in a pty: tmux is not installed"; t_done; fi
SOCK="preoom-top-$$"
tm() { tmux -L "$SOCK" "$@"; }
trap 'tm kill-server 2>/dev/null; rm -f "/dev/shm/preoom.$T_REG.away"; t_cleanup' EXIT

bg env LD_PRELOAD="$LIB" "$PROG/hold" -m 4 -t 4 -s 60 -r "$T_TMP/ready"; held=$BG_PID
# Five more, so that 40x10 (room for four rows) must leave some out and say so.
for i in 1 2 3 4 5; do bg env LD_PRELOAD="$LIB" "$PROG/hold" -m 1 -t 1 -s 60 -r "$T_TMP/ready.$i"; done
for _ in $(seq 100); do [ -e "$T_TMP/ready" ] && [ -e "$T_TMP/ready.5" ] && break; sleep 0.05; done
sleep 0.3

# One session kept for the whole test: without it the server exits between two sessions,
# and a new-session racing that exit fails.
tm new-session -d -s keep "sleep 600"

# wait_for SESSION REGEX: until the pane shows it (10 s: the machine is shared).
wait_for() {
    local _i
    for _i in $(seq 200); do tm capture-pane -p -t "$1" 2>/dev/null | grep -qE -- "$2" && return 0; sleep 0.05; done
    return 1
}

for size in 80x24 40x10; do
    w=${size%x*} h=${size#*x} s="top$w"
    tm new-session -d -s "$s" -x "$w" -y "$h" \
        "env TERM=xterm-256color PREOOM_REGISTRY=$T_REG $PREOOM top -d 0.2; echo \"top exited \$?\"; sleep 60"
    tm pipe-pane -o -t "$s" "cat >>'$T_TMP/raw.$w'"
    if ! wait_for "$s" '^preoom top:'; then fail "$size: top draws a frame"; continue; fi
    sleep 1 # a few redraws (every 0.2 s) into the raw stream
    tm capture-pane -p -J -t "$s" >"$T_TMP/pane.$w"
    long=$(awk -v w="$w" 'length($0) > w' "$T_TMP/pane.$w" | head -n1)
    check "$size: no line longer than $w columns, none wrapped${long:+ ($long)}" [ -z "$long" ]
    check "$size: at most $h lines" [ "$(wc -l <"$T_TMP/pane.$w")" -le "$h" ]
    check "$size: the title on the first line" bash -c 'head -n1 "$1" | grep -q "^preoom top: sorted by touched"' _ "$T_TMP/pane.$w"
    check "$size: the key line on the last line" bash -c 'tail -n1 "$1" | grep -q "^q quit"' _ "$T_TMP/pane.$w"
    check "$size: the largest process (sorted by touched) is in the table" grep -qE "^ *$held " "$T_TMP/pane.$w"
    if [ "$h" -lt 12 ]; then
        check "$size: the rows that do not fit are counted, not drawn" grep -qE '^ +\.\.\. \(2 more\)' "$T_TMP/pane.$w"
    else
        check "$size: all six processes shown" [ "$(grep -cE '^ +[0-9]+ ' "$T_TMP/pane.$w")" -eq 6 ]
    fi
    check "$size: the alternate screen is on" [ "$(tm display -p -t "$s" '#{alternate_on}')" = 1 ]
    # ncurses clears once, at the start; a redraw that cleared the whole screen would flicker.
    clears=$(grep -o $'\e\[2J\|\e\[H\e\[J' "$T_TMP/raw.$w" | wc -l)
    check "$size: redraws rewrite in place: $clears full clear(s) over the run" [ "$clears" -le 1 ]
    tm send-keys -t "$s" c
    check "$size: key c sorts by committed" wait_for "$s" 'sorted by committed'
    tm send-keys -t "$s" p
    check "$size: key p pauses" wait_for "$s" '^preoom top \[paused\]: sorted by committed'
    tm send-keys -t "$s" p
    sleep 0.3
    check "$size: key p again resumes" bash -c '! tmux -L "$1" capture-pane -p -t "$2" | grep -q "\[paused\]"' _ "$SOCK" "$s"
    tm send-keys -t "$s" q
    check "$size: key q quits, exit 0" wait_for "$s" '^top exited 0$'
    check "$size: the shell's screen is given back" [ "$(tm display -p -t "$s" '#{alternate_on}')" = 0 ]
    tm kill-session -t "$s"
done

# A resize while running: the table follows the new width.
tm new-session -d -s resize -x 100 -y 30 "env TERM=xterm-256color PREOOM_REGISTRY=$T_REG $PREOOM top -d 0.2; sleep 60"
if wait_for resize '^preoom top:'; then
    tm resize-window -t resize -x 40 -y 10 2>/dev/null || tm resize-pane -t resize -x 40 -y 10
    sleep 0.8
    tm capture-pane -p -J -t resize >"$T_TMP/pane.resize"
    long=$(awk 'length($0) > 40' "$T_TMP/pane.resize" | head -n1)
    check "after a resize to 40x10: nothing longer than 40 columns${long:+ ($long)}" \
        bash -c '[ -z "$1" ] && grep -q "^preoom top:" "$2" && [ "$(wc -l <"$2")" -le 10 ]' _ "$long" "$T_TMP/pane.resize"
else
    fail "resize: top draws a frame"
fi

# The registry removed under a running top: the screen is given back, then one error line.
tm kill-session -t resize
tm new-session -d -s gone -x 80 -y 24 "env TERM=xterm-256color PREOOM_REGISTRY=$T_REG $PREOOM top -d 0.2; echo \"top exited \$?\"; sleep 60"
if wait_for gone '^preoom top:'; then
    mv "/dev/shm/preoom.$T_REG" "/dev/shm/preoom.$T_REG.away"
    check "registry removed: top exits 1" wait_for gone '^top exited 1$'
    check "registry removed: its one error line is on the shell's screen" \
        bash -c 'tmux -L "$1" capture-pane -p -t gone | grep -q "^preoom: registry /dev/shm/preoom.$2: no such registry"' _ "$SOCK" "$T_REG"
    mv "/dev/shm/preoom.$T_REG.away" "/dev/shm/preoom.$T_REG"
else
    fail "registry removed: top draws a frame"
fi
tm kill-server 2>/dev/null
for p in "${T_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
t_done

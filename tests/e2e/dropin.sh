#!/usr/bin/env bash
# tests/e2e/dropin.sh — the shipped MariaDB drop-in and /etc/default/preoomd on a server that
# runs as another user, as Debian's mariadb.service does (User=mysql): preoomd (root) started
# with the one documented setting, --group with the mysql group's number, creates the
# registry 0660 root:mysql, and mariadbd run as mysql with the drop-in's Environment= lines
# joins it and is listed. Without the setting (the registry root's 0600) it cannot join: the
# control that shows the setting is what does it. The drop-in's lines are applied as systemd
# would, with two substitutions this test states: @LIBDIR@ is the build tree, and the
# registry "system" is this test's own. Also: the shipped unit allows process_mrelease, which
# systemd's @system-service lacks (systemd-analyze). MariaDB's stop time: the drop-in's
# PREOOM_TERM_GRACE_MS is Debian's TimeoutStopSec for mariadb.service (SendSIGKILL=no: a
# SIGKILL mid-shutdown costs a crash recovery), it reaches the server, and preoomd started
# with the settings file's MariaDB example (--avoid-cgroup, --max-term-grace as long) takes
# and publishes them. No systemd as pid 1 is needed; mariadbd listens on a socket file only;
# everything is stopped by pid.
. "$(dirname "$0")/lib.sh"

DROPIN=$TOP/systemd/mariadb.service.d/preoom.conf
UNIT=$TOP/systemd/preoomd.service

# ---- the unit's system call filter ------------------------------------------------------------
check "the unit allows process_mrelease" grep -qx 'SystemCallFilter=process_mrelease' "$UNIT"
if command -v systemd-analyze >/dev/null; then
    if systemd-analyze syscall-filter @system-service 2>/dev/null | grep -qw process_mrelease; then
        echo "# this systemd's @system-service has process_mrelease already"
    else
        ok "systemd-analyze: @system-service lacks process_mrelease here, so the unit's own line is needed"
    fi
    check "systemd-analyze knows the name process_mrelease" \
        bash -c 'systemd-analyze syscall-filter 2>/dev/null | grep -qw process_mrelease'
else
    skip "unit filter: systemd-analyze is not installed"
fi
check "/etc/default/preoomd has the one setting (PREOOM_REGISTRY_GROUP) and an --avoid example" \
    bash -c 'grep -q "^PREOOM_REGISTRY_GROUP=" "$1" && grep -qF -- "--avoid ^mariadbd\$" "$1"' _ "$TOP/systemd/preoomd.default"

PATH=$PATH:/usr/sbin:/sbin
for b in mariadbd mariadb-install-db mariadb-admin setpriv; do
    command -v "$b" >/dev/null || { skip "drop-in: $b not installed (scripts/deps.sh check installs it)"; t_done; }
done
is_root || { skip "drop-in: needs root to run mariadbd as mysql"; t_done; }
gid=$(getent group mysql | cut -d: -f3)
[ -n "$gid" ] && getent passwd mysql >/dev/null || { skip "drop-in: no mysql user and group"; t_done; }

# /etc/default/preoomd as systemd reads it (EnvironmentFile=): shell-compatible assignments.
# settings_env GROUP [ARGS]: the file's variables, with PREOOM_REGISTRY_GROUP set to GROUP
# when given (the one setting the documentation asks for), PREOOMD_ARGS to ARGS when given (a
# line of the file's own, uncommented as an operator would), and the registry made this
# test's own.
settings_env() {
    ( set -a; . "$TOP/systemd/preoomd.default"; set +a
      [ -n "${1:-}" ] && PREOOM_REGISTRY_GROUP=$1
      [ -n "${2:-}" ] && PREOOMD_ARGS=$2
      printf 'PREOOM_REGISTRY=%s\nPREOOM_REGISTRY_GROUP=%s\nPREOOMD_ARGS=%s\n' "$T_REG" \
          "$PREOOM_REGISTRY_GROUP" "$PREOOMD_ARGS" )
}
check "the drop-in preloads the library and reads /etc/default/preoomd" \
    bash -c 'grep -q "^Environment=LD_PRELOAD=@LIBDIR@/libpreoom.so$" "$1" && grep -q "^EnvironmentFile=-@SYSCONFDIR@/default/preoomd$" "$1"' _ "$DROPIN"
# The drop-in's Environment= lines but the preload's path (substituted: the build tree).
mapfile -t dropin_env < <(sed -n 's/^Environment=//p' "$DROPIN" | grep -v '^LD_PRELOAD=')
grace=$(printf '%s\n' "${dropin_env[@]}" | sed -n 's/^PREOOM_TERM_GRACE_MS=//p')
check "the drop-in gives MariaDB a term grace (${grace:-none} ms)" [ "${grace:-0}" -gt 0 ]
debian_unit=/lib/systemd/system/mariadb.service
if [ -f "$debian_unit" ]; then
    stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$debian_unit" | tail -n 1)
    check "it matches Debian's TimeoutStopSec=$stop for mariadb.service" [ "$grace" = "$((stop * 1000))" ]
else
    skip "term grace against Debian's unit: $debian_unit is not installed"
fi
example=$(sed -n 's/^#PREOOMD_ARGS="\(.*--max-term-grace.*\)"$/\1/p' "$TOP/systemd/preoomd.default" | head -n 1)
check "/etc/default/preoomd has a MariaDB example with --avoid-cgroup and --max-term-grace ($example)" \
    bash -c '[[ "$0" == *"--avoid-cgroup /system.slice/mariadb.service"* && "$0" == *"--max-term-grace $1"* ]]' "$example" "$grace"
check "the unit gives preoomd the registry group from the same file" \
    grep -qx 'ExecStart=@SBINDIR@/preoomd --group ${PREOOM_REGISTRY_GROUP} $PREOOMD_ARGS' "$UNIT"
chmod 0711 "$T_TMP"
. "$TOP/scripts/mariadb.sh"
mkdir "$T_TMP/tmpl"
if ! mariadb-install-db --no-defaults --auth-root-authentication-method=normal --skip-test-db \
    --skip-name-resolve --datadir="$T_TMP/tmpl" --user=mysql >"$T_TMP/install.log" 2>&1; then
    fail "mariadb-install-db --user=mysql failed"; tail -n 20 "$T_TMP/install.log"; t_done
fi

# run_case NAME [GROUP]: preoomd as the unit starts it, then mariadbd as mysql with the
# drop-in's environment, both from the settings file (its group set to GROUP when given);
# sets LISTED (1 or 0), REG_MODE, SRV_UID, SRV_RC.
run_case() {
    local name=$1 dir=$T_TMP/$1
    mapfile -t envs < <(settings_env "${2:-}" "${3:-}")
    rm -f "/dev/shm/preoom.$T_REG"
    mkdir -p "$dir"; cp -a "$T_TMP/tmpl" "$dir/data"; chown mysql:mysql "$dir"
    # The unit's ExecStart, its variables expanded as systemd does; --dry-run and --no-mlock
    # added by this test, which must not act on anything.
    local exec; exec=$(sed -n 's/^ExecStart=@SBINDIR@\///p' "$UNIT")
    env "${envs[@]}" bash -c "exec $B/$exec --dry-run --no-mlock" >"$dir/preoomd.log" 2>&1 &
    local d=$!; T_PIDS+=("$d")
    for _ in $(seq 100); do [ -e "/dev/shm/preoom.$T_REG" ] && break; sleep 0.05; done
    REG_MODE=$(stat -c '%a %U:%G' "/dev/shm/preoom.$T_REG" 2>/dev/null)
    mariadb_args "$dir" 16M 1M 10
    # As mariadb.service runs it: User=mysql from the start (no --user switch by the server),
    # the drop-in's environment set for the server only (setpriv itself is not preloaded: it
    # changes credentials thread by thread, which a process with preoom's agent thread cannot
    # survive, and systemd does this part itself before exec).
    setpriv --reuid=mysql --regid=mysql --init-groups env LD_PRELOAD="$LIB" "${envs[@]}" "${dropin_env[@]}" \
        "${MARIADB_ARGS[@]}" --user=mysql >"$dir/server.out" 2>&1 &
    local srv=$!; T_PIDS+=("$srv")
    for _ in $(seq 300); do
        mariadb-admin --no-defaults --socket="$dir/sock" --user=root ping >/dev/null 2>&1 && break
        kill -0 "$srv" 2>/dev/null || break
        sleep 0.1
    done
    LISTED=0
    local mpid; mpid=$(cat "$dir/pid" 2>/dev/null)
    SRV_UID=$(awk '/^Uid:/ {print $2}' "/proc/$mpid/status" 2>/dev/null)
    if [ -n "$mpid" ]; then
        sleep 0.3
        "$B/preoom" --registry "$T_REG" ls --json >"$dir/ls.json" 2>"$dir/ls.err"
        grep -q "\"pid\": $mpid, \"name\": \"mariadbd\"" "$dir/ls.json" && LISTED=1
        tr '\0' '\n' <"/proc/$mpid/environ" >"$dir/environ" 2>/dev/null
        cp "/dev/shm/preoom.$T_REG.preoomd" "$dir/published" 2>/dev/null
    fi
    mariadb-admin --no-defaults --socket="$dir/sock" --user=root shutdown >/dev/null 2>&1
    for _ in $(seq 300); do kill -0 "$srv" 2>/dev/null || break; sleep 0.1; done
    wait "$srv"; SRV_RC=$?
    kill -TERM "$d"; wait "$d"
    [ "$LISTED" = 1 ] || { echo "# $name: server said:"; grep -i preoom "$dir/server.out" | head -n 3 | sed 's/^/#   /'; }
}

run_case with "$gid" "$example"
check "PREOOM_REGISTRY_GROUP=$gid (mysql): preoomd creates the registry 0660 root:mysql ($REG_MODE)" [ "$REG_MODE" = "660 root:mysql" ]
check "PREOOM_REGISTRY_GROUP=$gid: mariadbd runs as mysql (uid $SRV_UID)" [ "$SRV_UID" = "$(id -u mysql)" ]
check "PREOOM_REGISTRY_GROUP=$gid: mariadbd joins the registry and is listed" [ "$LISTED" = 1 ]
check "PREOOM_REGISTRY_GROUP=$gid: mariadbd shuts down cleanly (exit $SRV_RC)" [ "$SRV_RC" = 0 ]
check "the drop-in's PREOOM_TERM_GRACE_MS=$grace reached mariadbd" grep -qx "PREOOM_TERM_GRACE_MS=$grace" "$T_TMP/with/environ"
check "preoomd with the MariaDB example publishes avoid-cgroup and max-term-grace=$grace" \
    bash -c 'grep -qx "avoid-cgroup=/system.slice/mariadb.service" "$0" && grep -qx "max-term-grace=$1" "$0"' "$T_TMP/with/published" "$grace"

run_case shipped
check "as shipped (group 0): the registry is 0660 root:root ($REG_MODE)" [ "$REG_MODE" = "660 root:root" ]
check "as shipped: mariadbd as mysql cannot join (the control: the setting is what does it)" [ "$LISTED" = 0 ]
# A registry another user may not open is not the server's fault: said only with
# PREOOM_VERBOSE, or it would be in the output of every exec and fork (tests/e2e/hostile_hosts.sh).
check "as shipped: the preload stays quiet (PREOOM_VERBOSE says why), and the server runs on (exit $SRV_RC)" \
    bash -c '[ "$(grep -c "^preoom\[" "$1")" = 0 ] && [ "$2" = 0 ]' _ "$T_TMP/shipped/server.out" "$SRV_RC"
t_done

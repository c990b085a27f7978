# scripts/mariadb.sh — sourced, not run: how the project makes a throw-away MariaDB, so the
# benchmark (bench/mariadb.sh) and the test (tests/e2e/mariadb.sh) start the same server.
# Socket file only, never TCP; everything lives under the directory given.

# mariadb_template DIR LOG: a fresh datadir in DIR (mariadb-install-db); its output in LOG.
mariadb_template() {
    mariadb-install-db --no-defaults --auth-root-authentication-method=normal --skip-test-db \
        --skip-name-resolve --datadir="$1" --user=root >"$2" 2>&1
}

# mariadb_args DIR POOL LOG_BUFFER MAX_CONNECTIONS: sets MARIADB_ARGS to the command line of a
# server whose data is DIR/data (a copy of a template) and whose socket, pid file and error
# log are DIR/sock, DIR/pid and DIR/err.log.
mariadb_args() {
    local dir=$1
    MARIADB_ARGS=(mariadbd --no-defaults --datadir="$dir/data" --socket="$dir/sock"
        --skip-networking --user=root --pid-file="$dir/pid" --log-error="$dir/err.log"
        --skip-name-resolve --innodb-buffer-pool-size="$2" --innodb-log-buffer-size="$3"
        --key-buffer-size=8M --max-connections="$4" --innodb-flush-log-at-trx-commit=2)
}

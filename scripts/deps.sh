#!/usr/bin/env bash
# scripts/deps.sh — installs the Debian packages a make target needs and the machine lacks,
# saying what it installs and why. Run by `make deps`, `make check`, `make demo` and
# `make bench`; does nothing when everything is there. Needs root only when it installs.
#   scripts/deps.sh build|check|demo|bench
set -u
# libncurses-dev: `preoom top` draws with ncurses. zlib1g-dev: `preoom report --format pprof`
# writes gzip'd profiles.
want_build="gcc g++ make pkg-config libunwind-dev uthash-dev libdw-dev libncurses-dev zlib1g-dev"
# check: real programs for the test matrix, clang for the fuzz target, servers for the
# integration tests, setpriv (util-linux) for the setuid test, jq to read `preoom ls --json`,
# xmllint for the flame graph SVG, setcap for the file-capability warning, groff and man for
# the man pages; protobuf-compiler to decode pprof output in the call-site tests; the
# allocators Debian ships (tcmalloc, jemalloc, mimalloc) to run the preload beside them;
# prometheus for promtool, which checks preoomd's metrics and tests the shipped alerting rules.
want_check="$want_build prometheus protobuf-compiler sqlite3 python3 perl clang libclang-rt-14-dev util-linux procps jq libxml2-utils libcap2-bin groff-base man-db mariadb-server mariadb-client memcached redis-server libtcmalloc-minimal4 libgoogle-perftools4 libjemalloc2 libmimalloc2.0"
want_demo="$want_build procps"
# bench: heaptrack to compare the call-site recorder with, GNU time for peak RSS, valgrind
# (callgrind) for instruction counts.
want_bench="$want_check heaptrack time valgrind"

case "${1:-build}" in
    build) want=$want_build ;;
    check) want=$want_check ;;
    demo) want=$want_demo ;;
    bench) want=$want_bench ;;
    *) echo "usage: $0 build|check|demo|bench" >&2; exit 2 ;;
esac

missing=()
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing Debian packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: not root; install them with: apt-get install ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# The servers must not start as services on install: tests start their own instances.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq >/dev/null 2>&1 || echo "deps: apt-get update failed; trying the cached lists" >&2
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/preoom-deps.log 2>&1; then
    # One package that cannot be had must not keep the others out: install one by one.
    for p in "${missing[@]}"; do
        apt-get install -y -qq --no-install-recommends "$p" >>/tmp/preoom-deps.log 2>&1 ||
            echo "deps: could not install $p (see /tmp/preoom-deps.log)" >&2
    done
fi
exit 0

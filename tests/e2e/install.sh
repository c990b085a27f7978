#!/usr/bin/env bash
# tests/e2e/install.sh — `make install` as an operator would run it, into a staging root:
# every file in its place, each man page rendered without a warning, the systemd unit accepted
# by systemd-analyze, and a program using preoom.h built with pkg-config against the installed
# tree, then run with and without the installed library. `make uninstall` then leaves nothing
# but the operator's /etc/default/preoomd. Touches nothing outside $T_TMP.
. "$(dirname "$0")/lib.sh"

root=$T_TMP/root
mk() { make -C "$TOP" --no-print-directory BUILD="$BUILD" DESTDIR="$root" PREFIX=/usr "$@"; }
if ! mk install >"$T_TMP/install.log" 2>&1; then
    fail "make install DESTDIR=... PREFIX=/usr"; tail -n 20 "$T_TMP/install.log"; t_done
fi
ok "make install DESTDIR=... PREFIX=/usr"

files="usr/lib/libpreoom.so usr/bin/preoom usr/sbin/preoomd usr/include/preoom.h
usr/include/preoom/registry.h usr/lib/pkgconfig/preoom.pc usr/share/man/man1/preoom.1
usr/share/man/man3/preoom.3 usr/share/man/man7/preoom.7 usr/share/man/man8/preoomd.8
usr/lib/systemd/system/preoomd.service etc/default/preoomd
usr/share/doc/preoom/examples/mariadb.service.d/preoom.conf"
missing=""
for f in $files; do [ -f "$root/$f" ] || missing="$missing $f"; done
check "every file installed (missing:${missing:- none})" [ -z "$missing" ]
check "the tools are executable" [ -x "$root/usr/bin/preoom" -a -x "$root/usr/sbin/preoomd" ]
check "the unit runs the installed preoomd" grep -qx 'ExecStart=/usr/sbin/preoomd --group ${PREOOM_REGISTRY_GROUP} $PREOOMD_ARGS' "$root/usr/lib/systemd/system/preoomd.service"
check "the unit and the drop-in read /etc/default/preoomd" \
    bash -c 'grep -qx "EnvironmentFile=-/etc/default/preoomd" "$1" && grep -qx "EnvironmentFile=-/etc/default/preoomd" "$2"' _ \
    "$root/usr/lib/systemd/system/preoomd.service" "$root/usr/share/doc/preoom/examples/mariadb.service.d/preoom.conf"
check "the drop-in preloads the installed library" grep -qx 'Environment=LD_PRELOAD=/usr/lib/libpreoom.so' "$root/usr/share/doc/preoom/examples/mariadb.service.d/preoom.conf"
check "no @PLACEHOLDER@ left in what was installed" bash -c '! grep -rl "@[A-Z]*@" "$1/usr/lib/systemd" "$1/usr/share/doc" "$1/usr/lib/pkgconfig"' _ "$root"

# Man pages: rendered with every warning on; any line on stderr is a fault.
if command -v groff >/dev/null || command -v man >/dev/null; then
    for p in man1/preoom.1 man3/preoom.3 man7/preoom.7 man8/preoomd.8; do
        f=$root/usr/share/man/$p
        if command -v groff >/dev/null; then
            err=$(groff -man -Tutf8 -ww -z "$f" 2>&1)
        else
            err=$(MANWIDTH=80 man -l "$f" 2>&1 >/dev/null)
        fi
        check "man page $p renders without warnings${err:+ ($err)}" [ -z "$err" ]
        for s in NAME SYNOPSIS DESCRIPTION; do
            grep -q "^\.SH $s" "$f" || fail "man page $p has no $s section"
        done
    done
    if command -v man >/dev/null; then
        n=$(MANWIDTH=80 man -l "$root/usr/share/man/man8/preoomd.8" 2>/dev/null | grep -c 'EXIT STATUS')
        check "man -l shows preoomd(8) with its EXIT STATUS section" [ "$n" -ge 1 ]
    fi
else
    skip "man pages: neither groff nor man is installed"
fi

# The unit: systemd-analyze checks that ExecStart exists, so point it at the staged binary.
if command -v systemd-analyze >/dev/null; then
    sed "s|^ExecStart=/usr/sbin/|ExecStart=$root/usr/sbin/|" \
        "$root/usr/lib/systemd/system/preoomd.service" >"$T_TMP/preoomd.service"
    out=$(systemd-analyze verify --man=no "$T_TMP/preoomd.service" 2>&1); rc=$?
    check "systemd-analyze verify accepts preoomd.service, without a warning${out:+ ($out)}" [ $rc -eq 0 -a -z "$out" ]
    mkdir -p "$T_TMP/dropin/mariadb.service.d"
    printf '[Service]\nExecStart=/bin/true\n' >"$T_TMP/dropin/mariadb.service"
    cp "$root/usr/share/doc/preoom/examples/mariadb.service.d/preoom.conf" "$T_TMP/dropin/mariadb.service.d/"
    out=$(cd "$T_TMP/dropin" && systemd-analyze verify --man=no ./mariadb.service 2>&1 | grep -v 'preoomd.service')
    check "the mariadb drop-in parses without a warning${out:+ ($out)}" [ -z "$out" ]
else
    skip "systemd unit: systemd-analyze is not installed"
fi

# A program written against the installed header, built with the installed pkg-config file.
cat >"$T_TMP/app.c" <<'EOF'
#include <preoom.h>
#include <preoom/registry.h>
#include <stdio.h>
static size_t give(preoom_level_t level, size_t want, void *ctx) { (void)level; (void)ctx; return want; }
int main(void)
{
    int rc = preoom_on_release(give, NULL);
    preoom_stats_t st;
    preoom_stats(&st);
    printf("api %d on_release %d abi %d\n", preoom_api_version(), rc, PREOOM_REGISTRY_ABI);
    return 0;
}
EOF
if command -v pkg-config >/dev/null; then
    flags=$(PKG_CONFIG_PATH=$root/usr/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$root pkg-config --cflags --libs preoom)
    echo "# pkg-config --cflags --libs preoom: $flags"
    cc "$T_TMP/app.c" $flags -o "$T_TMP/app" 2>"$T_TMP/cc.err"
    check "a program using preoom.h builds with pkg-config against the installed tree" [ $? -eq 0 ]
    [ -s "$T_TMP/cc.err" ] && cat "$T_TMP/cc.err"
    if [ -x "$T_TMP/app" ]; then
        out=$("$T_TMP/app")
        check "without the preload the calls do nothing ($out)" [ "$out" = "api 0 on_release -38 abi 2" ]
        out=$(LD_PRELOAD=$root/usr/lib/libpreoom.so PREOOM_REGISTRY=off "$T_TMP/app")
        check "with the installed library the calls work ($out)" grep -q '^api [1-9][0-9]* on_release 0 ' <<<"$out"
    fi
else
    skip "pkg-config build: pkg-config is not installed"
fi

# Uninstall: nothing left but the directories install made and the operator's settings.
mk uninstall >"$T_TMP/uninstall.log" 2>&1
check "make uninstall succeeds" [ $? -eq 0 ]
left=$(cd "$root" && find . -type f ! -path ./etc/default/preoomd | tr '\n' ' ')
check "uninstall removes every installed file (left: ${left:-none})" [ -z "$left" ]
check "uninstall keeps /etc/default/preoomd" [ -f "$root/etc/default/preoomd" ]

# ---- PREFIX alone: nothing outside it (GNU: sysconfdir is $(prefix)/etc) ----------------------
etc_before=$(stat -c %Y /etc/default/preoomd 2>/dev/null || echo none)
px=$T_TMP/x
make -C "$TOP" --no-print-directory BUILD="$BUILD" PREFIX="$px" install >"$T_TMP/px.log" 2>&1
check "make install PREFIX=$px (no DESTDIR) succeeds" [ $? -eq 0 ]
check "make install PREFIX=...: the settings file is PREFIX/etc/default/preoomd" [ -f "$px/etc/default/preoomd" ]
check "make install PREFIX=...: /etc/default/preoomd untouched" \
    [ "$(stat -c %Y /etc/default/preoomd 2>/dev/null || echo none)" = "$etc_before" ]
# Every absolute path on the command lines make printed (the log holds nothing else).
outside=$(grep -oE '(^|[ ;])/[^ ;]+' "$T_TMP/px.log" | sed 's/^[ ;]*//' | grep -v "^$px" | tr '\n' ' ')
check "make install PREFIX=...: every path it wrote is under PREFIX (others: ${outside:-none})" [ -z "$outside" ]
check "the unit reads the settings from PREFIX/etc" \
    grep -qx "EnvironmentFile=-$px/etc/default/preoomd" "$px/lib/systemd/system/preoomd.service"

# ---- a multiarch LIBDIR: preoom run and the .pc file follow it ---------------------------------
ma=$T_TMP/ma
make -C "$TOP" --no-print-directory BUILD="$BUILD" DESTDIR="$ma" PREFIX=/usr \
    LIBDIR=/usr/lib/x86_64-linux-gnu install >"$T_TMP/ma.log" 2>&1
check "make install LIBDIR=/usr/lib/x86_64-linux-gnu succeeds" [ $? -eq 0 ]
check "LIBDIR: the library is there" [ -f "$ma/usr/lib/x86_64-linux-gnu/libpreoom.so" ]
check "LIBDIR: the .pc file is in LIBDIR/pkgconfig and says libdir=LIBDIR" \
    grep -qx 'libdir=/usr/lib/x86_64-linux-gnu' "$ma/usr/lib/x86_64-linux-gnu/pkgconfig/preoom.pc"
maps=$(env -u PREOOM_LIB "$ma/usr/bin/preoom" run --registry off -- cat /proc/self/maps 2>"$T_TMP/ma.err")
check "LIBDIR: the installed preoom run preloads LIBDIR's library ($(head -c 200 "$T_TMP/ma.err"))" \
    grep -q "$ma/usr/lib/x86_64-linux-gnu/libpreoom.so" <<<"$maps"
# Put the build tree back as it was for the other tests (cmd_run.o with the default LIBDIR).
make -C "$TOP" --no-print-directory BUILD="$BUILD" all >/dev/null 2>&1
t_done

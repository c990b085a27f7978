#!/usr/bin/env bash
# tests/e2e/setuid.sh — a setuid program takes no settings from its environment.
#
# The loader preloads into a setuid program only a library named without a slash that sits
# in a system library directory and is itself setuid; then the program runs in secure-
# execution mode, where preoom reads its settings with secure_getenv and must see none. Needs
# root (to install that library copy and to run the program as another user); elsewhere it
# skips with the reason. Everything it installs it removes.
. "$(dirname "$0")/lib.sh"

if ! is_root; then skip "setuid: needs root to install a setuid library copy"; t_done; fi
if ! command -v setpriv >/dev/null; then skip "setuid: setpriv (util-linux) not installed"; t_done; fi
libdir=$(dirname "$(gcc -print-file-name=libc.so.6 2>/dev/null)")
case "$libdir" in /lib*|/usr/lib*) ;; *) libdir=/usr/lib/x86_64-linux-gnu ;; esac
name="libpreoom-setuid-test-$$.so"
inst="$libdir/$name"
cp "$LIB" "$inst" && chmod 4755 "$inst" || { fail "setuid: cannot install $inst"; t_done; }
trap 'rm -f "$inst"; t_cleanup' EXIT

# The program: prints whether it runs in secure mode. Owned by root, setuid, run as nobody.
cat >"$T_TMP/suid.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>
int main(void) {
    char *p = malloc(1000);
    printf("secure=%lu loaded=%d\n", getauxval(AT_SECURE),
           dlsym(RTLD_DEFAULT, "preoom_impl_api_version") != NULL);
    free(p);
    return 0;
}
C
gcc -o "$T_TMP/suid" "$T_TMP/suid.c" -ldl || { fail "setuid: cannot build the test program"; t_done; }
chmod 4755 "$T_TMP/suid"
chmod 0777 "$T_TMP"
asnobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }

# Control: the same library preloaded into a non-setuid copy does take PREOOM_REPORT.
cp "$T_TMP/suid" "$T_TMP/plain"; chmod 0755 "$T_TMP/plain"
asnobody env LD_PRELOAD="$name" PREOOM_REPORT="$T_TMP/plain.json" "$T_TMP/plain" >"$T_TMP/plain.out" 2>&1
check "control: a plain program takes PREOOM_REPORT" [ -s "$T_TMP/plain.json" ]

out=$(asnobody env LD_PRELOAD="$name" PREOOM_REPORT="$T_TMP/suid.json" PREOOM_VERBOSE=1 \
      "$T_TMP/suid" 2>&1)
check "setuid program runs in secure mode with libpreoom loaded" grep -q "secure=1 loaded=1" <<<"$out"
check "setuid program: PREOOM_REPORT from its environment is ignored" [ ! -e "$T_TMP/suid.json" ]
check "setuid program: PREOOM_VERBOSE from its environment is ignored" \
    bash -c '! grep -q "settings:" <<<"$1"' _ "$out"
t_done

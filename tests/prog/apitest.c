/* tests/prog/apitest.c — the contract of include/preoom.h, call by call.
 *
 *   apitest [EXPECTED_PRESSURE_LEVEL]
 *
 * With libpreoom.so: registration rules (order, duplicates, unknown, the limit), the hint
 * (only ever up), the stats, the pressure level the arbiter published (when an expected level
 * is given, wait up to 3 s for it). Without it: every call does nothing and says -ENOSYS or 0.
 * Prints "ok - "/"not ok - " lines.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "preoom.h"

static int failed;
#define T(name, cond)                                                                     \
    do {                                                                                  \
        int ok_ = (cond);                                                                 \
        printf("%s - %s\n", ok_ ? "ok" : "not ok", name);                                 \
        failed |= !ok_;                                                                   \
    } while (0)

static size_t cb_a(preoom_level_t l, size_t t, void *c) { (void)l; (void)t; (void)c; return 1; }
static size_t cb_b(preoom_level_t l, size_t t, void *c) { (void)l; (void)t; (void)c; return 2; }

int main(int argc, char **argv)
{
    if (preoom_api_version() == 0) {
        preoom_stats_t s;
        T("without the preload: on_release says -ENOSYS", preoom_on_release(cb_a, NULL) == -ENOSYS);
        T("without the preload: off_release says -ENOSYS", preoom_off_release(cb_a, NULL) == -ENOSYS);
        T("without the preload: stats are zero and -ENOSYS", preoom_stats(&s) == -ENOSYS && s.committed == 0);
        T("without the preload: pressure is none", preoom_pressure() == PREOOM_LEVEL_NONE);
        T("without the preload: hint says -ENOSYS", preoom_hint(10) == -ENOSYS);
        return failed;
    }
    T("API version", preoom_api_version() == PREOOM_API_VERSION);
    T("on_release(NULL) is -EINVAL", preoom_on_release(NULL, NULL) == -EINVAL);
    T("on_release registers", preoom_on_release(cb_a, NULL) == 0);
    T("the same pair twice is -EEXIST", preoom_on_release(cb_a, NULL) == -EEXIST);
    T("the same fn with another ctx is fine", preoom_on_release(cb_a, &failed) == 0);
    T("a second fn", preoom_on_release(cb_b, NULL) == 0);
    T("off_release of an unknown pair is -ENOENT", preoom_off_release(cb_b, &failed) == -ENOENT);
    T("off_release", preoom_off_release(cb_a, &failed) == 0 && preoom_off_release(cb_a, NULL) == 0 &&
                         preoom_off_release(cb_b, NULL) == 0);
    int n = 0, rc;
    static int ctx[100];
    while ((rc = preoom_on_release(cb_a, &ctx[n])) == 0 && n < 99)
        n++;
    T("the 65th callback is -ENOSPC", rc == -ENOSPC && n == 64);
    for (int i = 0; i < n; i++)
        preoom_off_release(cb_a, &ctx[i]);
    T("hint out of range is -EINVAL", preoom_hint(1001) == -EINVAL && preoom_hint(-1) == -EINVAL);
    T("hint raises", preoom_hint(300) == 0);
    T("hint never lowers (-EPERM)", preoom_hint(100) == -EPERM);
    T("hint to the same value is fine", preoom_hint(300) == 0);
    void *volatile p = malloc(32 << 20);
    memset(p, 1, 32 << 20);
    preoom_stats_t s;
    T("stats", preoom_stats(&s) == 0 && s.committed >= (32u << 20) && s.touched >= (32u << 20) &&
                   s.malloc_bytes >= (32u << 20) && s.peak_committed >= s.committed);
    T("stats(NULL) is -EINVAL", preoom_stats(NULL) == -EINVAL);
    free(p);
    if (argc > 1) {
        int want = atoi(argv[1]), got = -1;
        for (int i = 0; i < 60 && got != want; i++) {
            got = (int)preoom_pressure();
            struct timespec ts = {0, 50000000};
            if (got != want)
                nanosleep(&ts, NULL);
        }
        printf("%s - pressure level as the arbiter published it (%d, expected %d)\n",
               got == want ? "ok" : "not ok", got, want);
        failed |= got != want;
    } else {
        T("no arbiter: pressure is none", preoom_pressure() == PREOOM_LEVEL_NONE);
    }
    return failed;
}

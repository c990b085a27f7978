/* tests/prog/grow.c — grows its touched memory step by step, then holds it.
 *
 *   grow TARGET_MIB [STEP_MIB [STEP_MS [HOLD_MS]]]
 *
 * Each step mallocs STEP_MIB and writes every page, so committed and touched rise together.
 * After reaching TARGET it holds for HOLD_MS, prints "grow: done N MiB" and exits 0. Killed by
 * a signal otherwise (no handlers: SIGTERM ends it). The arbiter tests use several of these
 * to push a memory cgroup towards its limit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: grow TARGET_MIB [STEP_MIB [STEP_MS [HOLD_MS]]]\n");
        return 2;
    }
    long target = atol(argv[1]);
    long step = argc > 2 ? atol(argv[2]) : 4;
    long step_ms = argc > 3 ? atol(argv[3]) : 50;
    long hold_ms = argc > 4 ? atol(argv[4]) : 2000;
    if (target < 0 || step <= 0 || step_ms < 0 || hold_ms < 0) {
        fprintf(stderr, "grow: bad arguments\n");
        return 2;
    }
    long have = 0;
    while (have < target) {
        long n = step < target - have ? step : target - have;
        char *p = malloc((size_t)n << 20);
        if (!p) {
            fprintf(stderr, "grow: malloc failed at %ld MiB\n", have);
            return 1;
        }
        memset(p, 0x5a, (size_t)n << 20);
        have += n;
        sleep_ms(step_ms);
    }
    sleep_ms(hold_ms);
    printf("grow: done %ld MiB\n", have);
    return 0;
}

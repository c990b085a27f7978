/* bench/reg_bench.c — the registry's costs, measured in-process against common/registry.c
 * (linked from the core archive), for bench/registry.sh.
 *
 *   reg_bench time NAME RUNS   claim 1000 slots of a fresh registry NAME; print the median
 *                              cost of one publication (ns) and of a full snapshot walk of
 *                              the 1000 live slots (µs), as "publish_ns N" and "walk_us N"
 *   reg_bench hold NAME N      claim N slots of registry NAME and sleep until killed, so that
 *                              a preloaded process can be measured among N other live slots
 *
 * The slots carry this process's pid under made-up start times (one process cannot own 1000
 * real identities), so a reader that verifies against /proc, such as `preoom ls`, would reap
 * them: nothing of that kind runs while this holds them. It removes the registries it makes
 * with `time`; bench/registry.sh removes the one of `hold`.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define SLOTS 1000

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int claim_many(preoom_reg_t *r, long n, long *idx)
{
    uint64_t start = 0;
    preoom_procself_start_time(&start);
    for (long i = 0; i < n; i++) {
        /* Start times that are not ours: the exec rule would otherwise merge the claims. */
        idx[i] = preoom_reg_claim(r, getpid(), start + 1000000 + (uint64_t)i, 100, "reg_bench");
        if (idx[i] < 0) {
            fprintf(stderr, "reg_bench: claim %ld: %s\n", i, strerror((int)-idx[i]));
            return -1;
        }
    }
    return 0;
}

static int bench_time(const char *name, int runs)
{
    preoom_reg_t r;
    const char *why = "";
    int rc = preoom_reg_open(name, 1, 1024, -1, 1, &r, &why);
    if (rc != 0) {
        fprintf(stderr, "reg_bench: %s: %s\n", name, why);
        return 1;
    }
    static long idx[SLOTS];
    if (claim_many(&r, SLOTS, idx) != 0)
        return 1;
    preoom_totals_t t;
    memset(&t, 0, sizeof t);
    uint64_t *pub = calloc((size_t)runs, sizeof *pub), *walk = calloc((size_t)runs, sizeof *walk);
    struct preoom_slot s;
    volatile uint64_t sink = 0;
    for (int k = 0; k < runs; k++) {
        /* A publication: 10000 in a row on one slot, as the agent does one per interval. */
        uint64_t t0 = now_ns();
        for (int i = 0; i < 10000; i++) {
            t.committed = (uint64_t)i;
            preoom_reg_publish(&r, idx[i % SLOTS], &t, 0);
        }
        pub[k] = (now_ns() - t0) / 10000;
        /* A full walk: every one of the 1000 live slots copied under its sequence counter. */
        t0 = now_ns();
        long live = 0;
        for (uint64_t i = 0; i < r.slot_count; i++)
            if (preoom_reg_snapshot(&r, i, &s) == 0) {
                live++;
                sink += s.committed;
            }
        walk[k] = now_ns() - t0;
        if (live != SLOTS) {
            fprintf(stderr, "reg_bench: walk saw %ld live slots, not %d\n", live, SLOTS);
            return 1;
        }
    }
    qsort(pub, (size_t)runs, sizeof *pub, cmp_u64);
    qsort(walk, (size_t)runs, sizeof *walk, cmp_u64);
    printf("publish_ns %llu\nwalk_us %.1f\nwalk_min_us %.1f\nwalk_max_us %.1f\n",
           (unsigned long long)pub[runs / 2], (double)walk[runs / 2] / 1000.0,
           (double)walk[0] / 1000.0, (double)walk[runs - 1] / 1000.0);
    for (long i = 0; i < SLOTS; i++)
        preoom_reg_release(&r, idx[i]);
    preoom_reg_close(&r);
    char path[128];
    snprintf(path, sizeof path, "/dev/shm/preoom.%s", name);
    unlink(path);
    free(pub);
    free(walk);
    (void)sink;
    return 0;
}

static int bench_hold(const char *name, long n)
{
    preoom_reg_t r;
    const char *why = "";
    if (n < 0 || n > SLOTS) {
        fprintf(stderr, "reg_bench: hold: 0..%d slots\n", SLOTS);
        return 2;
    }
    if (preoom_reg_open(name, 1, 1024, -1, 1, &r, &why) != 0) {
        fprintf(stderr, "reg_bench: %s: %s\n", name, why);
        return 1;
    }
    static long idx[SLOTS];
    if (claim_many(&r, n, idx) != 0)
        return 1;
    printf("holding %ld\n", n);
    fflush(stdout);
    for (;;)
        pause();
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "time") == 0)
        return bench_time(argv[2], atoi(argv[3]) > 0 ? atoi(argv[3]) : 9);
    if (argc == 4 && strcmp(argv[1], "hold") == 0)
        return bench_hold(argv[2], atol(argv[3]));
    fprintf(stderr, "usage: reg_bench time NAME RUNS | reg_bench hold NAME N\n");
    return 2;
}

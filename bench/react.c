/* bench/react.c — how fast preoomd reacts: grows its touched memory in 1 MiB steps inside
 * a memory cgroup, notes the moment the cgroup's usage crosses the ask line, and the moment
 * its release callback runs. Prints "REACTION_MS" (callback time - crossing time; negative
 * when preoomd's forecast asked before the line was crossed).
 *
 *   react USAGE_FILE ASK_LINE_BYTES [jump]
 *
 * ramp (the default): 1 MiB every 2 ms, so preoomd's forecast sees the line coming and asks
 * ahead of it (a negative figure: how far ahead). jump: one allocation takes usage from far
 * below the line to just past it, which no forecast can see: the figure is preoomd's
 * detection (its poll, or the cgroup's usage threshold waking it) plus the agent's wake-up.
 *
 * USAGE_FILE is the cgroup's memory.usage_in_bytes (v1) or memory.current (v2).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "preoom.h"

static volatile uint64_t asked_ns;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static size_t on_release(preoom_level_t level, size_t target, void *ctx)
{
    (void)level; (void)target; (void)ctx;
    if (!asked_ns)
        asked_ns = now_ns();
    return 0;
}

static uint64_t usage(int fd)
{
    char buf[64];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strtoull(buf, NULL, 10);
}

int main(int argc, char **argv)
{
    if (argc < 3 || preoom_on_release(on_release, NULL) != 0) {
        fprintf(stderr, "usage: react USAGE_FILE ASK_LINE_BYTES (with libpreoom.so preloaded)\n");
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    uint64_t line = strtoull(argv[2], NULL, 10);
    uint64_t crossed_ns = 0, start = now_ns();
    if (argc > 3 && strcmp(argv[3], "jump") == 0) {
        uint64_t u = usage(fd);
        size_t need = line > u ? (size_t)(line - u) + (4u << 20) : (4u << 20);
        struct timespec settle = {0, 300000000};
        nanosleep(&settle, NULL); /* let preoomd see a flat line first */
        char *p = malloc(need);
        memset(p, 1, need);
        crossed_ns = now_ns(); /* at the latest: the usage is past the line now */
        while (!asked_ns && now_ns() - start < 10000000000ULL) {
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
        }
    }
    /* Until both moments are known: the forecast may ask before the line is crossed. */
    while ((!asked_ns || !crossed_ns) && now_ns() - start < 10000000000ULL) {
        char *p = malloc(1 << 20);
        memset(p, 1, 1 << 20);
        if (!crossed_ns && usage(fd) >= line)
            crossed_ns = now_ns();
        /* Slow near the line; slower still once asked (the forecast may ask before the
         * line), so the line is reached without running into the signal gate. */
        struct timespec ts = {0, asked_ns ? 20000000 : crossed_ns ? 200000 : 2000000};
        nanosleep(&ts, NULL);
    }
    if (!asked_ns || !crossed_ns) {
        printf("nan\n");
        return 1;
    }
    printf("%.3f\n", asked_ns >= crossed_ns ? (double)(asked_ns - crossed_ns) / 1e6
                                            : -(double)(crossed_ns - asked_ns) / 1e6);
    return 0;
}

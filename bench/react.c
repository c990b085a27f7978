/* bench/react.c — how fast preoomd reacts: grows its touched memory in 1 MiB steps inside
 * a memory cgroup, notes the moment the cgroup's usage crosses the ask line, and the moment
 * its release callback runs. Prints "REACTION_MS" (callback time - crossing time).
 *
 *   react USAGE_FILE ASK_LINE_BYTES
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
    while (!asked_ns && now_ns() - start < 10000000000ULL) {
        char *p = malloc(1 << 20);
        memset(p, 1, 1 << 20);
        if (!crossed_ns && usage(fd) >= line)
            crossed_ns = now_ns();
        struct timespec ts = {0, crossed_ns ? 200000 : 2000000}; /* slow near the line */
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

/* tests/e2e/ask.c — ask one registered process to release memory, as preoomd's act step
 * does (the floor's one request writer, common/registry.c), wait for its answer, and print
 * it: "bytes CALLBACK_BYTES TRIM_BYTES" (the fall of its touched memory, what its callbacks
 * said, what its allocator gave back). Built by the tests that use it, against the floor
 * only (libpreoom-common.a), never against the preload.
 *
 *   ask REGISTRY_NAME PID [LEVEL [BYTES]]     exit 0 answered, 1 error, 2 usage, 3 no answer
 * The process is waited for up to 5 s to appear in the registry, its answer up to 10 s.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "floor.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: ask REGISTRY_NAME PID [LEVEL [BYTES]]\n");
        return 2;
    }
    long pid = atol(argv[2]);
    unsigned level = argc > 3 ? (unsigned)atoi(argv[3]) : 1;
    uint64_t bytes = argc > 4 ? strtoull(argv[4], NULL, 10) : 1ULL << 30;
    preoom_reg_t reg;
    const char *why = "";
    int rc = preoom_reg_open(argv[1], 0, 0, -1, 1, &reg, &why);
    if (rc != 0) {
        fprintf(stderr, "ask: registry %s: %s (%s)\n", argv[1], why, strerror(-rc));
        return 1;
    }
    /* A process registers as its preload starts: it may not have yet (up to 5 s). */
    long idx = -1;
    struct preoom_slot snap;
    for (int tries = 0; tries < 500 && idx < 0; tries++) {
        for (uint64_t i = 0; i < reg.slot_count && idx < 0; i++)
            if (preoom_reg_snapshot(&reg, i, &snap) == 0 && (long)snap.pid == pid &&
                preoom_reg_pid_matches((pid_t)pid, snap.start_time))
                idx = (long)i;
        if (idx < 0) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    if (idx < 0) {
        fprintf(stderr, "ask: process %ld is not registered in %s\n", pid, argv[1]);
        return 1;
    }
    uint32_t serial;
    rc = preoom_reg_request(&reg, (uint64_t)idx, (int32_t)pid, snap.start_time, level, bytes,
                            &serial);
    if (rc != 0) {
        fprintf(stderr, "ask: request: %s\n", strerror(-rc));
        return 1;
    }
    preoom_answer_t a = {0, 0, 0, 0};
    int answered = 0;
    for (int i = 0; i < 1000 && answered == 0; i++) { /* up to 10 s */
        answered = preoom_reg_answered(&reg, (uint64_t)idx, (int32_t)pid, serial, level, &a);
        if (answered == 0) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    preoom_reg_close(&reg);
    if (answered < 0) {
        fprintf(stderr, "ask: answer: %s\n", strerror(-answered));
        return 1;
    }
    if (!answered) {
        fprintf(stderr, "ask: process %ld did not answer within 10 s\n", pid);
        return 3;
    }
    printf("%llu %llu %llu\n", (unsigned long long)a.bytes, (unsigned long long)a.callback_bytes,
           (unsigned long long)a.trim_bytes);
    return 0;
}

/* tests/harness.h — the tiny unit-test harness shared by the unit tests in tests/unit.
 *
 * Each check prints one line the runner (tests/run.sh) counts: "ok - NAME",
 * "not ok - NAME: why" or "skip - NAME: why". A test binary's exit status is 1 when any
 * check failed, so a crash or an early exit is counted as a failure too.
 */
#ifndef PREOOM_TEST_HARNESS_H
#define PREOOM_TEST_HARNESS_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int harness_failed;
static int harness_case_failed;
static const char *harness_case;

/* Run one named case: fn() performs CHECKs; the case passes when none failed. */
#define TEST_CASE(name, fn)                                                   \
    do {                                                                      \
        harness_case = (name);                                                \
        harness_case_failed = 0;                                              \
        fn();                                                                 \
        if (harness_case_failed)                                              \
            harness_failed = 1;                                               \
        else                                                                  \
            printf("ok - %s\n", harness_case);                                \
        fflush(stdout);                                                       \
    } while (0)

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond)) {                                                        \
            printf("not ok - %s: %s:%d: %s\n", harness_case, __FILE__,       \
                   __LINE__, #cond);                                          \
            harness_case_failed = 1;                                          \
        }                                                                     \
    } while (0)

#define CHECK_EQ_U64(a, b)                                                    \
    do {                                                                      \
        uint64_t ha_ = (uint64_t)(a), hb_ = (uint64_t)(b);                    \
        if (ha_ != hb_) {                                                     \
            printf("not ok - %s: %s:%d: %s == %" PRIu64 ", expected %s == %"  \
                   PRIu64 "\n", harness_case, __FILE__, __LINE__, #a, ha_,    \
                   #b, hb_);                                                  \
            harness_case_failed = 1;                                          \
        }                                                                     \
    } while (0)

#define CHECK_EQ_I64(a, b)                                                    \
    do {                                                                      \
        int64_t ha_ = (int64_t)(a), hb_ = (int64_t)(b);                       \
        if (ha_ != hb_) {                                                     \
            printf("not ok - %s: %s:%d: %s == %" PRId64 ", expected %s == %"  \
                   PRId64 "\n", harness_case, __FILE__, __LINE__, #a, ha_,    \
                   #b, hb_);                                                  \
            harness_case_failed = 1;                                          \
        }                                                                     \
    } while (0)

#define CHECK_STR(a, b)                                                       \
    do {                                                                      \
        const char *ha_ = (a), *hb_ = (b);                                    \
        if (!ha_ || !hb_ || strcmp(ha_, hb_) != 0) {                          \
            printf("not ok - %s: %s:%d: %s == \"%s\", expected \"%s\"\n",     \
                   harness_case, __FILE__, __LINE__, #a, ha_ ? ha_ : "(null)",\
                   hb_ ? hb_ : "(null)");                                     \
            harness_case_failed = 1;                                          \
        }                                                                     \
    } while (0)

#define SKIP(name, why) printf("skip - %s: %s\n", (name), (why))

#define TEST_END() return harness_failed ? 1 : 0

#endif

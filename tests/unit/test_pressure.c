/* tests/unit/test_pressure.c — preoomd's pressure rules, one table row per rule, with the
 * threshold parser's good and bad input and the adaptive poll interval. */
#include <errno.h>
#include <string.h>

#include "harness.h"
#include "pressure.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

static void t_parse(void)
{
    static const struct { const char *s; int rc; uint32_t pct; uint64_t bytes; } t[] = {
        {"15", 0, 1500, 0}, {"15%", 0, 1500, 0}, {"15.5", 0, 1550, 0}, {"0.25%", 0, 25, 0},
        {"99.99", 0, 9999, 0}, {"200M", 0, 0, 200 * MiB}, {"1GiB", 0, 0, GiB},
        {"512k", 0, 0, 512 << 10}, {"2G", 0, 0, 2 * GiB}, {"2gb", 0, 0, 2 * GiB},
        {"1.5G", 0, 0, 3 * GiB / 2}, {"1.5M", 0, 0, 3 * MiB / 2}, {"0.5GiB", 0, 0, GiB / 2},
        {"1.0000001K", 0, 0, 1024}, {"0.001K", 0, 0, 1}, /* rounded down to a byte */
        {"15,200M", 0, 1500, 200 * MiB}, {"10,1.5G", 0, 1000, 3 * GiB / 2},
        {"100", -ERANGE, 0, 0}, {"100%", -ERANGE, 0, 0}, {"101", -ERANGE, 0, 0},
        {"", -EINVAL, 0, 0}, {"abc", -EINVAL, 0, 0}, {"15,", -EINVAL, 0, 0}, {",15", -EINVAL, 0, 0},
        {"15%%", -EINVAL, 0, 0}, {"-5", -EINVAL, 0, 0}, {"15.", -EINVAL, 0, 0},
        {".5G", -EINVAL, 0, 0}, {"1.5X", -EINVAL, 0, 0}, {"2G ", -EINVAL, 0, 0},
        {"99999999999999999999G", -ERANGE, 0, 0}, {"16777216T", -ERANGE, 0, 0},
        {"15,200M,5", -EINVAL, 0, 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        preoom_threshold_t th = {7, 7};
        int rc = preoom_threshold_parse(t[i].s, &th);
        if (rc != t[i].rc || (rc == 0 && (th.percent_x100 != t[i].pct || th.bytes != t[i].bytes)))
            printf("# case '%s': rc %d, %u, %llu\n", t[i].s, rc, th.percent_x100,
                   (unsigned long long)th.bytes);
        CHECK_EQ_I64(rc, t[i].rc);
        if (rc == 0) {
            CHECK_EQ_U64(th.percent_x100, t[i].pct);
            CHECK_EQ_U64(th.bytes, t[i].bytes);
        } else {
            CHECK(th.percent_x100 == 7 && th.bytes == 7); /* untouched on error */
        }
    }
    preoom_threshold_t th = {1500, 100 * MiB};
    CHECK_EQ_U64(preoom_threshold_bytes(&th, GiB), 1500ULL * GiB / 10000); /* 15% > 100 MiB */
    CHECK_EQ_U64(preoom_threshold_bytes(&th, 256 * MiB), 100 * MiB);      /* 100 MiB > 15% */
}

/* The rungs as an operator writes them: each row sets some of --ask/--term/--kill over the
 * defaults (15 %, 10 %, 5 %) and says whether the order can hold, and whether it holds at
 * a 4 GiB and a 64 GiB total. */
static void t_check(void)
{
    static const struct {
        const char *ask, *term, *kill;
        int rc, at4g, at64g;
    } rows[] = {
        {NULL, NULL, NULL, 0, 0, 0},                        /* the defaults */
        {"20%", "10,200M", NULL, 0, 0, 0},                  /* preoomd(8)'s example */
        {"2G", NULL, NULL, 0, 0, -EINVAL},                  /* earlyoom's habit: 10% of 64G is 6.4G */
        {"1.5G", "1G", "500M", 0, 0, 0},                    /* sizes only: no total matters */
        {"15,2G", "10,1G", "5,512M", 0, 0, 0},
        {"20", "10,3G", NULL, 0, -EINVAL, 0},               /* 3G above 20% of 4G */
        {NULL, "20%", NULL, -EINVAL, -EINVAL, -EINVAL},     /* term above ask everywhere */
        {NULL, NULL, "12", -EINVAL, -EINVAL, -EINVAL},      /* kill above term everywhere */
        {"1G", "2G", "0", -EINVAL, -EINVAL, -EINVAL},       /* sizes out of order */
        {"5", "3", "4", -EINVAL, -EINVAL, -EINVAL},
        {"0", "0", "0", -EINVAL, 0, 0},                     /* no ask rung at all */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        preoom_thresholds_t t;
        preoom_thresholds_defaults(&t);
        const char *why = NULL;
        if (rows[i].ask)
            CHECK(preoom_threshold_parse(rows[i].ask, &t.ask) == 0);
        if (rows[i].term)
            CHECK(preoom_threshold_parse(rows[i].term, &t.term) == 0);
        if (rows[i].kill)
            CHECK(preoom_threshold_parse(rows[i].kill, &t.kill) == 0);
        int rc = preoom_thresholds_check(&t, &why);
        int r4 = preoom_thresholds_check_at(&t, 4 * GiB, &why);
        int r64 = preoom_thresholds_check_at(&t, 64 * GiB, &why);
        if (rc != rows[i].rc || r4 != rows[i].at4g || r64 != rows[i].at64g)
            printf("# row %zu (ask %s term %s kill %s): %d %d %d\n", i, rows[i].ask,
                   rows[i].term, rows[i].kill, rc, r4, r64);
        CHECK_EQ_I64(rc, rows[i].rc);
        CHECK_EQ_I64(r4, rows[i].at4g);
        CHECK_EQ_I64(r64, rows[i].at64g);
        if (rc != 0)
            CHECK(why != NULL && strncmp(why, "th", 2) == 0);
        /* The effective lines are ordered whatever the rungs say, and agree with the
         * assessment: memory just under a line is at least that line's level. */
        for (uint64_t total = 64 * MiB; total <= 64 * GiB; total *= 4) {
            uint64_t a, s, k;
            preoom_thresholds_lines(&t, total, &a, &s, &k);
            CHECK(a >= s && s >= k);
            preoom_readings_t r;
            memset(&r, 0, sizeof r);
            r.mem_total_bytes = total;
            preoom_assessment_t as;
            if (s > 0) {
                r.mem_available_bytes = s - 1;
                preoom_pressure_assess(&t, &r, &as);
                CHECK(as.level >= PREOOM_PRESSURE_CRITICAL);
            }
            if (a > 0) {
                r.mem_available_bytes = a;
                preoom_pressure_assess(&t, &r, &as);
                CHECK(as.level >= PREOOM_PRESSURE_MODERATE);
            }
            r.mem_available_bytes = a + 1;
            preoom_pressure_assess(&t, &r, &as);
            CHECK(as.level == PREOOM_PRESSURE_NONE || a + 1 > total);
        }
    }
}

/* A 256 MiB cgroup on a 16 GiB machine with plenty free. */
static preoom_readings_t base(void)
{
    preoom_readings_t r;
    memset(&r, 0, sizeof r);
    r.mem_total_bytes = 16 * GiB;
    r.mem_available_bytes = 12 * GiB;
    r.cgroup_valid = true;
    r.cg_limit_bytes = 256 * MiB;
    return r;
}

static void t_assess(void)
{
    preoom_thresholds_t t;
    preoom_thresholds_defaults(&t);
    struct {
        const char *name;
        uint64_t usage, file, exposure, sys_avail;
        uint32_t some, full;
        bool psi;
        int level;
        const char *reason;
    } rows[] = {
        /* rule 1 & 2: the cgroup's own availability against 15/10/5 % of 256 MiB */
        {"cgroup far from its limit", 100 * MiB, 0, 0, 12 * GiB, 0, 0, false, PREOOM_PRESSURE_NONE, "cgroup memory available"},
        {"cgroup at 86% used: ask", 220 * MiB, 0, 0, 12 * GiB, 0, 0, false, PREOOM_PRESSURE_MODERATE, "cgroup memory available"},
        {"cgroup at 91% used: SIGTERM", 233 * MiB, 0, 0, 12 * GiB, 0, 0, false, PREOOM_PRESSURE_CRITICAL, "cgroup memory available"},
        {"cgroup at 96% used: SIGKILL", 246 * MiB, 0, 0, 12 * GiB, 0, 0, false, PREOOM_PRESSURE_COMPLETE, "cgroup memory available"},
        /* half of the page cache counts as reclaimable */
        {"page cache is half credited", 240 * MiB, 60 * MiB, 0, 12 * GiB, 0, 0, false, PREOOM_PRESSURE_NONE, "cgroup memory available"},
        /* rule 1: the machine is worse off than the cgroup */
        {"machine short while the cgroup is not", 100 * MiB, 0, 0, 500 * MiB, 0, 0, false, PREOOM_PRESSURE_COMPLETE, "memory available"},
        /* rule 3: exposure asks, never more */
        {"exposure asks", 150 * MiB, 0, 150 * MiB, 12 * GiB, 0, 0, false, PREOOM_PRESSURE_MODERATE, "exposure (committed but untouched memory)"},
        {"exposure cannot raise to SIGTERM", 150 * MiB, 0, 10 * GiB, 12 * GiB, 0, 0, false, PREOOM_PRESSURE_MODERATE, "exposure (committed but untouched memory)"},
        {"small exposure is no pressure", 150 * MiB, 0, 20 * MiB, 12 * GiB, 0, 0, false, PREOOM_PRESSURE_NONE, "cgroup memory available"},
        /* rule 4: PSI */
        {"PSI some at 20% asks", 100 * MiB, 0, 0, 12 * GiB, 2000, 0, true, PREOOM_PRESSURE_MODERATE, "PSI memory some"},
        {"PSI full at 40% is critical", 100 * MiB, 0, 0, 12 * GiB, 5000, 4000, true, PREOOM_PRESSURE_CRITICAL, "PSI memory full"},
        {"PSI below its marks is quiet", 100 * MiB, 0, 0, 12 * GiB, 1999, 3999, true, PREOOM_PRESSURE_NONE, "cgroup memory available"},
        {"PSI never lowers a level", 246 * MiB, 0, 0, 12 * GiB, 5000, 5000, true, PREOOM_PRESSURE_COMPLETE, "cgroup memory available"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        preoom_readings_t r = base();
        r.cg_usage_bytes = rows[i].usage;
        r.cg_file_bytes = rows[i].file;
        r.exposure_bytes = rows[i].exposure;
        r.mem_available_bytes = rows[i].sys_avail;
        r.psi_valid = rows[i].psi;
        r.psi_some_avg10_x100 = rows[i].some;
        r.psi_full_avg10_x100 = rows[i].full;
        preoom_assessment_t a;
        preoom_pressure_assess(&t, &r, &a);
        if ((int)a.level != rows[i].level || strcmp(a.reason, rows[i].reason) != 0)
            printf("# row: %s -> level %d (%s)\n", rows[i].name, a.level, a.reason);
        CHECK_EQ_I64(a.level, rows[i].level);
        CHECK_STR(a.reason, rows[i].reason);
    }
    /* Without a cgroup: RAM and swap together. */
    preoom_readings_t r = base();
    r.cgroup_valid = false;
    r.mem_total_bytes = 8 * GiB;
    r.mem_available_bytes = 500 * MiB;
    r.swap_total_bytes = 8 * GiB;
    r.swap_free_bytes = 8 * GiB;
    preoom_assessment_t a;
    preoom_pressure_assess(&t, &r, &a);
    CHECK_EQ_I64(a.level, PREOOM_PRESSURE_NONE); /* 8.5 of 16 GiB left */
    CHECK(!a.in_cgroup);
    r.swap_free_bytes = 1 * GiB;
    preoom_pressure_assess(&t, &r, &a);
    CHECK_EQ_I64(a.level, PREOOM_PRESSURE_CRITICAL); /* 1.5 of 16 GiB = 9.4%: under 10% */
    /* A cgroup without a limit is the machine. */
    r = base();
    r.cg_limit_bytes = UINT64_MAX;
    r.cg_usage_bytes = 10 * GiB;
    preoom_pressure_assess(&t, &r, &a);
    CHECK(!a.in_cgroup && a.level == PREOOM_PRESSURE_NONE);
    /* A cgroup judged alone (one domain of a daemon that watches the machine as another):
     * the machine's shortage is not this cgroup's. */
    r = base();
    r.cg_usage_bytes = 100 * MiB;
    r.mem_available_bytes = 500 * MiB;
    preoom_pressure_assess(&t, &r, &a);
    CHECK(!a.in_cgroup && a.level == PREOOM_PRESSURE_COMPLETE);
    r.cgroup_only = true;
    preoom_pressure_assess(&t, &r, &a);
    CHECK(a.in_cgroup && a.level == PREOOM_PRESSURE_NONE);
    CHECK_STR(a.reason, "cgroup memory available");
    /* ...and a cgroup without a limit is still the machine. */
    r.cg_limit_bytes = UINT64_MAX;
    preoom_pressure_assess(&t, &r, &a);
    CHECK(!a.in_cgroup && a.level == PREOOM_PRESSURE_COMPLETE);
    /* Headroom: from the effective availability to the ask line. */
    r = base();
    r.cg_usage_bytes = 100 * MiB;
    preoom_pressure_assess(&t, &r, &a);
    CHECK_EQ_U64(a.headroom_bytes, 156 * MiB - preoom_threshold_bytes(&t.ask, 256 * MiB));
}

static void t_poll(void)
{
    CHECK_EQ_U64(preoom_poll_ms(0, 5, 1000), 5);
    CHECK_EQ_U64(preoom_poll_ms(10 * MiB, 5, 1000), 5);      /* ~1.7 ms of fill: a few ms */
    CHECK_EQ_U64(preoom_poll_ms(600ULL * 6000 * 1024, 5, 1000), 600);
    CHECK_EQ_U64(preoom_poll_ms(100 * GiB, 5, 1000), 1000);
}

int main(void)
{
    TEST_CASE("pressure: threshold parsing", t_parse);
    TEST_CASE("pressure: thresholds must come in order", t_check);
    TEST_CASE("pressure: the rules, row by row", t_assess);
    TEST_CASE("pressure: adaptive poll interval", t_poll);
    TEST_END();
}

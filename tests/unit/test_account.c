/* tests/unit/test_account.c — per-thread counters: threads that come and go hand their
 * blocks on, and the sums stay exact; frees of memory never counted never go below zero;
 * the pure parsers of /proc/self and the report formatter. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"

static void *adder(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++)
        preoom_account_malloc(100, PREOOM_CALL_MALLOC);
    for (long i = 0; i < n / 2; i++)
        preoom_account_malloc(-100, PREOOM_CALL_FREE);
    return NULL;
}

static void t_threads(void)
{
    preoom_account_init();
    preoom_totals_t a, b;
    preoom_account_sum(&a);
    /* 4 waves of 8 threads: later threads adopt the blocks of earlier ones. */
    for (int wave = 0; wave < 4; wave++) {
        pthread_t t[8];
        for (int i = 0; i < 8; i++)
            pthread_create(&t[i], NULL, adder, (void *)(intptr_t)10000);
        for (int i = 0; i < 8; i++)
            pthread_join(t[i], NULL);
    }
    preoom_account_sum(&b);
    CHECK_EQ_U64(b.malloc_bytes - a.malloc_bytes, 32ULL * 5000 * 100);
    CHECK_EQ_U64(b.calls[PREOOM_CALL_MALLOC] - a.calls[PREOOM_CALL_MALLOC], 32ULL * 10000);
    CHECK_EQ_U64(b.calls[PREOOM_CALL_FREE] - a.calls[PREOOM_CALL_FREE], 32ULL * 5000);
    CHECK_EQ_U64(b.committed, b.malloc_bytes + b.mmap_bytes + b.brk_bytes);
}

static void t_never_negative(void)
{
    preoom_totals_t t;
    preoom_account_sum(&t);
    preoom_account_malloc(-(int64_t)t.malloc_bytes - 12345, PREOOM_CALL_FREE);
    preoom_account_sum(&t);
    CHECK_EQ_U64(t.malloc_bytes, 0);
    preoom_account_malloc(12345, PREOOM_CALL_MALLOC);
}

static void t_finish(void)
{
    preoom_totals_t t;
    memset(&t, 0, sizeof t);
    t.malloc_bytes = 100;
    t.mmap_bytes = 1000;
    t.committed = 1100;
    preoom_account_finish(&t, 300, 50);
    CHECK_EQ_U64(t.touched, 350);
    CHECK_EQ_U64(t.slack, 250);
    CHECK_EQ_U64(t.exposure, 750);
    CHECK(t.peak_touched >= 350 && t.peak_committed >= 1100);
}

static void t_parsers(void)
{
    const char *st = "Name:\tx\nVmRSS:\t  2000 kB\nRssAnon:\t    1234 kB\nVmSwap:\t 10 kB\n";
    uint64_t a = 0, s = 0;
    CHECK(preoom_parse_status_touched(st, strlen(st), &a, &s) == 0);
    CHECK_EQ_U64(a, 1234 * 1024);
    CHECK_EQ_U64(s, 10 * 1024);
    const char *noswap = "RssAnon: 5 kB\n";
    CHECK(preoom_parse_status_touched(noswap, strlen(noswap), &a, &s) == 0 && s == 0 && a == 5120);
    const char *bad = "RssAnon: kB\n";
    CHECK(preoom_parse_status_touched(bad, strlen(bad), &a, &s) == -EINVAL);
    CHECK(preoom_parse_status_touched("", 0, &a, &s) == -ENOENT);
    const char *huge = "RssAnon: 99999999999999999999999 kB\n";
    CHECK(preoom_parse_status_touched(huge, strlen(huge), &a, &s) == -ERANGE);
    CHECK(preoom_parse_statm_anon("1000 300 100 5 0 200 0\n", 24, 4096, &a) == 0);
    CHECK_EQ_U64(a, 200 * 4096);
    CHECK(preoom_parse_statm_anon("1000 300", 8, 4096, &a) == -EINVAL);
    CHECK(preoom_parse_statm_anon("x", 1, 4096, &a) == -EINVAL);
    /* The real thing: statm's anon equals status's RssAnon (the same counters). The exact
     * read refreshes the swap figure, so the cheap one right after reads statm. */
    uint64_t sa = 0, ss = 0, ea = 0, es = 0;
    int same = 0;
    for (int tries = 0; tries < 5 && !same; tries++) {
        preoom_procself_touched_exact(&ea, &es);
        preoom_procself_touched(&sa, &ss);
        same = sa == ea && ss == es;
    }
    CHECK(same);
    /* Seccomp mode: 0, 1 or 2; -1 when absent or not a digit (an older kernel, a torn read) */
    const char *sec = "Name:\tx\nNoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\n";
    CHECK(preoom_parse_status_seccomp(sec, strlen(sec)) == 2);
    const char *sec0 = "Name:\tx\nSeccomp:\t0\n", *cut = "Name:\tx\nSeccomp:\t",
               *notdigit = "Name:\tx\nSeccomp:\tz\n";
    CHECK(preoom_parse_status_seccomp(sec0, strlen(sec0)) == 0);
    CHECK(preoom_parse_status_seccomp(cut, strlen(cut)) == -1);
    CHECK(preoom_parse_status_seccomp(notdigit, strlen(notdigit)) == -1);
    CHECK(preoom_parse_status_seccomp(st, strlen(st)) == -1);
    CHECK(preoom_parse_status_seccomp("", 0) == -1);
    /* Kept open and read again and again, /proc/self/status gives the same answer as a fresh
     * open does (procfs builds the text anew at offset 0). */
    preoom_procself_open();
    uint64_t ka = 0, ks = 0;
    CHECK(preoom_procself_touched_exact(&ka, &ks) == 0 && ka > 0);
    CHECK(preoom_procself_touched_exact(&ka, &ks) == 0 && ka > 0);
    /* a hostile comm with ') ' and digits in it */
    const char *stat = "42 (evil) 1 2 3 ) S 1 42 42 0 -1 4194304 100 0 0 0 5 6 0 0 20 0 1 0 "
                       "987654 1000000 200 18446744073709551615";
    uint64_t start = 0;
    CHECK(preoom_parse_stat_start_time(stat, strlen(stat), &start) == 0);
    CHECK_EQ_U64(start, 987654);
    CHECK(preoom_parse_stat_start_time("42 (x) S 1", 10, &start) == -EINVAL);
    CHECK(preoom_parse_stat_defunct(stat, strlen(stat)) == 0); /* S: alive */
    const char *zombie = "42 (a) Z) Z 1 42 42 0 -1 4194304 100 0 0 0 5 6 0 0 20 0 1 0 987654 0 0";
    CHECK(preoom_parse_stat_defunct(zombie, strlen(zombie)) == 1);
    const char *zthreads = "42 (a) Z 1 42 42 0 -1 4194304 100 0 0 0 5 6 0 0 20 0 3 0 987654 0 0";
    CHECK(preoom_parse_stat_defunct(zthreads, strlen(zthreads)) == 0); /* pthread_exit'ed main */
    CHECK(preoom_parse_stat_start_time("no paren", 8, &start) == -EINVAL);
}

static void t_report(void)
{
    char out[64];
    CHECK(preoom_report_path("/tmp/r.%p.json", 1234, out, sizeof out) == 0);
    CHECK_STR(out, "/tmp/r.1234.json");
    CHECK(preoom_report_path("/tmp/%p-%p", 7, out, sizeof out) == 0);
    CHECK_STR(out, "/tmp/7-7");
    CHECK(preoom_report_path("/tmp/%q%", 7, out, sizeof out) == 0);
    CHECK_STR(out, "/tmp/%q%");
    CHECK(preoom_report_path("/a/very/long/path/that/does/not/fit/in/sixty/four/bytes/%p.json",
                             1234567, out, sizeof out) == -ENAMETOOLONG);
    preoom_totals_t t;
    memset(&t, 0, sizeof t);
    t.committed = 5;
    t.calls[PREOOM_CALL_MALLOC] = 9;
    char buf[2048];
    long n = preoom_report_json(&t, 99, "a\"b\\c\n", buf, sizeof buf);
    CHECK(n > 0);
    CHECK(strstr(buf, "\"pid\": 99, \"name\": \"a\\\"b\\\\c\\u000a\", \"committed\": 5,") != NULL);
    CHECK(strstr(buf, "\"calls\": {\"malloc\": 9, ") != NULL);
    CHECK(preoom_report_json(&t, 99, "x", buf, 100) == -ENOSPC);
}

static void t_fmt(void)
{
    char b[64];
    preoom_fmt(b, sizeof b, "%d|%5u|%05d|%x|%s|%c|%%|%lld|%zu", -42, 7u, 42, 255u, "hi", 'z',
               (long long)-9000000000LL, (size_t)18);
    CHECK_STR(b, "-42|    7|00042|ff|hi|z|%|-9000000000|18");
    CHECK_EQ_U64(preoom_fmt(b, 4, "abcdef"), 3);
    CHECK_STR(b, "abc");
    const char *volatile nothing = NULL; /* hidden from GCC's format check on purpose */
    preoom_fmt(b, sizeof b, "%s", nothing);
    CHECK_STR(b, "(null)");
}

int main(void)
{
    TEST_CASE("account: 32 threads in 4 waves sum exactly", t_threads);
    TEST_CASE("account: frees of uncounted memory never go below zero", t_never_negative);
    TEST_CASE("account: touched, slack and exposure", t_finish);
    TEST_CASE("procself: status and stat parsers, hostile input", t_parsers);
    TEST_CASE("report: path template and JSON", t_report);
    TEST_CASE("fmt: the allocation-free formatter", t_fmt);
    TEST_END();
}

/* tests/unit/test_stacks.c — the pure parts of the call-site recorder and report: the
 * sampling draw and its weights, ln without libm, the pointer filter and map, the report
 * parser (bad input included) and the collapsed-stack formatter; and the recorder itself
 * (without the hooks) for the per-thread pending counts a report must add up.
 */
#include <math.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"
#include "stackreport.h"
#include "pprof.h"
#include "symbolize.h"

static void test_ln(void)
{
    static const double xs[] = {1e-300, 1e-17, 1e-9, 0.001, 0.3, 0.5, 0.7071, 0.9999, 1.0, 2.5, 1e9};
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++)
        CHECK(fabs(preoom_ln(xs[i]) - log(xs[i])) <= 1e-12 * (1 + fabs(log(xs[i]))));
    static const double ys[] = {1e-9, 1e-4, 0.1, 0.49, 0.5, 1, 3, 20, 100};
    for (size_t i = 0; i < sizeof ys / sizeof ys[0]; i++)
        CHECK(fabs(preoom_one_minus_exp_neg(ys[i]) - (-expm1(-ys[i]))) <=
              1e-12 * -expm1(-ys[i]));
}

/* The table-driven forms against libm everywhere, not only at chosen points: a million
 * random arguments across every binade the sampler can meet, and the table seams. */
static void test_ln_dense(void)
{
    uint64_t st = 99;
    double worst_ln = 0, worst_exp = 0;
    for (int i = 0; i < 1000000; i++) {
        uint64_t r = preoom_xorshift64(&st);
        /* u in (0, 1] as preoom_sample_draw makes it, and a spread over 1e-300..1e300 */
        double u = (double)((r >> 11) + 1) * (1.0 / 9007199254740992.0);
        double w = ldexp(1 + (double)(r & 0xfffff) / 0x100000, (int)(r >> 54) % 1996 - 998);
        double xs[2] = {u, w};
        for (int k = 0; k < 2; k++) {
            double err = fabs(preoom_ln(xs[k]) - log(xs[k])) / (1 + fabs(log(xs[k])));
            if (err > worst_ln)
                worst_ln = err;
        }
        /* x = bytes / mean: 1e-9 .. 800 */
        double x = ldexp(1 + (double)(r & 0xffff) / 0x10000, (int)(r >> 58) % 40 - 30);
        double want = -expm1(-x);
        double err = fabs(preoom_one_minus_exp_neg(x) - want) / want;
        if (err > worst_exp)
            worst_exp = err;
    }
    CHECK(worst_ln <= 1e-14);
    CHECK(worst_exp <= 1e-13);
    /* the seams: table steps of ln (c = 1 + i/128) and of exp (x = n ln2/64), either side */
    int bad = 0;
    for (int i = 0; i <= 128; i++) {
        double c = 1 + i / 128.0;
        for (int d = -1; d <= 1; d++) {
            double x = nextafter(c, d < 0 ? 0 : 4);
            if (d == 0)
                x = c;
            bad |= fabs(preoom_ln(x) - log(x)) > 1e-15 * (1 + fabs(log(x)));
        }
    }
    for (int n = 1; n < 64 * 20; n++) {
        double c = n * (log(2) / 64);
        for (int d = -1; d <= 1; d += 2) {
            double x = nextafter(c, d < 0 ? 0 : 1e9);
            bad |= fabs(preoom_one_minus_exp_neg(x) + expm1(-x)) > 1e-13 * -expm1(-x);
        }
    }
    CHECK(!bad);
    CHECK(preoom_one_minus_exp_neg(0) == 0);
    CHECK(preoom_one_minus_exp_neg(1000) == 1);
    CHECK(preoom_ln(0) < -1e300);
    CHECK(fabs(preoom_ln(4.9e-324) - log(4.9e-324)) < 1e-12 * 745);  /* subnormal */
}

/* The stack hash keys the lock-free site index: equal stacks hash equal, a change in any
 * frame or in the depth changes it, and it is never 0 (0 marks nothing). */
static void test_stack_hash(void)
{
    uintptr_t a[8] = {0x401000, 0x401234, 0x7f0000012345, 0x7f00000a0000, 5, 6, 7, 8};
    uintptr_t b[8];
    memcpy(b, a, sizeof a);
    CHECK(preoom_stack_hash(a, 8) == preoom_stack_hash(b, 8));
    CHECK(preoom_stack_hash(a, 8) != preoom_stack_hash(a, 7));
    int bad = 0;
    for (int i = 0; i < 8; i++) {
        b[i] ^= 16;
        bad |= preoom_stack_hash(a, 8) == preoom_stack_hash(b, 8);
        b[i] ^= 16;
    }
    CHECK(!bad);
    CHECK(preoom_stack_hash(a, 0) != 0);
    /* spread: the index uses the top 14 bits; 4096 stacks differing in one return address
     * should fill well over half of 4096 buckets (random: 63%) */
    static unsigned char seen[1 << 12];
    int filled = 0;
    for (int i = 0; i < 4096; i++) {
        a[1] = 0x401000 + (uintptr_t)i * 5;
        unsigned slot = (unsigned)(preoom_stack_hash(a, 8) >> 52);
        filled += !seen[slot];
        seen[slot] = 1;
    }
    CHECK(filled > 4096 * 55 / 100);
}

/* The draws have the mean asked for: 200k exponential draws have a relative standard
 * error of 1/sqrt(200k) = 0.22%; allow 2%. And the spread is exponential's (sd = mean). */
static void test_draw_mean(void)
{
    uint64_t st = 12345;
    const uint64_t mean = 512 * 1024;
    const int n = 200000;
    double sum = 0, sq = 0;
    int64_t minv = INT64_MAX;
    for (int i = 0; i < n; i++) {
        int64_t d = preoom_sample_draw(&st, mean);
        sum += (double)d;
        sq += (double)d * (double)d;
        if (d < minv)
            minv = d;
    }
    double m = sum / n, sd = sqrt(sq / n - m * m);
    CHECK(fabs(m / mean - 1) < 0.02);
    CHECK(fabs(sd / mean - 1) < 0.03);
    CHECK(minv >= 1);
}

/* End to end through the countdown the hooks run: sampled weights estimate the bytes and
 * counts of a stream of mixed sizes to within a few percent. */
static void test_weights_unbiased(void)
{
    uint64_t st = 777;
    const uint64_t S = 64 * 1024;
    static const uint64_t sizes[] = {16, 100, 4096, 50000, 300000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int64_t countdown = preoom_sample_draw(&st, S);
        double est_b = 0, est_c = 0, true_b = 0, true_c = 0;
        for (int i = 0; i < 400000; i++) {
            uint64_t n = sizes[k];
            true_b += (double)n;
            true_c += 1;
            countdown -= (int64_t)n;
            if (countdown < 0) {
                countdown = preoom_sample_draw(&st, S);
                uint64_t wb, wc;
                preoom_sample_weight(n, S, &wb, &wc);
                est_b += (double)wb;
                est_c += (double)wc / PREOOM_COUNT_ONE;
            }
        }
        CHECK(fabs(est_b / true_b - 1) < 0.03);
        CHECK(fabs(est_c / true_c - 1) < 0.03);
    }
    uint64_t wb, wc;
    preoom_sample_weight(16 << 20, 512 * 1024, &wb, &wc);
    CHECK_EQ_U64(wb, 16 << 20);   /* huge blocks are always sampled: weight is their size */
    CHECK_EQ_U64(wc, PREOOM_COUNT_ONE);
}

static void test_filter(void)
{
    preoom_pfilter_t *f = preoom_pfilter_new(10);
    CHECK(f != NULL);
    CHECK_EQ_U64(f->bits, 10);
    uintptr_t ps[500];
    for (int i = 0; i < 500; i++)
        ps[i] = 0x7f0000001000u + (uintptr_t)i * 48;
    for (int i = 0; i < 500; i++)
        CHECK(!preoom_pfilter_maybe(f, ps[i]));
    for (int i = 0; i < 500; i += 2)
        preoom_pfilter_add(f, ps[i]);
    for (int i = 0; i < 500; i += 2)
        CHECK(preoom_pfilter_maybe(f, ps[i]));     /* never a false "not sampled" */
    for (int i = 0; i < 500; i += 2)
        preoom_pfilter_del(f, ps[i]);
    int any = 0;
    for (int i = 0; i < 500; i++)
        any |= preoom_pfilter_maybe(f, ps[i]);
    CHECK(!any);                                     /* counts go back to zero */
    /* A saturated counter sticks: 300 adds and 300 deletes of one pointer leave it "maybe"
     * (a few wasted lookups later), never a count that wrapped round to zero too early. */
    for (int i = 0; i < 300; i++)
        preoom_pfilter_add(f, ps[1]);
    CHECK_EQ_U64(f->counts[preoom_pfilter_index(f->bits, ps[1])], UINT8_MAX);
    for (int i = 0; i < 300; i++)
        preoom_pfilter_del(f, ps[1]);
    CHECK(preoom_pfilter_maybe(f, ps[1]));
    preoom_arena_free(f, sizeof *f + ((size_t)1 << 10));
}

/* A shard's filter is changed under the shard's lock and read by the free hook with no lock
 * at all. Four threads add and take away pointers that share a tiny filter's buckets, under
 * one mutex as the shard's writers do, and after each add check their own pointers without
 * it: a reader must never see "not sampled" for a pointer that is in, whatever the others are
 * doing to the same buckets; and every count must come back to zero. */
struct pf_worker { preoom_pfilter_t *f; pthread_mutex_t *lock; uintptr_t base; int bad; };

static void *pf_churn(void *arg)
{
    struct pf_worker *w = arg;
    for (int round = 0; round < 2000; round++) {
        for (int i = 0; i < 16; i++) {
            pthread_mutex_lock(w->lock);
            preoom_pfilter_add(w->f, w->base + (uintptr_t)i * 16);
            pthread_mutex_unlock(w->lock);
        }
        for (int i = 0; i < 16; i++)
            w->bad |= !preoom_pfilter_maybe(w->f, w->base + (uintptr_t)i * 16);
        for (int i = 0; i < 16; i++) {
            pthread_mutex_lock(w->lock);
            preoom_pfilter_del(w->f, w->base + (uintptr_t)i * 16);
            pthread_mutex_unlock(w->lock);
        }
    }
    return NULL;
}

static void test_filter_threads(void)
{
    /* 16 buckets, 4 x 16 pointers: at most 64 in a bucket, below the sticky top. */
    preoom_pfilter_t *f = preoom_pfilter_new(4);
    CHECK(f != NULL);
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_t t[4];
    struct pf_worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct pf_worker){f, &lock, 0x7f0000000000u + (uintptr_t)i * 0x100000, 0};
        CHECK(pthread_create(&t[i], NULL, pf_churn, &w[i]) == 0);
    }
    int bad = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        bad |= w[i].bad;
    }
    CHECK(!bad);
    int left = 0;
    for (unsigned i = 0; i < 1u << f->bits; i++)
        left += f->counts[i];
    CHECK_EQ_U64(left, 0);
    preoom_arena_free(f, sizeof *f + 16);
}

static void test_pmap(void)
{
    preoom_pmap_t m = {0};
    const int N = 20000;
    for (int i = 1; i <= N; i++) {
        preoom_pmap_entry_t e = {.ptr = (uintptr_t)i * 16, .bytes = (uint64_t)i, .count = 1};
        CHECK(preoom_pmap_put(&m, &e) == 0);
    }
    CHECK_EQ_U64(m.used, N);
    preoom_pmap_entry_t out;
    int bad = 0;
    for (int i = 1; i <= N; i += 3)
        bad |= !(preoom_pmap_take(&m, (uintptr_t)i * 16, &out) && out.bytes == (uint64_t)i);
    CHECK(!bad);
    for (int i = 1; i <= N; i++) {
        int found = preoom_pmap_take(&m, (uintptr_t)i * 16, &out);
        bad |= found != ((i - 1) % 3 != 0);
        bad |= found && out.bytes != (uint64_t)i;
    }
    CHECK(!bad);
    CHECK_EQ_U64(m.used, 0);
    CHECK(!preoom_pmap_take(&m, 16, &out));
}

static void test_collapsed(void)
{
    const char *names[] = {"leaf", "mid;dle", "root"};
    char buf[256];
    size_t n = srep_collapsed_line(names, 3, 0, 4096, buf, sizeof buf);
    CHECK_STR(buf, "root;mid:dle;leaf 4096\n");
    CHECK_EQ_U64(n, strlen(buf));
    srep_collapsed_line(names, 3, 1, 7, buf, sizeof buf);
    CHECK_STR(buf, "[truncated];root;mid:dle;leaf 7\n");
    srep_collapsed_line(names, 0, 0, 1, buf, sizeof buf);
    CHECK_STR(buf, "[no frames] 1\n");
    char small[8];
    n = srep_collapsed_line(names, 3, 0, 4096, small, sizeof small);
    CHECK_EQ_U64(n, strlen("root;mid:dle;leaf 4096\n"));
    CHECK_STR(small, "root;mi");
}

static const char good[] =
    "{\"pid\": 42, \"name\": \"x\", \"committed\": 1, \"calls\": {\"malloc\": 3}, \"stacks\": "
    "{\"version\": 1, \"mode\": \"all\", \"sample_bytes\": 0, \"depth\": 32, \"dropped\": 0, "
    "\"stack_cache\": {\"mode\": \"verify\", \"hits\": 7, \"walks\": 2, \"mismatches\": 0}, "
    "\"sites\": [{\"id\": 1, \"live_bytes\": 100, \"live_count\": 2, \"total_bytes\": 300, "
    "\"total_count\": 5, \"peak_bytes\": 200, \"samples\": 5, \"truncated\": false, "
    "\"frames\": [\"0x1010\", \"0x2020\"]}],\n\"modules\": [{\"id\": 0, \"path\": \"/bin/x\", "
    "\"bias\": \"0x1000\", \"lo\": \"0x1000\", \"hi\": \"0x3000\", \"build_id\": \"ab\", "
    "\"loaded\": true}]}}\n";

static void test_parse(void)
{
    srep_t r;
    char err[200];
    CHECK(srep_parse(good, strlen(good), &r, err, sizeof err) == 0);
    CHECK(r.has_stacks);
    CHECK_EQ_U64(r.nsites, 1);
    CHECK_EQ_U64(r.sites[0].peak_bytes, 200);
    CHECK_EQ_U64(r.sites[0].frames[1], 0x2020);
    CHECK_EQ_U64(r.nmodules, 1);
    CHECK(srep_module_of(&r, 0x2fff) == &r.modules[0]);
    CHECK(srep_module_of(&r, 0x3000) == NULL);
    CHECK(r.has_cache);
    CHECK_STR(r.cache_mode, "verify");
    CHECK_EQ_U64(r.cache_hits, 7);
    CHECK_EQ_U64(r.cache_walks, 2);
    srep_free(&r);

    /* Every truncation of a good report is refused with a reason, never a crash. */
    int bad = 0;
    for (size_t n = 0; n + 2 < strlen(good); n++) {
        err[0] = '\0';
        if (srep_parse(good, n, &r, err, sizeof err) == 0) {
            bad = 1;
            srep_free(&r);
        } else if (!err[0]) {
            bad = 1;
        }
    }
    CHECK(!bad);
    static const char *const worse[] = {
        "[]", "{\"pid\": -1}", "{\"pid\": 1, \"stacks\": 3}",
        "{\"pid\": 1} x", "{\"pid\": 01}", "{\"pid\": 1, \"name\": \"a\\q\"}",
        "{\"pid\": 1, \"stacks\": {\"version\": 3}}",
        "{\"pid\": 99999999999999999999999}",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    };
    for (size_t i = 0; i < sizeof worse / sizeof worse[0]; i++) {
        if (srep_parse(worse[i], strlen(worse[i]), &r, err, sizeof err) == 0) {
            bad = 1;
            srep_free(&r);
        }
    }
    CHECK(!bad);
    char frame_bad[sizeof good];
    memcpy(frame_bad, good, sizeof good);
    char *f = strstr(frame_bad, "0x2020");
    f[2] = 'g';
    CHECK(srep_parse(frame_bad, strlen(frame_bad), &r, err, sizeof err) != 0);
    /* The stack cache's figures are optional, but when present they must make sense. */
    char cache_bad[sizeof good];
    memcpy(cache_bad, good, sizeof good);
    memcpy(strstr(cache_bad, "\"verify\""), "\"verily\"", 8);
    CHECK(srep_parse(cache_bad, strlen(cache_bad), &r, err, sizeof err) != 0);
    CHECK(strstr(err, "stack_cache") != NULL);
}

/* Version 2: requested bytes, shares of the heap's peak, temporaries, mappings. */
static const char good2[] =
    "{\"pid\": 42, \"name\": \"x\", \"peak_committed\": 4096, \"calls\": {\"malloc\": 3, "
    "\"calloc\": 2, \"free\": 4}, \"stacks\": {\"version\": 2, \"mode\": \"all\", "
    "\"sample_bytes\": 0, \"depth\": 32, \"heap_peak_requested\": 150, \"heap_peak_ms\": 12, "
    "\"peak_skipped\": 0, \"dropped\": 0, \"sites\": ["
    "{\"id\": 1, \"live_bytes\": 112, \"live_count\": 2, \"total_bytes\": 304, "
    "\"total_count\": 5, \"peak_bytes\": 208, \"samples\": 5, \"live_requested\": 100, "
    "\"total_requested\": 300, \"peak_requested\": 200, \"at_peak_requested\": 150, "
    "\"temporary\": 3, \"mmap\": false, \"truncated\": false, \"frames\": [\"0x1010\"]},"
    "{\"id\": 2, \"live_bytes\": 8192, \"live_count\": 1, \"total_bytes\": 8192, "
    "\"total_count\": 1, \"peak_bytes\": 8192, \"samples\": 1, \"live_requested\": 8192, "
    "\"total_requested\": 8192, \"peak_requested\": 8192, \"at_peak_requested\": 0, "
    "\"temporary\": 0, \"mmap\": true, \"truncated\": false, \"frames\": [\"0x2020\"]}],"
    "\n\"modules\": []}}\n";

static void test_parse_v2(void)
{
    srep_t r;
    char err[200];
    CHECK(srep_parse(good2, strlen(good2), &r, err, sizeof err) == 0);
    CHECK(r.has_requested);
    CHECK(r.has_at_peak);
    CHECK_EQ_U64(r.heap_peak_req, 150);
    CHECK_EQ_U64(r.heap_peak_ms, 12);
    CHECK_EQ_U64(r.peak_committed, 4096);
    CHECK_EQ_U64(r.calls_alloc, 5);
    CHECK_EQ_U64(r.calls_free, 4);
    const srep_site_t *a = &r.sites[0];
    CHECK_EQ_U64(srep_site_weight(a, SREP_LIVE, 1), 100);
    CHECK_EQ_U64(srep_site_weight(a, SREP_LIVE, 0), 112);
    CHECK_EQ_U64(srep_site_weight(a, SREP_PEAK, 1), 150); /* its share of the heap's peak */
    CHECK_EQ_U64(srep_site_weight(a, SREP_MAX, 1), 200);  /* its own maximum */
    CHECK_EQ_U64(srep_site_weight(a, SREP_PEAK, 0), 208); /* usable: only the own maximum */
    CHECK_EQ_U64(srep_site_weight(a, SREP_TOTAL, 1), 300);
    CHECK_EQ_U64(srep_site_weight(a, SREP_TEMP, 1), 3);
    CHECK(!a->is_mmap);
    CHECK(r.sites[1].is_mmap);
    enum srep_weight w;
    CHECK(srep_parse_weight("temporary", &w) == 0 && w == SREP_TEMP);
    CHECK(srep_parse_weight("max", &w) == 0 && w == SREP_MAX);
    CHECK(srep_parse_weight("maximum", &w) != 0);
    srep_free(&r);

    /* Requested bytes present but not a number: refused, with the key in the reason. */
    char bad[sizeof good2];
    memcpy(bad, good2, sizeof good2);
    memcpy(strstr(bad, "\"live_requested\": 100"), "\"live_requested\": -10", 21);
    CHECK(srep_parse(bad, strlen(bad), &r, err, sizeof err) != 0);
    CHECK(strstr(err, "live_requested") != NULL);
    /* A version 1 report has none of them: it says so instead of showing zeros as facts. */
    CHECK(srep_parse(good, strlen(good), &r, err, sizeof err) == 0);
    CHECK(!r.has_requested);
    CHECK(!r.has_at_peak);
    CHECK_EQ_U64(srep_site_weight(&r.sites[0], SREP_LIVE, 0), 100);
    srep_free(&r);
}

/* Folding: where a site's stack starts as people read it, and whose allocation it is. */
static void test_fold(void)
{
    sym_addr_t pre = {.kind = SYM_PREOOM}, lib_new = {.kind = SYM_RUNTIME, .allocator = 1},
               user = {.kind = SYM_USER}, rt = {.kind = SYM_RUNTIME};
    int own = -1;
    const sym_addr_t *cxx[] = {&lib_new, &pre, &user, &rt};
    CHECK_EQ_U64(sym_fold(cxx, 4, &own), 2); /* operator new, the preload's: folded */
    CHECK(own == 0);
    const sym_addr_t *agent[] = {&rt, &rt, &rt, &pre, &rt};
    CHECK_EQ_U64(sym_fold(agent, 5, &own), 0); /* the loader's, from the preload's thread */
    CHECK(own == 1);
    const sym_addr_t *callback[] = {&user, &pre, &rt};
    CHECK_EQ_U64(sym_fold(callback, 3, &own), 0); /* the program's code, run by the agent */
    CHECK(own == 0);
    const sym_addr_t *all[] = {&pre, &lib_new};
    CHECK_EQ_U64(sym_fold(all, 2, &own), 0); /* nothing else: shown whole */
    CHECK_EQ_U64(sym_fold(all, 0, &own), 0);
    CHECK(sym_is_allocator("_Znwm") && sym_is_allocator("_ZnamRKSt9nothrow_t"));
    CHECK(sym_is_allocator("_ZnwmSt11align_val_t") && sym_is_allocator("malloc"));
    CHECK(sym_is_allocator("calloc") && sym_is_allocator("mmap"));
    CHECK(!sym_is_allocator("xmalloc") && !sym_is_allocator("mallocx"));
    CHECK(!sym_is_allocator("_ZdlPv") && !sym_is_allocator(NULL) && !sym_is_allocator(""));
    CHECK(sym_kind_of_path("/usr/local/lib/libpreoom.so") == SYM_PREOOM);
    CHECK(sym_kind_of_path("/lib/x86_64-linux-gnu/libc.so.6") == SYM_RUNTIME);
    CHECK(sym_kind_of_path("/lib64/ld-linux-x86-64.so.2") == SYM_RUNTIME);
    CHECK(sym_kind_of_path("/usr/lib/x86_64-linux-gnu/libstdc++.so.6") == SYM_RUNTIME);
    CHECK(sym_kind_of_path("/usr/bin/python3") == SYM_USER);
    CHECK(sym_kind_of_path("/opt/app/libcustom.so") == SYM_USER);
}

static void test_pprof_varint(void)
{
    static const struct { uint64_t v; size_t n; unsigned char b[10]; } cases[] = {
        {0, 1, {0}}, {1, 1, {1}}, {127, 1, {0x7f}}, {128, 2, {0x80, 0x01}},
        {300, 2, {0xac, 0x02}}, {UINT64_MAX, 10, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                                  0xff, 0xff, 0x01}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        unsigned char out[10];
        size_t n = pprof_varint(cases[i].v, out);
        CHECK_EQ_U64(n, cases[i].n);
        CHECK(memcmp(out, cases[i].b, n) == 0);
    }
}

static void test_svg(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(srep_flamegraph_svg("main;a<b>;leaf 10\nmain;other 30\n", "t&t", "bytes", f) == 0);
    fclose(f);
    CHECK(strstr(buf, "<svg") != NULL && strstr(buf, "</svg>") != NULL);
    CHECK(strstr(buf, "a&lt;b&gt;") != NULL);
    CHECK(strstr(buf, "t&amp;t") != NULL);
    free(buf);
    f = open_memstream(&buf, &len);
    CHECK(srep_flamegraph_svg("no-count-here\n", "t", "bytes", f) != 0);
    fclose(f);
    free(buf);
    /* Differential: a frame that grew is red, one that shrank blue; widths are the newer
     * column's; a line without the base's column is refused. */
    f = open_memstream(&buf, &len);
    CHECK(srep_flamegraph_svg_diff("main;grew 10 30\nmain;shrank 30 10\n", "d", "bytes", f) == 0);
    fclose(f);
    CHECK(strstr(buf, "grew (30 bytes, was 10: +20)") != NULL);
    CHECK(strstr(buf, "shrank (10 bytes, was 30: -20)") != NULL);
    CHECK(strstr(buf, "fill=\"rgb(255,") != NULL);
    CHECK(strstr(buf, ",255)\"") != NULL);
    free(buf);
    f = open_memstream(&buf, &len);
    CHECK(srep_flamegraph_svg_diff("main;x 30\n", "d", "bytes", f) != 0);
    fclose(f);
    free(buf);
    /* Many children under one node (found by hash) add up as a linear search would. */
    size_t cap = 1 << 20, n = 0;
    char *many = malloc(cap);
    for (int i = 0; i < 5000; i++)
        n += (size_t)snprintf(many + n, cap - n, "main;f%d;leaf %d\nmain;f%d 1\n", i % 2500, 1, i % 2500);
    f = open_memstream(&buf, &len);
    CHECK(srep_flamegraph_svg(many, "m", "bytes", f) == 0);
    fclose(f);
    CHECK(strstr(buf, "total 10000 bytes") != NULL);
    CHECK(strstr(buf, "<title>f7 (4 bytes,") != NULL);
    free(buf);
    free(many);
}

/* ---- pending counts: threads record at one site while reports are read ------------------- */
/* Each thread keeps its changes to a site in its own table and flushes them now and then; a
 * report adds every table to the site's counters. Four threads each record K allocations at
 * one site (all mode: exact weights of 64 bytes) and then free them, round after round, while
 * the main thread reads report after report. A report that counted a flush twice or missed one
 * would show more than 4 x K live, or a live byte count that is not 64 per block, or totals
 * that go backwards; at the end everything is freed and every allocation counted. */
#define PEND_THREADS 4
#define PEND_K 40
#define PEND_ROUNDS 400
static sem_t pend_done;

static __attribute__((noinline)) void *pend_worker(void *arg)
{
    uintptr_t base = 0x7e0000000000u + (uintptr_t)arg * 0x10000000u;
    preoom_block();
    for (int r = 0; r < PEND_ROUNDS; r++) {
        for (int i = 0; i < PEND_K; i++)
            preoom_stacks_alloc((void *)(base + (uintptr_t)i * 64), 64, 60, 0, 0);
        for (int i = 0; i < PEND_K; i++)
            if (preoom_stacks_maybe_sampled((void *)(base + (uintptr_t)i * 64)))
                preoom_stacks_free((void *)(base + (uintptr_t)i * 64));
    }
    /* Done, but never exits: under ThreadSanitizer a thread that has unwound crashes in
     * libunwind's thread-exit destructor (inside TSan's mutex interceptor, not in our code),
     * so the workers stay until the process ends. */
    sem_post(&pend_done);
    for (;;)
        pause();
    return NULL;
}

/* The one site's counters from a report: 0, or -1 when the report has no site. */
static int pend_read(unsigned long long *live, unsigned long long *live_count,
                     unsigned long long *total_count, unsigned long long *live_req)
{
    char path[] = "/tmp/preoom-test-pend.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    unlink(path);
    preoom_stacks_write_report(fd);
    static char buf[1 << 16];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    const char *s = strstr(buf, "\"live_bytes\": ");
    if (!s || sscanf(s, "\"live_bytes\": %llu, \"live_count\": %llu, \"total_bytes\": %*u, "
                        "\"total_count\": %llu", live, live_count, total_count) != 3)
        return -1;
    s = strstr(buf, "\"live_requested\": ");
    if (!s || sscanf(s, "\"live_requested\": %llu", live_req) != 1)
        return -1;
    return 0;
}

static void test_pending_reports(void)
{
    preoom_opt.stacks = PREOOM_STACKS_ALL;
    preoom_opt.stack_depth = 8;
    preoom_stacks_init();
    sem_init(&pend_done, 0, 0);
    pthread_t t[PEND_THREADS];
    for (long i = 0; i < PEND_THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, pend_worker, (void *)i) == 0);
    unsigned long long live, count, total, req, last_total = 0;
    int reads = 0, bad = 0, backwards = 0;
    for (int i = 0; i < 300; i++) {
        if (pend_read(&live, &count, &total, &req) != 0)
            continue; /* no site yet */
        reads++;
        /* 64 usable bytes a block, of which the program asked for 60. */
        if (count > PEND_THREADS * PEND_K || live != count * 64 || req != count * 60) {
            if (!bad)
                fprintf(stderr, "pend: live %llu count %llu total %llu requested %llu\n", live,
                        count, total, req);
            bad = 1;
        }
        backwards |= total < last_total;
        last_total = total;
    }
    for (int i = 0; i < PEND_THREADS; i++)
        sem_wait(&pend_done);
    CHECK(reads > 0);
    CHECK(!bad);
    CHECK(!backwards);
    CHECK(pend_read(&live, &count, &total, &req) == 0);
    CHECK_EQ_U64(live, 0);
    CHECK_EQ_U64(req, 0);
    CHECK_EQ_U64(count, 0);
    CHECK_EQ_U64(total, (unsigned long long)PEND_THREADS * PEND_K * PEND_ROUNDS);
}

int main(void)
{
    TEST_CASE("stacks: ln and 1-exp(-x) without libm", test_ln);
    TEST_CASE("stacks: table-driven ln and 1-exp(-x) match libm everywhere", test_ln_dense);
    TEST_CASE("stacks: stack hash for the site index", test_stack_hash);
    TEST_CASE("stacks: exponential draws have the mean and spread asked", test_draw_mean);
    TEST_CASE("stacks: sampled weights estimate bytes and counts without bias", test_weights_unbiased);
    TEST_CASE("stacks: pointer filter never says no to a sampled pointer", test_filter);
    TEST_CASE("stacks: pointer filter counts stay exact under threads", test_filter_threads);
    TEST_CASE("stacks: pointer map put/take with backward-shift deletion", test_pmap);
    TEST_CASE("stacks: collapsed line format", test_collapsed);
    TEST_CASE("stacks: report parser, bad input refused", test_parse);
    TEST_CASE("stacks: report parser, version 2 (requested bytes, peak shares, mappings)",
              test_parse_v2);
    TEST_CASE("stacks: folding allocator and preload frames", test_fold);
    TEST_CASE("stacks: pprof varints", test_pprof_varint);
    TEST_CASE("stacks: flame graph svg", test_svg);
    TEST_CASE("stacks: reports read while threads record add every thread's part once",
              test_pending_reports);
    TEST_END();
}

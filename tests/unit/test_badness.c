/* tests/unit/test_badness.c — the arbiter's policies of tools/badness.c, term by term.
 *
 * Worked numbers for each rule of the 2.6 badness (the seeds), the modern kernel formula with
 * oom_score_adj and its /proc/PID/oom_score, the preoom policy's separate terms, every
 * exclusion, and a permutation test of the comparator: for every ordered pair of a list
 * sorted by hand, compare must agree with the list's order.
 *
 * Never reads /proc or the registry: the inputs are plain structs.
 */
#include "harness.h"
#include "badness.h"

#include <errno.h>

#define PAGE 4096ULL
#define MIB (1024ULL * 1024)

/* An eligible process, nothing special about it. */
static preoom_candidate_t plain(int32_t pid)
{
    preoom_candidate_t c = {0};
    c.pid = pid;
    c.maps_registry = true;
    c.uid_matches = true;
    c.uid = c.euid = 1000;
    return c;
}

static preoom_badness_ctx_t ctx_for(preoom_policy_t policy, uint64_t total_pages)
{
    preoom_badness_ctx_t ctx;
    preoom_badness_defaults(&ctx);
    ctx.policy = policy;
    ctx.total_pages = total_pages;
    ctx.self_pid = 4242;
    return ctx;
}

static const preoom_term_t *term(const preoom_badness_t *r, const char *name)
{
    for (size_t k = 0; k < r->n_terms; k++)
        if (strcmp(r->terms[k].name, name) == 0)
            return &r->terms[k];
    return NULL;
}

#define CHECK_TERM(r, name_, value_)                                                       \
    do {                                                                                   \
        const preoom_term_t *t_ = term((r), (name_));                                      \
        CHECK(t_ != NULL);                                                                 \
        if (t_)                                                                            \
            CHECK_EQ_I64(t_->value, (value_));                                             \
    } while (0)

/* ---- helpers of the kernel ------------------------------------------------------------ */

/* The operator's bias is added after whichever policy scored: ±300‰ of 1e6 pages = ±300000,
 * on top of the policy's own score (which prefer/avoid must not change otherwise). */
static void preference_every_policy(void)
{
    static const preoom_policy_t policies[] = {PREOOM_POLICY_KERNEL, PREOOM_POLICY_CLASSIC,
                                               PREOOM_POLICY_PREOOM};
    for (size_t k = 0; k < 3; k++) {
        preoom_badness_ctx_t ctx = ctx_for(policies[k], 1000000);
        preoom_candidate_t c = plain(100);
        c.rss_bytes = 100000 * PAGE;
        c.vm_bytes = 200000 * PAGE;
        c.touched_bytes = 90000 * PAGE;
        preoom_badness_t none, pref, avoid;
        preoom_badness_score(&ctx, &c, &none);
        c.preference = PREOOM_PREFER;
        preoom_badness_score(&ctx, &c, &pref);
        c.preference = PREOOM_AVOID;
        preoom_badness_score(&ctx, &c, &avoid);
        CHECK_EQ_I64(pref.score - none.score, 300000);
        CHECK_EQ_I64(none.score - avoid.score, 300000);
        CHECK_TERM(&pref, "prefer", 300000);
        CHECK_TERM(&avoid, "avoid", 300000);
    }
}

static void int_sqrt_table(void)
{
    static const struct {
        uint64_t x, root;
    } cases[] = {
        {0, 0},          {1, 1},           {2, 1},          {3, 1},
        {4, 2},          {8, 2},           {9, 3},          {15, 3},
        {16, 4},         {99, 9},          {100, 10},       {1ULL << 32, 1ULL << 16},
        {UINT64_MAX, 4294967295ULL},
        {0xFFFFFFFE00000001ULL, 0xFFFFFFFFULL}, /* (2^32-1)^2 */
        {0xFFFFFFFE00000000ULL, 0xFFFFFFFEULL}, /* one below it */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        CHECK_EQ_U64(preoom_int_sqrt(cases[k].x), cases[k].root);
    /* The floor property over a sweep and over big numbers. */
    int bad = 0;
    for (uint64_t x = 0; x < 200000; x++) {
        uint64_t r = preoom_int_sqrt(x);
        bad += !(r * r <= x && (r + 1) * (r + 1) > x);
    }
    for (uint64_t x = 3; x < UINT64_MAX / 3; x = x * 3 + 1) {
        unsigned __int128 r = preoom_int_sqrt(x);
        bad += !(r * r <= x && (r + 1) * (r + 1) > x);
    }
    CHECK_EQ_I64(bad, 0);
}

static void oom_adj_mapping(void)
{
    /* oom_adj = oom_score_adj × 17 / 1000, C division (toward zero); −1000 ↔ −17 (disable),
     * 1000 → 15, and the 942..999 band that would give 16 held at 15. */
    static const struct {
        int score_adj, adj;
    } cases[] = {
        {-1000, -17}, /* OOM_DISABLE */
        {-1001, -17}, /* below the range: still disable */
        {-999, -16},  /* −16983/1000 = −16.98 → −16 */
        {-941, -15},  /* −15997/1000 → −15 */
        {-500, -8},   /* −8500/1000 → −8 */
        {-59, -1},    /* −1003/1000 → −1 */
        {-58, 0},     /* −986/1000 → 0 */
        {0, 0},
        {58, 0},
        {59, 1},
        {500, 8},
        {941, 15},    /* 15997/1000 → 15 */
        {942, 15},    /* 16014/1000 = 16, over OOM_ADJUST_MAX */
        {999, 15},
        {1000, 15},   /* the maximum stays reachable */
        {5000, 15},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int got = preoom_oom_adj_from_score_adj(cases[k].score_adj);
        if (got != cases[k].adj)
            printf("# oom_adj(%d) = %d, expected %d\n", cases[k].score_adj, got, cases[k].adj);
        CHECK_EQ_I64(got, cases[k].adj);
    }
}

static void names(void)
{
    preoom_policy_t p;
    CHECK_EQ_I64(preoom_policy_from_name("kernel", &p), 0);
    CHECK_EQ_I64(p, PREOOM_POLICY_KERNEL);
    CHECK_EQ_I64(preoom_policy_from_name("CLASSIC", &p), 0);
    CHECK_EQ_I64(p, PREOOM_POLICY_CLASSIC);
    CHECK_EQ_I64(preoom_policy_from_name("preoom", &p), 0);
    CHECK_EQ_I64(p, PREOOM_POLICY_PREOOM);
    CHECK_EQ_I64(preoom_policy_from_name("random", &p), -EINVAL);
    CHECK_EQ_I64(preoom_policy_from_name(NULL, &p), -EINVAL);
    CHECK_STR(preoom_policy_name(PREOOM_POLICY_CLASSIC), "classic");
    CHECK_STR(preoom_policy_name((preoom_policy_t)99), "?");
    CHECK_STR(preoom_ineligible_name(PREOOM_NOT_INIT), "init");
    preoom_badness_ctx_t ctx;
    preoom_badness_defaults(&ctx);
    CHECK_EQ_I64(ctx.policy, PREOOM_POLICY_PREOOM);
}

/* ---- step 1: eligibility -------------------------------------------------------------- */

static void eligibility(void)
{
    preoom_badness_ctx_t ctx = ctx_for(PREOOM_POLICY_PREOOM, 1000000);
    struct {
        const char *name;
        preoom_candidate_t c;
        preoom_ineligible_t why;
    } table[12];
    size_t n = 0;
    preoom_candidate_t c;
#define ROW(label, stmt, reason)                                                           \
    do {                                                                                   \
        c = plain(500);                                                                    \
        c.rss_bytes = 100 * MIB;                                                           \
        stmt;                                                                              \
        table[n].name = (label);                                                           \
        table[n].c = c;                                                                    \
        table[n].why = (reason);                                                           \
        n++;                                                                               \
    } while (0)
    ROW("plain", (void)0, PREOOM_ELIGIBLE);
    ROW("pid 0", c.pid = 0, PREOOM_NOT_BAD_PID);
    ROW("negative pid", c.pid = -7, PREOOM_NOT_BAD_PID);
    ROW("init", c.pid = 1, PREOOM_NOT_INIT);
    ROW("the daemon", c.pid = 4242, PREOOM_NOT_SELF);
    ROW("kernel thread", c.kthread = true, PREOOM_NOT_KTHREAD);
    ROW("oom_score_adj -1000", c.oom_score_adj = -1000, PREOOM_NOT_ADJ_MIN);
    ROW("--protect", c.protected_by_flag = true, PREOOM_NOT_PROTECTED);
    ROW("does not map the registry", c.maps_registry = false, PREOOM_NOT_NO_REGISTRY);
    ROW("other uid", c.uid_matches = false, PREOOM_NOT_UID_DIFFERS);
    ROW("zeroed struct", c = (preoom_candidate_t){0}, PREOOM_NOT_BAD_PID);
    ROW("zeroed but for pid", (c = (preoom_candidate_t){0}, c.pid = 9), PREOOM_NOT_NO_REGISTRY);
#undef ROW
    static const preoom_policy_t policies[] = {PREOOM_POLICY_KERNEL, PREOOM_POLICY_CLASSIC,
                                               PREOOM_POLICY_PREOOM};
    for (size_t k = 0; k < n; k++) {
        CHECK_EQ_I64(preoom_badness_eligible(&ctx, &table[k].c), table[k].why);
        for (size_t p = 0; p < 3; p++) {
            preoom_badness_ctx_t pc = ctx;
            pc.policy = policies[p];
            preoom_badness_t r;
            preoom_badness_score(&pc, &table[k].c, &r);
            CHECK_EQ_I64(r.why, table[k].why);
            if (table[k].why == PREOOM_ELIGIBLE)
                CHECK(r.score != PREOOM_BADNESS_NEVER);
            else
                CHECK(r.score == PREOOM_BADNESS_NEVER);
        }
    }
}

/* ---- the kernel policy ---------------------------------------------------------------- */

static void kernel_formula(void)
{
    /* totalpages = 1,000,000 (≈3.8 GiB of RAM + swap), so adj moves 1000 pages a step.
     * rss 100000 pages + swap 2000 + page tables 400 KiB (100 pages) = 102100 points. */
    static const struct {
        int adj;
        int64_t points, oom_score;
    } cases[] = {
        /* (1000 + 102100·1000/1e6)·2/3 = (1000 + 102)·2/3 = 734 */
        {0, 102100, 734},
        /* + 500 × (1e6/1000) = +500000 → 602100; (1000 + 602)·2/3 = 1068 */
        {500, 602100, 1068},
        /* 1000 → +1e6 → 1102100; (1000 + 1102)·2/3 = 1401 */
        {1000, 1102100, 1401},
        /* −500 → −397900; −397900·1000/1e6 = −397; (1000 − 397)·2/3 = 402 */
        {-500, -397900, 402},
        /* −999 → −896900 → −896; (1000 − 896)·2/3 = 69: still eligible, just last */
        {-999, -896900, 69},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        preoom_badness_ctx_t ctx = ctx_for(PREOOM_POLICY_KERNEL, 1000000);
        preoom_candidate_t c = plain(100);
        c.rss_bytes = 100000 * PAGE;
        c.swap_bytes = 2000 * PAGE;
        c.pgtables_bytes = 400 * 1024;
        c.oom_score_adj = cases[k].adj;
        preoom_badness_t r;
        preoom_badness_score(&ctx, &c, &r);
        CHECK_EQ_I64(r.score, cases[k].points);
        CHECK_EQ_I64(r.oom_score, cases[k].oom_score);
        CHECK_TERM(&r, "rss", 100000);
        CHECK_TERM(&r, "swap", 2000);
        CHECK_TERM(&r, "pgtables", 100);
        CHECK_TERM(&r, "oom_score_adj", (int64_t)cases[k].adj * 1000);
        CHECK_EQ_U64(r.n_terms, 4);
    }
    /* The kernel divides before it multiplies: totalpages 1999 → 1999/1000 = 1, so adj 500
     * adds 500, not 999.5. */
    preoom_badness_ctx_t ctx = ctx_for(PREOOM_POLICY_KERNEL, 1999);
    preoom_candidate_t c = plain(100);
    c.rss_bytes = 10 * PAGE;
    c.oom_score_adj = 500;
    preoom_badness_t r;
    preoom_badness_score(&ctx, &c, &r);
    CHECK_EQ_I64(r.score, 510);
    /* oom_score of "never" is 0, as /proc shows for −1000. */
    c.oom_score_adj = -1000;
    preoom_badness_score(&ctx, &c, &r);
    CHECK_EQ_I64(r.oom_score, 0);
    CHECK_EQ_I64(preoom_oom_score(PREOOM_BADNESS_NEVER, 1000), 0);
    CHECK_EQ_I64(preoom_oom_score(0, 0), 666); /* a zero total is taken as 1, no division by 0 */
}

/* ---- the classic (2.6) policy, one rule at a time ------------------------------------- */

static int64_t classic_score(const preoom_candidate_t *c, uint64_t clk_tck, preoom_badness_t *r)
{
    preoom_badness_ctx_t ctx = ctx_for(PREOOM_POLICY_CLASSIC, 1000000);
    ctx.clk_tck = clk_tck;
    preoom_badness_score(&ctx, c, r);
    return r->score;
}

static void classic_rules(void)
{
    static const uint64_t kids2[] = {40000 * PAGE, 1 * PAGE};
    static const uint64_t kids1[] = {40000 * PAGE};
    static const struct {
        const char *rule;
        uint64_t vm_pages;
        const uint64_t *kids;
        size_t n_kids;
        uint64_t cpu_ticks, run_s;
        int nice;
        uint32_t uid, euid;
        uint64_t caps;
        int score_adj;
        uint64_t clk_tck;
        int64_t want;
    } cases[] = {
        /* points = total_vm = 400 MiB / 4 KiB = 102400 */
        {"total_vm", 102400, NULL, 0, 0, 0, 0, 1000, 1000, 0, 0, 100, 102400},
        /* + (40000/2 + 1) + (1/2 + 1) = 20001 + 1 → 122402 */
        {"children", 102400, kids2, 2, 0, 0, 0, 1000, 1000, 0, 0, 100, 122402},
        /* cpu 9216 ticks (92 s) >> (SHIFT_HZ(100)=7 + 3) = 9; isqrt 3; 102400/3 = 34133 */
        {"cpu time", 102400, NULL, 0, 9216, 0, 0, 1000, 1000, 0, 0, 100, 34133},
        /* 1023 ticks >> 10 = 0: isqrt 0, no division */
        {"cpu under one unit", 102400, NULL, 0, 1023, 0, 0, 1000, 1000, 0, 0, 100, 102400},
        /* cpu 400 s = 40000 ticks >> 10 = 39; isqrt 6; 102400/6 = 17066 */
        {"cpu 400 s", 102400, NULL, 0, 40000, 0, 0, 1000, 1000, 0, 0, 100, 17066},
        /* HZ 250: SHIFT_HZ 8, unit 2^11 ticks; 8192 ticks → 4; isqrt 2; 51200 */
        {"cpu at 250 ticks/s", 102400, NULL, 0, 8192, 0, 0, 1000, 1000, 0, 0, 250, 51200},
        /* run 16384 s >> 10 = 16; isqrt(isqrt(16)) = isqrt(4) = 2; 102400/2 = 51200 */
        {"run time", 102400, NULL, 0, 0, 16384, 0, 1000, 1000, 0, 0, 100, 51200},
        /* 16383 s >> 10 = 15; isqrt 3; isqrt 1: /1 */
        {"run time under 4.5 h", 102400, NULL, 0, 0, 16383, 0, 1000, 1000, 0, 0, 100, 102400},
        /* 82944 s (23 h) >> 10 = 81; isqrt 9; isqrt 3; 102400/3 = 34133 */
        {"run time a day", 102400, NULL, 0, 0, 82944, 0, 1000, 1000, 0, 0, 100, 34133},
        /* nice 5 > 0: ×2 = 204800 */
        {"niced", 102400, NULL, 0, 0, 0, 5, 1000, 1000, 0, 0, 100, 204800},
        /* nice −5: unchanged */
        {"negative nice", 102400, NULL, 0, 0, 0, -5, 1000, 1000, 0, 0, 100, 102400},
        /* uid 0: /4 = 25600 */
        {"uid 0", 102400, NULL, 0, 0, 0, 0, 0, 1000, 0, 0, 100, 25600},
        /* euid 0 (setuid root): /4 */
        {"euid 0", 102400, NULL, 0, 0, 0, 0, 1000, 0, 0, 0, 100, 25600},
        /* CAP_SYS_ADMIN (bit 21) alone: /4 */
        {"CAP_SYS_ADMIN", 102400, NULL, 0, 0, 0, 0, 1000, 1000, 1ULL << 21, 0, 100, 25600},
        /* root and CAP_SYS_ADMIN are one rule: still /4 */
        {"root with CAP_SYS_ADMIN", 102400, NULL, 0, 0, 0, 0, 0, 0, 1ULL << 21, 0, 100, 25600},
        /* CAP_SYS_RAWIO (bit 17): /4 */
        {"CAP_SYS_RAWIO", 102400, NULL, 0, 0, 0, 0, 1000, 1000, 1ULL << 17, 0, 100, 25600},
        /* root and RAWIO: /4 /4 = /16 = 6400 */
        {"root and RAWIO", 102400, NULL, 0, 0, 0, 0, 0, 0, 1ULL << 17, 0, 100, 6400},
        /* score_adj 500 → oom_adj 8: 102400 << 8 = 26214400 */
        {"oom_adj +8", 102400, NULL, 0, 0, 0, 0, 1000, 1000, 0, 500, 100, 26214400},
        /* score_adj 1000 → 15: 102400 << 15 = 3355443200 */
        {"oom_adj +15", 102400, NULL, 0, 0, 0, 0, 1000, 1000, 0, 1000, 100, 3355443200LL},
        /* score_adj −500 → −8: 102400 >> 8 = 400 */
        {"oom_adj -8", 102400, NULL, 0, 0, 0, 0, 1000, 1000, 0, -500, 100, 400},
        /* score_adj −999 → −16: 102400 >> 16 = 1 */
        {"oom_adj -16", 102400, NULL, 0, 0, 0, 0, 1000, 1000, 0, -999, 100, 1},
        /* an empty process asking to go: 0 becomes 1, then << 8 = 256 */
        {"oom_adj on zero", 0, NULL, 0, 0, 0, 0, 1000, 1000, 0, 500, 100, 256},
        /* Everything at once:
         *   102400 + (40000/2 + 1)          = 122401
         *   cpu 9216 ticks → 9 → /3          = 40800
         *   run 16384 s → 16 → /2            = 20400
         *   niced ×2                         = 40800
         *   uid 0 /4                         = 10200
         *   RAWIO /4                         = 2550
         *   score_adj 59 → oom_adj 1: << 1   = 5100 */
        {"all rules", 102400, kids1, 1, 9216, 16384, 10, 0, 0, 1ULL << 17, 59, 100, 5100},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        preoom_candidate_t c = plain(300);
        c.vm_bytes = cases[k].vm_pages * PAGE;
        c.child_vm_bytes = cases[k].kids;
        c.n_children = cases[k].n_kids;
        c.cpu_ticks = cases[k].cpu_ticks;
        c.run_ticks = cases[k].run_s * cases[k].clk_tck;
        c.nice = cases[k].nice;
        c.uid = cases[k].uid;
        c.euid = cases[k].euid;
        c.cap_eff = cases[k].caps;
        c.oom_score_adj = cases[k].score_adj;
        preoom_badness_t r;
        int64_t got = classic_score(&c, cases[k].clk_tck, &r);
        if (got != cases[k].want)
            printf("# classic rule \"%s\": %lld, expected %lld\n", cases[k].rule,
                   (long long)got, (long long)cases[k].want);
        CHECK_EQ_I64(got, cases[k].want);
        /* Every rule is a logged term, applied or not, in the seeds' order. */
        static const char *const order[] = {"total_vm", "children", "isqrt(cpu)",
                                            "isqrt(isqrt(run))", "niced", "root", "rawio",
                                            "oom_adj"};
        CHECK_EQ_U64(r.n_terms, 8);
        for (size_t t = 0; t < 8 && t < r.n_terms; t++)
            CHECK_STR(r.terms[t].name, order[t]);
        CHECK_EQ_I64(r.terms[r.n_terms - 1].total, r.score);
    }
    /* The term values of the all-rules case, as `preoom explain` will print them. */
    preoom_candidate_t c = plain(300);
    c.vm_bytes = 102400 * PAGE;
    c.child_vm_bytes = kids1;
    c.n_children = 1;
    c.cpu_ticks = 9216;
    c.run_ticks = 16384 * 100;
    c.nice = 10;
    c.uid = c.euid = 0;
    c.cap_eff = 1ULL << 17;
    c.oom_score_adj = 59;
    preoom_badness_t r;
    classic_score(&c, 100, &r);
    CHECK_TERM(&r, "total_vm", 102400);
    CHECK_TERM(&r, "children", 20001);
    CHECK_TERM(&r, "isqrt(cpu)", 3);
    CHECK_TERM(&r, "isqrt(isqrt(run))", 2);
    CHECK_TERM(&r, "niced", 2);
    CHECK_TERM(&r, "root", 4);
    CHECK_TERM(&r, "rawio", 4);
    CHECK_TERM(&r, "oom_adj", 1);
    char line[512];
    preoom_badness_format(&r, line, sizeof line);
    CHECK_STR(line, "score=5100 [total_vm=102400 +children=20001 /isqrt(cpu)=3 "
                    "/isqrt(isqrt(run))=2 *niced=2 /root=4 /rawio=4 <<oom_adj=1]");
    /* A huge vm shifted by 15 saturates instead of wrapping. */
    c = plain(300);
    c.vm_bytes = UINT64_MAX;
    c.oom_score_adj = 1000;
    CHECK_EQ_I64(classic_score(&c, 100, &r), INT64_MAX);
    /* −1000 is OOM_DISABLE: never. */
    c.oom_score_adj = -1000;
    CHECK(classic_score(&c, 100, &r) == PREOOM_BADNESS_NEVER);
}

/* ---- the preoom policy ---------------------------------------------------------------- */

static void preoom_terms(void)
{
    /* totalpages 1,000,000 → one per-mille is 1000 pages. Base: rss 100000 pages. */
    static const struct {
        const char *name;
        uint64_t committed_pages, touched_pages;
        int64_t growth_pages_per_s;
        uint64_t slot_adj;
        int score_adj;
        preoom_preference_t pref;
        int64_t exposure, growth, hint, pref_term, want;
    } cases[] = {
        /* nothing but the base */
        {"base", 0, 80000, 0, 0, 0, PREOOM_PREFER_NONE, 0, 0, 0, 0, 100000},
        /* committed 120000, touched 80000: exposure 40000 × 250‰ = 10000 */
        {"exposure", 120000, 80000, 0, 0, 0, PREOOM_PREFER_NONE, 10000, 0, 0, 0, 110000},
        /* committed below touched: no exposure, never negative */
        {"no exposure", 50000, 80000, 0, 0, 0, PREOOM_PREFER_NONE, 0, 0, 0, 0, 100000},
        /* 1000 pages/s × 5 s horizon = 5000 */
        {"growth", 0, 80000, 1000, 0, 0, PREOOM_PREFER_NONE, 0, 5000, 0, 0, 105000},
        /* shrinking earns nothing (it may be answering our request) */
        {"shrinking", 0, 80000, -1000, 0, 0, PREOOM_PREFER_NONE, 0, 0, 0, 0, 100000},
        /* slot hint 100 → 100 × 1000 pages */
        {"slot hint", 0, 80000, 0, 100, 0, PREOOM_PREFER_NONE, 0, 0, 100000, 0, 200000},
        /* a hint past 1000 is held at 1000 */
        {"slot hint clamped", 0, 80000, 0, 999999, 0, PREOOM_PREFER_NONE, 0, 0, 1000000, 0,
         1100000},
        /* --prefer: +300‰ */
        {"prefer", 0, 80000, 0, 0, 0, PREOOM_PREFER, 0, 0, 0, 300000, 400000},
        /* --avoid: −300‰, a bias that may go below zero, not an exclusion */
        {"avoid", 0, 80000, 0, 0, 0, PREOOM_AVOID, 0, 0, 0, 300000, -200000},
        /* the administrator's oom_score_adj still counts, both ways, as in the kernel */
        {"oom_score_adj", 0, 80000, 0, 0, -50, PREOOM_PREFER_NONE, 0, 0, 0, 0, 50000},
        /* all together: 100000 + 10000 + 5000 + 100000 + 300000 = 515000 */
        {"all", 120000, 80000, 1000, 100, 0, PREOOM_PREFER, 10000, 5000, 100000, 300000, 515000},
        /* a forged slot cannot claim more than the machine: both terms held at total */
        {"forged slot", 1ULL << 50, 0, INT64_MAX / 4096, 0, 0, PREOOM_PREFER_NONE, 250000,
         1000000, 0, 0, 1350000},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        preoom_badness_ctx_t ctx = ctx_for(PREOOM_POLICY_PREOOM, 1000000);
        preoom_candidate_t c = plain(200);
        c.rss_bytes = 100000 * PAGE;
        c.committed_bytes = cases[k].committed_pages * PAGE;
        c.touched_bytes = cases[k].touched_pages * PAGE;
        c.touched_growth_bytes_per_s = cases[k].growth_pages_per_s * (int64_t)PAGE;
        c.slot_adj = cases[k].slot_adj;
        c.oom_score_adj = cases[k].score_adj;
        c.preference = cases[k].pref;
        preoom_badness_t r;
        preoom_badness_score(&ctx, &c, &r);
        if (r.score != cases[k].want)
            printf("# preoom case \"%s\": %lld, expected %lld\n", cases[k].name,
                   (long long)r.score, (long long)cases[k].want);
        CHECK_EQ_I64(r.score, cases[k].want);
        CHECK_TERM(&r, "rss", 100000);
        CHECK_TERM(&r, "oom_score_adj", cases[k].score_adj * 1000);
        CHECK_TERM(&r, "exposure", cases[k].exposure);
        CHECK_TERM(&r, "growth", cases[k].growth);
        CHECK_TERM(&r, "slot_adj", cases[k].hint);
        if (cases[k].pref == PREOOM_PREFER)
            CHECK_TERM(&r, "prefer", cases[k].pref_term);
        else if (cases[k].pref == PREOOM_AVOID)
            CHECK_TERM(&r, "avoid", cases[k].pref_term);
        else
            CHECK(term(&r, "prefer") == NULL && term(&r, "avoid") == NULL);
    }
    /* With no registry data the ranking is the kernel's: same points. */
    preoom_badness_ctx_t kc = ctx_for(PREOOM_POLICY_KERNEL, 1000000);
    preoom_badness_ctx_t pc = ctx_for(PREOOM_POLICY_PREOOM, 1000000);
    preoom_candidate_t c = plain(200);
    c.rss_bytes = 5000 * PAGE;
    c.swap_bytes = 70 * PAGE;
    c.pgtables_bytes = 3 * PAGE;
    c.oom_score_adj = 123;
    preoom_badness_t rk, rp;
    preoom_badness_score(&kc, &c, &rk);
    preoom_badness_score(&pc, &c, &rp);
    CHECK_EQ_I64(rp.score, rk.score);
    CHECK_EQ_I64(rp.oom_score, -1);
}

static void preoom_choices(void)
{
    /* Who goes first, in the policy's words: the most freed with the least work lost. */
    preoom_badness_ctx_t ctx = ctx_for(PREOOM_POLICY_PREOOM, 1000000);
    preoom_candidate_t c[4];
    preoom_badness_t r[4];
    for (int k = 0; k < 4; k++) {
        c[k] = plain(10 + k);
        c[k].rss_bytes = 50000 * PAGE;
        c[k].touched_bytes = 50000 * PAGE;
        c[k].committed_bytes = 50000 * PAGE;
    }
    /* Equal in everything: the lower pid, so the answer never depends on /proc's order. */
    CHECK_EQ_I64(preoom_badness_select(&ctx, c, 4, r), 0);
    /* A leaker growing fast outranks a slightly larger idle process. */
    c[1].rss_bytes = 52000 * PAGE;
    c[2].touched_growth_bytes_per_s = 1000 * (int64_t)PAGE; /* +5000 pages */
    CHECK_EQ_I64(preoom_badness_select(&ctx, c, 4, r), 2);
    /* A process that volunteers (slot hint) goes before the leaker. */
    c[3].slot_adj = 10; /* +10000 */
    CHECK_EQ_I64(preoom_badness_select(&ctx, c, 4, r), 3);
    /* --avoid on it puts it back behind; --prefer on another takes the lead. */
    c[3].preference = PREOOM_AVOID;
    CHECK_EQ_I64(preoom_badness_select(&ctx, c, 4, r), 2);
    c[0].preference = PREOOM_PREFER;
    CHECK_EQ_I64(preoom_badness_select(&ctx, c, 4, r), 0);
    /* --protect beats everything. */
    c[0].protected_by_flag = true;
    CHECK_EQ_I64(preoom_badness_select(&ctx, c, 4, r), 2);
    CHECK(r[0].score == PREOOM_BADNESS_NEVER);
    CHECK_EQ_I64(r[0].why, PREOOM_NOT_PROTECTED);
}

/* ---- step 3 and 4: compare, select ---------------------------------------------------- */

static void comparator_permutations(void)
{
    /* Sorted by hand, first to be chosen first. */
    static const struct {
        int32_t pid;
        int64_t score;
        uint64_t touched;
    } sorted[] = {
        {50, INT64_MAX, 0},
        {40, 900, 1},
        {30, 500, 900},
        {31, 500, 100},  /* same score, less touched */
        {7, 500, 50},
        {8, 500, 50},    /* same score, same touched, higher pid */
        {9, 500, 50},
        {2, 0, 1000},
        {3, -50, 1 << 20},
        {4, INT64_MIN + 1, 0},
        {60, PREOOM_BADNESS_NEVER, 5},
        {61, PREOOM_BADNESS_NEVER, 5},
    };
    enum { N = sizeof sorted / sizeof sorted[0] };
    preoom_candidate_t c[N];
    preoom_badness_t r[N];
    for (size_t k = 0; k < N; k++) {
        c[k] = plain(sorted[k].pid);
        c[k].touched_bytes = sorted[k].touched;
        memset(&r[k], 0, sizeof r[k]);
        r[k].score = sorted[k].score;
    }
    int wrong = 0;
    for (size_t i = 0; i < N; i++) {
        for (size_t j = 0; j < N; j++) {
            int cmp = preoom_badness_compare(&c[i], &r[i], &c[j], &r[j]);
            int want = i < j ? -1 : i > j ? 1 : 0;
            if ((cmp < 0 ? -1 : cmp > 0 ? 1 : 0) != want) {
                printf("# compare(%zu, %zu) = %d, expected %d\n", i, j, cmp, want);
                wrong++;
            }
        }
    }
    CHECK_EQ_I64(wrong, 0);
}

static void select_is_order_free(void)
{
    /* Five candidates tied on score under the kernel policy, so the tie-breaks decide; every
     * one of the 120 orders must give the same victim (pid 12: most touched, lower pid). */
    preoom_badness_ctx_t ctx = ctx_for(PREOOM_POLICY_KERNEL, 1000000);
    preoom_candidate_t base[5];
    static const int32_t pids[5] = {14, 12, 11, 13, 15};
    static const uint64_t touched[5] = {10, 30, 20, 30, 5};
    for (int k = 0; k < 5; k++) {
        base[k] = plain(pids[k]);
        base[k].rss_bytes = 777 * PAGE;
        base[k].touched_bytes = touched[k];
    }
    int perm[5] = {0, 1, 2, 3, 4}, wrong = 0, seen = 0;
    /* Heap's algorithm, iterative. */
    int cnt[5] = {0};
    for (int i = 0;;) {
        preoom_candidate_t c[5];
        preoom_badness_t r[5];
        for (int k = 0; k < 5; k++)
            c[k] = base[perm[k]];
        long v = preoom_badness_select(&ctx, c, 5, r);
        wrong += v < 0 || c[v].pid != 12;
        seen++;
        while (i < 5 && cnt[i] >= i) {
            cnt[i] = 0;
            i++;
        }
        if (i >= 5)
            break;
        int a = i % 2 ? cnt[i] : 0, t = perm[a];
        perm[a] = perm[i];
        perm[i] = t;
        cnt[i]++;
        i = 0;
    }
    CHECK_EQ_I64(seen, 120);
    CHECK_EQ_I64(wrong, 0);
}

static void select_edges(void)
{
    preoom_badness_ctx_t ctx = ctx_for(PREOOM_POLICY_KERNEL, 1000000);
    preoom_candidate_t c[3];
    preoom_badness_t r[3];
    CHECK_EQ_I64(preoom_badness_select(&ctx, c, 0, r), -1);
    c[0] = plain(1);
    c[1] = plain(4242); /* the daemon */
    c[2] = plain(77);
    c[2].oom_score_adj = -1000;
    CHECK_EQ_I64(preoom_badness_select(&ctx, c, 3, r), -1);
    /* A negative score is still a score: the kernel too picks it when it is all there is. */
    c[2].oom_score_adj = -999;
    c[2].rss_bytes = 10 * PAGE;
    CHECK_EQ_I64(preoom_badness_select(&ctx, c, 3, r), 2);
    CHECK(r[2].score < 0);
    /* Saturation: absurd inputs stay ordered and never reach the sentinel. */
    c[2].rss_bytes = UINT64_MAX;
    c[2].swap_bytes = UINT64_MAX;
    c[2].pgtables_bytes = UINT64_MAX;
    c[2].oom_score_adj = 1000;
    ctx.total_pages = UINT64_MAX;
    CHECK_EQ_I64(preoom_badness_select(&ctx, c, 3, r), 2);
    CHECK(r[2].score > 0);
    ctx.policy = PREOOM_POLICY_PREOOM;
    c[2].committed_bytes = UINT64_MAX;
    c[2].touched_growth_bytes_per_s = INT64_MAX;
    c[2].slot_adj = UINT64_MAX;
    c[2].preference = PREOOM_PREFER;
    CHECK_EQ_I64(preoom_badness_select(&ctx, c, 3, r), 2);
    CHECK_EQ_I64(r[2].score, INT64_MAX);
    c[2].oom_score_adj = -999;
    c[2].rss_bytes = c[2].swap_bytes = c[2].pgtables_bytes = 0;
    c[2].committed_bytes = 0;
    c[2].touched_growth_bytes_per_s = 0;
    c[2].slot_adj = 0;
    c[2].preference = PREOOM_AVOID;
    CHECK_EQ_I64(preoom_badness_select(&ctx, c, 3, r), 2);
    CHECK(r[2].score != PREOOM_BADNESS_NEVER);
}

static void format_lines(void)
{
    preoom_badness_ctx_t ctx = ctx_for(PREOOM_POLICY_KERNEL, 1000000);
    preoom_candidate_t c = plain(100);
    c.rss_bytes = 100000 * PAGE;
    c.swap_bytes = 2000 * PAGE;
    c.pgtables_bytes = 400 * 1024;
    preoom_badness_t r;
    preoom_badness_score(&ctx, &c, &r);
    char line[256];
    int n = preoom_badness_format(&r, line, sizeof line);
    CHECK_STR(line, "score=102100 oom_score=734 [rss=100000 +swap=2000 +pgtables=100 "
                    "+oom_score_adj=0]");
    CHECK_EQ_I64(n, (int)strlen(line));
    /* Too small a buffer: cut and terminated, and the full length is still reported. */
    char small[10];
    CHECK_EQ_I64(preoom_badness_format(&r, small, sizeof small), n);
    CHECK_STR(small, "score=102");
    CHECK_EQ_I64(preoom_badness_format(&r, NULL, 0), n);

    c.pid = 1;
    preoom_badness_score(&ctx, &c, &r);
    preoom_badness_format(&r, line, sizeof line);
    CHECK_STR(line, "score=never why=init");

    ctx.policy = PREOOM_POLICY_PREOOM;
    c.pid = 100;
    c.preference = PREOOM_AVOID;
    preoom_badness_score(&ctx, &c, &r);
    preoom_badness_format(&r, line, sizeof line);
    CHECK_STR(line, "score=-197900 [rss=100000 +swap=2000 +pgtables=100 +oom_score_adj=0 "
                    "+exposure=0 +growth=0 +blame=0 +slot_adj=0 -avoid=300000]");
}

int main(void)
{
    TEST_CASE("badness: int_sqrt", int_sqrt_table);
    TEST_CASE("badness: oom_score_adj to oom_adj", oom_adj_mapping);
    TEST_CASE("badness: policy names", names);
    TEST_CASE("badness: eligibility (pid 1, self, -1000, kthread, registry, uid, protect)",
              eligibility);
    TEST_CASE("badness: kernel formula and oom_score", kernel_formula);
    TEST_CASE("badness: classic rules, term by term", classic_rules);
    TEST_CASE("badness: preoom terms", preoom_terms);
    TEST_CASE("badness: preoom choices", preoom_choices);
    TEST_CASE("badness: --prefer and --avoid apply under every policy", preference_every_policy);
    TEST_CASE("badness: comparator agrees with a sorted list", comparator_permutations);
    TEST_CASE("badness: select is independent of order", select_is_order_free);
    TEST_CASE("badness: select edges and saturation", select_edges);
    TEST_CASE("badness: log line format", format_lines);
    TEST_END();
}

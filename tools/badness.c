/* tools/badness.c — the arbiter's badness policies: kernel, classic (2.6) and preoom.
 *
 * What a good choice is, in the order we weigh it (the 2.6 kernel's list, which still holds):
 *   1. free as much memory as possible with one choice — one victim, not several;
 *   2. lose as little work as possible — a process that says it is cheap to stop, or that
 *      the operator named with --prefer, goes before one that is not;
 *   3. do not choose an innocent — a small process that is not growing is left alone while a
 *      large or fast-growing one exists;
 *   4. be predictable — the same inputs give the same victim, the tie-break included, and
 *      every score can be printed term by term, so a person can tell why;
 *   5. never touch what must not be touched: init, ourselves, kernel threads, oom_score_adj
 *      -1000, --protect, and any process this registry does not speak for.
 *
 * Never: read a file, look at the clock or allocate — the daemon calls this on its kill path —
 * and never let a process's own slot lower its score: a hint in shared memory anyone in the
 * registry can write is only believed when it asks to be chosen sooner.
 */
#include "badness.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- arithmetic that saturates instead of wrapping ------------------------------------ */

static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN + 1; /* never the NEVER sentinel */
    return r;
}

static int64_t sat_mul(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r))
        return (a < 0) != (b < 0) ? INT64_MIN + 1 : INT64_MAX;
    return r;
}

static int64_t u2i(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

static uint64_t page_bytes(const preoom_badness_ctx_t *ctx)
{
    return ctx->page_bytes ? ctx->page_bytes : 4096;
}

static uint64_t total_pages(const preoom_badness_ctx_t *ctx)
{
    /* The kernel's totalpages is never 0; a zero here would divide by zero in oom_score. */
    return ctx->total_pages ? ctx->total_pages : 1;
}

static void add_term(preoom_badness_t *r, const char *name, char op, int64_t value,
                     int64_t total)
{
    if (r->n_terms < PREOOM_BADNESS_MAX_TERMS)
        r->terms[r->n_terms++] = (preoom_term_t){name, op, value, total};
    r->score = total;
}

/* ---- names ---------------------------------------------------------------------------- */

void preoom_badness_defaults(preoom_badness_ctx_t *ctx)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->policy = PREOOM_POLICY_PREOOM;
    ctx->page_bytes = 4096;
    ctx->clk_tck = 100;
    ctx->total_pages = 1;
    /* Reasons for these three values are beside the terms in score_preoom(). */
    ctx->exposure_permille = 250;
    ctx->growth_horizon_ms = 5000;
    ctx->prefer_permille = 300;
    ctx->flat_protect_ms = 120000;
}

static const char *const policy_names[] = {
    [PREOOM_POLICY_PREOOM] = "preoom",
    [PREOOM_POLICY_KERNEL] = "kernel",
    [PREOOM_POLICY_CLASSIC] = "classic",
};

const char *preoom_policy_name(preoom_policy_t policy)
{
    if ((unsigned)policy < sizeof policy_names / sizeof policy_names[0])
        return policy_names[policy];
    return "?";
}

int preoom_policy_from_name(const char *name, preoom_policy_t *policy)
{
    for (size_t k = 0; k < sizeof policy_names / sizeof policy_names[0]; k++) {
        if (name && strcasecmp(name, policy_names[k]) == 0) {
            *policy = (preoom_policy_t)k;
            return 0;
        }
    }
    return -EINVAL;
}

const char *preoom_ineligible_name(preoom_ineligible_t why)
{
    switch (why) {
    case PREOOM_ELIGIBLE: return "eligible";
    case PREOOM_NOT_BAD_PID: return "bad-pid";
    case PREOOM_NOT_INIT: return "init";
    case PREOOM_NOT_SELF: return "self";
    case PREOOM_NOT_KTHREAD: return "kernel-thread";
    case PREOOM_NOT_ADJ_MIN: return "oom_score_adj=-1000";
    case PREOOM_NOT_PROTECTED: return "protected";
    case PREOOM_NOT_NO_REGISTRY: return "not-in-registry";
    case PREOOM_NOT_UID_DIFFERS: return "other-uid";
    }
    return "?";
}

/* ---- the kernel's helpers ------------------------------------------------------------- */

uint64_t preoom_int_sqrt(uint64_t x)
{
    /* Digit-by-digit square root in base 4: one result bit per pair of input bits, so the
     * answer is exact (the floor) with no floating point. */
    uint64_t root = 0, bit = 1ULL << 62;
    while (bit > x)
        bit >>= 2;
    while (bit) {
        if (x >= root + bit) {
            x -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    return root;
}

int preoom_oom_adj_from_score_adj(int oom_score_adj)
{
    /* The kernel's own mapping, as /proc/PID/oom_adj reports it (fs/proc/base.c since 2.6.36
     * kept both files in step): the ends map to the ends so that "never" stays "never" and
     * the maximum stays reachable; in between ×17/1000, C division (toward zero), then held
     * to OOM_ADJUST_MAX, which 942..999 would otherwise pass. 2.6.36's write path stored
     * ×15/1000 instead; we take the reading the same machine shows in /proc/PID/oom_adj. */
    if (oom_score_adj <= PREOOM_OOM_SCORE_ADJ_MIN)
        return PREOOM_OOM_DISABLE;
    if (oom_score_adj >= PREOOM_OOM_SCORE_ADJ_MAX)
        return PREOOM_OOM_ADJUST_MAX;
    int adj = oom_score_adj * -PREOOM_OOM_DISABLE / PREOOM_OOM_SCORE_ADJ_MAX;
    if (adj > PREOOM_OOM_ADJUST_MAX)
        adj = PREOOM_OOM_ADJUST_MAX;
    if (adj < PREOOM_OOM_ADJUST_MIN)
        adj = PREOOM_OOM_ADJUST_MIN;
    return adj;
}

int64_t preoom_oom_score(int64_t points, uint64_t total)
{
    if (points == PREOOM_BADNESS_NEVER)
        return 0;
    if (!total)
        total = 1;
    /* fs/proc/base.c keeps the old 0..2000 range and shows two thirds of it. */
    int64_t per_mille = sat_mul(points, 1000) / u2i(total);
    int64_t v = sat_mul(sat_add(1000, per_mille), 2) / 3;
    return v < 0 ? 0 : v;
}

/* The kernel's SHIFT_HZ: log2(HZ) rounded to the nearest power of two (HZ 100 → 7). */
static unsigned shift_hz(uint64_t hz)
{
    unsigned s = 4;
    while (s < 20 && hz >= (3ULL << (s - 1)))
        s++;
    return s;
}

/* ---- step 1: eligible ----------------------------------------------------------------- */

preoom_ineligible_t preoom_badness_eligible(const preoom_badness_ctx_t *ctx,
                                            const preoom_candidate_t *c)
{
    if (c->pid <= 0)
        return PREOOM_NOT_BAD_PID;
    if (c->pid == 1)
        return PREOOM_NOT_INIT;
    if (c->pid == ctx->self_pid)
        return PREOOM_NOT_SELF;
    if (c->kthread)
        return PREOOM_NOT_KTHREAD;
    if (c->oom_score_adj <= PREOOM_OOM_SCORE_ADJ_MIN)
        return PREOOM_NOT_ADJ_MIN;
    if (c->protected_by_flag)
        return PREOOM_NOT_PROTECTED;
    /* A slot is only a claim: a process that does not map the registry may be a forged or
     * recycled pid, and one of another uid is not ours to stop. */
    if (!c->maps_registry)
        return PREOOM_NOT_NO_REGISTRY;
    if (!c->uid_matches)
        return PREOOM_NOT_UID_DIFFERS;
    return PREOOM_ELIGIBLE;
}

/* ---- step 2: score -------------------------------------------------------------------- */

/* rss + swap + page tables, in pages: the memory a kill gives back at once (goal 1). Shared
 * by the kernel and preoom policies, so preoom's base is the kernel's. */
static int64_t touched_terms(const preoom_badness_ctx_t *ctx, const preoom_candidate_t *c,
                             preoom_badness_t *r)
{
    uint64_t pb = page_bytes(ctx);
    int64_t points = u2i(c->rss_bytes / pb);
    add_term(r, "rss", '=', points, points);
    points = sat_add(points, u2i(c->swap_bytes / pb));
    add_term(r, "swap", '+', u2i(c->swap_bytes / pb), points);
    /* Page tables are freed with the process and grow with the mapped size. */
    points = sat_add(points, u2i(c->pgtables_bytes / pb));
    add_term(r, "pgtables", '+', u2i(c->pgtables_bytes / pb), points);
    return points;
}

/* oom_score_adj as the kernel applies it: per-mille of the memory there is. Note the kernel
 * divides before it multiplies (adj *= totalpages / 1000); so do we, to give its numbers. */
static int64_t kernel_adj(const preoom_badness_ctx_t *ctx, int32_t adj)
{
    return sat_mul(adj, u2i(total_pages(ctx) / 1000));
}

static void score_kernel(const preoom_badness_ctx_t *ctx, const preoom_candidate_t *c,
                         preoom_badness_t *r)
{
    int64_t points = touched_terms(ctx, c, r);
    /* The administrator's bias, −1000..1000 ‰ of RAM+swap (or of the cgroup's limit). */
    int64_t adj = kernel_adj(ctx, c->oom_score_adj);
    add_term(r, "oom_score_adj", '+', adj, sat_add(points, adj));
    r->oom_score = preoom_oom_score(r->score, total_pages(ctx));
}

static void score_classic(const preoom_badness_ctx_t *ctx, const preoom_candidate_t *c,
                          preoom_badness_t *r)
{
    uint64_t pb = page_bytes(ctx), hz = ctx->clk_tck ? ctx->clk_tck : 100;
    /* Virtual size is the base: 2.6 had no cheaper measure of what a process holds. */
    uint64_t points = c->vm_bytes / pb;
    add_term(r, "total_vm", '=', u2i(points), u2i(points));

    /* Forking servers: half of each child's own vm (+1 so even an empty child counts), so a
     * parent of many is chosen over one child, yet one huge child still outranks its parent. */
    uint64_t kids = 0;
    for (size_t k = 0; k < c->n_children && c->child_vm_bytes; k++)
        kids += c->child_vm_bytes[k] / pb / 2 + 1;
    points += kids;
    add_term(r, "children", '+', u2i(kids), u2i(points));

    /* Lost work (goal 2), CPU: the kernel took jiffies >> (SHIFT_HZ + 3), "tens of seconds".
     * Our ticks are USER_HZ, so the unit is 2^(SHIFT_HZ(clk_tck)+3) ticks: 1024 ticks = 10.24 s
     * at USER_HZ 100, exactly what a HZ=100 kernel computed. */
    uint64_t cpu_time = c->cpu_ticks >> (shift_hz(hz) + 3);
    uint64_t s = preoom_int_sqrt(cpu_time);
    if (s)
        points /= s;
    add_term(r, "isqrt(cpu)", '/', s ? u2i(s) : 1, u2i(points));

    /* Lost work, age: whole seconds alive >> 10 ("thousands of seconds"), fourth root, so age
     * protects only a little: /1 under 16384 s (4.5 h), /2 under 23 h, /3 under 3 days. */
    uint64_t run_time = (c->run_ticks / hz) >> 10;
    s = preoom_int_sqrt(preoom_int_sqrt(run_time));
    if (s)
        points /= s;
    add_term(r, "isqrt(isqrt(run))", '/', s ? u2i(s) : 1, u2i(points));

    /* Niced: the owner already said it matters less. */
    if (c->nice > 0)
        points = points > UINT64_MAX / 2 ? UINT64_MAX : points * 2;
    add_term(r, "niced", '*', c->nice > 0 ? 2 : 1, u2i(points));

    /* Superuser processes are usually system services: less likely. */
    bool root = c->uid == 0 || c->euid == 0 ||
                ((c->cap_eff >> PREOOM_CAP_SYS_ADMIN) & 1);
    if (root)
        points /= 4;
    add_term(r, "root", '/', root ? 4 : 1, u2i(points));

    /* Direct hardware access: killing it mid-operation can leave a device in a bad state. */
    bool rawio = (c->cap_eff >> PREOOM_CAP_SYS_RAWIO) & 1;
    if (rawio)
        points /= 4;
    add_term(r, "rawio", '/', rawio ? 4 : 1, u2i(points));

    /* (2.6.2x also divided by 8 for a task outside the cpuset's nodes; we arbitrate one
     * machine or one cgroup, with no node constraint, so that term is always 1 and omitted.)
     * oom_adj last, as a shift: each step doubles or halves. A positive adj on a zero score
     * starts from 1, as 2.6.2x did, so that asking to be chosen is never a no-op. */
    int adj = preoom_oom_adj_from_score_adj(c->oom_score_adj);
    if (adj > 0) {
        if (!points)
            points = 1;
        points = points > (UINT64_MAX >> adj) ? UINT64_MAX : points << adj;
        add_term(r, "oom_adj", '<', adj, u2i(points));
    } else if (adj < 0) {
        points >>= -adj;
        add_term(r, "oom_adj", '>', -adj, u2i(points));
    } else {
        add_term(r, "oom_adj", '<', 0, u2i(points));
    }
}

static void score_preoom(const preoom_badness_ctx_t *ctx, const preoom_candidate_t *c,
                         preoom_badness_t *r)
{
    uint64_t pb = page_bytes(ctx), total = total_pages(ctx);
    int64_t per_mille = u2i(total / 1000);

    /* Base: what a kill gives back. Where the daemon measured private memory (Pss_Anon +
     * SwapPss), that, so a prefork parent whose pages its children share does not look as
     * big as all of them together; else what the kernel counts, so with no measurement our
     * ranking is the kernel's and oom_score_adj keeps its meaning (goals 1 and 4). */
    int64_t points;
    if (c->private_bytes) {
        points = u2i(c->private_bytes / pb);
        add_term(r, "private", '=', points, points);
        points = sat_add(points, u2i(c->pgtables_bytes / pb));
        add_term(r, "pgtables", '+', u2i(c->pgtables_bytes / pb), points);
    } else {
        points = touched_terms(ctx, c, r);
    }
    int64_t adj = kernel_adj(ctx, c->oom_score_adj);
    points = sat_add(points, adj);
    add_term(r, "oom_score_adj", '+', adj, points);

    /* Exposure: committed but not yet touched. Stopping this process also removes demand the
     * machine has promised and not yet paid for — but promised memory may never be touched
     * (sparse arrays, big reservations), and a kill frees none of it now. So a fraction
     * counts (exposure_permille, default 250 = a quarter), held to the memory there is: a
     * slot's claim beyond that cannot be real. */
    uint64_t exposure = c->committed_bytes > c->touched_bytes
                            ? (c->committed_bytes - c->touched_bytes) / pb : 0;
    uint32_t ew = ctx->exposure_permille > 1000 ? 1000 : ctx->exposure_permille;
    uint64_t exposure_pages = exposure > total ? total : exposure;
    int64_t e = u2i(exposure_pages * ew / 1000);
    points = sat_add(points, e);
    add_term(r, "exposure", '+', e, points);

    /* Growth: what the process is on course to touch before the ladder can act again
     * (growth_horizon_ms, default 5 s ≈ one ask plus one grace period). The grower is the
     * cause of the pressure, and stopping it frees what it would have taken too (goals 1, 3).
     * Shrinking earns nothing: it may be answering our own request. Held to the memory
     * there is, like exposure. */
    int64_t g = 0;
    if (c->touched_growth_bytes_per_s > 0) {
        int64_t pages_per_s = u2i((uint64_t)c->touched_growth_bytes_per_s / pb);
        g = sat_mul(pages_per_s, (int64_t)ctx->growth_horizon_ms) / 1000;
        if (g > u2i(total))
            g = u2i(total);
    }
    points = sat_add(points, g);
    add_term(r, "growth", '+', g, points);

    /* Blame: the process's share of how fast the domain grows now (touched, over the
     * daemon's last two seconds of dense samples), times the memory there is. A slow leak is
     * the commonest cause of memory trouble, and the leaker is rarely the biggest process: a
     * sidecar growing 10 MiB/s while a database of 200 MiB holds still has all of the blame
     * and outranks the database of any size that fits (goal 3: do not choose an innocent).
     * What grew long ago is not blamed: a cache that filled at start-up and holds is not the
     * cause of this pressure. Only the daemon's own measurements feed it, never a slot. */
    int64_t b = 0;
    if (ctx->domain_growth_bytes > 0 && c->touched_growth_bytes_per_s > 0) {
        uint64_t mine = (uint64_t)c->touched_growth_bytes_per_s;
        if (mine > ctx->domain_growth_bytes)
            mine = ctx->domain_growth_bytes;
        b = u2i((uint64_t)((double)total * (double)mine / (double)ctx->domain_growth_bytes));
    }
    points = sat_add(points, b);
    add_term(r, "blame", '+', b, points);

    /* A long-flat service (touched steady for flat_protect_ms, nothing grown): its size is
     * its job, not a fault. Half its points, so it goes after any process of half its size
     * that is to blame, and still first when it is alone or far the biggest. */
    if (ctx->flat_protect_ms && c->flat_ms >= ctx->flat_protect_ms && b == 0 && g == 0 &&
        points > 0) {
        points /= 2;
        add_term(r, "steady", '/', 2, points);
    }

    /* The process's own hint, on the oom_score_adj scale but only upward: the slot is shared
     * memory the process writes, so it may volunteer (its work is cheap to lose, goal 2) but
     * never shelter. */
    uint64_t hint = c->slot_adj > 1000 ? 1000 : c->slot_adj;
    int64_t h = sat_mul(u2i(hint), per_mille);
    points = sat_add(points, h);
    add_term(r, "slot_adj", '+', h, points);
}

/* The operator's --prefer / --avoid, like an oom_score_adj of ±prefer_permille (default 300,
 * earlyoom's step) of the memory there is: a bias, not an exclusion (--protect is the
 * exclusion). The operator's word about a process, so it applies after whichever policy
 * scored: every policy counts in pages, and so does this term. */
static void apply_preference(const preoom_badness_ctx_t *ctx, const preoom_candidate_t *c,
                             preoom_badness_t *r)
{
    if (c->preference == PREOOM_PREFER_NONE)
        return;
    int64_t p = sat_mul((int64_t)ctx->prefer_permille, u2i(total_pages(ctx) / 1000));
    if (c->preference == PREOOM_AVOID)
        add_term(r, "avoid", '-', p, sat_add(r->score, -p));
    else
        add_term(r, "prefer", '+', p, sat_add(r->score, p));
}

void preoom_badness_score(const preoom_badness_ctx_t *ctx, const preoom_candidate_t *c,
                          preoom_badness_t *out)
{
    memset(out, 0, sizeof *out);
    out->oom_score = -1;
    out->why = preoom_badness_eligible(ctx, c);
    if (out->why != PREOOM_ELIGIBLE) {
        out->score = PREOOM_BADNESS_NEVER;
        if (ctx->policy == PREOOM_POLICY_KERNEL)
            out->oom_score = 0;
        return;
    }
    switch (ctx->policy) {
    case PREOOM_POLICY_KERNEL:
        score_kernel(ctx, c, out);
        break;
    case PREOOM_POLICY_CLASSIC:
        score_classic(ctx, c, out);
        break;
    case PREOOM_POLICY_PREOOM:
    default:
        score_preoom(ctx, c, out);
        break;
    }
    apply_preference(ctx, c, out);
    /* A saturated sum must still rank above "never". */
    if (out->score == PREOOM_BADNESS_NEVER)
        out->score = PREOOM_BADNESS_NEVER + 1;
}

/* ---- step 3: compare ------------------------------------------------------------------ */

int preoom_badness_compare(const preoom_candidate_t *a, const preoom_badness_t *sa,
                           const preoom_candidate_t *b, const preoom_badness_t *sb)
{
    /* --avoid: not while any other candidate remains (a bias alone let a big avoided
     * process still be chosen over a small culprit). Then higher score first; then more
     * touched memory, since that is what a kill frees; then the lower pid, only so that the
     * answer never depends on the order we read /proc. */
    bool va = a->preference == PREOOM_AVOID, vb = b->preference == PREOOM_AVOID;
    if (va != vb && sa->score != PREOOM_BADNESS_NEVER && sb->score != PREOOM_BADNESS_NEVER)
        return va ? 1 : -1;
    if (sa->score != sb->score)
        return sa->score > sb->score ? -1 : 1;
    if (a->touched_bytes != b->touched_bytes)
        return a->touched_bytes > b->touched_bytes ? -1 : 1;
    if (a->pid != b->pid)
        return a->pid < b->pid ? -1 : 1;
    return 0;
}

/* ---- step 4: select ------------------------------------------------------------------- */

long preoom_badness_select(const preoom_badness_ctx_t *ctx, const preoom_candidate_t *c,
                           size_t n, preoom_badness_t *scores)
{
    long best = -1;
    for (size_t k = 0; k < n; k++) {
        preoom_badness_score(ctx, &c[k], &scores[k]);
        if (scores[k].score == PREOOM_BADNESS_NEVER)
            continue;
        if (best < 0 || preoom_badness_compare(&c[k], &scores[k], &c[best], &scores[best]) < 0)
            best = (long)k;
    }
    return best;
}

/* ---- report --------------------------------------------------------------------------- */

int preoom_badness_format(const preoom_badness_t *r, char *buf, size_t cap)
{
    size_t used = 0;
    int total = 0;
#define EMIT(...)                                                                          \
    do {                                                                                   \
        int n_ = snprintf(buf + used, cap > used ? cap - used : 0, __VA_ARGS__);           \
        if (n_ < 0)                                                                        \
            return n_;                                                                     \
        total += n_;                                                                       \
        used = (size_t)total < cap ? (size_t)total : cap;                                  \
    } while (0)
    char scratch[1];
    if (!cap) {
        /* Only the length is wanted: write into a byte of our own. */
        buf = scratch;
        cap = 1;
    }
    if (r->score == PREOOM_BADNESS_NEVER) {
        EMIT("score=never why=%s", preoom_ineligible_name(r->why));
        return total;
    }
    EMIT("score=%lld", (long long)r->score);
    if (r->oom_score >= 0)
        EMIT(" oom_score=%lld", (long long)r->oom_score);
    EMIT(" [");
    for (size_t k = 0; k < r->n_terms; k++) {
        const preoom_term_t *t = &r->terms[k];
        const char *op = t->op == '<' ? "<<" : t->op == '>' ? ">>" : t->op == '=' ? "" : NULL;
        if (op)
            EMIT("%s%s%s=%lld", k ? " " : "", op, t->name, (long long)t->value);
        else
            EMIT("%s%c%s=%lld", k ? " " : "", t->op, t->name, (long long)t->value);
    }
    EMIT("]");
#undef EMIT
    return total;
}

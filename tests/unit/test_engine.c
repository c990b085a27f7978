/* tests/unit/test_engine.c — the decision engine alone, in a simulated memory domain.
 *
 * Each scene is a table of processes whose touched memory follows a script over fake time
 * (grow, hold, spike, leak, fill-and-hold), in a domain with a limit. Every 5 ms of fake time
 * the world hands the engine one snapshot; the fake hands answer asks (a cache gives what it
 * holds, a useless callback nothing) and carry out signals (SIGTERM ends a process after its
 * own shutdown time, SIGKILL at once). When usage passes the limit the "kernel" kills the
 * biggest process, as the OOM killer would, and the scene counts it. No root, no sleeps, no
 * /proc: every situation preoomd(8) promises about is checked here, then end to end in
 * tests/e2e/arbiter_scenes.sh.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "harness.h"

#define MIB (1ULL << 20)
#define MAXP 12
#define STEP_MS 5

typedef enum { T_HOLD, T_GROW, T_SPIKE, T_LEAK, T_PLATEAU } traj_t;

typedef struct {
    const char *name;
    traj_t traj;
    uint64_t a_mib, b_mib;      /* GROW: from a to b at rate; SPIKE: a → b for hold ms */
    uint64_t rate_mib_s;        /* GROW/LEAK/PLATEAU: MiB per second */
    uint64_t start_ms, hold_ms; /* when it starts; SPIKE: how long it stays up */
    bool registered, callbacks, useless;
    uint64_t reclaim_mib;       /* a cache: what it could give (part of its touched) */
    uint32_t own_grace_ms;      /* published shutdown time */
    uint32_t exit_ms;           /* how long it really takes to exit after SIGTERM */
    bool ignores_term;
    int adj;                    /* oom_score_adj */
    preoom_preference_t pref;
    uint64_t private_mib;       /* 0: private = touched */
} spec_t;

typedef struct {
    spec_t s;
    bool alive, started, finished;
    int32_t pid;
    uint64_t given;             /* bytes given back through asks */
    uint64_t term_at, kill_at;  /* 0: not signalled */
    int terms, kills, asks, oom_killed;
    uint64_t ask_answer_at, ask_bytes;
    uint32_t serial, answered_serial;
    uint64_t answer_bytes;
    uint64_t hist[512];         /* touched every STEP_MS*8 ms, for the growth rate */
} sproc_t;

typedef struct {
    uint64_t limit, base;
    sproc_t p[MAXP];
    size_t n;
    uint64_t now;
    int kernel_kills;
    int signals_sent;
    int hand_calls;
    uint64_t min_avail_at_signal;
} world_t;

static uint64_t traj_mib_x1000(const spec_t *s, uint64_t t)
{
    if (t < s->start_ms)
        return 0;
    uint64_t el = t - s->start_ms;
    switch (s->traj) {
    case T_HOLD:
        return s->a_mib * 1000;
    case T_GROW:
    case T_LEAK: {
        uint64_t v = s->a_mib * 1000 + s->rate_mib_s * el;
        uint64_t top = s->traj == T_GROW ? s->b_mib * 1000 : UINT64_MAX;
        return v < top ? v : top;
    }
    case T_PLATEAU: {
        uint64_t v = s->a_mib * 1000 + s->rate_mib_s * el;
        return v < s->b_mib * 1000 ? v : s->b_mib * 1000;
    }
    case T_SPIKE: {
        /* a, then up to b at rate, held hold_ms, then back to a */
        uint64_t up = (s->b_mib - s->a_mib) * 1000 / (s->rate_mib_s ? s->rate_mib_s : 1);
        if (el < up)
            return s->a_mib * 1000 + s->rate_mib_s * el;
        if (el < up + s->hold_ms)
            return s->b_mib * 1000;
        return s->a_mib * 1000;
    }
    }
    return 0;
}

static uint64_t touched(const sproc_t *p, uint64_t t)
{
    if (!p->alive)
        return 0;
    /* A process shutting down after SIGTERM allocates no more. */
    if (p->term_at && !p->s.ignores_term && t > p->term_at)
        t = p->term_at;
    uint64_t b = traj_mib_x1000(&p->s, t) * MIB / 1000;
    return b > p->given ? b - p->given : 0;
}

static uint64_t usage(const world_t *w)
{
    uint64_t u = w->base;
    for (size_t i = 0; i < w->n; i++)
        u += touched(&w->p[i], w->now);
    return u;
}

static int hand_ask(void *ctx, const preoom_engine_proc_t *ep, int level, uint64_t bytes,
                    uint32_t *serial)
{
    world_t *w = ctx;
    w->hand_calls++;
    (void)level;
    for (size_t i = 0; i < w->n; i++) {
        sproc_t *p = &w->p[i];
        if (p->pid != ep->pid || !p->alive)
            continue;
        p->asks++;
        p->serial++;
        *serial = p->serial;
        p->ask_answer_at = w->now + 10; /* the agent answers in about 10 ms */
        p->ask_bytes = bytes;
        return 0;
    }
    return -ESTALE;
}

static int hand_signal(void *ctx, const preoom_engine_proc_t *ep, int sig)
{
    world_t *w = ctx;
    w->hand_calls++;
    for (size_t i = 0; i < w->n; i++) {
        sproc_t *p = &w->p[i];
        if (p->pid != ep->pid)
            continue;
        if (!p->alive)
            return -ESRCH;
        w->signals_sent++;
        uint64_t a = w->limit > usage(w) ? w->limit - usage(w) : 0;
        if (!w->min_avail_at_signal || a < w->min_avail_at_signal)
            w->min_avail_at_signal = a;
        if (sig == SIGTERM) {
            p->terms++;
            if (!p->term_at)
                p->term_at = w->now;
        } else {
            p->kills++;
            p->kill_at = w->now;
        }
        return 0;
    }
    return -ESRCH;
}

/* The world moves one step: answers, exits, the kernel's OOM killer. */
static void world_step(world_t *w)
{
    for (size_t i = 0; i < w->n; i++) {
        sproc_t *p = &w->p[i];
        if (!p->alive)
            continue;
        if (p->ask_answer_at && w->now >= p->ask_answer_at) {
            uint64_t give = 0;
            if (p->s.callbacks && !p->s.useless) {
                uint64_t can = p->s.reclaim_mib * MIB > p->given ? p->s.reclaim_mib * MIB - p->given : 0;
                give = p->ask_bytes < can ? p->ask_bytes : can;
                uint64_t t = touched(p, w->now);
                if (give > t)
                    give = t;
            }
            p->given += give;
            p->answered_serial = p->serial;
            p->answer_bytes = give;
            p->ask_answer_at = 0;
        }
        if (p->kill_at && w->now >= p->kill_at + 2)
            p->alive = false;
        if (p->term_at && !p->s.ignores_term && w->now >= p->term_at + p->s.exit_ms + 2)
            p->alive = false;
        /* A process whose script ended (GROW reached its top and held) finishes after its
         * hold; SPIKE and HOLD live to the end of the scene. */
    }
    while (usage(w) > w->limit) {
        size_t big = 0;
        uint64_t bt = 0;
        for (size_t i = 0; i < w->n; i++)
            if (touched(&w->p[i], w->now) > bt) {
                bt = touched(&w->p[i], w->now);
                big = i;
            }
        if (!bt)
            break;
        w->p[big].alive = false;
        w->p[big].oom_killed = 1;
        w->kernel_kills++;
    }
}

typedef struct {
    preoom_engine_t e;
    preoom_badness_t scores[MAXP];
    preoom_engine_proc_t ep[MAXP];
    int events[16];        /* per kind */
    int hog_pid;
    int cmdline_reads;     /* calls of the cmdline hand */
    int cmdline_bad;       /* ask/term/kill/exit events without their process's command line */
} run_t;

/* Another domain's victim inside this one is on its way out until this time (0: never). */
static uint64_t g_hold_until_ms;
/* The cmdline hand: a command line made from the pid, so an event naming another process's
 * (or none) is seen. Counted: it must be called for an ask or a SIGTERM only. As the kernel
 * does, a process already signalled reads as empty (it may be dying): the engine must read
 * before it signals. */
static int cmdline_calls;
static void hand_cmdline(void *ctx, const preoom_engine_proc_t *ep, char *buf, size_t cap)
{
    world_t *w = ctx;
    cmdline_calls++;
    for (size_t i = 0; i < w->n; i++)
        if (w->p[i].pid == ep->pid && (w->p[i].terms || w->p[i].kills)) {
            snprintf(buf, cap, "%s", "");
            return;
        }
    snprintf(buf, cap, "prog-%d --flag", (int)ep->pid);
}

static void build_input(world_t *w, run_t *r, preoom_engine_input_t *in, int32_t vpid)
{
    memset(in, 0, sizeof *in);
    in->hold_signals = w->now < g_hold_until_ms;
    in->now_ms = w->now;
    in->r.mem_total_bytes = 64ULL << 30;
    in->r.mem_available_bytes = 60ULL << 30;
    in->r.cgroup_valid = true;
    in->r.cg_limit_bytes = w->limit;
    in->r.cg_usage_bytes = usage(w);
    in->self_pid = 99999;
    uint64_t exposure = 0;
    size_t n = 0;
    uint64_t big = 0;
    for (size_t i = 0; i < w->n; i++) {
        sproc_t *p = &w->p[i];
        uint64_t t = touched(p, w->now);
        if (t > big) {
            big = t;
            in->biggest_pid = p->pid;
            in->biggest_bytes = t;
            snprintf(in->biggest_name, sizeof in->biggest_name, "%s", p->s.name);
            in->biggest_is_candidate = p->s.registered || p->s.adj != -1000;
        }
        if (!p->alive || w->now < p->s.start_ms)
            continue;
        preoom_engine_proc_t *e = &r->ep[n++];
        memset(e, 0, sizeof *e);
        e->pid = p->pid;
        e->start_time = 1000 + (uint64_t)p->pid;
        snprintf(e->name, sizeof e->name, "%s", p->s.name);
        e->registered = p->s.registered;
        e->slot_index = i;
        e->callbacks = p->s.callbacks ? 1 : 0;
        uint64_t can = p->s.reclaim_mib * MIB > p->given ? p->s.reclaim_mib * MIB - p->given : 0;
        e->reclaimable_bytes = p->s.useless ? 0 : can;
        e->term_grace_ms = p->s.own_grace_ms;
        e->answer_serial = p->answered_serial;
        e->answer_bytes = p->answer_bytes;
        e->answer_callback_bytes = p->answer_bytes;
        preoom_candidate_t *c = &e->c;
        c->pid = p->pid;
        c->maps_registry = true;
        c->uid_matches = true;
        c->oom_score_adj = p->s.adj;
        c->preference = p->s.pref;
        c->rss_bytes = t;
        c->touched_bytes = t;
        c->committed_bytes = t;
        c->private_bytes = p->s.private_mib ? p->s.private_mib * MIB : 0;
        /* growth over the last ~1 s, as the daemon measures it from its samples */
        size_t k = (size_t)(w->now / (STEP_MS * 8));
        size_t back = 1000 / (STEP_MS * 8);
        uint64_t then = k >= back ? p->hist[(k - back) % 512] : 0;
        c->touched_growth_bytes_per_s = (int64_t)t - (int64_t)then;
    }
    in->r.exposure_bytes = exposure;
    in->procs = r->ep;
    in->n = n;
    uint64_t vs;
    int32_t cur = preoom_engine_victim_pid(&r->e, &vs);
    in->victim_gone = false;
    if (cur) {
        bool found = false;
        for (size_t i = 0; i < w->n; i++)
            if (w->p[i].pid == cur && w->p[i].alive)
                found = true;
        in->victim_gone = !found;
    }
    (void)vpid;
}

static void record_hist(world_t *w)
{
    if (w->now % (STEP_MS * 8) == 0)
        for (size_t i = 0; i < w->n; i++)
            w->p[i].hist[(w->now / (STEP_MS * 8)) % 512] = touched(&w->p[i], w->now);
}

/* Run a scene for ms of fake time. Returns the engine's last decision's poll interval. */
static uint32_t run_scene(world_t *w, run_t *r, const preoom_engine_conf_t *conf, uint64_t ms,
                          bool with_hands)
{
    preoom_engine_init(&r->e, conf, r->scores, MAXP);
    memset(r->events, 0, sizeof r->events);
    r->cmdline_bad = 0;
    cmdline_calls = 0;
    preoom_engine_hands_t hands = {w, hand_ask, hand_signal, hand_cmdline};
    preoom_decision_t d;
    uint32_t poll = 0;
    for (w->now = 0; w->now <= ms; w->now += STEP_MS) {
        world_step(w);
        record_hist(w);
        preoom_engine_input_t in;
        build_input(w, r, &in, 0);
        preoom_engine_step(&r->e, &in, with_hands ? &hands : NULL, &d);
        for (size_t i = 0; i < d.n_events; i++) {
            r->events[d.ev[i].kind]++;
            if (d.ev[i].kind == PREOOM_EV_HOG)
                r->hog_pid = d.ev[i].pid;
            preoom_event_kind_t k = d.ev[i].kind;
            if (with_hands && (k == PREOOM_EV_ASK || k == PREOOM_EV_TERM || k == PREOOM_EV_KILL ||
                               k == PREOOM_EV_EXITED)) {
                char want[64];
                snprintf(want, sizeof want, "prog-%d --flag", (int)d.ev[i].pid);
                r->cmdline_bad += strcmp(d.ev[i].cmdline, want) != 0;
            }
            if (getenv("ENGINE_TRACE")) {
                char line[2048];
                preoom_engine_format_event(&d, i, &in, r->scores, 0, line, sizeof line);
                printf("# %6llu %s\n", (unsigned long long)w->now, line);
            }
        }
        poll = d.next_poll_ms;
    }
    r->cmdline_reads = cmdline_calls;
    if (with_hands) {
        /* Every signal and ask names its process's command line (the KILL and the exit
         * carry the one read at SIGTERM), and it was read for those events only, never for
         * every process every pass. */
        CHECK_EQ_I64(r->cmdline_bad, 0);
        CHECK(r->cmdline_reads <= r->events[PREOOM_EV_ASK] + r->events[PREOOM_EV_TERM] +
                                       r->events[PREOOM_EV_FAILED]);
    } else {
        CHECK_EQ_I64(r->cmdline_reads, 0);
    }
    return poll;
}

static void world_init(world_t *w, uint64_t limit_mib, const spec_t *specs, size_t n)
{
    memset(w, 0, sizeof *w);
    w->limit = limit_mib * MIB;
    w->base = 4 * MIB;
    for (size_t i = 0; i < n; i++) {
        w->p[i].s = specs[i];
        w->p[i].alive = true;
        w->p[i].pid = 100 + (int32_t)i;
    }
    w->n = n;
}

static preoom_engine_conf_t conf_default(void)
{
    preoom_engine_conf_t c;
    preoom_engine_conf_defaults(&c);
    return c;
}

static int signalled(const world_t *w, size_t i)
{
    return w->p[i].terms + w->p[i].kills;
}

static int all_signals(const world_t *w)
{
    int s = 0;
    for (size_t i = 0; i < w->n; i++)
        s += signalled(w, i);
    return s;
}

/* ---- scenes --------------------------------------------------------------------------- */

static void ask_line_is_not_a_signal(void)
{
    /* --ask 30% --term 5% --kill 2%; 27% available, held: asks at most, never a signal. */
    static const spec_t s[] = {
        {"hold", T_HOLD, 180, 0, 0, 0, 0, true, false, false, 0, 0, 0, false, 0, 0, 0},
    };
    world_t w;
    run_t r;
    world_init(&w, 256, s, 1);
    w.base = (uint64_t)(256 * 0.73 * MIB) - 180 * MIB;
    preoom_engine_conf_t c = conf_default();
    preoom_threshold_parse("30", &c.th.ask);
    preoom_threshold_parse("5", &c.th.term);
    preoom_threshold_parse("2", &c.th.kill);
    run_scene(&w, &r, &c, 10000, true);
    CHECK_EQ_I64(all_signals(&w), 0);
    CHECK_EQ_I64(w.kernel_kills, 0);
    CHECK(w.p[0].alive);
}

static void exposure_never_signals(void)
{
    /* calloc(4 GiB) touching 10 MiB in a 400 MiB domain: exposure asks, never signals. */
    static const spec_t s[] = {
        {"calloc", T_HOLD, 10, 0, 0, 0, 0, true, false, false, 0, 0, 0, false, 0, 0, 0},
    };
    world_t w;
    run_t r;
    world_init(&w, 400, s, 1);
    preoom_engine_conf_t c = conf_default();
    preoom_engine_init(&r.e, &c, r.scores, MAXP);
    preoom_engine_hands_t hands = {&w, hand_ask, hand_signal};
    preoom_decision_t d;
    int moderate = 0;
    for (w.now = 0; w.now <= 5000; w.now += STEP_MS) {
        world_step(&w);
        record_hist(&w);
        preoom_engine_input_t in;
        build_input(&w, &r, &in, 0);
        in.r.exposure_bytes = 4ULL << 30;
        r.ep[0].c.committed_bytes = 4ULL << 30;
        preoom_engine_step(&r.e, &in, &hands, &d);
        moderate += d.level == PREOOM_PRESSURE_MODERATE;
        CHECK(!d.signal_due);
    }
    CHECK(moderate > 0); /* the exposure was seen */
    CHECK_EQ_I64(all_signals(&w), 0);
}

static void spike_and_plateau_are_not_punished(void)
{
    /* A spike to ~92% of 256 MiB for 300 ms, then back; a creep that plateaus at 88%. */
    static const spec_t spike[] = {
        {"base", T_HOLD, 60, 0, 0, 0, 0, true, false, false, 0, 0, 0, false, 0, 0, 0},
        {"spike", T_SPIKE, 20, 171, 3000, 500, 800, true, false, false, 0, 0, 0, false, 0, 0, 0},
    };
    static const spec_t plateau[] = {
        {"base", T_HOLD, 60, 0, 0, 0, 0, true, false, false, 0, 0, 0, false, 0, 0, 0},
        {"creep", T_PLATEAU, 10, 161, 20, 500, 0, true, false, false, 0, 0, 0, false, 0, 0, 0},
    };
    static const spec_t slow_spike[] = {
        {"base", T_HOLD, 60, 0, 0, 0, 0, true, false, false, 0, 0, 0, false, 0, 0, 0},
        {"spike", T_SPIKE, 20, 171, 30, 500, 2000, true, false, false, 0, 0, 0, false, 0, 0, 0},
    };
    const spec_t *scenes[] = {spike, plateau, slow_spike};
    for (int k = 0; k < 3; k++) {
        world_t w;
        run_t r;
        world_init(&w, 256, scenes[k], 2);
        preoom_engine_conf_t c = conf_default();
        run_scene(&w, &r, &c, 15000, true);
        CHECK_EQ_I64(all_signals(&w), 0);
        CHECK_EQ_I64(w.kernel_kills, 0);
    }
}

static void cache_and_job_both_live(void)
{
    /* A cache of 150 MiB that can give, a job growing to 150 MiB in 256: the cache is asked
     * for what the job needs, nobody is signalled, nobody is OOM-killed. */
    static const spec_t s[] = {
        {"cache", T_HOLD, 150, 0, 0, 0, 0, true, true, false, 150, 0, 0, false, 0, 0, 0},
        {"job", T_GROW, 0, 150, 60, 1000, 0, true, false, false, 0, 0, 0, false, 0, 0, 0},
    };
    world_t w;
    run_t r;
    world_init(&w, 256, s, 2);
    preoom_engine_conf_t c = conf_default();
    run_scene(&w, &r, &c, 8000, true);
    CHECK_EQ_I64(all_signals(&w), 0);
    CHECK_EQ_I64(w.kernel_kills, 0);
    CHECK(w.p[0].asks >= 1);
    CHECK_EQ_I64(w.p[1].asks, 0);          /* the job has nothing to give */
    /* Asked for the shortfall, not everything: keeping the ask line takes 304 - 256 + 38.4 =
     * 86.4 MiB; at most one ask (of about what the job grows in RESERVE_MS) more. */
    CHECK(w.p[0].given >= 86 * MIB && w.p[0].given < 110 * MIB);
    CHECK(w.p[1].alive && touched(&w.p[1], w.now) == 150 * MIB);
}

/* Two caches that can give and an endless leaker, in 256 MiB. */
static const spec_t caches_leaker[] = {
    {"cache1", T_HOLD, 80, 0, 0, 0, 0, true, true, false, 70, 0, 0, false, 0, 0, 0},
    {"cache2", T_HOLD, 60, 0, 0, 0, 0, true, true, false, 50, 0, 0, false, 0, 0, 0},
    {"leaker", T_LEAK, 0, 0, 40, 500, 0, true, false, false, 0, 0, 0, false, 0, 0, 0},
};

static void caches_and_a_leaker(void)
{
    /* Two caches and an endless leaker: the caches give first; when they cannot keep memory
     * over the lines the leaker, never a cache that gave, is stopped. */
    world_t w;
    run_t r;
    world_init(&w, 256, caches_leaker, 3);
    preoom_engine_conf_t c = conf_default();
    run_scene(&w, &r, &c, 12000, true);
    CHECK_EQ_I64(w.kernel_kills, 0);
    CHECK(w.p[0].asks >= 1 && w.p[1].asks >= 1);
    CHECK_EQ_I64(signalled(&w, 0) + signalled(&w, 1), 0);
    CHECK(w.p[2].terms >= 1);
    CHECK(!w.p[2].alive);
}

static void sustained_growth_needs_two(void)
{
    /* Three growers of 8 MiB / 40 ms to 150, 160, 170 in 300: two must go, no idle gap. */
    static const spec_t s[] = {
        {"g150", T_GROW, 0, 150, 200, 0, 0, true, false, false, 0, 0, 0, false, 0, 0, 0},
        {"g160", T_GROW, 0, 160, 200, 0, 0, true, false, false, 0, 0, 0, false, 0, 0, 0},
        {"g170", T_GROW, 0, 170, 200, 0, 0, true, false, false, 0, 0, 0, false, 0, 0, 0},
    };
    world_t w;
    run_t r;
    world_init(&w, 300, s, 3);
    preoom_engine_conf_t c = conf_default();
    run_scene(&w, &r, &c, 5000, true);
    CHECK_EQ_I64(w.kernel_kills, 0);
    int victims = 0;
    for (size_t i = 0; i < 3; i++)
        victims += signalled(&w, i) > 0;
    CHECK_EQ_I64(victims, 2);
}

static void held_while_another_domain_settles(void)
{
    /* The caches-and-leaker scene while an outer or inner domain's victim, a process of this
     * one, is on its way out for the first 4 s: asks go on, no victim is chosen (the kernel
     * of the simulation may then kill: what the hold costs when the other victim never
     * frees, which the daemon bounds by the other engine's own grace); after it, the leaker
     * is stopped as without the hold. */
    world_t w;
    run_t r;
    world_init(&w, 256, caches_leaker, 3);
    preoom_engine_conf_t c = conf_default();
    g_hold_until_ms = 4000;
    run_scene(&w, &r, &c, 4000, true);
    CHECK_EQ_I64(all_signals(&w), 0);
    CHECK(w.p[0].asks >= 1 && w.p[1].asks >= 1);
    /* held the whole way: no signal however low memory went */
    world_init(&w, 256, caches_leaker, 3);
    g_hold_until_ms = UINT64_MAX;
    run_scene(&w, &r, &c, 12000, true);
    CHECK_EQ_I64(all_signals(&w), 0);
    CHECK(r.events[PREOOM_EV_ASK] >= 2);
    /* released at 4 s: the leaker goes, the caches stay */
    world_init(&w, 256, caches_leaker, 3);
    g_hold_until_ms = 4000;
    run_scene(&w, &r, &c, 12000, true);
    g_hold_until_ms = 0;
    CHECK(w.p[2].terms >= 1);
    CHECK_EQ_I64(signalled(&w, 0) + signalled(&w, 1), 0);
}

static void slow_leak_beats_big_steady_service(void)
{
    /* A database of 200 MiB (filled in 0.5 s, then steady) and a sidecar leaking 10 MiB/s
     * in 300 MiB: the sidecar goes, also with --avoid on the database; with --avoid on the
     * sidecar it is the only candidate left... no: the database is the other candidate, so
     * the database goes. */
    for (int k = 0; k < 3; k++) {
        spec_t s[] = {
            {"mysqld", T_GROW, 0, 200, 400, 0, 0, true, false, false, 0, 0, 0, false, 0, 0, 0},
            {"sidecar", T_LEAK, 0, 0, 10, 0, 0, true, false, false, 0, 0, 0, false, 0, 0, 0},
        };
        if (k == 1)
            s[0].pref = PREOOM_AVOID;
        if (k == 2)
            s[1].pref = PREOOM_AVOID;
        world_t w;
        run_t r;
        world_init(&w, 300, s, 2);
        preoom_engine_conf_t c = conf_default();
        run_scene(&w, &r, &c, 15000, true);
        CHECK_EQ_I64(w.kernel_kills, 0);
        if (k < 2) {
            CHECK_EQ_I64(signalled(&w, 0), 0);
            CHECK(signalled(&w, 1) >= 1);
        } else {
            CHECK(signalled(&w, 0) >= 1);
            CHECK_EQ_I64(signalled(&w, 1), 0);
        }
    }
}

static void prefork_leaking_child(void)
{
    /* A prefork parent (big RSS, little private: its pages are shared) and eight children of
     * 20 MiB each, one of them leaking: the leaking child goes, not the parent or a sibling. */
    spec_t s[10];
    s[0] = (spec_t){"parent", T_HOLD, 60, 0, 0, 0, 0, true, false, false, 0, 0, 0, false, 0, 0, 4};
    for (int i = 1; i <= 8; i++)
        s[i] = (spec_t){"child", T_HOLD, 20, 0, 0, 0, 0, true, false, false, 0, 0, 0, false, 0, 0, 20};
    s[9] = (spec_t){"child", T_LEAK, 20, 0, 15, 1000, 0, true, false, false, 0, 0, 0, false, 0, 0, 0};
    world_t w;
    run_t r;
    world_init(&w, 300, s, 10);
    preoom_engine_conf_t c = conf_default();
    run_scene(&w, &r, &c, 12000, true);
    CHECK_EQ_I64(w.kernel_kills, 0);
    CHECK(signalled(&w, 9) >= 1);
    for (int i = 0; i <= 8; i++)
        CHECK_EQ_I64(signalled(&w, (size_t)i), 0);
}

static void unregistered_hog_is_the_one(void)
{
    /* A hog without the preload fills the domain beside a small registered process. In
     * cgroup scope the hog is a candidate and goes; out of scope nobody may be chosen but the
     * small one, and the engine says the hog is out of its reach. */
    static const spec_t s[] = {
        {"small", T_HOLD, 20, 0, 0, 0, 0, true, false, false, 0, 0, 0, false, 0, 0, 0},
        {"hog", T_LEAK, 0, 0, 80, 200, 0, false, false, false, 0, 0, 0, false, 0, 0, 0},
    };
    world_t w;
    run_t r;
    world_init(&w, 256, s, 2);
    preoom_engine_conf_t c = conf_default();
    run_scene(&w, &r, &c, 6000, true);
    CHECK_EQ_I64(w.kernel_kills, 0);
    CHECK_EQ_I64(signalled(&w, 0), 0);
    CHECK(signalled(&w, 1) >= 1);
    CHECK_EQ_I64(w.p[1].asks, 0); /* an unregistered process cannot be asked */
    CHECK_EQ_I64(r.events[PREOOM_EV_HOG], 0);
}

static void hog_out_of_reach_is_named(void)
{
    /* The hog is the biggest and is not a candidate (not in scope): one HOG event. */
    static const spec_t s[] = {
        {"small", T_HOLD, 20, 0, 0, 0, 0, true, false, false, 0, 0, 0, false, 0, 0, 0},
        {"hog", T_HOLD, 200, 0, 0, 0, 0, false, false, false, 0, 0, 0, false, -1000, 0, 0},
    };
    world_t w;
    run_t r;
    world_init(&w, 256, s, 2);
    preoom_engine_conf_t c = conf_default();
    run_scene(&w, &r, &c, 3000, true);
    CHECK_EQ_I64(r.events[PREOOM_EV_HOG], 1);
    CHECK_EQ_I64(r.hog_pid, w.p[1].pid);
}

static void refusal_counts_for_its_episode(void)
{
    /* A useless callback is asked once per episode, not again within it, and again in the
     * next episode. Two separate pressure spells (a grower that is killed, then another). */
    static const spec_t s[] = {
        {"useless", T_HOLD, 60, 0, 0, 0, 0, true, true, true, 0, 0, 0, false, 0, 0, 0},
        {"g1", T_GROW, 0, 200, 100, 500, 0, true, false, false, 0, 0, 0, false, 0, 0, 0},
        {"g2", T_GROW, 0, 200, 100, 9000, 0, true, false, false, 0, 0, 0, false, 0, 0, 0},
    };
    world_t w;
    run_t r;
    world_init(&w, 256, s, 3);
    preoom_engine_conf_t c = conf_default();
    run_scene(&w, &r, &c, 16000, true);
    CHECK_EQ_I64(w.kernel_kills, 0);
    CHECK_EQ_I64(w.p[0].asks, 2);
    CHECK_EQ_I64(signalled(&w, 0), 0);
    CHECK(signalled(&w, 1) >= 1 && signalled(&w, 2) >= 1);
}

static void own_grace_is_waited_above_the_kill_line(void)
{
    /* A database asks for 10 s to shut down. It is SIGTERMed while memory falls, then its
     * growth stops and memory stays between the kill and term lines: no SIGKILL before its
     * 10 s; a stubborn one that ignores SIGTERM below the kill line gets SIGKILL after the
     * kill grace. */
    static const spec_t db[] = {
        {"db", T_LEAK, 200, 0, 20, 0, 0, true, false, false, 0, 10000, 8000, false, 0, 0, 0},
    };
    world_t w;
    run_t r;
    world_init(&w, 256, db, 1);
    preoom_engine_conf_t c = conf_default();
    run_scene(&w, &r, &c, 6000, true);
    CHECK(w.p[0].terms == 1);
    CHECK_EQ_I64(w.p[0].kills, 0);
    CHECK(w.p[0].alive);
    static const spec_t stubborn[] = {
        {"stubborn", T_LEAK, 200, 0, 20, 0, 0, true, false, false, 0, 10000, 0, true, 0, 0, 0},
    };
    world_init(&w, 256, stubborn, 1);
    run_scene(&w, &r, &c, 6000, true);
    CHECK(w.p[0].terms == 1);
    CHECK_EQ_I64(w.p[0].kills, 1);
    CHECK_EQ_I64(w.kernel_kills, 0);
}

static void fast_growth_is_met_before_the_term_line(void)
{
    /* 600 MiB/s in 1 GiB beside a 300 MiB service: the signal leaves before available
     * memory reaches the term line. */
    static const spec_t s[] = {
        {"svc", T_HOLD, 300, 0, 0, 0, 0, true, false, false, 0, 0, 0, false, 0, 0, 0},
        {"burst", T_LEAK, 0, 0, 600, 1000, 0, true, false, false, 0, 0, 0, false, 0, 0, 0},
    };
    world_t w;
    run_t r;
    world_init(&w, 1024, s, 2);
    preoom_engine_conf_t c = conf_default();
    run_scene(&w, &r, &c, 3000, true);
    CHECK_EQ_I64(w.kernel_kills, 0);
    CHECK(signalled(&w, 1) >= 1);
    CHECK_EQ_I64(signalled(&w, 0), 0);
    CHECK(w.min_avail_at_signal > preoom_threshold_bytes(&c.th.term, w.limit));
}

static void dry_run_and_explain_send_nothing(void)
{
    static const spec_t s[] = {
        {"cache", T_HOLD, 100, 0, 0, 0, 0, true, true, false, 100, 0, 0, false, 0, 0, 0},
        {"g", T_GROW, 0, 200, 100, 0, 0, true, false, false, 0, 0, 0, false, 0, 0, 0},
    };
    world_t w;
    run_t r;
    world_init(&w, 256, s, 2);
    preoom_engine_conf_t c = conf_default();
    c.dry_run = true;
    run_scene(&w, &r, &c, 4000, true);
    CHECK_EQ_I64(w.hand_calls, 0);
    CHECK(r.events[PREOOM_EV_ASK] >= 1);
    CHECK(r.events[PREOOM_EV_TERM] >= 1);
    world_init(&w, 256, s, 2);
    c.dry_run = false;
    run_scene(&w, &r, &c, 4000, false); /* no hands: explain */
    CHECK_EQ_I64(w.hand_calls, 0);
}

static void polling_follows_time_left(void)
{
    /* An idle small domain polls as rarely as a large one; one near its lines, every few ms. */
    static const spec_t idle[] = {
        {"idle", T_HOLD, 40, 0, 0, 0, 0, true, false, false, 0, 0, 0, false, 0, 0, 0},
    };
    world_t w;
    run_t r;
    world_init(&w, 320, idle, 1);
    preoom_engine_conf_t c = conf_default();
    uint32_t poll = run_scene(&w, &r, &c, 2000, true);
    CHECK(poll >= 200);
    world_init(&w, 16384, idle, 1);
    uint32_t big = run_scene(&w, &r, &c, 2000, true);
    CHECK_EQ_I64(big, c.max_poll_ms);
    static const spec_t near[] = {
        {"near", T_HOLD, 225, 0, 0, 0, 0, true, false, false, 0, 0, 0, false, 0, 0, 0},
    };
    world_init(&w, 256, near, 1);
    CHECK_EQ_I64(run_scene(&w, &r, &c, 500, true), c.min_poll_ms);
}

static void v1_psi_is_not_this_domain(void)
{
    /* On cgroup v1 the PSI file is the machine's: another tenant's stalls must not ask. */
    static const spec_t s[] = {
        {"calm", T_HOLD, 40, 0, 0, 0, 0, true, true, false, 40, 0, 0, false, 0, 0, 0},
    };
    for (int local = 0; local < 2; local++) {
        world_t w;
        run_t r;
        world_init(&w, 256, s, 1);
        preoom_engine_conf_t c = conf_default();
        c.psi_local = local;
        preoom_engine_init(&r.e, &c, r.scores, MAXP);
        preoom_engine_hands_t hands = {&w, hand_ask, hand_signal};
        preoom_decision_t d;
        for (w.now = 0; w.now <= 2000; w.now += STEP_MS) {
            world_step(&w);
            record_hist(&w);
            preoom_engine_input_t in;
            build_input(&w, &r, &in, 0);
            in.r.psi_valid = true;
            in.r.psi_some_avg10_x100 = 5000;
            preoom_engine_step(&r.e, &in, &hands, &d);
        }
        CHECK_EQ_I64(w.p[0].asks > 0, local);
        CHECK_EQ_I64(all_signals(&w), 0);
    }
}

static void victim_stuck_after_sigkill(void)
{
    /* A process that survives SIGKILL (stuck in the kernel): after 5 s the engine says so
     * and may choose another. */
    static const spec_t s[] = {
        {"stuck", T_GROW, 0, 248, 200, 0, 0, true, false, false, 0, 0, 0, true, 0, 0, 0},
    };
    world_t w;
    run_t r;
    world_init(&w, 256, s, 1);
    w.base = 0;
    preoom_engine_conf_t c = conf_default();
    /* Make SIGKILL do nothing: the world's kill needs kill_at; clear it each step. */
    preoom_engine_init(&r.e, &c, r.scores, MAXP);
    preoom_engine_hands_t hands = {&w, hand_ask, hand_signal};
    preoom_decision_t d;
    int failed = 0;
    for (w.now = 0; w.now <= 9000; w.now += STEP_MS) {
        w.p[0].kill_at = 0;
        world_step(&w);
        record_hist(&w);
        preoom_engine_input_t in;
        build_input(&w, &r, &in, 0);
        preoom_engine_step(&r.e, &in, &hands, &d);
        for (size_t i = 0; i < d.n_events; i++)
            failed += d.ev[i].kind == PREOOM_EV_FAILED;
    }
    CHECK(w.p[0].kills >= 1);
    CHECK(failed >= 1);
}

static void formats(void)
{
    /* Every event kind formats as text and as one JSON object with the memory figures. */
    preoom_decision_t d;
    memset(&d, 0, sizeof d);
    d.total_bytes = 256 * MIB;
    d.available_bytes = 20 * MIB;
    d.effective_bytes = 20 * MIB;
    d.time_to_kill_ms = 1500;
    d.fall_bytes_per_s = 10 * MIB;
    d.reason = "cgroup memory available";
    for (int k = PREOOM_EV_ASK; k <= PREOOM_EV_LEFT; k++) {
        d.n_events = 1;
        memset(&d.ev[0], 0, sizeof d.ev[0]);
        d.ev[0].kind = (preoom_event_kind_t)k;
        d.ev[0].pid = 42;
        snprintf(d.ev[0].name, sizeof d.ev[0].name, "na\"me\x01");
        snprintf(d.ev[0].cmdline, sizeof d.ev[0].cmdline, "/bin/x -c \"y\"");
        d.ev[0].why = "because";
        d.ev[0].proc = SIZE_MAX;
        preoom_engine_input_t in;
        memset(&in, 0, sizeof in);
        char buf[2048];
        CHECK(preoom_engine_format_event(&d, 0, &in, NULL, 0, buf, sizeof buf) > 0);
        CHECK(strstr(buf, "42") != NULL);
        CHECK(preoom_engine_format_event(&d, 0, &in, NULL, 1, buf, sizeof buf) > 0);
        CHECK(buf[0] == '{' && buf[strlen(buf) - 1] == '}');
        CHECK(strstr(buf, "\"time_to_kill_ms\":1500") != NULL);
        CHECK(strstr(buf, "na\\\"me\\u0001") != NULL);
        /* The command line: in every JSON event that names a process, escaped. */
        CHECK(strstr(buf, "\"cmdline\":\"/bin/x -c \\\"y\\\"\"") != NULL);
        CHECK(strstr(buf, preoom_event_name((preoom_event_kind_t)k)) != NULL);
    }
    /* A tiny buffer is cut, never overrun. */
    char small[16];
    memset(small, 'x', sizeof small);
    preoom_engine_input_t in;
    memset(&in, 0, sizeof in);
    preoom_engine_format_event(&d, 0, &in, NULL, 1, small, 8);
    CHECK(strlen(small) < 8);
    CHECK(small[15] == 'x');
    preoom_scope_t sc;
    CHECK_EQ_I64(preoom_scope_from_name("cgroup", &sc), 0);
    CHECK_EQ_I64(sc, PREOOM_SCOPE_CGROUP);
    CHECK_EQ_I64(preoom_scope_from_name("nope", &sc), -EINVAL);
}

int main(void)
{
    TEST_CASE("engine: the ask line is not a signal line (27% available, --term 5%)", ask_line_is_not_a_signal);
    TEST_CASE("engine: exposure alone never signals", exposure_never_signals);
    TEST_CASE("engine: a spike to 92% and a plateau at 88% are not punished", spike_and_plateau_are_not_punished);
    TEST_CASE("engine: cache + job: the cache gives the shortfall, both live", cache_and_job_both_live);
    TEST_CASE("engine: caches + leaker: caches give, the leaker goes", caches_and_a_leaker);
    TEST_CASE("engine: sustained growth: exactly two victims, no idle gap", sustained_growth_needs_two);
    TEST_CASE("engine: held while another domain's victim inside it leaves", held_while_another_domain_settles);
    TEST_CASE("engine: a slow leak is blamed over a big steady service; --avoid", slow_leak_beats_big_steady_service);
    TEST_CASE("engine: prefork: the leaking child, not the parent or a sibling", prefork_leaking_child);
    TEST_CASE("engine: an unregistered hog in scope is the one stopped", unregistered_hog_is_the_one);
    TEST_CASE("engine: a biggest process out of reach is named once", hog_out_of_reach_is_named);
    TEST_CASE("engine: a refusal counts for its episode only", refusal_counts_for_its_episode);
    TEST_CASE("engine: a process's own shutdown time; SIGKILL below the kill line", own_grace_is_waited_above_the_kill_line);
    TEST_CASE("engine: 600 MiB/s is met before the term line", fast_growth_is_met_before_the_term_line);
    TEST_CASE("engine: dry run and explain send nothing", dry_run_and_explain_send_nothing);
    TEST_CASE("engine: polling follows the time left", polling_follows_time_left);
    TEST_CASE("engine: v1 PSI (the machine's) does not ask", v1_psi_is_not_this_domain);
    TEST_CASE("engine: a victim stuck after SIGKILL is given up after 5 s", victim_stuck_after_sigkill);
    TEST_CASE("engine: every event formats as text and JSON", formats);
    TEST_END();
}

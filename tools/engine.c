/* tools/engine.c — how preoomd settles the pressure of one memory domain.
 *
 * The rules, in the order they are applied each pass, and why:
 *  1. Three lines of available memory (ask > term > kill, from the thresholds and the
 *     domain's total), and "available" as pressure.c measures it: limit − usage in a cgroup,
 *     MemAvailable + SwapFree on the host. Every decision carries these figures.
 *  2. A forecast from more than one sample: the fall of available memory by least squares over
 *     the last NOW_WINDOW_MS (is it falling now), TREND_WINDOW_MS (the time to the kill line)
 *     and SLOW_WINDOW_MS (asks' sizes when nothing else moves). One low sample is never a
 *     trend, and a spike that has stopped falling is seen to stop within a few samples.
 *  3. The cooperative phase comes first. Below the ask line (or when exposure, local PSI or
 *     the forecast say trouble is coming) the processes that can give — release callbacks,
 *     or slack for malloc_trim — are asked, largest first, the shortfall split between them,
 *     several at once. Each ask is sized to the shortfall plus what the recent fall (or the
 *     candidates' growth) would eat in RESERVE_MS, never a fixed fraction: asked again as
 *     often as needed, a cache gives what the grower takes and no more. What each gave (its touched memory fell) is
 *     counted; a process that gave nothing is not asked again in the same episode, and the
 *     next episode starts with a clean slate.
 *  4. Thresholds gate signals. SIGTERM only when memory is below the term line AND still
 *     falling towards the kill line within HORIZON, confirmed for half the time left (so a
 *     burst that stops above the kill line is never punished), or below the kill line. A
 *     fast fall moves the term line up by what would be lost while acting (lead_ms).
 *     Exposure and PSI never open this gate. Outstanding asks are waited for unless the kill
 *     line is at hand.
 *  5. The victim: the policy's ranking, with --avoid meaning "not while any other candidate
 *     remains", a process that gave what it was asked going behind every one that gave
 *     nothing, and (preoom policy) the smallest process that covers the shortfall among those
 *     equally to blame.
 *  6. One victim in flight. SIGKILL only below the kill line (after kill_grace), or when the
 *     SIGTERMed victim outlives its grace — its own shutdown time if it published one,
 *     capped — while memory is still below the term line. When it is gone, measure again at
 *     once (next poll 0): no cool-down timer, and no second choice on a stale reading.
 *  7. Polling follows the time left: near a line every min_poll, far away the time to the ask
 *     line at the recent fall (or a floor rate) divided by four, up to max_poll.
 * Pure: no I/O, no clock, no allocation; actions go through the injected hands.
 */
#include "engine.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define NOW_WINDOW_MS 30      /* is memory falling right now (6 samples near the lines) */
#define TREND_WINDOW_MS 1000  /* the fall a forecast is made from */
#define SLOW_WINDOW_MS 3000   /* asks' sizes when nothing falls now */
#define FAST_FALL (16LL << 20) /* bytes/s: below this "falling now" is noise */
#define DROP_STALE_MS 250     /* a trend whose last real drop is older has stopped */
#define FAST_CONFIRM_MS 150
/* Asks keep what would be eaten in this long in reserve, not a whole grace: a cache is asked
 * again as often as it takes (each answer comes in milliseconds), never drained ahead. */
#define RESERVE_MS 250
#define MIN_ASK_BYTES (1ULL << 20)
#define KILL_WAIT_MS 5000
/* A fill rate assumed when nothing falls, for the poll interval only: 256 MiB/s. */
#define FLOOR_FALL_BYTES_PER_S (256LL << 20)

void preoom_engine_conf_defaults(preoom_engine_conf_t *c)
{
    memset(c, 0, sizeof *c);
    preoom_thresholds_defaults(&c->th);
    c->policy = PREOOM_POLICY_PREOOM;
    c->ask_grace_ms = 1000;
    c->term_grace_ms = 3000;
    c->max_term_grace_ms = 60000;
    c->kill_grace_ms = 250;
    c->horizon_ms = 5000;
    c->lead_ms = 200;
    c->calm_ms = 2000;
    c->min_poll_ms = 5;
    c->max_poll_ms = 1000;
    c->psi_local = true;
}

void preoom_engine_init(preoom_engine_t *e, const preoom_engine_conf_t *conf,
                        preoom_badness_t *scores, size_t cap)
{
    memset(e, 0, sizeof *e);
    e->conf = *conf;
    e->scores = scores;
    e->scores_cap = cap;
}

/* ---- forecast ------------------------------------------------------------------------- */

static void push_sample(preoom_engine_t *e, uint64_t t, uint64_t avail)
{
    size_t i = (e->s_head + e->s_n) % PREOOM_ENGINE_SAMPLES;
    if (e->s_n == PREOOM_ENGINE_SAMPLES) {
        i = e->s_head;
        e->s_head = (e->s_head + 1) % PREOOM_ENGINE_SAMPLES;
    } else {
        e->s_n++;
    }
    e->s_t[i] = t;
    e->s_a[i] = avail;
}

/* Fall of available memory in bytes/s over the samples of the last window_ms (least squares;
 * positive = falling). 0 without three samples spanning a tenth of the window. */
static int64_t fall_rate(const preoom_engine_t *e, uint64_t now, uint64_t window_ms)
{
    double n = 0, st = 0, sa = 0, stt = 0, sta = 0;
    uint64_t t_first = now;
    for (size_t k = 0; k < e->s_n; k++) {
        size_t i = (e->s_head + k) % PREOOM_ENGINE_SAMPLES;
        if (now - e->s_t[i] > window_ms || e->s_t[i] > now)
            continue;
        if (e->s_t[i] < t_first)
            t_first = e->s_t[i];
        double t = -(double)(now - e->s_t[i]) / 1000.0;
        double a = (double)e->s_a[i];
        n += 1;
        st += t;
        sa += a;
        stt += t * t;
        sta += t * a;
    }
    uint64_t span = now - t_first;
    if (n < 3 || span * 10 < window_ms)
        return 0;
    double den = n * stt - st * st;
    if (den <= 0)
        return 0;
    double slope = (n * sta - st * sa) / den; /* bytes per second, rising available > 0 */
    if (slope > 9.0e18 || slope < -9.0e18)
        return slope > 0 ? INT64_MIN + 1 : INT64_MAX;
    return (int64_t)-slope;
}

/* ---- ranking -------------------------------------------------------------------------- */

static bool cooperated(const preoom_engine_t *e, int32_t pid, uint64_t start)
{
    for (size_t i = 0; i < e->n_asks; i++) {
        const preoom_engine_ask_t *a = &e->asks[i];
        if (a->pid == pid && a->start_time == start && a->answered && a->released > 0 &&
            a->released * 2 >= a->wanted)
            return true;
    }
    return false;
}

/* Memory a kill gives back: private memory where it was measured, else touched. */
static uint64_t frees(const preoom_candidate_t *c)
{
    return c->private_bytes ? c->private_bytes : c->touched_bytes;
}

/* < 0: a goes first. Classes before scores: eligible, then not avoided, then those that
 * did not give what they were asked. */
static int rank_cmp(const preoom_engine_t *e, const preoom_engine_input_t *in, size_t a,
                    size_t b)
{
    const preoom_engine_proc_t *pa = &in->procs[a], *pb = &in->procs[b];
    const preoom_badness_t *sa = &e->scores[a], *sb = &e->scores[b];
    bool ea = sa->score != PREOOM_BADNESS_NEVER, eb = sb->score != PREOOM_BADNESS_NEVER;
    if (ea != eb)
        return ea ? -1 : 1;
    bool va = pa->c.preference == PREOOM_AVOID, vb = pb->c.preference == PREOOM_AVOID;
    if (va != vb)
        return va ? 1 : -1;
    bool ca = cooperated(e, pa->pid, pa->start_time), cb = cooperated(e, pb->pid, pb->start_time);
    if (ca != cb)
        return ca ? 1 : -1;
    return preoom_badness_compare(&pa->c, sa, &pb->c, sb);
}

static uint64_t last_total(const preoom_engine_input_t *in, const preoom_engine_conf_t *conf,
                           preoom_assessment_t *a)
{
    preoom_readings_t r = in->r;
    if (!conf->psi_local)
        r.psi_valid = false; /* v1: the machine's PSI says nothing of this domain */
    preoom_pressure_assess(&conf->th, &r, a);
    return a->total_bytes;
}

size_t preoom_engine_rank(preoom_engine_t *e, const preoom_engine_input_t *in,
                          uint64_t shortfall, size_t *order)
{
    size_t n = in->n < e->scores_cap ? in->n : e->scores_cap;
    preoom_assessment_t a;
    uint64_t total = last_total(in, &e->conf, &a);
    preoom_badness_ctx_t ctx;
    preoom_badness_defaults(&ctx);
    ctx.policy = e->conf.policy;
    ctx.self_pid = in->self_pid;
    ctx.total_pages = total / 4096 ? total / 4096 : 1;
    /* How fast the domain grows now: the sum of every candidate's rise (bytes/s). */
    uint64_t grew = 0;
    for (size_t k = 0; k < n; k++)
        if (in->procs[k].c.touched_growth_bytes_per_s > 0)
            grew += (uint64_t)in->procs[k].c.touched_growth_bytes_per_s;
    if (grew < (1ULL << 20))
        grew = 0;
    ctx.domain_growth_bytes = grew;
    size_t eligible = 0;
    for (size_t k = 0; k < n; k++) {
        preoom_badness_score(&ctx, &in->procs[k].c, &e->scores[k]);
        if (e->scores[k].score != PREOOM_BADNESS_NEVER)
            eligible++;
        order[k] = k;
    }
    /* Insertion sort: n is at most the registry's slots, and this runs only to choose. */
    for (size_t i = 1; i < n; i++) {
        size_t v = order[i], j = i;
        while (j > 0 && rank_cmp(e, in, v, order[j - 1]) < 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = v;
    }
    /* The smallest that covers the shortfall, among those as much to blame as the first and
     * in its class: losing less work for the same relief (badness goal 2). */
    if (e->conf.policy == PREOOM_POLICY_PREOOM && eligible > 1 && shortfall > 0) {
        size_t top = order[0];
        const preoom_engine_proc_t *pt = &in->procs[top];
        double share_top = grew ? (double)(pt->c.touched_growth_bytes_per_s > 0 ? pt->c.touched_growth_bytes_per_s : 0) / (double)grew : 0;
        bool avoid_top = pt->c.preference == PREOOM_AVOID;
        bool coop_top = cooperated(e, pt->pid, pt->start_time);
        size_t best = 0;
        for (size_t i = 0; i < eligible; i++) {
            const preoom_engine_proc_t *p = &in->procs[order[i]];
            if ((p->c.preference == PREOOM_AVOID) != avoid_top ||
                cooperated(e, p->pid, p->start_time) != coop_top ||
                (p->c.preference == PREOOM_PREFER) != (pt->c.preference == PREOOM_PREFER) ||
                p->c.slot_adj != pt->c.slot_adj || p->c.oom_score_adj != pt->c.oom_score_adj)
                continue;
            double share = grew ? (double)(p->c.touched_growth_bytes_per_s > 0 ? p->c.touched_growth_bytes_per_s : 0) / (double)grew : 0;
            if (share + 0.2 < share_top || frees(&p->c) < shortfall)
                continue;
            if (frees(&p->c) < frees(&in->procs[order[best]].c) || frees(&in->procs[order[best]].c) < shortfall)
                best = i;
        }
        if (best) {
            size_t v = order[best];
            memmove(order + 1, order, best * sizeof *order);
            order[0] = v;
        }
    }
    return eligible;
}

/* ---- events --------------------------------------------------------------------------- */

static preoom_event_t *event(preoom_decision_t *d, preoom_event_kind_t k)
{
    if (d->n_events == PREOOM_ENGINE_MAX_EVENTS)
        return NULL;
    preoom_event_t *ev = &d->ev[d->n_events++];
    memset(ev, 0, sizeof *ev);
    ev->kind = k;
    ev->proc = SIZE_MAX;
    ev->why = "";
    return ev;
}

/* The command line of an ask's or a signal's process, through the optional hand. Read
 * before the signal is sent: a victim without a handler dies at once, and a dying process's
 * command line reads as empty while its pid still names it. */
static void read_cmdline(const preoom_engine_hands_t *hands, const preoom_engine_proc_t *p,
                         char *buf, size_t cap)
{
    buf[0] = '\0';
    if (hands && hands->cmdline)
        hands->cmdline(hands->ctx, p, buf, cap);
}

static void event_proc(preoom_event_t *ev, const preoom_engine_input_t *in, size_t idx)
{
    if (!ev)
        return;
    const preoom_engine_proc_t *p = &in->procs[idx];
    ev->proc = idx;
    ev->pid = p->pid;
    ev->uid = p->uid;
    ev->registered = p->registered;
    snprintf(ev->name, sizeof ev->name, "%s", p->name);
}

static long find_proc(const preoom_engine_input_t *in, int32_t pid, uint64_t start)
{
    for (size_t k = 0; k < in->n; k++)
        if (in->procs[k].pid == pid && in->procs[k].start_time == start)
            return (long)k;
    return -1;
}

/* ---- one pass ------------------------------------------------------------------------- */

static uint64_t sub0(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

static int ask_level(uint64_t avail, uint64_t term_b, uint64_t kill_b)
{
    if (avail <= kill_b)
        return PREOOM_PRESSURE_COMPLETE;
    if (avail <= term_b)
        return PREOOM_PRESSURE_CRITICAL;
    return PREOOM_PRESSURE_MODERATE;
}

/* What a process could give, as far as we know: its own estimate, else slack (malloc_trim);
 * a process with callbacks and no estimate may give anything (UINT64_MAX). */
static uint64_t capacity(const preoom_engine_proc_t *p)
{
    if (p->reclaimable_bytes)
        return p->reclaimable_bytes + p->slack_bytes;
    if (p->callbacks)
        return UINT64_MAX;
    return p->slack_bytes;
}

static bool may_ask(const preoom_engine_t *e, const preoom_engine_proc_t *p, uint64_t min_ask)
{
    if (!p->registered || p->pid == e->v_pid)
        return false;
    if (p->callbacks == 0 && p->slack_bytes < min_ask && p->reclaimable_bytes == 0)
        return false; /* nothing worth asking for: an ask would only cost it time */
    if (p->c.oom_score_adj <= PREOOM_OOM_SCORE_ADJ_MIN && p->callbacks == 0)
        return false;
    for (size_t i = 0; i < e->n_asks; i++) {
        const preoom_engine_ask_t *a = &e->asks[i];
        if (a->pid != p->pid || a->start_time != p->start_time)
            continue;
        /* Asked in this episode: again only when the last ask was answered generously. */
        if (!a->answered)
            return false;
        if (a->released == 0 || a->released * 2 < a->wanted)
            return false;
    }
    return true;
}

static void remember_ask(preoom_engine_t *e, const preoom_engine_proc_t *p, uint32_t serial,
                         uint64_t want, uint64_t now)
{
    size_t slot = e->n_asks;
    for (size_t i = 0; i < e->n_asks; i++)
        if (e->asks[i].pid == p->pid && e->asks[i].start_time == p->start_time) {
            slot = i;
            break;
        }
    if (slot == PREOOM_ENGINE_MAX_ASKS) {
        /* Full: forget the oldest answered ask (refusals are kept: they bar re-asking). */
        slot = 0;
        for (size_t i = 0; i < e->n_asks; i++)
            if (e->asks[i].answered && e->asks[i].released > 0) {
                slot = i;
                break;
            }
    }
    if (slot == e->n_asks)
        e->n_asks++;
    e->asks[slot] = (preoom_engine_ask_t){p->pid, p->start_time, p->slot_index, serial, want,
                                          now, false, false, 0};
}

static void follow_answers(preoom_engine_t *e, const preoom_engine_input_t *in,
                           preoom_decision_t *d)
{
    for (size_t i = 0; i < e->n_asks; i++) {
        preoom_engine_ask_t *a = &e->asks[i];
        if (a->answered)
            continue;
        long k = find_proc(in, a->pid, a->start_time);
        if (k < 0) {
            a->answered = true; /* gone: it gave everything */
            a->counted = true;
            continue;
        }
        const preoom_engine_proc_t *p = &in->procs[k];
        if (a->serial && p->answer_serial == a->serial) {
            a->answered = true;
            a->released = p->answer_bytes;
            a->callback_bytes = p->answer_callback_bytes;
            a->trim_bytes = p->answer_trim_bytes;
            e->n_answers++;
            e->released_bytes += a->released;
            preoom_event_t *ev = event(d, PREOOM_EV_ANSWER);
            event_proc(ev, in, (size_t)k);
            if (ev) {
                ev->bytes = a->released;
                ev->callback_bytes = a->callback_bytes;
                ev->trim_bytes = a->trim_bytes;
                ev->wanted = a->wanted;
                ev->took_ms = in->now_ms - a->at_ms;
                ev->why = a->released * 2 >= a->wanted && a->released ? "gave what was asked"
                          : a->released ? "gave less than asked" : "gave nothing";
            }
        } else if (!a->counted && in->now_ms - a->at_ms >= e->conf.ask_grace_ms) {
            a->counted = true;
            preoom_event_t *ev = event(d, PREOOM_EV_NO_ANSWER);
            event_proc(ev, in, (size_t)k);
            if (ev) {
                ev->took_ms = in->now_ms - a->at_ms;
                ev->why = "no answer within the grace";
            }
        }
    }
}

/* Asks outstanding: sent, unanswered, within their grace. */
static uint64_t outstanding(const preoom_engine_t *e, uint64_t now, size_t *count)
{
    uint64_t sum = 0;
    *count = 0;
    for (size_t i = 0; i < e->n_asks; i++) {
        const preoom_engine_ask_t *a = &e->asks[i];
        if (!a->answered && now - a->at_ms < e->conf.ask_grace_ms) {
            sum += a->wanted;
            (*count)++;
        }
    }
    return sum;
}

static void cooperative(preoom_engine_t *e, const preoom_engine_input_t *in,
                        const preoom_engine_hands_t *hands, preoom_decision_t *d, int level)
{
    size_t nout;
    uint64_t pending = outstanding(e, in->now_ms, &nout);
    /* No ask smaller than 1/64 of the domain: a trickle of tiny asks costs the app a wake-up
     * each and gives nothing the next allocation does not eat. */
    uint64_t min_ask = d->total_bytes / 64 > MIN_ASK_BYTES ? d->total_bytes / 64 : MIN_ASK_BYTES;
    uint64_t shortfall = d->shortfall_bytes;
    /* Over the ask line (the forecast, exposure or PSI asked): a token ask wakes the caches;
     * what they give in earnest waits for memory to really fall below the line, so a burst
     * that stops (a service filling at start) does not drain them. */
    if (d->available_bytes > d->ask_bytes && shortfall > min_ask)
        shortfall = min_ask;
    if (shortfall <= pending + MIN_ASK_BYTES / 2)
        return;
    uint64_t remaining = shortfall - pending;
    size_t picked[PREOOM_ENGINE_MAX_ASKS], n_picked = 0;
    while (remaining >= MIN_ASK_BYTES / 2 && e->n_asks < PREOOM_ENGINE_MAX_ASKS) {
        /* The largest giver not yet picked. */
        long best = -1;
        uint64_t best_cap = 0;
        for (size_t k = 0; k < in->n; k++) {
            const preoom_engine_proc_t *p = &in->procs[k];
            bool seen = false;
            for (size_t j = 0; j < n_picked; j++)
                seen |= picked[j] == k;
            if (seen || !may_ask(e, p, min_ask))
                continue;
            uint64_t cap = capacity(p);
            /* Unknown capacities rank by what they hold. */
            uint64_t key = cap == UINT64_MAX ? p->c.touched_bytes : cap;
            if (best < 0 || key > best_cap) {
                best = (long)k;
                best_cap = key;
            }
        }
        if (best < 0)
            break;
        if (n_picked == PREOOM_ENGINE_MAX_ASKS)
            break;
        picked[n_picked++] = (size_t)best;
        const preoom_engine_proc_t *p = &in->procs[best];
        uint64_t cap = capacity(p);
        if (cap > p->c.touched_bytes)
            cap = p->c.touched_bytes; /* nobody gives back more than it holds */
        uint64_t want = cap < remaining ? cap : remaining;
        if (want < min_ask)
            want = min_ask;
        uint32_t serial = 0;
        int rc = 0;
        char cmd[PREOOM_ENGINE_CMDLINE_MAX];
        read_cmdline(hands, p, cmd, sizeof cmd);
        if (hands && !e->conf.dry_run)
            rc = hands->ask(hands->ctx, p, level, want, &serial);
        preoom_event_t *ev = event(d, rc == 0 ? PREOOM_EV_ASK : PREOOM_EV_FAILED);
        event_proc(ev, in, (size_t)best);
        if (ev)
            memcpy(ev->cmdline, cmd, sizeof cmd);
        if (ev) {
            ev->level = level;
            ev->bytes = want;
            ev->grace_ms = e->conf.ask_grace_ms;
            ev->why = rc == 0 ? (p->callbacks ? "it has release callbacks" : "it holds slack for malloc_trim")
                              : "the ask could not be written (the slot changed hands)";
        }
        if (rc != 0)
            continue;
        e->n_asked++;
        if (hands || e->conf.dry_run)
            remember_ask(e, p, serial, want, in->now_ms);
        remaining = remaining > want ? remaining - want : 0;
    }
}

static void choose_and_signal(preoom_engine_t *e, const preoom_engine_input_t *in,
                              const preoom_engine_hands_t *hands, preoom_decision_t *d,
                              bool below_kill)
{
    size_t order[PREOOM_REGISTRY_MAX_SLOTS > 4096 ? 4096 : PREOOM_REGISTRY_MAX_SLOTS];
    size_t n = in->n < sizeof order / sizeof order[0] ? in->n : sizeof order / sizeof order[0];
    preoom_engine_input_t view = *in;
    view.n = n;
    size_t eligible = preoom_engine_rank(e, &view, d->shortfall_bytes, order);
    if (eligible == 0) {
        if (!e->nocand_said) {
            preoom_event_t *ev = event(d, PREOOM_EV_NO_CANDIDATE);
            if (ev)
                ev->why = "a signal is due and no process may be chosen";
            e->nocand_said = true; /* once an episode: the next pass would say it again */
        }
        return;
    }
    /* Try in rank order: a candidate the hands refuse (gone, excluded) passes to the next. */
    for (size_t i = 0; i < eligible; i++) {
        size_t k = order[i];
        const preoom_engine_proc_t *p = &in->procs[k];
        int rc = 0;
        char cmd[PREOOM_ENGINE_CMDLINE_MAX];
        read_cmdline(hands, p, cmd, sizeof cmd);
        if (hands && !e->conf.dry_run)
            rc = hands->signal(hands->ctx, p, SIGTERM);
        preoom_event_t *ev = event(d, rc == 0 ? PREOOM_EV_TERM : PREOOM_EV_FAILED);
        event_proc(ev, in, k);
        if (ev)
            memcpy(ev->cmdline, cmd, sizeof cmd);
        uint32_t grace = p->term_grace_ms ? p->term_grace_ms : e->conf.term_grace_ms;
        if (grace > e->conf.max_term_grace_ms)
            grace = e->conf.max_term_grace_ms;
        if (ev) {
            ev->score = e->scores[k].score;
            ev->grace_ms = below_kill && e->conf.kill_grace_ms < grace ? e->conf.kill_grace_ms : grace;
            ev->level = d->level;
            ev->bytes = frees(&p->c);
            ev->why = rc == 0 ? (below_kill ? "below the kill line"
                                            : "below the term line and still falling")
                              : rc == -ESRCH ? "it is gone"
                              : rc == -ESTALE ? "its pid now names another process"
                              : rc == -EACCES ? "it does not map this registry"
                              : "excluded or not ours to signal";
        }
        if (rc != 0)
            continue;
        d->victim = (long)k;
        e->n_terms++;
        e->rung = PREOOM_RUNG_TERMED;
        e->v_pid = p->pid;
        e->v_start = p->start_time;
        e->v_since_ms = in->now_ms;
        e->v_grace_ms = grace;
        e->v_touched = frees(&p->c);
        e->v_uid = p->uid;
        e->v_registered = p->registered;
        snprintf(e->v_name, sizeof e->v_name, "%s", p->name);
        memcpy(e->v_cmdline, cmd, sizeof cmd);
        return;
    }
}

static void victim_event(preoom_engine_t *e, preoom_decision_t *d, preoom_event_kind_t k,
                         const char *why)
{
    preoom_event_t *ev = event(d, k);
    if (!ev)
        return;
    ev->pid = e->v_pid;
    ev->uid = e->v_uid;
    ev->registered = e->v_registered;
    snprintf(ev->name, sizeof ev->name, "%s", e->v_name);
    snprintf(ev->cmdline, sizeof ev->cmdline, "%s", e->v_cmdline);
    ev->took_ms = d->now_ms - e->v_since_ms;
    ev->bytes = e->v_touched;
    ev->why = why;
}

/* Returns true when the victim left this pass: nothing more is decided on this reading. */
static bool follow_victim(preoom_engine_t *e, const preoom_engine_input_t *in,
                          const preoom_engine_hands_t *hands, preoom_decision_t *d)
{
    if (e->rung == PREOOM_RUNG_NONE)
        return false;
    uint64_t now = in->now_ms, A = d->available_bytes;
    long k = find_proc(in, e->v_pid, e->v_start);
    if (in->victim_gone || k < 0) {
        victim_event(e, d, PREOOM_EV_EXITED,
                     e->rung == PREOOM_RUNG_KILLED ? "after SIGKILL" : "after SIGTERM");
        e->rung = PREOOM_RUNG_NONE;
        e->due_since_ms = 0;
        /* The victim's memory came back at once: the old trend says nothing of the others. */
        e->s_n = 0;
        e->s_head = 0;
        e->drop_ref = 0;
        e->last_drop_ms = 0;
        return true;
    }
    if (e->rung == PREOOM_RUNG_TERMED) {
        uint64_t held = now - e->v_since_ms;
        bool below_kill = A <= d->kill_bytes;
        uint32_t kg = e->conf.kill_grace_ms < e->v_grace_ms ? e->conf.kill_grace_ms : e->v_grace_ms;
        if ((below_kill && held >= kg) || (held >= e->v_grace_ms && A <= d->term_bytes)) {
            int rc = 0;
            if (hands && !e->conf.dry_run)
                rc = hands->signal(hands->ctx, &in->procs[k], SIGKILL);
            victim_event(e, d, rc == 0 ? PREOOM_EV_KILL : PREOOM_EV_FAILED,
                         rc == 0 ? (below_kill ? "still alive below the kill line"
                                               : "still alive after its grace, below the term line")
                                 : "SIGKILL could not be sent");
            if (rc == 0) {
                e->n_kills++;
                e->rung = PREOOM_RUNG_KILLED;
                e->v_since_ms = now;
                if (e->conf.dry_run)
                    e->rung = PREOOM_RUNG_NONE;
            } else {
                e->rung = PREOOM_RUNG_NONE;
            }
        } else if (held >= e->v_grace_ms) {
            /* Its grace is over and memory is above the term line: a process that shuts
             * down slowly is left to finish, never SIGKILLed at ask-level pressure. It stops
             * being "in flight", so another may be chosen if memory falls again. */
            victim_event(e, d, PREOOM_EV_LEFT, e->conf.dry_run ? "nothing was sent"
                                                               : "memory is above the term line");
            e->rung = PREOOM_RUNG_NONE;
        }
        return false;
    }
    if (e->rung == PREOOM_RUNG_KILLED && now - e->v_since_ms > KILL_WAIT_MS) {
        victim_event(e, d, PREOOM_EV_FAILED, "not gone 5 s after SIGKILL (stuck in the kernel?)");
        e->rung = PREOOM_RUNG_NONE;
    }
    return false;
}

void preoom_engine_step(preoom_engine_t *e, const preoom_engine_input_t *in,
                        const preoom_engine_hands_t *hands, preoom_decision_t *d)
{
    memset(d, 0, sizeof *d);
    d->victim = -1;
    d->now_ms = in->now_ms;
    d->dry_run = e->conf.dry_run || !hands;
    uint64_t now = in->now_ms;
    preoom_assessment_t a;
    uint64_t total = last_total(in, &e->conf, &a);
    uint64_t A = a.available_bytes;
    d->total_bytes = total;
    d->available_bytes = A;
    d->effective_bytes = a.effective_bytes;
    d->in_cgroup = a.in_cgroup;
    d->ask_bytes = preoom_threshold_bytes(&e->conf.th.ask, total);
    d->term_bytes = preoom_threshold_bytes(&e->conf.th.term, total);
    d->kill_bytes = preoom_threshold_bytes(&e->conf.th.kill, total);
    d->level = (int)a.level;
    d->reason = a.reason;

    /* Forecast. */
    push_sample(e, now, A);
    int64_t fast = fall_rate(e, now, NOW_WINDOW_MS);
    int64_t trend = fall_rate(e, now, TREND_WINDOW_MS);
    int64_t slow = fall_rate(e, now, SLOW_WINDOW_MS);
    /* The last real drop: a trend whose memory has not fallen for DROP_STALE_MS is a spike
     * that stopped, not a fall. A drop is a fall of max(1 MiB, total/256) from the highest
     * level since the last drop. */
    uint64_t step = total / 256 > (1ULL << 20) ? total / 256 : 1ULL << 20;
    if (!e->drop_ref || A > e->drop_ref)
        e->drop_ref = A;
    if (A + step <= e->drop_ref) {
        e->drop_ref = A;
        e->last_drop_ms = now;
    }
    bool dropping = e->last_drop_ms && now - e->last_drop_ms <= DROP_STALE_MS;
    d->fall_bytes_per_s = trend;
    d->time_to_kill_ms = -1;
    if (trend > 0)
        d->time_to_kill_ms = (int64_t)(sub0(A, d->kill_bytes) * 1000 / (uint64_t)trend);
    bool forecast_ask = false;
    if (trend > 0 && dropping && A > d->ask_bytes &&
        sub0(A, d->ask_bytes) * 1000 / (uint64_t)trend < RESERVE_MS) {
        forecast_ask = true; /* the ask line is reached before an ask could be answered */
        if (d->level < PREOOM_PRESSURE_MODERATE) {
            d->level = PREOOM_PRESSURE_MODERATE;
            d->reason = "forecast (the ask line is near at the recent fall)";
        }
    }

    /* Asks are sized by what would be eaten during their grace: the fall now, or the
     * candidates' own growth when that is more (while a cache gives, memory holds still and
     * only the growth shows the demand); the slow window only when nothing else moves. A
     * burst that is over (a cache filling at start) must not inflate them. */
    int64_t grow = 0;
    for (size_t k = 0; k < in->n; k++)
        if (in->procs[k].c.touched_growth_bytes_per_s > 0)
            grow += in->procs[k].c.touched_growth_bytes_per_s;
    int64_t fall = fast > 0 ? fast : trend > 0 ? trend : slow;
    if (grow > fall)
        fall = grow;

    /* What it takes to get back over the ask line and stay there for RESERVE_MS. */
    uint64_t want_level = d->ask_bytes + (fall > 0 ? (uint64_t)fall * RESERVE_MS / 1000 : 0) +
                          total / 100;
    uint64_t eff = a.effective_bytes < A ? a.effective_bytes : A;
    d->shortfall_bytes = sub0(want_level, eff);
    /* PSI or the forecast may ask while memory is still over the line: ask for a token
     * amount (the smallest ask), enough to wake the caches. */
    if (d->level >= PREOOM_PRESSURE_MODERATE && d->shortfall_bytes == 0)
        d->shortfall_bytes = total / 64 > (1ULL << 20) ? total / 64 : 1ULL << 20;

    bool victim_left = follow_victim(e, in, hands, d);
    follow_answers(e, in, d);

    /* The episode. */
    bool in_zone = d->level >= PREOOM_PRESSURE_MODERATE || forecast_ask;
    if (in_zone) {
        if (!e->episode) {
            e->episode = true;
            e->hog_said = false;
            e->nocand_said = false;
        }
        e->calm_since_ms = 0;
    } else if (e->episode) {
        if (!e->calm_since_ms)
            e->calm_since_ms = now;
        if (now - e->calm_since_ms >= e->conf.calm_ms && e->rung == PREOOM_RUNG_NONE) {
            preoom_event_t *ev = event(d, PREOOM_EV_RELIEVED);
            if (ev)
                ev->why = "memory back over the ask line";
            e->episode = false;
            e->n_asks = 0; /* what was refused counts for this episode only */
        }
    }

    /* The signal gate: memory, never exposure or PSI. Two ways in besides the kill line:
     *  - fast: memory falls right now (NOW_WINDOW_MS) so fast that from the kill line the
     *    limit is less than 40 ms away (no time to act there) or at 512 MiB/s, the term line
     *    moved up by what falls during lead_ms, the kill line within the horizon; held for
     *    FAST_CONFIRM_MS, so a burst that stops within it (a spike) is not punished;
     *  - slow: below the term line, the trend falling with a real drop in the last
     *    DROP_STALE_MS, the kill line within the horizon; held for two thirds of the time
     *    that was left, and never less than it takes to see a fall stop (a creep that stops
     *    short of the kill line is not punished, a leak that goes on is stopped with a third
     *    of its time to spare, or at the kill line). */
    bool below_kill = A <= d->kill_bytes;
    int64_t tk_fast = fast > 0 ? (int64_t)(sub0(A, d->kill_bytes) * 1000 / (uint64_t)fast) : -1;
    /* "Fast": from the kill line the limit would be less than 40 ms away (too little to act
     * there), or 512 MiB/s whatever the size. Slower falls are met at the kill line if they
     * get that far, so a burst that stops short of it is never punished. */
    uint64_t fast_floor = d->kill_bytes * 25 < (512ULL << 20) ? d->kill_bytes * 25 : 512ULL << 20;
    if (fast_floor < (uint64_t)FAST_FALL)
        fast_floor = (uint64_t)FAST_FALL;
    bool fast_due = fast > 0 && (uint64_t)fast >= fast_floor &&
                    A <= d->term_bytes + (uint64_t)fast * e->conf.lead_ms / 1000 &&
                    tk_fast >= 0 && (uint64_t)tk_fast <= e->conf.horizon_ms;
    bool slow_due = A <= d->term_bytes && trend > 0 && dropping && d->time_to_kill_ms >= 0 &&
                    (uint64_t)d->time_to_kill_ms <= e->conf.horizon_ms;
    if (below_kill || fast_due || slow_due) {
        if (!e->due_since_ms)
            e->due_since_ms = now;
        uint64_t tau = FAST_CONFIRM_MS;
        if (!fast_due) {
            tau = d->time_to_kill_ms > 0 ? (uint64_t)d->time_to_kill_ms * 2 / 3 : 0;
            if (tau < DROP_STALE_MS + 200)
                tau = DROP_STALE_MS + 200;
            if (tau > 2000)
                tau = 2000;
        }
        d->signal_due = below_kill || now - e->due_since_ms >= tau;
    } else {
        e->due_since_ms = 0;
    }

    if (e->episode && in_zone && !victim_left) {
        int lvl = ask_level(A, d->term_bytes, d->kill_bytes);
        cooperative(e, in, hands, d, lvl);
    }

    if (d->signal_due && e->rung == PREOOM_RUNG_NONE && !victim_left && !in->hold_signals) {
        size_t nout;
        outstanding(e, now, &nout);
        bool urgent = below_kill || (tk_fast >= 0 && (uint64_t)tk_fast <= e->conf.lead_ms);
        if (nout == 0 || urgent)
            choose_and_signal(e, in, hands, d, below_kill);
    }

    if (e->episode && !e->hog_said && in->biggest_pid > 0 && !in->biggest_is_candidate &&
        d->level >= PREOOM_PRESSURE_MODERATE) {
        preoom_event_t *ev = event(d, PREOOM_EV_HOG);
        if (ev) {
            ev->pid = in->biggest_pid;
            ev->bytes = in->biggest_bytes;
            snprintf(ev->name, sizeof ev->name, "%s", in->biggest_name);
            ev->why = "the biggest process of the domain is not one preoomd may act on";
        }
        e->hog_said = true;
    }

    /* Poll: at once after an exit, often near the lines or with anything in flight, else a
     * quarter of the time to the ask line at the recent fall (or a floor rate). */
    uint32_t poll;
    if (victim_left)
        poll = 0;
    else if (e->episode || e->rung != PREOOM_RUNG_NONE || d->level >= PREOOM_PRESSURE_MODERATE)
        poll = e->conf.min_poll_ms;
    else {
        int64_t floor_rate = e->conf.floor_fall_bytes_per_s ? (int64_t)e->conf.floor_fall_bytes_per_s
                                                            : FLOOR_FALL_BYTES_PER_S;
        int64_t rate = fall > floor_rate ? fall : floor_rate;
        uint64_t head = sub0(eff, d->ask_bytes);
        uint64_t ms = head * 1000 / (uint64_t)rate / 4;
        poll = ms < e->conf.min_poll_ms ? e->conf.min_poll_ms
             : ms > e->conf.max_poll_ms ? e->conf.max_poll_ms : (uint32_t)ms;
    }
    d->next_poll_ms = poll;
}

/* ---- words ---------------------------------------------------------------------------- */

const char *preoom_event_name(preoom_event_kind_t k)
{
    switch (k) {
    case PREOOM_EV_ASK: return "ask";
    case PREOOM_EV_ANSWER: return "answer";
    case PREOOM_EV_NO_ANSWER: return "no-answer";
    case PREOOM_EV_TERM: return "sigterm";
    case PREOOM_EV_KILL: return "sigkill";
    case PREOOM_EV_EXITED: return "exited";
    case PREOOM_EV_FAILED: return "failed";
    case PREOOM_EV_RELIEVED: return "relieved";
    case PREOOM_EV_NO_CANDIDATE: return "no-candidate";
    case PREOOM_EV_HOG: return "hog";
    case PREOOM_EV_LEFT: return "left";
    }
    return "invalid";
}

const char *preoom_scope_name(preoom_scope_t s)
{
    switch (s) {
    case PREOOM_SCOPE_REGISTERED: return "registered";
    case PREOOM_SCOPE_CGROUP: return "cgroup";
    case PREOOM_SCOPE_ALL: return "all";
    }
    return "invalid";
}

int preoom_scope_from_name(const char *s, preoom_scope_t *out)
{
    if (!strcmp(s, "registered"))
        *out = PREOOM_SCOPE_REGISTERED;
    else if (!strcmp(s, "cgroup"))
        *out = PREOOM_SCOPE_CGROUP;
    else if (!strcmp(s, "all"))
        *out = PREOOM_SCOPE_ALL;
    else
        return -EINVAL;
    return 0;
}

static double mib(uint64_t b)
{
    return (double)b / 1048576.0;
}

/* Append to buf at *len; stops quietly at the end of the buffer. */
static void put(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void put(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    if (*len >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len += (size_t)n < cap - *len ? (size_t)n : cap - *len - 1;
}

static void put_json_str(char *buf, size_t cap, size_t *len, const char *s)
{
    put(buf, cap, len, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            put(buf, cap, len, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            put(buf, cap, len, "\\u%04x", c);
        else
            put(buf, cap, len, "%c", c);
    }
    put(buf, cap, len, "\"");
}

int preoom_engine_format_event(const preoom_decision_t *d, size_t i,
                               const preoom_engine_input_t *in, const preoom_badness_t *scores,
                               int json, char *buf, size_t cap)
{
    const preoom_event_t *ev = &d->ev[i];
    size_t len = 0;
    buf[0] = '\0';
    const char *lvl = preoom_pressure_name((enum preoom_pressure)ev->level);
    char terms[768] = "";
    if (scores && ev->proc != SIZE_MAX && ev->proc < in->n &&
        (ev->kind == PREOOM_EV_TERM))
        preoom_badness_format(&scores[ev->proc], terms, sizeof terms);
    if (json) {
        put(buf, cap, &len, "{\"event\":\"%s\"", preoom_event_name(ev->kind));
        if (d->dry_run && (ev->kind == PREOOM_EV_ASK || ev->kind == PREOOM_EV_TERM ||
                           ev->kind == PREOOM_EV_KILL))
            put(buf, cap, &len, ",\"dry_run\":true");
        if (ev->pid) {
            put(buf, cap, &len, ",\"pid\":%d,\"uid\":%u,\"name\":", (int)ev->pid, ev->uid);
            put_json_str(buf, cap, &len, ev->name);
            if (ev->cmdline[0]) {
                put(buf, cap, &len, ",\"cmdline\":");
                put_json_str(buf, cap, &len, ev->cmdline);
            }
            put(buf, cap, &len, ",\"registered\":%s", ev->registered ? "true" : "false");
        }
        if (ev->kind == PREOOM_EV_ASK)
            put(buf, cap, &len, ",\"level\":\"%s\"", lvl);
        if (ev->bytes)
            put(buf, cap, &len, ",\"bytes\":%" PRIu64, ev->bytes);
        if (ev->grace_ms)
            put(buf, cap, &len, ",\"grace_ms\":%u", ev->grace_ms);
        if (ev->took_ms)
            put(buf, cap, &len, ",\"took_ms\":%" PRIu64, ev->took_ms);
        if (ev->kind == PREOOM_EV_ANSWER)
            put(buf, cap, &len, ",\"wanted\":%" PRIu64 ",\"callback_bytes\":%" PRIu64
                ",\"trim_bytes\":%" PRIu64, ev->wanted, ev->callback_bytes, ev->trim_bytes);
        if (ev->kind == PREOOM_EV_TERM)
            put(buf, cap, &len, ",\"score\":%" PRId64, ev->score);
        put(buf, cap, &len, ",\"why\":");
        put_json_str(buf, cap, &len, ev->why);
        put(buf, cap, &len,
            ",\"pressure\":\"%s\",\"reason\":", preoom_pressure_name((enum preoom_pressure)d->level));
        put_json_str(buf, cap, &len, d->reason ? d->reason : "");
        put(buf, cap, &len,
            ",\"available\":%" PRIu64 ",\"effective\":%" PRIu64 ",\"total\":%" PRIu64
            ",\"ask_line\":%" PRIu64 ",\"term_line\":%" PRIu64 ",\"kill_line\":%" PRIu64
            ",\"in_cgroup\":%s,\"fall_bytes_per_s\":%" PRId64 ",\"time_to_kill_ms\":%" PRId64
            ",\"shortfall\":%" PRIu64,
            d->available_bytes, d->effective_bytes, d->total_bytes, d->ask_bytes, d->term_bytes,
            d->kill_bytes, d->in_cgroup ? "true" : "false", d->fall_bytes_per_s,
            d->time_to_kill_ms, d->shortfall_bytes);
        if (terms[0]) {
            put(buf, cap, &len, ",\"terms\":");
            put_json_str(buf, cap, &len, terms);
        }
        put(buf, cap, &len, "}");
        return (int)len;
    }
    switch (ev->kind) {
    case PREOOM_EV_ASK:
        put(buf, cap, &len, "ask pid %d (%s) uid %u to release %.1fMiB at %s, grace %ums (%s)",
            (int)ev->pid, ev->name, ev->uid, mib(ev->bytes), lvl, ev->grace_ms, ev->why);
        break;
    case PREOOM_EV_ANSWER:
        put(buf, cap, &len, "pid %d (%s) answered in %" PRIu64 "ms: touched memory fell %.1fMiB "
            "(its callbacks reported %.1fMiB freed, malloc_trim gave back %.1fMiB; asked %.1fMiB: %s)",
            (int)ev->pid, ev->name, ev->took_ms, mib(ev->bytes), mib(ev->callback_bytes),
            mib(ev->trim_bytes), mib(ev->wanted), ev->why);
        break;
    case PREOOM_EV_NO_ANSWER:
        put(buf, cap, &len, "pid %d (%s) did not answer within %" PRIu64 "ms", (int)ev->pid,
            ev->name, ev->took_ms);
        break;
    case PREOOM_EV_TERM:
        put(buf, cap, &len, "SIGTERM pid %d (%s) uid %u%s%s%s%s, frees ~%.1fMiB, grace %ums: %s",
            (int)ev->pid, ev->name, ev->uid, ev->registered ? "" : " (not registered)",
            ev->cmdline[0] ? " cmdline \"" : "", ev->cmdline, ev->cmdline[0] ? "\"" : "",
            mib(ev->bytes), ev->grace_ms, ev->why);
        break;
    case PREOOM_EV_KILL:
        put(buf, cap, &len, "SIGKILL pid %d (%s) uid %u%s%s%s, %" PRIu64 "ms after SIGTERM: %s",
            (int)ev->pid, ev->name, ev->uid, ev->cmdline[0] ? " cmdline \"" : "", ev->cmdline,
            ev->cmdline[0] ? "\"" : "", ev->took_ms, ev->why);
        break;
    case PREOOM_EV_EXITED:
        put(buf, cap, &len, "pid %d (%s) exited %" PRIu64 "ms %s; measuring again",
            (int)ev->pid, ev->name, ev->took_ms, ev->why);
        break;
    case PREOOM_EV_LEFT:
        put(buf, cap, &len, "pid %d (%s) left to finish its SIGTERM: %s", (int)ev->pid,
            ev->name, ev->why);
        break;
    case PREOOM_EV_HOG:
        put(buf, cap, &len, "pid %d (%s) holds %.1fMiB, the most in the domain, and "
            "preoomd may not act on it (not registered; see --scope)", (int)ev->pid, ev->name,
            mib(ev->bytes));
        break;
    default:
        put(buf, cap, &len, "%s%s%s", preoom_event_name(ev->kind), ev->pid ? "" : ": ", ev->why);
        if (ev->pid)
            put(buf, cap, &len, " pid %d (%s): %s", (int)ev->pid, ev->name, ev->why);
        break;
    }
    put(buf, cap, &len, " | available %.1fMiB of %.1fMiB%s, lines %.1f/%.1f/%.1fMiB",
        mib(d->available_bytes), mib(d->total_bytes), d->in_cgroup ? " (cgroup)" : "",
        mib(d->ask_bytes), mib(d->term_bytes), mib(d->kill_bytes));
    if (d->effective_bytes < d->available_bytes)
        put(buf, cap, &len, ", %.1fMiB less exposure", mib(d->effective_bytes));
    if (d->fall_bytes_per_s > 0)
        put(buf, cap, &len, ", falling %.1fMiB/s, kill line in %.1fs",
            mib((uint64_t)d->fall_bytes_per_s), (double)d->time_to_kill_ms / 1000.0);
    if (terms[0])
        put(buf, cap, &len, " | %s", terms);
    return (int)len;
}

/* tools/metrics_fill.c — one memory domain's metrics from what preoomd's loop holds. See
 * metrics_fill.h. Never reads a file or allocates.
 */
#include "metrics_fill.h"

#include <stdio.h>
#include <string.h>

void preoom_metrics_fill_domain(preoom_metrics_domain_t *m, const char *domain,
                                const preoom_decision_t *d, const preoom_engine_t *e,
                                const preoom_metrics_sums_t *sums, const preoom_readings_t *r,
                                const preoom_memcg_t *cg)
{
    memset(m, 0, sizeof *m);
    snprintf(m->domain, sizeof m->domain, "%s", domain && *domain ? domain : "/");
    m->level = d->level;
    m->total_bytes = d->total_bytes;
    m->available_bytes = d->available_bytes;
    m->effective_bytes = d->effective_bytes;
    m->ask_bytes = d->ask_bytes;
    m->term_bytes = d->term_bytes;
    m->kill_bytes = d->kill_bytes;
    m->in_cgroup = d->in_cgroup;
    m->time_to_kill_ms = d->time_to_kill_ms;
    m->exposure_bytes = sums->exposure_bytes;
    m->committed_bytes = sums->committed_bytes;
    m->touched_bytes = sums->touched_bytes;
    m->registered = sums->registered;
    m->asks = e->n_asked;
    m->terms = e->n_terms;
    m->kills = e->n_kills;
    m->answers = e->n_answers;
    m->released_bytes = e->released_bytes;
    m->psi_some_x100 = r->psi_some_avg10_x100;
    m->psi_full_x100 = r->psi_full_avg10_x100;
    m->cgroup_oom_kills = cg && cg->oom_kill != PREOOM_VALUE_MISSING ? cg->oom_kill : 0;
}

void preoom_metrics_fill_procs(const preoom_gathered_t *g, const preoom_engine_proc_t *ep,
                               const uint32_t *domain_of, uint32_t domain_index,
                               preoom_metrics_proc_t *top, size_t *n, size_t cap)
{
    for (size_t i = 0; i < g->n; i++) {
        const preoom_proc_t *p = &g->procs[i];
        if (!p->registered || (domain_of && domain_of[i] == UINT32_MAX))
            continue;
        /* committed is the slot's claim; touched is the kernel's (RssAnon + VmSwap). */
        preoom_metrics_proc_t mp;
        memset(&mp, 0, sizeof mp);
        mp.domain = domain_of ? domain_of[i] : domain_index;
        mp.pid = p->c.pid;
        snprintf(mp.name, sizeof mp.name, "%s", p->name);
        mp.committed_bytes = p->slot.committed;
        mp.touched_bytes = p->c.touched_bytes;
        mp.exposure_bytes = mp.committed_bytes > mp.touched_bytes
                                ? mp.committed_bytes - mp.touched_bytes : 0;
        mp.slack_bytes = ep ? ep[i].slack_bytes : 0;
        preoom_metrics_offer_proc(top, n, cap, &mp);
    }
}

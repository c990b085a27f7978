/* tools/metrics_fill.h — the metrics of one memory domain, taken from what preoomd's loop
 * holds after a pass (the decision, the engine's totals, the gathered processes, the cgroup
 * reading), so that a daemon with one engine per domain fills one preoom_metrics_domain_t
 * per engine the same way. Pure: reads its arguments, writes its outputs, nothing else.
 */
#ifndef PREOOM_TOOLS_METRICS_FILL_H
#define PREOOM_TOOLS_METRICS_FILL_H

#include <stddef.h>
#include <stdint.h>

#include "candidates.h"
#include "engine.h"
#include "metrics.h"
#include "procfs.h"

/* What the domain's registered processes add up to (the loop sums them per domain). */
typedef struct {
    uint64_t exposure_bytes, committed_bytes, touched_bytes;
    uint64_t registered;
} preoom_metrics_sums_t;

/* The domain's series: `domain` is its label (the cgroup path, "/" for the host); r is the
 * pass's readings (PSI); cg may be NULL (no cgroup: no kernel OOM count). */
void preoom_metrics_fill_domain(preoom_metrics_domain_t *m, const char *domain,
                                const preoom_decision_t *d, const preoom_engine_t *e,
                                const preoom_metrics_sums_t *sums, const preoom_readings_t *r,
                                const preoom_memcg_t *cg);

/* Offer the registered processes of g (and its engine view ep, index for index) to top[] (n
 * in use, at most cap): the ones that touch the most are kept. Each is labelled with
 * domain_of[i], its domain's place in the array handed to preoom_metrics_format
 * (UINT32_MAX: left out), or with domain_index for all when domain_of is NULL. */
void preoom_metrics_fill_procs(const preoom_gathered_t *g, const preoom_engine_proc_t *ep,
                               const uint32_t *domain_of, uint32_t domain_index,
                               preoom_metrics_proc_t *top, size_t *n, size_t cap);

#endif

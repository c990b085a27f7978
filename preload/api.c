/* preload/api.c — the implementations behind include/preoom.h: the public facade, each entry
 * a few lines over the piece that does the work (the release callbacks are callbacks.c's, the
 * measuring the agent's). Nothing below the facade calls it. Never allocates.
 */
#include <errno.h>

#include "internal.h"
#include "preoom.h"

PREOOM_EXPORT int preoom_impl_pressure(void)
{
    return preoom_agent_pressure();
}

PREOOM_EXPORT int preoom_impl_stats(preoom_stats_t *out)
{
    if (!out)
        return -EINVAL;
    preoom_totals_t t;
    preoom_agent_measure(&t);
    out->committed = t.committed;
    out->touched = t.touched;
    out->exposure = t.exposure;
    out->slack = t.slack;
    out->peak_committed = t.peak_committed;
    out->peak_touched = t.peak_touched;
    out->malloc_bytes = t.malloc_bytes;
    out->mmap_bytes = t.mmap_bytes;
    out->brk_bytes = t.brk_bytes;
    return 0;
}

PREOOM_EXPORT int preoom_impl_hint(int adj)
{
    if (adj < 0 || adj > 1000)
        return -EINVAL;
    return preoom_agent_raise_adj((uint64_t)adj);
}

PREOOM_EXPORT int preoom_impl_reclaimable(size_t bytes)
{
    preoom_callbacks_set_reclaimable((uint64_t)bytes);
    return 0;
}

PREOOM_EXPORT int preoom_impl_api_version(void)
{
    return PREOOM_API_VERSION;
}

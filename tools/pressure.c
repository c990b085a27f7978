/* tools/pressure.c — the pressure assessment of preoomd: readings in, a level out.
 *
 * The rules, and why:
 *  1. Available memory is measured where the processes live. In a memory cgroup with a limit
 *     that is the limit less what the cgroup uses (half of its page cache counted as
 *     reclaimable, as MemAvailable does); the machine's MemAvailable + SwapFree is assessed
 *     too, and the worse of the two wins: a cgroup limit above what the machine has left
 *     does not protect anyone.
 *  2. Thresholds are earlyoom's shape: a percent of the total and/or an absolute amount,
 *     one per rung (ask, SIGTERM, SIGKILL); the larger amount is reached first, so it wins.
 *  3. Exposure — committed but untouched memory in the registry — is the early warning: it
 *     is subtracted (weighted) from what is available, but can only raise the level to
 *     MODERATE (ask), never to a signal, because a promise may never be kept.
 *  4. PSI says memory is already costing time: "some" past its mark asks, "full" past its
 *     mark is CRITICAL. It is never the only way to see pressure (no swap, little cache: PSI
 *     can stay quiet until the end).
 * Pure: no I/O, no allocation.
 */
#include <errno.h>
#include <string.h>

#include "floor.h"
#include "pressure.h"

uint64_t preoom_threshold_bytes(const preoom_threshold_t *t, uint64_t total)
{
    uint64_t pct = 0;
    if (t->percent_x100) {
        /* total / 10000 * p first would lose precision on small totals; the product fits
         * for totals below 1.8 EB. */
        pct = total / 10000 * t->percent_x100 + (total % 10000) * t->percent_x100 / 10000;
    }
    return pct > t->bytes ? pct : t->bytes;
}

static int parse_one(const char *s, size_t n, preoom_threshold_t *out)
{
    if (n == 0)
        return -EINVAL;
    char buf[32];
    if (n >= sizeof buf)
        return -ERANGE;
    memcpy(buf, s, n);
    buf[n] = '\0';
    uint64_t whole = 0, frac = 0;
    size_t i = 0;
    int digits = 0, fdigits = 0;
    for (; buf[i] >= '0' && buf[i] <= '9'; i++, digits++) {
        if (whole > 1000000000000ULL)
            return -ERANGE;
        whole = whole * 10 + (uint64_t)(buf[i] - '0');
    }
    if (buf[i] == '.') {
        for (i++; buf[i] >= '0' && buf[i] <= '9'; i++, fdigits++)
            if (fdigits < 2)
                frac = frac * 10 + (uint64_t)(buf[i] - '0');
        if (fdigits == 1)
            frac *= 10;
    }
    if (!digits && !fdigits)
        return -EINVAL;
    const char *u = buf + i;
    if (*u == '\0' || (u[0] == '%' && u[1] == '\0')) {
        uint64_t p = whole * 100 + frac;
        if (p > 10000)
            return -ERANGE;
        out->percent_x100 = (uint32_t)p;
        return 0;
    }
    if (fdigits)
        return -EINVAL; /* no fractional byte amounts */
    /* A size needs its unit here (a bare number is a percent): then it is the floor's one
     * size parser's, as PREOOM_SAMPLE_BYTES is. */
    if ((*u | 0x20) != 'k' && (*u | 0x20) != 'm' && (*u | 0x20) != 'g' && (*u | 0x20) != 't')
        return -EINVAL;
    return preoom_parse_bytes(buf, 0, UINT64_MAX, &out->bytes);
}

int preoom_threshold_parse(const char *s, preoom_threshold_t *out)
{
    if (!s)
        return -EINVAL;
    preoom_threshold_t t = {0, 0};
    const char *comma = strchr(s, ',');
    int rc;
    if (comma) {
        if ((rc = parse_one(s, (size_t)(comma - s), &t)) != 0)
            return rc;
        if ((rc = parse_one(comma + 1, strlen(comma + 1), &t)) != 0)
            return rc;
    } else if ((rc = parse_one(s, strlen(s), &t)) != 0) {
        return rc;
    }
    *out = t;
    return 0;
}

void preoom_thresholds_defaults(preoom_thresholds_t *t)
{
    memset(t, 0, sizeof *t);
    t->ask.percent_x100 = 1500;
    t->term.percent_x100 = 1000;
    t->kill.percent_x100 = 500;
    t->exposure_permille = 500;
    t->psi_some_x100 = 2000;
    t->psi_full_x100 = 4000;
}

int preoom_thresholds_check(const preoom_thresholds_t *t, const char **why)
{
    /* Compare on a reference total: the rungs must come in order whatever the size. */
    static const uint64_t totals[] = {64ULL << 20, 1ULL << 30, 64ULL << 30, 1ULL << 40};
    for (size_t i = 0; i < sizeof totals / sizeof totals[0]; i++) {
        uint64_t a = preoom_threshold_bytes(&t->ask, totals[i]);
        uint64_t s = preoom_threshold_bytes(&t->term, totals[i]);
        uint64_t k = preoom_threshold_bytes(&t->kill, totals[i]);
        if (a < s || s < k) {
            *why = "thresholds out of order: --ask must be at least --term, and --term at "
                   "least --kill";
            return -EINVAL;
        }
    }
    if (t->ask.percent_x100 == 0 && t->ask.bytes == 0) {
        *why = "the ask threshold is zero: preoomd would act only when memory is gone";
        return -EINVAL;
    }
    return 0;
}

static enum preoom_pressure level_for(const preoom_thresholds_t *t, uint64_t avail,
                                      uint64_t total)
{
    if (avail <= preoom_threshold_bytes(&t->kill, total))
        return PREOOM_PRESSURE_COMPLETE;
    if (avail <= preoom_threshold_bytes(&t->term, total))
        return PREOOM_PRESSURE_CRITICAL;
    if (avail <= preoom_threshold_bytes(&t->ask, total))
        return PREOOM_PRESSURE_MODERATE;
    return PREOOM_PRESSURE_NONE;
}

void preoom_pressure_assess(const preoom_thresholds_t *t, const preoom_readings_t *r,
                            preoom_assessment_t *out)
{
    memset(out, 0, sizeof *out);
    out->reason = "memory available";

    /* The machine: RAM and swap together, as the kernel's totalpages. */
    uint64_t sys_total = r->mem_total_bytes + r->swap_total_bytes;
    uint64_t sys_avail = r->mem_available_bytes + r->swap_free_bytes;
    if (sys_avail > sys_total)
        sys_avail = sys_total;
    enum preoom_pressure lvl = level_for(t, sys_avail, sys_total);
    out->total_bytes = sys_total;
    out->available_bytes = sys_avail;

    /* The cgroup, where it has a limit. */
    if (r->cgroup_valid && r->cg_limit_bytes != UINT64_MAX && r->cg_limit_bytes > 0) {
        uint64_t used = r->cg_usage_bytes;
        uint64_t credit = r->cg_file_bytes / 2;
        used = used > credit ? used - credit : 0;
        uint64_t total = r->cg_limit_bytes;
        uint64_t avail = total > used ? total - used : 0;
        enum preoom_pressure cl = level_for(t, avail, total);
        /* Report the scope that is worse off, the cgroup on a tie (it is what is watched). */
        if (cl >= lvl) {
            lvl = cl;
            out->total_bytes = total;
            out->available_bytes = avail;
            out->in_cgroup = true;
            out->reason = "cgroup memory available";
        }
    }

    /* Exposure lowers what is effectively available, and may ask. */
    uint64_t weighted = r->exposure_bytes / 1000 * t->exposure_permille +
                        r->exposure_bytes % 1000 * t->exposure_permille / 1000;
    out->effective_bytes = out->available_bytes > weighted ? out->available_bytes - weighted : 0;
    uint64_t ask_bytes = preoom_threshold_bytes(&t->ask, out->total_bytes);
    if (lvl < PREOOM_PRESSURE_MODERATE && weighted > 0 && out->effective_bytes <= ask_bytes) {
        lvl = PREOOM_PRESSURE_MODERATE;
        out->reason = "exposure (committed but untouched memory)";
    }
    out->headroom_bytes = out->effective_bytes > ask_bytes ? out->effective_bytes - ask_bytes : 0;

    /* PSI: time already lost to memory. */
    if (r->psi_valid) {
        if (t->psi_full_x100 && r->psi_full_avg10_x100 >= t->psi_full_x100 &&
            lvl < PREOOM_PRESSURE_CRITICAL) {
            lvl = PREOOM_PRESSURE_CRITICAL;
            out->reason = "PSI memory full";
        } else if (t->psi_some_x100 && r->psi_some_avg10_x100 >= t->psi_some_x100 &&
                   lvl < PREOOM_PRESSURE_MODERATE) {
            lvl = PREOOM_PRESSURE_MODERATE;
            out->reason = "PSI memory some";
        }
        if (lvl >= PREOOM_PRESSURE_MODERATE)
            out->headroom_bytes = 0;
    }
    out->level = lvl;
}

uint32_t preoom_poll_ms(uint64_t headroom_bytes, uint32_t min_ms, uint32_t max_ms)
{
    /* 6 GB/s, earlyoom's figure for `stress -m 4 --vm-bytes 4G`: 6 MB a millisecond. */
    uint64_t ms = headroom_bytes / (6000ULL * 1024);
    if (ms < min_ms)
        ms = min_ms;
    if (ms > max_ms)
        ms = max_ms;
    return (uint32_t)ms;
}

const char *preoom_pressure_name(enum preoom_pressure level)
{
    switch (level) {
    case PREOOM_PRESSURE_NONE: return "none";
    case PREOOM_PRESSURE_MODERATE: return "moderate";
    case PREOOM_PRESSURE_CRITICAL: return "critical";
    case PREOOM_PRESSURE_COMPLETE: return "complete";
    }
    return "invalid";
}

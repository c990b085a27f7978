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

/* A percent ("15", "15.5", "15%") or a size ("200M", "1.5GiB"). A size may have a fraction,
 * as earlyoom's users write "1.5G"; it is rounded down to a whole byte. A percent of 100 or
 * more is refused: that rung would be past at once, on any machine. */
static int parse_one(const char *s, size_t n, preoom_threshold_t *out)
{
    if (n == 0)
        return -EINVAL;
    char buf[32];
    if (n >= sizeof buf)
        return -ERANGE;
    memcpy(buf, s, n);
    buf[n] = '\0';
    uint64_t whole = 0, frac = 0, frac_div = 1;
    size_t i = 0;
    int digits = 0, fdigits = 0;
    for (; buf[i] >= '0' && buf[i] <= '9'; i++, digits++) {
        if (whole > 1000000000000ULL)
            return -ERANGE;
        whole = whole * 10 + (uint64_t)(buf[i] - '0');
    }
    if (buf[i] == '.') {
        /* Six decimals are finer than a byte of a terabyte's millionth: the rest is noise. */
        for (i++; buf[i] >= '0' && buf[i] <= '9'; i++, fdigits++)
            if (fdigits < 6) {
                frac = frac * 10 + (uint64_t)(buf[i] - '0');
                frac_div *= 10;
            }
        if (fdigits == 0)
            return -EINVAL; /* "15." */
    }
    if (!digits)
        return -EINVAL; /* ".5": write 0.5 */
    const char *u = buf + i;
    if (*u == '\0' || (u[0] == '%' && u[1] == '\0')) {
        if (whole >= 100)
            return -ERANGE;
        out->percent_x100 = (uint32_t)(whole * 100 + frac * 100 / frac_div);
        return 0;
    }
    unsigned shift;
    switch (*u | 0x20) {
    case 'k': shift = 10; break;
    case 'm': shift = 20; break;
    case 'g': shift = 30; break;
    case 't': shift = 40; break;
    default: return -EINVAL;
    }
    u++;
    if ((*u | 0x20) == 'i')
        u++;
    if ((*u | 0x20) == 'b')
        u++;
    if (*u != '\0')
        return -EINVAL;
    if (whole > (UINT64_MAX >> shift) - 1)
        return -ERANGE;
    /* frac < frac_div <= 10^6 and shift <= 40: the product fits in 64 bits. */
    out->bytes = (whole << shift) + (frac << shift) / frac_div;
    return 0;
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

/* The rungs are compared on what they stand for, not on how they were written: "--ask 20%
 * --term 10,200M" is in order on any machine of 2 GiB or more, and "--ask 2G" against the
 * default 10 % term on any of 20 GiB or less. Without a total, only an order that is wrong
 * on every machine is refused (a percent above a percent, a size above a size, ...); the
 * total itself is checked by preoom_thresholds_check_at once it is known. Each line is
 * max(percent × total, bytes): two such lines change order at most once as the total grows,
 * so trying every power of two from 16 MiB to 1 PiB finds a total where they are in order
 * if one exists in that range. */
static const char *order_at(const preoom_thresholds_t *t, uint64_t total)
{
    uint64_t a = preoom_threshold_bytes(&t->ask, total);
    uint64_t s = preoom_threshold_bytes(&t->term, total);
    uint64_t k = preoom_threshold_bytes(&t->kill, total);
    if (a < s)
        return "--ask comes out below --term";
    if (s < k)
        return "--term comes out below --kill";
    return NULL;
}

int preoom_thresholds_check(const preoom_thresholds_t *t, const char **why)
{
    if (t->ask.percent_x100 == 0 && t->ask.bytes == 0) {
        *why = "the ask threshold is zero: preoomd would act only when memory is gone";
        return -EINVAL;
    }
    const char *first = NULL;
    for (unsigned sh = 24; sh <= 50; sh++) {
        const char *w = order_at(t, 1ULL << sh);
        if (!w)
            return 0;
        if (!first)
            first = w;
    }
    *why = first[2] == 'a'
               ? "thresholds out of order: --ask comes out below --term on every total "
                 "(16 MiB to 1 PiB); the ask rung must be reached first"
               : "thresholds out of order: --term comes out below --kill on every total "
                 "(16 MiB to 1 PiB); the SIGTERM rung must be reached before SIGKILL";
    return -EINVAL;
}

int preoom_thresholds_check_at(const preoom_thresholds_t *t, uint64_t total, const char **why)
{
    const char *w = order_at(t, total);
    if (!w)
        return 0;
    *why = w[2] == 'a' ? "thresholds out of order at this total: --ask comes out below --term"
                       : "thresholds out of order at this total: --term comes out below --kill";
    return -EINVAL;
}

void preoom_thresholds_lines(const preoom_thresholds_t *t, uint64_t total, uint64_t *ask_bytes,
                             uint64_t *term_bytes, uint64_t *kill_bytes)
{
    /* A higher rung is never below a lower one: memory below the SIGTERM line is below the
     * ask line too, whatever the units say. level_for below ranks the same way. */
    uint64_t k = preoom_threshold_bytes(&t->kill, total);
    uint64_t s = preoom_threshold_bytes(&t->term, total);
    uint64_t a = preoom_threshold_bytes(&t->ask, total);
    if (s < k)
        s = k;
    if (a < s)
        a = s;
    *ask_bytes = a;
    *term_bytes = s;
    *kill_bytes = k;
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
        /* Report the scope that is worse off, the cgroup on a tie (it is what is watched);
         * the cgroup alone when told so. */
        if (cl >= lvl || r->cgroup_only) {
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

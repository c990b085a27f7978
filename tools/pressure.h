/* tools/pressure.h — how close the memory the registered processes live in is to running
 * out, fused from several signals, never one alone.
 *
 * The assessment is a pure function of the readings (procfs.c fills them) and the thresholds
 * (preoomd's options), so the unit tests can walk every rule. Never reads a file itself.
 */
#ifndef PREOOM_TOOLS_PRESSURE_H
#define PREOOM_TOOLS_PRESSURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "preoom/registry.h" /* enum preoom_pressure: NONE, MODERATE, CRITICAL, COMPLETE */

/* One threshold: available memory at or below `percent` of the total, or at or below
 * `bytes`. When both are set, the larger amount wins (it is reached first), as earlyoom
 * takes the tighter of -m/-M. 0 means unset. */
typedef struct {
    uint32_t percent_x100; /* hundredths of a percent of the total: 1500 = 15.00 % */
    uint64_t bytes;
} preoom_threshold_t;

typedef struct {
    preoom_threshold_t ask;  /* rung 1: release requests (MODERATE) */
    preoom_threshold_t term; /* rung 2: SIGTERM (CRITICAL) */
    preoom_threshold_t kill; /* rung 3: SIGKILL (COMPLETE) */
    /* Exposure: promised but untouched memory counts against what is available at this
     * weight (per mille); it may raise the level to MODERATE at most, because a promise may
     * never be kept. */
    uint32_t exposure_permille;
    /* PSI: memory "some" avg10 at or above this raises the level to MODERATE, "full" avg10
     * at or above psi_full to CRITICAL (hundredths of a percent; 0 = ignore PSI). */
    uint32_t psi_some_x100;
    uint32_t psi_full_x100;
} preoom_thresholds_t;

/* The readings of one moment. Any *_valid false means that signal is absent. */
typedef struct {
    /* The whole machine, from /proc/meminfo. */
    uint64_t mem_total_bytes;
    uint64_t mem_available_bytes;
    uint64_t swap_total_bytes;
    uint64_t swap_free_bytes;
    /* The memory cgroup that holds the registered processes. */
    bool cgroup_valid;
    /* Judge the cgroup alone, not the worse of it and the machine: the daemon watches the
     * machine as a domain of its own (or was told to watch named cgroups only), so a
     * cgroup's engine must not act on the host's shortage with the cgroup's processes. */
    bool cgroup_only;
    uint64_t cg_limit_bytes;    /* effective limit; UINT64_MAX = none */
    uint64_t cg_usage_bytes;
    uint64_t cg_file_bytes;     /* page cache inside the usage */
    /* PSI for the same scope (the cgroup's where it has one, else the system's). */
    bool psi_valid;
    uint32_t psi_some_avg10_x100;
    uint32_t psi_full_avg10_x100;
    /* The registry's total exposure (sum of committed - touched over live slots). */
    uint64_t exposure_bytes;
} preoom_readings_t;

typedef struct {
    enum preoom_pressure level;
    uint64_t total_bytes;       /* what the thresholds are relative to */
    uint64_t available_bytes;   /* what is left of it */
    uint64_t effective_bytes;   /* available less weighted exposure */
    uint64_t headroom_bytes;    /* from effective to the ask threshold (0 when past it) */
    bool in_cgroup;             /* measured against a cgroup limit */
    const char *reason;         /* static: which signal set the level */
} preoom_assessment_t;

/* The bytes a threshold stands for, out of `total`. */
uint64_t preoom_threshold_bytes(const preoom_threshold_t *t, uint64_t total);

/* Parse "15" / "15.5" / "15%" (percent, below 100) or "200M" / "200MiB" / "1.5G" (bytes,
 * K, M, G or T, a fraction rounded down to a byte) into a threshold; "15,200M" sets both.
 * 0, or -EINVAL / -ERANGE with *out untouched. */
int preoom_threshold_parse(const char *s, preoom_threshold_t *out);

/* Defaults: ask 15 %, term 10 %, kill 5 % (earlyoom's 10/5 with an earlier ask rung),
 * exposure at 500 per mille, PSI some 20 % / full 40 %. */
void preoom_thresholds_defaults(preoom_thresholds_t *t);

/* Checks the rungs can be in order (ask ≥ term ≥ kill, on their bytes at a total): refuses
 * only an order wrong at every total from 16 MiB to 1 PiB, and a zero ask rung. 0 or -EINVAL
 * with *why set (a static sentence). */
int preoom_thresholds_check(const preoom_thresholds_t *t, const char **why);

/* The same at one known total (the cgroup's limit, or RAM + swap): 0 or -EINVAL, *why set. */
int preoom_thresholds_check_at(const preoom_thresholds_t *t, uint64_t total, const char **why);

/* The effective lines at `total`: each rung at least the one below it (memory under the
 * SIGTERM line is under the ask line too), which is how the assessment ranks them. */
void preoom_thresholds_lines(const preoom_thresholds_t *t, uint64_t total, uint64_t *ask_bytes,
                             uint64_t *term_bytes, uint64_t *kill_bytes);

void preoom_pressure_assess(const preoom_thresholds_t *t, const preoom_readings_t *r,
                            preoom_assessment_t *out);

/* How long to sleep before the next look: the headroom divided by a fast fill rate (6 GB/s,
 * earlyoom's figure for a memory hog), clamped to [min_ms, max_ms]; near or past the
 * threshold that is every few milliseconds. */
uint32_t preoom_poll_ms(uint64_t headroom_bytes, uint32_t min_ms, uint32_t max_ms);

const char *preoom_pressure_name(enum preoom_pressure level);

#endif

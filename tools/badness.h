/* tools/badness.h — who goes first when memory runs out: the arbiter's three policies.
 *
 * Pure functions over a plain struct the daemon fills from /proc and the registry slot, so
 * every rule is a table-driven unit test and `preoom explain` can print the same terms the
 * daemon logs. The decision is split as mm/oom_kill.c splits it: eligible → score →
 * compare → select.
 *
 * Never: read a file, look at the clock, allocate, or let anything a process says about
 * itself (the slot's adj hint) lower its own score.
 */
#ifndef PREOOM_TOOLS_BADNESS_H
#define PREOOM_TOOLS_BADNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The score of a process that must never be chosen. Every real score is above it. */
#define PREOOM_BADNESS_NEVER INT64_MIN
#define PREOOM_BADNESS_MAX_TERMS 12

/* Linux's oom_score_adj and 2.6's oom_adj ranges. */
#define PREOOM_OOM_SCORE_ADJ_MIN (-1000)
#define PREOOM_OOM_SCORE_ADJ_MAX 1000
#define PREOOM_OOM_DISABLE (-17)
#define PREOOM_OOM_ADJUST_MIN (-16)
#define PREOOM_OOM_ADJUST_MAX 15

/* Capability bits in /proc/PID/status CapEff (include/uapi/linux/capability.h). */
#define PREOOM_CAP_SYS_RAWIO 17
#define PREOOM_CAP_SYS_ADMIN 21

typedef enum {
    PREOOM_POLICY_PREOOM = 0, /* the default */
    PREOOM_POLICY_KERNEL = 1,
    PREOOM_POLICY_CLASSIC = 2,
} preoom_policy_t;

/* Why a process may not be chosen; PREOOM_ELIGIBLE when it may. */
typedef enum {
    PREOOM_ELIGIBLE = 0,
    PREOOM_NOT_BAD_PID,       /* pid <= 0: not a process we can name */
    PREOOM_NOT_INIT,          /* pid 1: killing it takes the machine (or container) down */
    PREOOM_NOT_SELF,          /* the arbiter itself */
    PREOOM_NOT_KTHREAD,       /* kernel threads own no user memory and cannot be killed */
    PREOOM_NOT_ADJ_MIN,       /* oom_score_adj -1000: the administrator said never */
    PREOOM_NOT_PROTECTED,     /* --protect */
    PREOOM_NOT_NO_REGISTRY,   /* does not map this registry: the slot may be forged or stale */
    PREOOM_NOT_UID_DIFFERS,   /* belongs to someone this registry does not speak for */
} preoom_ineligible_t;

/* --prefer / --avoid: the operator's word about a process, by name pattern. */
typedef enum {
    PREOOM_PREFER_NONE = 0,
    PREOOM_PREFER = 1,
    PREOOM_AVOID = -1,
} preoom_preference_t;

/* Everything a policy may look at, for one process. Zero-initialised, a candidate is NOT
 * eligible (maps_registry and uid_matches are false): a forgotten field fails safe. */
typedef struct {
    int32_t pid;
    /* Eligibility, filled by the daemon. */
    bool kthread;
    bool maps_registry;        /* /proc/PID/maps shows this registry's shm file */
    bool uid_matches;          /* uid is the registry's, or the daemon was told to allow it */
    bool protected_by_flag;    /* --protect PID */
    preoom_preference_t preference;
    /* From /proc/PID/status and stat. */
    int32_t oom_score_adj;     /* -1000..1000 */
    uint64_t rss_bytes;        /* VmRSS: anon + file + shmem, as get_mm_rss counts */
    uint64_t swap_bytes;       /* VmSwap */
    uint64_t pgtables_bytes;   /* VmPTE */
    uint64_t vm_bytes;         /* total_vm: stat vsize */
    const uint64_t *child_vm_bytes; /* total_vm of each child with its own mm */
    size_t n_children;
    uint64_t cpu_ticks;        /* utime + stime */
    uint64_t run_ticks;        /* uptime - starttime */
    int32_t nice;
    uint32_t uid;
    uint32_t euid;
    uint64_t cap_eff;
    /* From the registry slot (untrusted: the process writes them). */
    uint64_t committed_bytes;
    uint64_t touched_bytes;    /* RssAnon + VmSwap; also the first tie-break */
    int64_t touched_growth_bytes_per_s; /* from the daemon's history, over its last window */
    /* From the daemon's history and /proc (trusted). */
    uint64_t private_bytes;    /* what a kill frees: Pss_Anon + SwapPss (smaps_rollup); 0 unknown */
    uint64_t flat_ms;          /* how long touched has stayed within a few percent */
    uint64_t slot_adj;         /* the process's own hint, 0..1000; more is clamped */
} preoom_candidate_t;

/* What is the same for every candidate of one decision. */
typedef struct {
    preoom_policy_t policy;
    int32_t self_pid;          /* the arbiter's pid: never chosen */
    uint64_t total_pages;      /* RAM + swap, or the memory cgroup's limit, in pages */
    uint64_t page_bytes;       /* 0 means 4096 */
    uint64_t clk_tck;          /* ticks a second of cpu_ticks/run_ticks; 0 means 100 */
    /* preoom policy weights; preoom_badness_defaults() sets the documented values. */
    uint32_t exposure_permille;
    uint32_t growth_horizon_ms;
    uint32_t prefer_permille;
    /* How fast the domain grows: the sum of the candidates' positive growth rates (bytes/s).
     * Below 1 MiB/s nobody is blamed: that is noise, not a cause. */
    uint64_t domain_growth_bytes;
    uint32_t flat_protect_ms;  /* flat this long and not growing: a steady service */
} preoom_badness_ctx_t;

/* One step of a score: "+ rss 1200" or "÷ isqrt(cpu) 3". `op` is one of + - * / < > (the
 * last two: shift left and right) or '=' for a base value; `total` is the score after it. */
typedef struct {
    const char *name;
    char op;
    int64_t value;
    int64_t total;
} preoom_term_t;

typedef struct {
    int64_t score;                 /* PREOOM_BADNESS_NEVER when not eligible */
    preoom_ineligible_t why;
    int64_t oom_score;             /* kernel policy: /proc/PID/oom_score's value; else -1 */
    size_t n_terms;
    preoom_term_t terms[PREOOM_BADNESS_MAX_TERMS];
} preoom_badness_t;

void preoom_badness_defaults(preoom_badness_ctx_t *ctx);
const char *preoom_policy_name(preoom_policy_t policy);
int preoom_policy_from_name(const char *name, preoom_policy_t *policy);
const char *preoom_ineligible_name(preoom_ineligible_t why);

/* floor(sqrt(x)), as the kernel's int_sqrt. */
uint64_t preoom_int_sqrt(uint64_t x);
/* oom_score_adj → 2.6's oom_adj: -1000 → -17 (OOM_DISABLE), 1000 → 15, else ×17/1000
 * truncated toward zero and kept within -16..15. */
int preoom_oom_adj_from_score_adj(int oom_score_adj);
/* /proc/PID/oom_score from oom_badness's points: (1000 + points×1000/total)×2/3. */
int64_t preoom_oom_score(int64_t points, uint64_t total_pages);

/* The steps. */
preoom_ineligible_t preoom_badness_eligible(const preoom_badness_ctx_t *ctx,
                                            const preoom_candidate_t *c);
void preoom_badness_score(const preoom_badness_ctx_t *ctx, const preoom_candidate_t *c,
                          preoom_badness_t *out);
/* < 0 when a should be chosen before b, > 0 after, 0 only for the same pid. A process the
 * operator said to avoid comes after every other eligible one, whatever the scores. */
int preoom_badness_compare(const preoom_candidate_t *a, const preoom_badness_t *sa,
                           const preoom_candidate_t *b, const preoom_badness_t *sb);
/* Scores all n (into scores[n]) and returns the victim's index, or -1 if none may be chosen. */
long preoom_badness_select(const preoom_badness_ctx_t *ctx, const preoom_candidate_t *c,
                           size_t n, preoom_badness_t *scores);
/* "score=… why=… [= rss 100 → 100] [+ swap 5 → 105] …" into buf; returns snprintf's count. */
int preoom_badness_format(const preoom_badness_t *r, char *buf, size_t cap);

#endif

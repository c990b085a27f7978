/* tools/candidates.h — who the arbiter may choose from: the registry's live slots, each
 * checked against the kernel's view of the process, with the badness inputs filled in.
 *
 * Shared by preoomd and `preoom explain` so both rank from the same facts. A slot is only a
 * claim: pid and start time must match /proc, the process must map this very registry file,
 * and its uid must be the registry's, or it is marked ineligible (never dropped silently, so
 * explain can say why).
 */
#ifndef PREOOM_TOOLS_CANDIDATES_H
#define PREOOM_TOOLS_CANDIDATES_H

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "badness.h"
#include "engine.h"
#include "floor.h"
#include "procfs.h"

#define PREOOM_MAX_PROTECT 64
#define PREOOM_MAX_CHILDREN 64
#define PREOOM_MAX_CGROUP_GLOBS 8
#define PREOOM_CGROUP_GLOB_MAX 256

/* --protect-cgroup, --avoid-cgroup, --prefer-cgroup: fnmatch(3) patterns (no flags, so '*'
 * also matches '/') on a process's cgroup path as /proc/PID/cgroup gives it, the memory
 * controller's line on cgroup v1 or the "0::" line on v2; either matching is enough. */
typedef struct {
    char glob[PREOOM_MAX_CGROUP_GLOBS][PREOOM_CGROUP_GLOB_MAX];
    size_t n;
} preoom_cgroup_globs_t;

typedef struct {
    preoom_candidate_t c;            /* the badness input */
    struct preoom_slot slot;         /* the snapshot it came from (untrusted numbers) */
    uint64_t slot_index;
    uint64_t start_time;             /* ticks after boot, from /proc (checked) */
    char name[PREOOM_COMM_MAX];      /* comm from /proc, printable */
    uint64_t child_vm[PREOOM_MAX_CHILDREN];
    bool registered;                 /* from a slot (else found in the cgroup or /proc) */
    bool rejected_now;               /* its maps were read just now and lack the registry:
                                      * the daemon says so once */
    bool hint_unproven_now;          /* it carries an adj hint but is not proven its
                                      * process's own slot: hint ignored, said once */
} preoom_proc_t;

typedef struct {
    uid_t registry_uid;              /* the registry file's owner */
    bool allow_any_uid;              /* --allow-uid: act for processes of other users */
    dev_t registry_dev;              /* the registry file, as /proc/PID/maps names it */
    ino_t registry_ino;
    const char *registry_path;       /* "/dev/shm/preoom.NAME" (or the --registry-dir's) */
    bool check_maps;                 /* read /proc/PID/maps for every slot, uncached (explain) */
    bool want_children;              /* fill child_vm (the classic policy) */
    bool want_private;               /* read smaps_rollup (at most once a second a process) */
    /* --scope: a cgroup's processes beyond the registry's (cgroup_dir set), or the host's. */
    int scope;                       /* preoom_scope_t */
    const char *cgroup_dir;          /* the watched memory cgroup, "" or NULL for none */
    bool look_only;                  /* walk the host's processes for the biggest only */
    int32_t protect[PREOOM_MAX_PROTECT];
    size_t n_protect;
    const regex_t *prefer;           /* on the process name; NULL = none */
    const regex_t *avoid;
    /* On the process's cgroup path; NULL or empty = none. /proc/PID/cgroup is read only
     * when one of them is set. */
    const preoom_cgroup_globs_t *protect_cg, *avoid_cg, *prefer_cg;
} preoom_gather_opts_t;

/* Touched-memory history per process, for the growth (and so blame) and steadiness terms. */
#define PREOOM_GROWTH_RING 4
#define PREOOM_HISTORY_MAX 4096
typedef struct {
    int32_t pid;
    uint64_t start_time;
    uint64_t t1_ms, touched1;        /* the newest sample */
    uint64_t seen_ms;
    int8_t maps_registry;            /* cached: -1 not checked yet, 0 no, 1 yes */
    uint64_t maps_at_ms;             /* when it was last looked at */
    uint64_t flat_ref, flat_since_ms; /* steadiness: touched within a band since */
    uint64_t private_bytes, private_at_ms;
    int8_t hint_said;                /* an unproven hint naming it was logged */
    int16_t adj;                     /* oom_score_adj, read at adj_at_ms */
    uint8_t rn, rhead;               /* growth: recent samples, a ring (candidates.c) */
    uint64_t rt_ms[PREOOM_GROWTH_RING], rtouched[PREOOM_GROWTH_RING];
    uint64_t adj_at_ms;
} preoom_history_entry_t;
typedef struct {
    preoom_history_entry_t e[PREOOM_HISTORY_MAX];
    size_t n;
    uint64_t window_ms;              /* growth is measured over about this long */
} preoom_history_t;

/* A slot naming a process another slot names too, left out; its hint is said once. */
#define PREOOM_MAX_DUPS 8
typedef struct {
    uint64_t slot_index;
    int32_t pid;
    uint64_t adj;
    char name[PREOOM_COMM_MAX];
} preoom_dup_t;

typedef struct {
    preoom_proc_t *procs;            /* caller's array */
    size_t cap, n;
    uint64_t exposure_bytes;         /* sum over the slots whose process is verified to map
                                      * this registry as the registry's user: a forged slot
                                      * must not be able to fake pressure */
    uint64_t committed_bytes, touched_bytes;
    size_t skipped;                  /* slots that named no live process (reaped next) */
    /* The biggest process of the domain by the kernel's view (rss + swap), and whether it is
     * one preoomd may act on. */
    int32_t biggest_pid;
    uint64_t biggest_bytes;
    char biggest_name[PREOOM_COMM_MAX];
    bool biggest_in_scope;
    preoom_dup_t dups[PREOOM_MAX_DUPS];
    size_t n_dups;
} preoom_gathered_t;

/* Fill `out` from the registry and /proc. `now_ms` is CLOCK_MONOTONIC. Returns 0 or -errno
 * (a registry gone bad); slots that fail their checks are kept with the reason. */
int preoom_gather(const preoom_procfs_t *fs, const preoom_reg_t *reg,
                  const preoom_gather_opts_t *o, preoom_history_t *h, uint64_t now_ms,
                  preoom_gathered_t *out);

/* Add the processes of the watched cgroup (or of the host) that no slot named: candidates
 * when o->scope says so, else only looked at for the biggest. Call after preoom_gather. */
int preoom_gather_unregistered(const preoom_procfs_t *fs, const preoom_gather_opts_t *o,
                               preoom_history_t *h, uint64_t now_ms, preoom_gathered_t *out);

/* --protect, --prefer and --avoid as `o` gives them, for a candidate named `name` (c->pid
 * set): at gather time, and again by each domain that has settings of its own. */
void preoom_candidate_prefs(const preoom_procfs_t *fs, const preoom_gather_opts_t *o,
                            const char *name, preoom_candidate_t *c);

/* Count p for the domain's biggest process (by rss + swap) if it is bigger. */
void preoom_note_biggest(preoom_gathered_t *out, const preoom_proc_t *p);

/* Keep only the processes keep[i] says (one memory domain's, say), their order kept, with
 * the sums and the biggest worked out again as the gathering does. */
void preoom_gathered_keep(preoom_gathered_t *g, const bool *keep);

/* The engine's view of what was gathered (out has room for g->n). */
void preoom_gathered_to_engine(const preoom_gathered_t *g, preoom_engine_proc_t *out);

/* Private memory of a process, what a kill frees: Pss_Anon + SwapPss from smaps_rollup
 * (Private_Dirty + Swap on kernels without them). 0 or -errno. */
int preoom_read_private(const preoom_procfs_t *fs, int32_t pid, uint64_t *bytes);
/* Is slot `idx` the own slot of `pid`? Only a thread of pid can name itself (its agent,
 * thread `tid`, is named "preoom<idx hex>:<adj>"): 1 with *adj, the only hint believed; 0. */
int preoom_slot_proven(const preoom_procfs_t *fs, int32_t pid, uint64_t tid, uint64_t idx,
                       uint64_t *adj);

/* Does any pattern of g match the cgroup paths of c? Pure. */
bool preoom_cgroup_globs_match(const preoom_cgroup_globs_t *g, const preoom_pid_cgroup_t *c);

/* The start of PID's command line, printable (NUL separators as spaces, others as '?'), cut
 * to cap - 1 bytes, for the one process a decision names: read when the decision is taken,
 * never for every process every pass. The pid must still have started at start_time (read
 * before and after, so a pid reused in between gives nothing). 0, -ESTALE, -errno; buf is
 * "" on failure. */
int preoom_proc_cmdline(const preoom_procfs_t *fs, int32_t pid, uint64_t start_time, char *buf,
                        size_t cap);

/* Command lines, read off the critical path. Reading /proc/PID/cmdline takes the process's
 * mmap lock, and a process in reclaim near its cgroup's limit can hold the reader for
 * hundreds of milliseconds: a decision must never wait on it. So each gathered process's
 * command line is read once, in a pass far from every line (preoom_cmdline_cache_fill), and
 * a decision only looks it up (preoom_cmdline_cache_get), never reads. Keyed by pid, start
 * time and name: an exec keeps pid and start time but changes the name, and is read again.
 * Round-robin replacement when full. Never allocates. */
#define PREOOM_CMDLINE_CACHE 512
typedef struct {
    int32_t pid;
    uint64_t start_time;
    char name[16];
    char cmdline[PREOOM_ENGINE_CMDLINE_MAX];
} preoom_cmdline_entry_t;
typedef struct {
    preoom_cmdline_entry_t e[PREOOM_CMDLINE_CACHE];
    size_t n, next;
} preoom_cmdline_cache_t;

/* Read the command line of each process of g not in the cache (or whose name changed).
 * Call only when memory is far from every line. Returns how many were read. */
size_t preoom_cmdline_cache_fill(preoom_cmdline_cache_t *c, const preoom_procfs_t *fs,
                                 const preoom_gathered_t *g);
/* The cached command line of (pid, start_time, name), or NULL. Pure. */
const char *preoom_cmdline_cache_get(const preoom_cmdline_cache_t *c, int32_t pid,
                                     uint64_t start_time, const char *name);

/* Does PID map the registry file (dev, inode)? 1 yes, 0 no, -errno when it cannot say. */
int preoom_maps_registry(const preoom_procfs_t *fs, int32_t pid, dev_t dev, ino_t ino);

/* The badness context of one decision: `policy`, the arbiter's pid (never chosen), and
 * the total the pressure was measured against (the cgroup limit or RAM + swap). preoomd
 * and `preoom explain` both use it, so they rank alike. */
void preoom_rank_ctx(preoom_badness_ctx_t *ctx, preoom_policy_t policy, int32_t arbiter_pid,
                     uint64_t total_bytes);

/* The registry's path and identity for the checks above. */
int preoom_gather_opts_for(const preoom_reg_t *reg, const char *name, preoom_gather_opts_t *o,
                           char *path_buf, size_t path_cap);

#endif

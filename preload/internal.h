/* preload/internal.h — what the files of libpreoom.so share, grouped by the file that
 * defines it. Nothing here is exported from the library (-fvisibility=hidden); the exported
 * names are the interposed symbols in hooks.c and the public API in api.c and callbacks.c.
 *
 * Rule for everything declared here: it never allocates through the wrapped malloc (internal
 * memory comes from arena.c) and never takes a lock on the allocation hot path.
 */
#ifndef PREOOM_INTERNAL_H
#define PREOOM_INTERNAL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "floor.h"
#include "preoom/registry.h"

#define PREOOM_HIDDEN __attribute__((visibility("hidden")))
#define PREOOM_EXPORT __attribute__((visibility("default")))
#define PREOOM_LIKELY(x) __builtin_expect(!!(x), 1)
#define PREOOM_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define PREOOM_CACHE_LINE 64

/* ---- log.c: the one rate-limited reporter ---------------------------------------------- */
/* Message to stderr prefixed "preoom[PID]: ". Errors are limited (PREOOM_LOG_MAX_ERRORS per
 * process) so a broken environment cannot flood the host's stderr. Never aborts. */
#define PREOOM_LOG_MAX_ERRORS 32
/* Note which file descriptor 2 is: later lines go there only while it still is. */
void preoom_log_init(void);
void preoom_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void preoom_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Only printed when PREOOM_VERBOSE >= level. */
void preoom_log_verbose(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The level preoom_log_verbose compares with (options.c hands in PREOOM_VERBOSE). */
void preoom_log_set_verbose(int level);
void preoom_log_set_file(const char *path); /* PREOOM_LOG, "" for fd 2 */

/* ---- options.c: every PREOOM_* setting, read once --------------------------------------- */

typedef struct preoom_options {
    uint64_t interval_ms;      /* PREOOM_INTERVAL_MS: agent period */
    char report[512];          /* PREOOM_REPORT: path template, %p = pid; "" = none */
    int verbose;               /* PREOOM_VERBOSE: 0..3 */
    char registry[64];         /* PREOOM_REGISTRY: name after /dev/shm/preoom. ; "off" = none */
    uint64_t registry_slots;   /* PREOOM_REGISTRY_SLOTS: slots when this process creates it */
    int64_t registry_gid;      /* PREOOM_REGISTRY_GROUP: gid that may share it, -1 = none */
    char registry_dir[128];    /* PREOOM_REGISTRY_DIR: where registries live; "" = /dev/shm */
    char log[512];             /* PREOOM_LOG: diagnostics to this file; "" = fd 2 while it is
                                  the file it was at start-up */
    int stacks;                /* PREOOM_STACKS: off|sample|all */
    uint64_t sample_bytes;     /* PREOOM_SAMPLE_BYTES: mean bytes between samples */
    uint64_t stack_depth;      /* PREOOM_STACK_DEPTH: frames recorded per stack */
    int stack_cache;           /* PREOOM_STACK_CACHE: off|on|verify (stacks.c) */
    uint64_t adj;              /* PREOOM_ADJ: 0..1000, more willing to be chosen */
    uint64_t term_grace_ms;    /* PREOOM_TERM_GRACE_MS: our shutdown time after SIGTERM */
    int trim;                  /* PREOOM_TRIM: run malloc_trim(0) on every release request */
    int purge;                 /* PREOOM_PURGE: on every release request, also have jemalloc
                                  or tcmalloc (when in charge) return their free pages */
    int secure;                /* set when the environment was not trusted (setuid) */
} preoom_options_t;

extern preoom_options_t preoom_opt;

/* Fill `o` from a getenv-like lookup (NULL lookups give defaults). Each bad value is
 * reported through `warn` in one line naming the setting and the default used. */
typedef const char *(*preoom_getenv_fn)(const char *name);
typedef void (*preoom_warn_fn)(const char *line);
void preoom_options_load(preoom_options_t *o, preoom_getenv_fn getenv_fn, preoom_warn_fn warn);
/* The process's settings: secure_getenv, so a setuid program takes none from its environment. */
void preoom_options_init(void);
/* Print the effective settings (PREOOM_VERBOSE=1). */
void preoom_options_print(const preoom_options_t *o);

/* ---- arena.c: internal memory, never from the wrapped malloc ---------------------------- */
/* Size-classed free lists over raw mmap; thread-safe; zeroed memory. NULL when out of memory. */
void *preoom_arena_alloc(size_t bytes);
void preoom_arena_free(void *p, size_t bytes);
void *preoom_arena_realloc(void *p, size_t old_bytes, size_t new_bytes);

/* ---- thread.c: per-thread state, and the pool of per-thread blocks ---------------------- */
/* A thread's block: written only by its owner thread (plain stores through relaxed atomics),
 * read by anyone summing or scanning. Blocks are never freed; a thread that exits hands its
 * block to the next new thread. Each part belongs to the module named beside it; thread.c
 * only hands blocks out and lists them. */
typedef struct preoom_tblock {
    _Atomic int64_t malloc_bytes;               /* account.c: may go negative (frees of
                                                 * others' memory) */
    _Atomic uint64_t calls[PREOOM_CALL_COUNT];  /* account.c */
    _Atomic int owned;                          /* thread.c */
    struct preoom_tblock *next;                 /* thread.c */
    struct pend *stacks_pend;                   /* stacks.c's pending site counts, or NULL */
    char *stacks_sc;                            /* stacks.c's stack cache, or NULL */
    _Atomic int in_unwind;                      /* inside libunwind (unwind.c) */
} __attribute__((aligned(PREOOM_CACHE_LINE))) preoom_tblock_t;

typedef struct preoom_tstate {
    preoom_tblock_t *block;
    int64_t peak_mark;          /* the block's malloc_bytes above which the peak is checked:
                                 * its value at the last check + PREOOM_PEAK_CHECK_BYTES
                                 * (account.c) */
    int64_t sample_countdown;   /* bytes until the next sampled allocation (stacks.c) */
    uint32_t in_alloc;          /* inside the real allocator: its own mmaps are not the
                                 * program's (counted already as malloc bytes) */
    uint32_t inner_hit;         /* set by the malloc/free hooks: did operator new/delete
                                 * reach them? (hooks.c) */
    uint32_t guard;             /* inside preoom's own slow paths: do not recurse */
    uint32_t own_walk;          /* preoom's own walk of the loaded objects (the unwinder's
                                 * included): served from dlsnap.c's copy in a fork child */
    uint32_t in_foreign;        /* inside a foreign function a hook called (an allocator's
                                 * malloc_usable_size): hooks count nothing (hooks.c) */
    uint32_t exited;            /* the thread's key destructor ran */
} preoom_tstate_t;

extern __thread preoom_tstate_t preoom_tls __attribute__((tls_model("initial-exec")));

/* The exit key (a thread's block goes back to the pool when it exits). */
int preoom_thread_init(void);
/* The calling thread's block: claimed (an exited thread's) or made, then each start hook run
 * on it. NULL while preoom_tls.guard is set, after the thread's exit, or out of memory. */
preoom_tblock_t *preoom_thread_block(void);
/* Every block ever made, newest first (a block's next never changes once it is listed). */
preoom_tblock_t *preoom_thread_blocks(void);
/* A module's start hook: run on the thread that just took block b, with guard set. At most a
 * few, registered at start-up (0, or -ENOSPC). The hooks are how thread.c reaches the
 * modules above it without naming them. */
typedef void (*preoom_thread_start_fn)(preoom_tblock_t *b);
int preoom_thread_on_start(preoom_thread_start_fn fn);
/* Fork child: blocks of threads that do not exist in the child go back to the pool. */
void preoom_thread_atfork_child(void);

/* ---- account.c: per-thread counters folded into per-process totals ----------------------- */
/* Process-wide counters changed off the hot path (mmap and brk are system calls anyway). */
typedef struct preoom_global {
    _Atomic int64_t mmap_bytes;
    _Atomic int64_t brk_bytes;
    _Atomic uint64_t peak_committed;
    _Atomic uint64_t peak_touched;
    _Atomic int64_t exited_malloc_bytes;        /* counts made after a thread's block was gone */
    _Atomic uint64_t exited_calls[PREOOM_CALL_COUNT];
} preoom_global_t;
extern preoom_global_t preoom_g;


/* Slow path of the first count in a thread. */
preoom_tblock_t *preoom_account_thread_block(void);
/* Peak update when a thread's net growth passes the check distance; `now` is the block's
 * malloc_bytes. */
void preoom_account_peak_check(int64_t now);
#define PREOOM_PEAK_CHECK_BYTES (1 << 20)

static inline preoom_tblock_t *preoom_block(void)
{
    preoom_tblock_t *b = preoom_tls.block;
    return PREOOM_LIKELY(b != NULL) ? b : preoom_account_thread_block();
}

/* The hot path: one owner-only add per counter. `delta` is signed usable bytes. */
static inline void preoom_account_malloc(int64_t delta, enum preoom_call call)
{
    preoom_tblock_t *b = preoom_block();
    if (PREOOM_UNLIKELY(b == NULL)) {
        atomic_fetch_add_explicit(&preoom_g.exited_malloc_bytes, delta, memory_order_relaxed);
        atomic_fetch_add_explicit(&preoom_g.exited_calls[call], 1, memory_order_relaxed);
        return;
    }
    int64_t now = atomic_load_explicit(&b->malloc_bytes, memory_order_relaxed) + delta;
    atomic_store_explicit(&b->malloc_bytes, now, memory_order_relaxed);
    atomic_store_explicit(&b->calls[call],
                          atomic_load_explicit(&b->calls[call], memory_order_relaxed) + 1,
                          memory_order_relaxed);
    if (PREOOM_UNLIKELY(now > preoom_tls.peak_mark))
        preoom_account_peak_check(now);
}

static inline void preoom_account_call(enum preoom_call call)
{
    preoom_tblock_t *b = preoom_block();
    if (PREOOM_UNLIKELY(b == NULL)) {
        atomic_fetch_add_explicit(&preoom_g.exited_calls[call], 1, memory_order_relaxed);
        return;
    }
    atomic_store_explicit(&b->calls[call],
                          atomic_load_explicit(&b->calls[call], memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* mmap/brk bookkeeping (called after the real call succeeded). */
void preoom_account_mmap(int64_t delta);
void preoom_account_brk(int64_t delta);
/* Sum every block; fill the committed side of `t` (malloc, mmap, brk, committed, calls). */
void preoom_account_sum(preoom_totals_t *t);
/* Combine the committed side with a touched measurement; update peaks; fill slack/exposure. */
void preoom_account_finish(preoom_totals_t *t, uint64_t rss_anon, uint64_t swap);
/* Fork child: the call counts and peaks start again (thread.c hands back the blocks first). */
void preoom_account_atfork_child(void);
/* Set-up (thread.c's exit key). */
int preoom_account_init(void);

/* ---- maps.c: the private anonymous writable mappings the program made ------------------- */
/* Each returns the change in tracked bytes (positive, negative or 0). Thread-safe. */
int64_t preoom_maps_add(uintptr_t addr, size_t len);
int64_t preoom_maps_remove(uintptr_t addr, size_t len);
/* mremap: the tracked part of [old, old+old_len) moves to [new, new+new_len). */
int64_t preoom_maps_move(uintptr_t old_addr, size_t old_len, uintptr_t new_addr, size_t new_len,
                         int keep_old);
uint64_t preoom_maps_tracked_bytes(void);
void preoom_maps_atfork_prepare(void);
void preoom_maps_atfork_parent(void);
void preoom_maps_atfork_child(void);

/* ---- fds.c: preoom's own descriptors, kept at the top of the table ---------------------- */
#define PREOOM_FD_MIN_LIMIT 64   /* below this soft RLIMIT_NOFILE preoom keeps no descriptor */
#define PREOOM_FD_KEEP 8         /* preoom's descriptors go at or above the top minus this */
/* May preoom keep descriptors open under the current limit? */
int preoom_fd_room(void);
/* fd moved up to the top (close-on-exec), the old number closed; fd itself when it cannot. */
int preoom_fd_park(int fd);

/* ---- procself.c: the kernel's view of this process, without allocating ----------------- */
/* RssAnon (from /proc/self/statm, cheap) and VmSwap (from /proc/self/status, refreshed at
 * most once a second), in bytes. 0 or -errno. */
int preoom_procself_touched(uint64_t *rss_anon, uint64_t *swap);
/* The same, both from /proc/self/status now. */
int preoom_procself_touched_exact(uint64_t *rss_anon, uint64_t *swap);
/* RssAnon from a /proc/PID/statm buffer (pure). */
int preoom_parse_statm_anon(const char *buf, size_t len, uint64_t page_bytes, uint64_t *rss_anon);
/* Parse the same from a buffer (pure). */
int preoom_parse_status_touched(const char *buf, size_t len, uint64_t *rss_anon, uint64_t *swap);
/* Field 22 of /proc/self/stat, and the short name. */
int preoom_procself_start_time(uint64_t *start_ticks);
int preoom_procself_comm(char *name, size_t size);
/* Open what the agent reads every interval, once (at start-up and in a fork child), so that
 * a sandbox that forbids open later (seccomp) does not stop the measuring. */
void preoom_procself_open(void);
/* Fork: prepare reads whether the parent is under a seccomp filter; the child reopens its
 * own files only if not (an open could kill it). */
void preoom_procself_atfork_prepare(void);
void preoom_procself_atfork_child(void);
/* "Seccomp:" of a status buffer (0 none, 1 strict, 2 filter), or -1 when absent. */
int preoom_parse_status_seccomp(const char *buf, size_t len);
uint64_t preoom_now_ns(int clock);

/* ---- report.c: the totals at exit, as JSON ------------------------------------------------ */
/* Format the totals as one JSON object (pure). Returns the length or -ENOSPC. */
long preoom_report_json(const preoom_totals_t *t, pid_t pid, const char *name, char *buf,
                        size_t size);
/* Write the JSON report (totals, then the call sites if stacks are on) to PREOOM_REPORT. */
void preoom_report_write(const preoom_totals_t *t);
/* The report on demand (agent, request level PREOOM_REQ_LEVEL_DUMP): the totals `t` (just
 * measured by the caller) and the sites to preoom_stacks_dump_path(), written to a temporary
 * file and renamed into place. Returns the bytes written or -errno. */
long preoom_report_dump_now(const preoom_totals_t *t);

/* ---- agent.c: the background thread --------------------------------------------------- */
int preoom_agent_start(void);
void preoom_agent_atfork_prepare(void);
void preoom_agent_atfork_parent(void);
void preoom_agent_atfork_child(void);
/* Measure now and return the totals (used by the API and at exit). */
void preoom_agent_measure(preoom_totals_t *t);
/* Final measurement, report and slot release; idempotent. */
void preoom_agent_shutdown(void);
/* Pressure level last published by the arbiter (enum preoom_pressure), or 0. */
int preoom_agent_pressure(void);
/* The process's own adjustment (0..1000) that the agent publishes: PREOOM_ADJ at start, then
 * raised (never lowered) by preoom_hint. Run-time state: not in preoom_opt. */
uint64_t preoom_agent_adj(void);
/* Raise it to adj; -EPERM when adj is lower than it is. */
int preoom_agent_raise_adj(uint64_t adj);

/* ---- callbacks.c: the app's release callbacks ------------------------------------------- */
/* Run the registered callbacks in order; returns the sum they reported. */
uint64_t preoom_callbacks_run(int level, uint64_t target_bytes);
/* How many release callbacks are registered, and what the app says it could free (API 2's
 * preoom_reclaimable). */
void preoom_callbacks_offer(uint64_t *callbacks, uint64_t *reclaimable_bytes);
void preoom_callbacks_set_reclaimable(uint64_t bytes);

/* ---- stacks.c: sampled call sites (PREOOM_STACKS) -------------------------------------- */
#define PREOOM_STACK_MAX_FRAMES 128     /* upper bound of PREOOM_STACK_DEPTH */
void preoom_stacks_init(void);
/* Called from the hooks when the sampling countdown runs out or in `all` mode (never while
 * preoom_tls.guard is set). ra and cfa say where the exported hook was called from (its
 * return address, and the stack pointer it returns to; 0 when unknown): the key of the stack
 * cache. Finds the site (the cache, else an unwind), adds p's weight to this thread's pending
 * counts, and keeps p itself under its pointer-map shard's lock (stacks.c). */
void preoom_stacks_alloc(void *p, size_t bytes, size_t req, uintptr_t ra, uintptr_t cfa);
/* A private anonymous writable mapping the program made itself: always recorded, at its
 * exact size (not sampled), its site marked as a mapping's. munmap and mremap take it off
 * through preoom_stacks_free (a partial munmap at its start takes all of it). */
void preoom_stacks_mmap(void *p, size_t bytes);
/* Before a free/realloc of p that preoom_stacks_maybe_sampled() let through: takes p's
 * record (if sampled) off its site. */
void preoom_stacks_free(void *p);
/* A realloc that failed: put back the record preoom_stacks_free just took for p. */
void preoom_stacks_restore(void *p);
/* Reset the thread's countdown after fork or at thread start. */
int64_t preoom_stacks_next_countdown(void);
/* Append the call-site part of the report to fd: `, "stacks": {...}` (see stacks.c); nothing
 * when stacks are off. 0 or -errno. report.c is its one caller. */
int preoom_stacks_write_report(int fd);
void preoom_stacks_atfork_prepare(void);
void preoom_stacks_atfork_parent(void);
void preoom_stacks_atfork_child(void);

/* Pure parts, for the unit tests. */
uint64_t preoom_xorshift64(uint64_t *state);
double preoom_ln(double x);
double preoom_one_minus_exp_neg(double x);
/* Bytes until the next sample: exponential with the given mean, >= 1. */
int64_t preoom_sample_draw(uint64_t *state, uint64_t mean_bytes);
/* Unbiased weights of a sampled allocation of `bytes`: bytes / p and 1 / p, p = 1-e^(-bytes/S);
 * the count in 1/PREOOM_COUNT_ONE allocations. */
#define PREOOM_COUNT_ONE 1024
void preoom_sample_weight(uint64_t bytes, uint64_t mean_bytes, uint64_t *w_bytes,
                          uint64_t *w_count);
/* Hash of a stack's frames (never 0), the key of the lock-free site index. */
uint64_t preoom_stack_hash(const uintptr_t *frames, int n);
/* A counting filter of sampled pointers: 1 << bits one-byte counters, its size kept beside
 * them so a reader that loaded one filter pointer always indexes that filter. */
typedef struct preoom_pfilter {
    unsigned bits;
    uint8_t counts[];
} preoom_pfilter_t;
preoom_pfilter_t *preoom_pfilter_new(unsigned bits);
void preoom_pfilter_add(preoom_pfilter_t *f, uintptr_t p);
void preoom_pfilter_del(preoom_pfilter_t *f, uintptr_t p);
static inline size_t preoom_pfilter_index(unsigned bits, uintptr_t p)
{
    return (size_t)(((uint64_t)p * 0x9E3779B97F4A7C15ULL) >> (64 - bits));
}
/* 0: p is certainly not in the filter. */
static inline int preoom_pfilter_maybe(const preoom_pfilter_t *f, uintptr_t p)
{
    return __atomic_load_n(&f->counts[preoom_pfilter_index(f->bits, p)], __ATOMIC_RELAXED) != 0;
}
/* The pointer map and its filters are split in shards by the 64 MiB region a pointer lies
 * in (stacks.c says why). Each shard's filter (NULL until the shard records a pointer) is read
 * by the free hook inline, so most frees are answered "not sampled" by one load, without a
 * call. A filter is replaced by a larger one as its shard fills, so it is loaded once per
 * question. */
#define PREOOM_SHARD_BITS 6
#define PREOOM_SHARD_REGION_SHIFT 26
extern preoom_pfilter_t *preoom_stacks_pfilters[1 << PREOOM_SHARD_BITS];
static inline unsigned preoom_stacks_shard(uintptr_t p)
{
    return (unsigned)(((uint64_t)(p >> PREOOM_SHARD_REGION_SHIFT) * 0x9E3779B97F4A7C15ULL) >>
                      (64 - PREOOM_SHARD_BITS));
}
static inline int preoom_stacks_maybe_sampled(const void *p)
{
    uintptr_t u = (uintptr_t)p;
    const preoom_pfilter_t *f =
        __atomic_load_n(&preoom_stacks_pfilters[preoom_stacks_shard(u)], __ATOMIC_ACQUIRE);
    return f && preoom_pfilter_maybe(f, u);
}
typedef struct preoom_pmap_entry {
    uintptr_t ptr;      /* 0 = empty slot */
    void *site;
    uint64_t bytes, count;
    uint64_t req;       /* requested bytes (weighted as bytes is) */
} preoom_pmap_entry_t;
typedef struct preoom_pmap {
    preoom_pmap_entry_t *slots;
    size_t cap, used;
} preoom_pmap_t;
/* Insert or replace (0 or -ENOMEM); take = find and remove (1 found, 0 not). Arena memory. */
int preoom_pmap_put(preoom_pmap_t *m, const preoom_pmap_entry_t *e);
int preoom_pmap_take(preoom_pmap_t *m, uintptr_t p, preoom_pmap_entry_t *out);

/* ---- unwind.c: the only user of libunwind; the loaded modules --------------------------- */
void preoom_unwind_init(void);
/* Return addresses of the caller's stack, innermost first, libpreoom.so's own frames
 * dropped; at most max_frames. *truncated is set when the stack was deeper. Never call with
 * the site lock held. */
int preoom_unwind(uintptr_t *frames, int max_frames, int *truncated);
/* libunwind keeps a pipe open for its memory checks and reads and writes a byte through it
 * on many unwinds. These are its two descriptors (-1 until unwind.c found them, and again
 * once given up): the hooks keep a program's descriptor sweeps off them (hooks.c). */
extern int preoom_unwind_fds[2];
static inline int preoom_unwind_owns_fd(int fd)
{
    return fd >= 0 && (fd == __atomic_load_n(&preoom_unwind_fds[0], __ATOMIC_RELAXED) ||
                       fd == __atomic_load_n(&preoom_unwind_fds[1], __ATOMIC_RELAXED));
}
/* The program is putting something of its own at one of those numbers (dup2 onto it): no
 * unwinding from now on (after waiting out the unwinds under way), one line to say so. */
void preoom_unwind_give_up(const char *why);
/* libunwind made its pipe (fds, from the pipe2 hook): moved to the top and remembered. */
int preoom_unwind_pipe_made(int fds[2]);
/* libunwind closes one of its own pipe's ends (the close hook, inside our walk). */
void preoom_unwind_pipe_closed(int fd);
/* The current stack with each frame's stack pointer (the caller's own frames included),
 * by libunwind's slow cursor walk; the frame count. */
int preoom_unwind_sp(uintptr_t *ips, uintptr_t *sps, int max_frames);
/* Record every loaded module not yet known (dl_iterate_phdr: takes the loader lock). */
void preoom_modules_refresh(void);
/* 1 when every frame lies in a recorded module. */
int preoom_modules_cover(const uintptr_t *frames, int n);
/* Refresh, then write `"modules": [...]` (every module ever recorded). 0 or -errno. */
int preoom_modules_write_json(int fd);
void preoom_unwind_atfork_prepare(void);
void preoom_unwind_atfork_parent(void);
void preoom_unwind_atfork_child(void);

/* ---- dlsnap.c: the loaded objects, copied before fork for the child's unwinder -------- */
struct dl_phdr_info;
extern _Atomic int preoom_dlsnap_child;  /* a fork child, the loader's lock not proven free */
void preoom_dlsnap_take(void);           /* fork prepare (stacks on) */
void preoom_dlsnap_atfork_child(void);
int preoom_dlsnap_iterate(int (*cb)(struct dl_phdr_info *, size_t, void *), void *data);
/* preoom's own walk of the loaded objects: the copy in a fork child whose loader lock is not
 * proven free, the real dl_iterate_phdr otherwise (never the exported hook). */
int preoom_dlsnap_walk(int (*cb)(struct dl_phdr_info *, size_t, void *), void *data);

/* ---- real.c: the real functions behind the wrappers ------------------------------------ */
/* malloc_trim of the allocator below us (0 when it has none). */
int preoom_real_malloc_trim(size_t pad);
/* The allocator in charge gives its free memory back: jemalloc's arenas purged
 * (mallctl "arena.<all>.purge") or tcmalloc's free pages released
 * (MallocExtension_ReleaseFreeMemory); both found at start-up, never linked. Returns which was
 * asked, 0 when the allocator in charge is neither (glibc: malloc_trim is its way), or -errno
 * from mallctl. Agent thread only: never from inside a hook (both take the allocator's locks). */
#define PREOOM_PURGE_JEMALLOC 1
#define PREOOM_PURGE_TCMALLOC 2
int preoom_real_purge(void);
/* The loader's real dl_iterate_phdr (the one after ours in the lookup order). */
int preoom_real_iterate_phdr(int (*cb)(struct dl_phdr_info *, size_t, void *), void *data);
/* 1 once the real symbols are resolved. */
int preoom_hooks_ready(void);
/* The library whose malloc is first in the global scope when it is not ours (an allocator
 * preloaded before libpreoom.so): the malloc family is then not counted. NULL otherwise. */
const char *preoom_hooks_shadowed_by(void);

/* ---- hooks.c: the wrappers -------------------------------------------------------------- */
/* Resolve and read the settings the hooks depend on (init.c calls it first). */
void preoom_hooks_init(void);

#endif

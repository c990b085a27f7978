/* preoom.h — the in-app API of preoom: give memory back when asked, instead of dying.
 *
 * A program registers release callbacks; when the arbiter preoomd sees memory pressure
 * coming and ranks this process first, the preload's agent thread calls them (never in a
 * signal handler, never while a preoom lock is held), runs malloc_trim(0), and answers the
 * arbiter with the bytes released. A program may also read the pressure level the arbiter
 * last published and its own totals, and say it is *more* willing to be chosen.
 *
 * Without the preload the same program builds and runs: every function here is an inline
 * wrapper around a weak reference to the library's implementation, and does nothing
 * (returning -ENOSYS, or 0 for the queries) when libpreoom.so is not loaded. This needs a
 * dynamically linked program (Debian builds PIE by default); in a static binary the preload
 * is never loaded anyway and the calls always do nothing.
 *
 * Version: PREOOM_API_VERSION; the library reports its own with preoom_api_version().
 */
#ifndef PREOOM_H
#define PREOOM_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PREOOM_API_VERSION 2

/* How hard the arbiter asks, in the spirit of Android's onTrimMemory. */
typedef enum preoom_level {
    PREOOM_LEVEL_NONE = 0,
    PREOOM_LEVEL_MODERATE = 1, /* pressure is building: drop what is cheap to rebuild */
    PREOOM_LEVEL_CRITICAL = 2, /* the next step is a signal: drop everything you can */
    PREOOM_LEVEL_COMPLETE = 3, /* last call before termination: keep only what you need */
} preoom_level_t;

/* A release callback: free up to target_bytes (more is welcome) at the given level and
 * return the bytes really freed, which may be more or less than asked (the contract of
 * sqlite3_release_memory). It runs on preoom's agent thread; it may allocate and free, and
 * must synchronise with the app's other threads itself. */
typedef size_t (*preoom_release_fn)(preoom_level_t level, size_t target_bytes, void *ctx);

/* The process's own totals, in bytes, as of the agent's last measurement. */
typedef struct preoom_stats_s {
    uint64_t committed;      /* asked for and not given back: malloc + mmap + brk */
    uint64_t touched;        /* really backed: RssAnon + VmSwap */
    uint64_t exposure;       /* committed - touched, where positive */
    uint64_t slack;          /* touched - live malloc bytes, where positive */
    uint64_t peak_committed;
    uint64_t peak_touched;
    uint64_t malloc_bytes, mmap_bytes, brk_bytes;
} preoom_stats_t;

/* The implementations, exported by libpreoom.so. Call the wrappers below instead. */
extern int preoom_impl_on_release(preoom_release_fn fn, void *ctx) __attribute__((weak));
extern int preoom_impl_off_release(preoom_release_fn fn, void *ctx) __attribute__((weak));
extern int preoom_impl_pressure(void) __attribute__((weak));
extern int preoom_impl_stats(preoom_stats_t *out) __attribute__((weak));
extern int preoom_impl_hint(int adj) __attribute__((weak));
extern int preoom_impl_api_version(void) __attribute__((weak));
extern int preoom_impl_reclaimable(size_t bytes) __attribute__((weak)); /* API 2 */

/* Register fn(ctx). Callbacks run in the order registered. Returns 0, -EEXIST if the same
 * (fn, ctx) pair is registered already, -ENOSPC past 64 callbacks, -EINVAL for a NULL fn,
 * or -ENOSYS without the preload. */
static inline int preoom_on_release(preoom_release_fn fn, void *ctx)
{
    return preoom_impl_on_release ? preoom_impl_on_release(fn, ctx) : -ENOSYS;
}

/* Unregister (fn, ctx). When it returns, fn is not running and will not run again, unless
 * called from within a callback (then the current run finishes). Returns 0, -ENOENT, or
 * -ENOSYS without the preload. */
static inline int preoom_off_release(preoom_release_fn fn, void *ctx)
{
    return preoom_impl_off_release ? preoom_impl_off_release(fn, ctx) : -ENOSYS;
}

/* The pressure level the arbiter last published for this registry (a preoom_level_t), or
 * PREOOM_LEVEL_NONE when there is no arbiter, no registry or no preload. */
static inline preoom_level_t preoom_pressure(void)
{
    return preoom_impl_pressure ? (preoom_level_t)preoom_impl_pressure() : PREOOM_LEVEL_NONE;
}

/* Fill *out with this process's totals. Returns 0, or -ENOSYS (and zeroes) without the
 * preload. */
static inline int preoom_stats(preoom_stats_t *out)
{
    if (preoom_impl_stats)
        return preoom_impl_stats(out);
    if (out) {
        preoom_stats_t zero = {0, 0, 0, 0, 0, 0, 0, 0, 0};
        *out = zero;
    }
    return -ENOSYS;
}

/* Say this process is more willing to be chosen: adj 0..1000 is added to its badness like
 * the kernel's oom_score_adj. It can only be raised: a lower value than the current one is
 * refused with -EPERM (protection belongs to the arbiter's configuration). Returns 0,
 * -EINVAL out of range, -ENOSYS without the preload. */
static inline int preoom_hint(int adj)
{
    return preoom_impl_hint ? preoom_impl_hint(adj) : -ENOSYS;
}

/* Say how much this process could free if asked (a cache's size, say), 0 for "do not know".
 * preoomd asks the processes that can give first, largest first, and sizes each ask by it;
 * keep it roughly current (call it when the cache grows or shrinks by a lot). Returns 0, or
 * -ENOSYS without the preload (or with a preload older than API 2). Since API 2. */
static inline int preoom_reclaimable(size_t bytes)
{
    return preoom_impl_reclaimable ? preoom_impl_reclaimable(bytes) : -ENOSYS;
}

/* The loaded library's API version, or 0 without the preload. */
static inline int preoom_api_version(void)
{
    return preoom_impl_api_version ? preoom_impl_api_version() : 0;
}

#ifdef __cplusplus
}
#endif

#endif

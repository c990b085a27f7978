/* preload/record.h — what the wrappers of hooks.c record, inlined into each of them: the size
 * of a block, the per-thread counts, the byte-sampling countdown of the call-site recorder,
 * and the fast path's counting. Included by hooks.c only, after its two flags.
 * Must never: call the allocator it counts, take a lock, or make a system call on the common
 * path; __builtin_return_address and __builtin_dwarf_cfa here answer for the exported hook
 * they are inlined into, so every function that reads them is always inlined.
 */
#ifndef PREOOM_RECORD_H
#define PREOOM_RECORD_H

#include "real.h"

extern int preoom_hooks_stacks_on PREOOM_HIDDEN;
extern int preoom_hooks_fast PREOOM_HIDDEN;

/* ---- counting helpers ------------------------------------------------------------------ */
/* The size of a block of an allocator other than glibc's, or 0 for "count nothing". Its
 * malloc_usable_size is foreign code called from inside a hook, and it may allocate:
 * tcmalloc's tc_malloc_size builds its MallocExtension with operator new on first use, which
 * comes back to our _Znwm, which asks the size again, for ever. A hook entered while this
 * thread is inside it (or inside any other foreign call of ours) counts nothing; that
 * allocation is the allocator's own, and never freed by the program. */
static __attribute__((noinline)) size_t foreign_usable(void *p)
{
    usable_fn u = REAL(usable);
    if (preoom_alloc_shadowed || preoom_tls.in_foreign || !u)
        return 0;
    preoom_tls.in_foreign++;
    size_t n = u(p);
    preoom_tls.in_foreign--;
    return n;
}

/* `g` is preoom_below_glibc, read once by the caller: the compiler would otherwise read
 * it again after every call into the allocator. */
static inline size_t usable_size(int g, void *p)
{
    return PREOOM_LIKELY(g) ? glibc_usable(p) : foreign_usable(p);
}

static inline size_t usable_of(void *p)
{
    return p ? usable_size(preoom_below_glibc, p) : 0;
}

/* Around calls into the real allocator: see preoom_below_glibc. */
#define ALLOC_ENTER(g)                                                                    \
    do {                                                                                  \
        if (PREOOM_UNLIKELY(!(g)))                                                        \
            preoom_tls.in_alloc++;                                                        \
    } while (0)
#define ALLOC_LEAVE(g)                                                                    \
    do {                                                                                  \
        if (PREOOM_UNLIKELY(!(g)))                                                        \
            preoom_tls.in_alloc--;                                                        \
    } while (0)

/* Where an exported hook was called from: its return address and the stack pointer it
 * returns to (the caller's, just after the call), the key of stacks.c's stack cache. Read
 * only on the sampling branch, and only in functions that are always inlined into the
 * exported ones: inlined, both builtins answer for the function they are inlined into (GCC's
 * documented behaviour), which is the hook the program called. Reading them there, not
 * passing them down, keeps them off the common path: passed as arguments, GCC kept them in
 * two more saved registers on every malloc. */
#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Byte sampling for the call-site tables: each allocation spends its size from the thread's
 * countdown; the one that runs it out is recorded (stacks.c draws the next countdown). */
ALWAYS_INLINE void sample(void *p, size_t n, size_t req)
{
    /* Never while guard is set: our own slow paths (and libunwind inside them) allocate,
     * and those allocations are counted but must not recurse into the recorder. */
    if (PREOOM_UNLIKELY(preoom_hooks_stacks_on) && !preoom_tls.guard) {
        preoom_tls.sample_countdown -= (int64_t)n;
        if (preoom_opt.stacks == PREOOM_STACKS_ALL || preoom_tls.sample_countdown < 0)
            preoom_stacks_alloc(p, n, req, (uintptr_t)__builtin_return_address(0),
                                (uintptr_t)__builtin_dwarf_cfa());
    }
}

/* req: the size the program asked for (the call sites report it beside the usable size). */
ALWAYS_INLINE void counted_alloc(int g, void *p, size_t req, enum preoom_call call)
{
    preoom_tls.inner_hit = 1;
    if (!p) {
        preoom_account_call(call);
        return;
    }
    size_t n = usable_size(g, p);
    if (PREOOM_UNLIKELY(!g) && !n) {
        preoom_account_call(call); /* see foreign_usable */
        return;
    }
    preoom_account_malloc((int64_t)n, call);
    sample(p, n, req);
}

/* Before the real free: what is about to go. */
static inline size_t counted_free_prepare(int g, void *p)
{
    preoom_tls.inner_hit = 1;
    size_t n = usable_size(g, p);
    if (PREOOM_UNLIKELY(preoom_hooks_stacks_on) && preoom_stacks_maybe_sampled(p))
        preoom_stacks_free(p);
    return n;
}

/* ---- the fast path ---------------------------------------------------------------------- */
/* The common case in one flag, set once at start-up and never changed: glibc's malloc below
 * us, call stacks off, the real functions known. Its hooks read the size inline and count
 * after the real call with nothing to keep across it but the pointer; the rare turns (the
 * thread's first count, a new peak, NULL) are calls to functions of their own in tail
 * position, so the common path saves no register. free counts before it jumps to the real
 * free. Every other case takes the general hooks below. */
/* An owner-only counter bumped by one add to memory, where a relaxed load and store would be
 * two moves around an add: other threads only ever read it (relaxed loads), and an aligned
 * 8-byte store is never seen torn on x86-64. Not a locked instruction. */
static inline void owner_add(void *counter, int64_t v)
{
#if defined(__x86_64__)
    __asm__("addq %1, %0" : "+m"(*(int64_t *)counter) : "er"(v));
#else
    _Atomic int64_t *c = counter;
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
#endif
}

static inline void owner_sub(void *counter, int64_t v)
{
#if defined(__x86_64__)
    __asm__("subq %1, %0" : "+m"(*(int64_t *)counter) : "er"(v));
#else
    owner_add(counter, -v);
#endif
}

static __attribute__((noinline)) void *fast_rare(void *p, size_t n, enum preoom_call call)
{
    if (p)
        preoom_account_malloc((int64_t)n, call); /* first count of a thread, or an exited one */
    else
        preoom_account_call(call);
    return p;
}

static __attribute__((noinline)) void *fast_peak(void *p, int64_t now)
{
    preoom_account_peak_check(now);
    return p;
}

ALWAYS_INLINE void *fast_count(void *p, enum preoom_call call)
{
    preoom_tls.inner_hit = 1;
    preoom_tblock_t *b = preoom_tls.block;
    if (PREOOM_UNLIKELY(!p || !b))
        return fast_rare(p, p ? glibc_usable(p) : 0, call);
    int64_t now = atomic_load_explicit(&b->malloc_bytes, memory_order_relaxed) +
                  (int64_t)glibc_usable(p);
    atomic_store_explicit(&b->malloc_bytes, now, memory_order_relaxed);
    owner_add(&b->calls[call], 1);
    if (PREOOM_UNLIKELY(now > preoom_tls.peak_mark))
        return fast_peak(p, now);
    return p;
}

#endif

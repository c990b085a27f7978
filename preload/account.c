/* preload/account.c — per-thread counters, folded into per-process totals.
 *
 * The hot path (internal.h: preoom_account_malloc) adds to a block only its own thread
 * writes, through relaxed atomics that compile to plain loads and stores: no lock, no locked
 * instruction, no shared cache line. Whoever needs the totals sums the blocks. Blocks are
 * never freed: when a thread exits its block goes back to the pool with its counts, and the
 * next new thread adopts it and keeps adding, so the sums stay right without any folding.
 * The blocks themselves, and their hand-over, are thread.c's. Knows nothing of interposition
 * nor of the call-site recorder; the unit tests link it directly.
 */
#include <string.h>

#include "internal.h"

preoom_global_t preoom_g;

int preoom_account_init(void)
{
    return preoom_thread_init();
}

/* The first count of a thread: its block from thread.c, and its first peak check set one
 * check distance above what the block (perhaps an exited thread's) holds. */
preoom_tblock_t *preoom_account_thread_block(void)
{
    preoom_tblock_t *b = preoom_thread_block();
    if (b)
        preoom_tls.peak_mark = atomic_load_explicit(&b->malloc_bytes, memory_order_relaxed) +
                               PREOOM_PEAK_CHECK_BYTES;
    return b;
}

/* The slow paths' view of committed memory: the same sum the agent publishes. */
static uint64_t committed_now(void)
{
    preoom_totals_t t;
    preoom_account_sum(&t);
    return t.committed;
}

static void raise_to(_Atomic uint64_t *peak, uint64_t v)
{
    uint64_t cur = atomic_load_explicit(peak, memory_order_relaxed);
    while (v > cur &&
           !atomic_compare_exchange_weak_explicit(peak, &cur, v, memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

/* Peaks between agent ticks: a thread whose own net growth passed PREOOM_PEAK_CHECK_BYTES
 * sums every block once, so a spike that comes and goes within an interval is still seen
 * to within about that distance per thread. */
void preoom_account_peak_check(int64_t now)
{
    preoom_tls.peak_mark = now + PREOOM_PEAK_CHECK_BYTES;
    raise_to(&preoom_g.peak_committed, committed_now());
}

void preoom_account_mmap(int64_t delta)
{
    if (delta == 0)
        return;
    atomic_fetch_add_explicit(&preoom_g.mmap_bytes, delta, memory_order_relaxed);
    if (delta > 0)
        raise_to(&preoom_g.peak_committed, committed_now());
}

void preoom_account_brk(int64_t delta)
{
    if (delta == 0)
        return;
    atomic_fetch_add_explicit(&preoom_g.brk_bytes, delta, memory_order_relaxed);
    if (delta > 0)
        raise_to(&preoom_g.peak_committed, committed_now());
}

void preoom_account_sum(preoom_totals_t *t)
{
    memset(t, 0, sizeof *t);
    int64_t m = atomic_load_explicit(&preoom_g.exited_malloc_bytes, memory_order_relaxed);
    for (int k = 0; k < PREOOM_CALL_COUNT; k++)
        t->calls[k] = atomic_load_explicit(&preoom_g.exited_calls[k], memory_order_relaxed);
    for (preoom_tblock_t *b = preoom_thread_blocks(); b; b = b->next) {
        m += atomic_load_explicit(&b->malloc_bytes, memory_order_relaxed);
        for (int k = 0; k < PREOOM_CALL_COUNT; k++)
            t->calls[k] += atomic_load_explicit(&b->calls[k], memory_order_relaxed);
    }
    int64_t mm = atomic_load_explicit(&preoom_g.mmap_bytes, memory_order_relaxed);
    int64_t br = atomic_load_explicit(&preoom_g.brk_bytes, memory_order_relaxed);
    /* Frees of memory we never saw allocated (other allocators, memory from before the
     * preload) can make a sum negative: never report less than nothing. */
    t->malloc_bytes = (uint64_t)(m > 0 ? m : 0);
    t->mmap_bytes = (uint64_t)(mm > 0 ? mm : 0);
    t->brk_bytes = (uint64_t)(br > 0 ? br : 0);
    t->committed = t->malloc_bytes + t->mmap_bytes + t->brk_bytes;
}

void preoom_account_finish(preoom_totals_t *t, uint64_t rss_anon, uint64_t swap)
{
    t->rss_anon = rss_anon;
    t->swap = swap;
    t->touched = rss_anon + swap;
    raise_to(&preoom_g.peak_committed, t->committed);
    raise_to(&preoom_g.peak_touched, t->touched);
    t->peak_committed = atomic_load_explicit(&preoom_g.peak_committed, memory_order_relaxed);
    t->peak_touched = atomic_load_explicit(&preoom_g.peak_touched, memory_order_relaxed);
    t->slack = t->touched > t->malloc_bytes ? t->touched - t->malloc_bytes : 0;
    t->exposure = t->committed > t->touched ? t->committed - t->touched : 0;
}

/* The child of fork is one thread (thread.c has handed the other threads' blocks back). The
 * heap it inherited is really its own (a copy), so the byte counts stay; the call counts and
 * peaks start again so the child reports what it did itself. */
void preoom_account_atfork_child(void)
{
    for (preoom_tblock_t *b = preoom_thread_blocks(); b; b = b->next)
        for (int k = 0; k < PREOOM_CALL_COUNT; k++)
            atomic_store_explicit(&b->calls[k], 0, memory_order_relaxed);
    for (int k = 0; k < PREOOM_CALL_COUNT; k++)
        atomic_store_explicit(&preoom_g.exited_calls[k], 0, memory_order_relaxed);
    uint64_t c = committed_now();
    atomic_store_explicit(&preoom_g.peak_committed, c, memory_order_relaxed);
    atomic_store_explicit(&preoom_g.peak_touched, 0, memory_order_relaxed);
}

/* preload/account.c — per-thread counters, folded into per-process totals.
 *
 * The hot path (internal.h: preoom_account_malloc) adds to a block only its own thread
 * writes, through relaxed atomics that compile to plain loads and stores: no lock, no locked
 * instruction, no shared cache line. Whoever needs the totals sums the blocks. Blocks are
 * never freed: when a thread exits its block goes back to the pool with its counts, and the
 * next new thread adopts it and keeps adding, so the sums stay right without any folding.
 * Knows nothing of interposition; the unit tests link it directly.
 */
#include <pthread.h>
#include <string.h>

#include "internal.h"

__thread preoom_tstate_t preoom_tls __attribute__((tls_model("initial-exec")));
preoom_global_t preoom_g;

static preoom_tblock_t *_Atomic blocks_head;
static pthread_key_t exit_key;
static int exit_key_ok;

static void thread_exit(void *arg)
{
    preoom_tblock_t *b = arg;
    /* Later frees on this thread (other destructors) go to the process-wide counters. */
    preoom_tls.block = NULL;
    preoom_tls.exited = 1;
    atomic_store_explicit(&b->owned, 0, memory_order_release);
}

int preoom_account_init(void)
{
    if (exit_key_ok)
        return 0;
    if (pthread_key_create(&exit_key, thread_exit) != 0)
        return -1;
    exit_key_ok = 1;
    return 0;
}

preoom_tblock_t *preoom_account_thread_block(void)
{
    if (preoom_tls.exited || preoom_tls.guard)
        return NULL;
    preoom_tls.guard = 1;
    preoom_tblock_t *b;
    for (b = atomic_load_explicit(&blocks_head, memory_order_acquire); b; b = b->next) {
        int expect = 0;
        if (atomic_load_explicit(&b->owned, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_strong_explicit(&b->owned, &expect, 1, memory_order_acquire,
                                                    memory_order_relaxed))
            break;
    }
    if (!b) {
        /* Never freed, and its type is cache-line aligned where the arena gives 16 bytes. */
        char *raw = preoom_arena_alloc(sizeof *b + PREOOM_CACHE_LINE - 1);
        b = raw ? (preoom_tblock_t *)(void *)(((uintptr_t)raw + PREOOM_CACHE_LINE - 1) &
                                              ~(uintptr_t)(PREOOM_CACHE_LINE - 1))
                : NULL;
        if (!b) {
            preoom_tls.guard = 0;
            return NULL;
        }
        atomic_store_explicit(&b->owned, 1, memory_order_relaxed);
        preoom_tblock_t *head = atomic_load_explicit(&blocks_head, memory_order_relaxed);
        do {
            b->next = head;
        } while (!atomic_compare_exchange_weak_explicit(&blocks_head, &head, b,
                                                        memory_order_release,
                                                        memory_order_relaxed));
    }
    preoom_tls.block = b;
    preoom_tls.peak_mark = atomic_load_explicit(&b->malloc_bytes, memory_order_relaxed) +
                           PREOOM_PEAK_CHECK_BYTES;
    preoom_tls.sample_countdown = preoom_stacks_next_countdown();
    /* Keys below PTHREAD_KEY_2NDLEVEL_SIZE live inside the thread: this does not allocate. */
    if (exit_key_ok)
        pthread_setspecific(exit_key, b);
    preoom_tls.guard = 0;
    return b;
}

preoom_tblock_t *preoom_account_blocks(void)
{
    return atomic_load_explicit(&blocks_head, memory_order_acquire);
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
    for (preoom_tblock_t *b = atomic_load_explicit(&blocks_head, memory_order_acquire); b;
         b = b->next) {
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

/* The child of fork is one thread. The heap it inherited is really its own (a copy), so the
 * byte counts stay; every other thread's block is free for reuse, and the call counts and
 * peaks start again so the child reports what it did itself. */
void preoom_account_atfork_child(void)
{
    preoom_tblock_t *mine = preoom_tls.block;
    for (preoom_tblock_t *b = atomic_load_explicit(&blocks_head, memory_order_relaxed); b;
         b = b->next) {
        for (int k = 0; k < PREOOM_CALL_COUNT; k++)
            atomic_store_explicit(&b->calls[k], 0, memory_order_relaxed);
        if (b != mine) {
            atomic_store_explicit(&b->owned, 0, memory_order_relaxed);
            /* A thread fork left behind may have been inside libunwind. */
            atomic_store_explicit(&b->in_unwind, 0, memory_order_relaxed);
        }
    }
    for (int k = 0; k < PREOOM_CALL_COUNT; k++)
        atomic_store_explicit(&preoom_g.exited_calls[k], 0, memory_order_relaxed);
    uint64_t c = committed_now();
    atomic_store_explicit(&preoom_g.peak_committed, c, memory_order_relaxed);
    atomic_store_explicit(&preoom_g.peak_touched, 0, memory_order_relaxed);
}

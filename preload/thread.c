/* preload/thread.c — the per-thread state every module of the preload shares: the
 * thread-local word (preoom_tls) and the pool of per-thread blocks, each written only by the
 * thread that owns it and summed or scanned by anyone. A block holds the counters of
 * account.c and the recorder's per-thread state (stacks.c, unwind.c) side by side; this file
 * hands blocks out and lists them, and knows what neither side does with its part.
 * Blocks are never freed: when a thread exits its block goes back to the pool with what it
 * holds, and the next new thread adopts it, so sums stay right without folding.
 * Must never: allocate through the wrapped malloc (blocks come from arena.c), call into the
 * modules that use the blocks (they register a start hook instead), or take a lock.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "internal.h"

__thread preoom_tstate_t preoom_tls __attribute__((tls_model("initial-exec")));

static preoom_tblock_t *_Atomic blocks_head;
static pthread_key_t exit_key;
static int exit_key_ok;

/* What a module wants done when a thread takes a block (the recorder draws the thread's
 * first sampling countdown). Set at start-up, before any thread but the main one exists. */
#define START_HOOKS 4
static preoom_thread_start_fn start_hooks[START_HOOKS];

static void thread_exit(void *arg)
{
    preoom_tblock_t *b = arg;
    /* Later frees on this thread (other destructors) go to the process-wide counters. */
    preoom_tls.block = NULL;
    preoom_tls.exited = 1;
    atomic_store_explicit(&b->owned, 0, memory_order_release);
}

int preoom_thread_init(void)
{
    if (exit_key_ok)
        return 0;
    if (pthread_key_create(&exit_key, thread_exit) != 0)
        return -1;
    exit_key_ok = 1;
    return 0;
}

int preoom_thread_on_start(preoom_thread_start_fn fn)
{
    for (int i = 0; i < START_HOOKS; i++) {
        preoom_thread_start_fn cur = __atomic_load_n(&start_hooks[i], __ATOMIC_ACQUIRE);
        if (cur == fn)
            return 0;
        if (!cur) {
            __atomic_store_n(&start_hooks[i], fn, __ATOMIC_RELEASE);
            return 0;
        }
    }
    return -ENOSPC;
}

preoom_tblock_t *preoom_thread_block(void)
{
    if (preoom_tls.block)
        return preoom_tls.block;
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
    for (int i = 0; i < START_HOOKS; i++) {
        preoom_thread_start_fn fn = __atomic_load_n(&start_hooks[i], __ATOMIC_ACQUIRE);
        if (fn)
            fn(b);
    }
    /* Keys below PTHREAD_KEY_2NDLEVEL_SIZE live inside the thread: this does not allocate. */
    if (exit_key_ok)
        pthread_setspecific(exit_key, b);
    preoom_tls.guard = 0;
    return b;
}

preoom_tblock_t *preoom_thread_blocks(void)
{
    return atomic_load_explicit(&blocks_head, memory_order_acquire);
}

/* The child of fork is one thread: every block but its own is free for reuse. What a block
 * holds stays (the child's heap is a copy of the parent's); each module resets its own part
 * in its own atfork handler. */
void preoom_thread_atfork_child(void)
{
    preoom_tblock_t *mine = preoom_tls.block;
    for (preoom_tblock_t *b = atomic_load_explicit(&blocks_head, memory_order_relaxed); b;
         b = b->next)
        if (b != mine)
            atomic_store_explicit(&b->owned, 0, memory_order_relaxed);
}

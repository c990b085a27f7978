/* preload/callbacks.c — the app's release callbacks (preoom_on_release and _off_release in
 * include/preoom.h), and running them when the arbiter asks.
 *
 * Callbacks are kept in a fixed table under a mutex that is held only to change or copy the
 * table, never while a callback runs: a callback may allocate, free, or (un)register. They
 * run on the agent thread only. Kept apart from api.c so that the agent, which runs them,
 * does not depend on the public facade that depends on it. Never allocates.
 */
#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "internal.h"
#include "preoom.h"

#define MAX_CALLBACKS 64

struct callback { preoom_release_fn fn; void *ctx; };

static pthread_mutex_t cb_lock = PTHREAD_MUTEX_INITIALIZER;
static struct callback callbacks[MAX_CALLBACKS];
static int ncallbacks;
static _Atomic int running;             /* the agent is inside the callbacks */
static _Atomic pthread_t running_thread;

PREOOM_EXPORT int preoom_impl_on_release(preoom_release_fn fn, void *ctx)
{
    if (!fn)
        return -EINVAL;
    int rc = 0;
    pthread_mutex_lock(&cb_lock);
    for (int i = 0; i < ncallbacks; i++)
        if (callbacks[i].fn == fn && callbacks[i].ctx == ctx)
            rc = -EEXIST;
    if (rc == 0 && ncallbacks == MAX_CALLBACKS)
        rc = -ENOSPC;
    if (rc == 0)
        callbacks[ncallbacks++] = (struct callback){fn, ctx};
    pthread_mutex_unlock(&cb_lock);
    return rc;
}

PREOOM_EXPORT int preoom_impl_off_release(preoom_release_fn fn, void *ctx)
{
    int rc = -ENOENT;
    pthread_mutex_lock(&cb_lock);
    for (int i = 0; i < ncallbacks; i++) {
        if (callbacks[i].fn == fn && callbacks[i].ctx == ctx) {
            for (int j = i; j + 1 < ncallbacks; j++)
                callbacks[j] = callbacks[j + 1];
            ncallbacks--;
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&cb_lock);
    /* The contract: once off returns, fn is not running. Wait out a run in progress, unless
     * we are that run (a callback unregistering itself). */
    if (rc == 0 && !pthread_equal(atomic_load(&running_thread), pthread_self())) {
        while (atomic_load(&running)) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    return rc;
}

uint64_t preoom_callbacks_run(int level, uint64_t target_bytes)
{
    struct callback copy[MAX_CALLBACKS];
    pthread_mutex_lock(&cb_lock);
    int n = ncallbacks;
    for (int i = 0; i < n; i++)
        copy[i] = callbacks[i];
    atomic_store(&running_thread, pthread_self());
    atomic_store(&running, 1);
    pthread_mutex_unlock(&cb_lock);
    uint64_t freed = 0;
    for (int i = 0; i < n; i++) {
        /* Skip a callback unregistered by an earlier one in this same run. */
        int still = 0;
        pthread_mutex_lock(&cb_lock);
        for (int j = 0; j < ncallbacks; j++)
            if (callbacks[j].fn == copy[i].fn && callbacks[j].ctx == copy[i].ctx)
                still = 1;
        pthread_mutex_unlock(&cb_lock);
        if (!still)
            continue;
        size_t got = copy[i].fn((preoom_level_t)level, (size_t)target_bytes, copy[i].ctx);
        freed += got;
        preoom_log_verbose(1, "release callback %d freed %zu bytes (level %d, asked %llu)", i,
                           got, level, (unsigned long long)target_bytes);
    }
    atomic_store(&running, 0);
    return freed;
}


/* What the app says it could give if asked: published in the slot by the agent with the
 * number of callbacks, so the arbiter asks the processes that can give first, sized by it. */
static _Atomic uint64_t reclaimable;

void preoom_callbacks_set_reclaimable(uint64_t bytes)
{
    atomic_store(&reclaimable, bytes);
}

void preoom_callbacks_offer(uint64_t *ncb, uint64_t *bytes)
{
    pthread_mutex_lock(&cb_lock);
    *ncb = (uint64_t)ncallbacks;
    pthread_mutex_unlock(&cb_lock);
    *bytes = atomic_load(&reclaimable);
}

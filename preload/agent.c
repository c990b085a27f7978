/* preload/agent.c — the one background thread preoom adds to a process.
 *
 * Every PREOOM_INTERVAL_MS it measures touched memory from the kernel, sums the counters,
 * and publishes them to the process's registry slot. Between measurements it sleeps on the
 * slot's request word (a futex in shared memory), so the arbiter's release request wakes it
 * at once: it then runs the app's callbacks and malloc_trim and answers with the bytes
 * released. All measuring and publishing happens here, never on the allocation path. The
 * thread blocks every signal so that the host's signals reach the host's own threads. At exit
 * it writes the final report and gives the slot back; after fork the child claims a slot of
 * its own and starts its own agent.
 */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static preoom_reg_t reg = {.fd = -1};
static long slot_idx = -1;
static _Atomic int stopping;
static _Atomic int agent_running;
static _Atomic uint32_t local_wake;      /* futex word when there is no registry slot */
static pthread_mutex_t publish_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t last_answered;           /* request serial answered last */
static _Atomic int shut_down;
static _Atomic int64_t adj = -1;        /* see preoom_agent_adj; -1: PREOOM_ADJ's value */

uint64_t preoom_agent_adj(void)
{
    int64_t v = atomic_load_explicit(&adj, memory_order_relaxed);
    return v < 0 ? preoom_opt.adj : (uint64_t)v;
}

int preoom_agent_raise_adj(uint64_t v)
{
    /* Only ever more willing: a hint can raise adj, never lower it (two racing hints: the
     * higher stays). */
    int64_t cur = atomic_load_explicit(&adj, memory_order_relaxed);
    for (;;) {
        uint64_t eff = cur < 0 ? preoom_opt.adj : (uint64_t)cur;
        if (v < eff)
            return -EPERM;
        if (atomic_compare_exchange_weak_explicit(&adj, &cur, (int64_t)v, memory_order_relaxed,
                                                  memory_order_relaxed))
            return 0;
    }
}

static long futex(void *addr, int op, uint32_t val, const struct timespec *ts)
{
    return syscall(SYS_futex, addr, op, val, ts, NULL, 0);
}

static void registry_attach(void)
{
    if (strcmp(preoom_opt.registry, "off") == 0)
        return;
    const char *why = "";
    if (!reg.hdr) {
        int rc = preoom_reg_open(preoom_opt.registry, 1, preoom_opt.registry_slots,
                                 preoom_opt.registry_gid, 1, &reg, &why);
        if (rc != 0) {
            /* Another user's registry (a process of that user inherited LD_PRELOAD, or runs
             * under a shared environment): not a fault of this process, and said on every
             * exec and fork it would fill the program's output. Only when asked. */
            int foreign = rc == -EACCES || (rc == -EPERM && strstr(why, "another user"));
            if (foreign)
                preoom_log_verbose(1, "registry /dev/shm/preoom.%s: %s (%s); this process "
                                      "runs on, not registered",
                                   preoom_opt.registry, why, strerrordesc_np(-rc));
            else
                preoom_log_error("registry /dev/shm/preoom.%s: %s (%s); this process runs on, "
                                 "not registered",
                                 preoom_opt.registry, why, strerrordesc_np(-rc));
            return;
        }
        /* The mapping is all we use: the host should not find a descriptor of ours among
         * its own (programs count, list or close them). */
        syscall(SYS_close, reg.fd); /* raw: our own descriptor, not the program's close */
        reg.fd = -1;
    }
    uint64_t start = 0;
    char comm[17] = "";
    preoom_procself_start_time(&start);
    preoom_procself_comm(comm, sizeof comm);
    long idx = preoom_reg_claim(&reg, getpid(), start, preoom_opt.interval_ms, comm);
    if (idx < 0) {
        preoom_log_error("registry /dev/shm/preoom.%s is full (%llu slots); this process runs "
                         "on, not registered",
                         preoom_opt.registry, (unsigned long long)reg.slot_count);
        return;
    }
    slot_idx = idx;
    last_answered = 0;
    preoom_log_verbose(1, "registered in /dev/shm/preoom.%s, slot %ld", preoom_opt.registry,
                       idx);
}

void preoom_agent_measure(preoom_totals_t *t)
{
    uint64_t rss_anon = 0, swap = 0;
    preoom_account_sum(t);
    if (preoom_procself_touched(&rss_anon, &swap) != 0)
        rss_anon = swap = 0;
    preoom_account_finish(t, rss_anon, swap);
}

static void publish(void)
{
    preoom_totals_t t;
    preoom_agent_measure(&t);
    pthread_mutex_lock(&publish_lock);
    if (slot_idx >= 0 && !atomic_load(&stopping))
        preoom_reg_publish(&reg, slot_idx, &t, preoom_agent_adj());
    pthread_mutex_unlock(&publish_lock);
}

static uint64_t touched_now(void)
{
    uint64_t a = 0, s = 0;
    preoom_procself_touched(&a, &s);
    return a + s;
}

/* One request: callbacks, then malloc_trim, then the answer in the slot. */
static void answer(uint64_t req)
{
    struct preoom_slot *s = preoom_reg_slot(&reg, (uint64_t)slot_idx);
    uint64_t target = __atomic_load_n(&s->request_bytes, __ATOMIC_ACQUIRE);
    int level = (int)PREOOM_REQ_LEVEL(req);
    if (level == PREOOM_REQ_LEVEL_DUMP) {
        /* Not a release: `preoom report PID` asks for the report now. */
        preoom_totals_t t;
        preoom_agent_measure(&t);
        long written = preoom_stacks_dump_now(&t);
        __atomic_store_n(&s->answer_bytes, written > 0 ? (uint64_t)written : 0, __ATOMIC_RELAXED);
        __atomic_store_n(&s->answer_ns, preoom_now_ns(CLOCK_MONOTONIC), __ATOMIC_RELAXED);
        __atomic_store_n(&s->answer_serial, (uint64_t)PREOOM_REQ_SERIAL(req), __ATOMIC_RELEASE);
        last_answered = PREOOM_REQ_SERIAL(req);
        return;
    }
    uint64_t before = touched_now();
    uint64_t cb = preoom_callbacks_run(level, target);
    uint64_t mid = touched_now();
    if (preoom_opt.trim)
        preoom_real_malloc_trim(0);
    uint64_t after = preoom_opt.trim ? touched_now() : mid;
    uint64_t trim = mid > after ? mid - after : 0;
    /* The answer is what the system got back, measured, not what anyone says: the
     * callbacks' own figure is kept beside it, so the arbiter (and its log) can tell an app
     * that freed into malloc's arenas from one that really gave memory back. */
    uint64_t released = before > after ? before - after : 0;
    __atomic_store_n(&s->answer_callback_bytes, cb, __ATOMIC_RELAXED);
    __atomic_store_n(&s->answer_trim_bytes, trim, __ATOMIC_RELAXED);
    __atomic_store_n(&s->answer_bytes, released, __ATOMIC_RELAXED);
    __atomic_store_n(&s->answer_ns, preoom_now_ns(CLOCK_MONOTONIC), __ATOMIC_RELAXED);
    __atomic_store_n(&s->answers, __atomic_load_n(&s->answers, __ATOMIC_RELAXED) + 1,
                     __ATOMIC_RELAXED);
    __atomic_store_n(&s->answer_serial, (uint64_t)PREOOM_REQ_SERIAL(req), __ATOMIC_RELEASE);
    last_answered = PREOOM_REQ_SERIAL(req);
    preoom_log_verbose(1, "release request %u level %d for %llu bytes: callbacks %llu, trim "
                       "%llu, touched fell %llu",
                       (unsigned)PREOOM_REQ_SERIAL(req), level, (unsigned long long)target,
                       (unsigned long long)cb, (unsigned long long)trim,
                       (unsigned long long)released);
}

static void *agent_main(void *arg)
{
    (void)arg;
    prctl(PR_SET_NAME, "preoom-agent", 0, 0, 0);
    while (!atomic_load(&stopping)) {
        publish();
        uint64_t ms = preoom_opt.interval_ms;
        struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
        if (slot_idx >= 0) {
            struct preoom_slot *s = preoom_reg_slot(&reg, (uint64_t)slot_idx);
            uint32_t *w = preoom_slot_futex_word(s);
            uint32_t seen = __atomic_load_n(w, __ATOMIC_ACQUIRE);
            if (PREOOM_REQ_SERIAL(seen) == last_answered || PREOOM_REQ_SERIAL(seen) == 0)
                futex(w, FUTEX_WAIT, seen, &ts);
            if (atomic_load(&stopping))
                break;
            uint64_t req = __atomic_load_n(&s->request, __ATOMIC_ACQUIRE);
            if (PREOOM_REQ_SERIAL(req) != 0 && PREOOM_REQ_SERIAL(req) != last_answered) {
                answer(req);
                continue;  /* publish the new figures at once */
            }
        } else {
            futex(&local_wake, FUTEX_WAIT_PRIVATE, 0, &ts);
        }
    }
    atomic_store(&agent_running, 0);
    return NULL;
}

int preoom_agent_start(void)
{
    registry_attach();
    if (atomic_exchange(&agent_running, 1))
        return 0;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t th;
    int rc = pthread_create(&th, &attr, agent_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        atomic_store(&agent_running, 0);
        preoom_log_error("cannot start the agent thread (%s); touched memory is measured "
                         "only at exit",
                         strerrordesc_np(rc));
        return -rc;
    }
    return 0;
}

void preoom_agent_atfork_child(void)
{
    /* The parent's slot and agent are the parent's: this process is new to the registry.
     * The mapping is inherited and stays usable. */
    pthread_mutex_init(&publish_lock, NULL);
    slot_idx = -1;
    atomic_store(&agent_running, 0);
    atomic_store(&stopping, 0);
    atomic_store(&shut_down, 0);
    preoom_agent_start();
}

void preoom_agent_atfork_prepare(void) { pthread_mutex_lock(&publish_lock); }
void preoom_agent_atfork_parent(void) { pthread_mutex_unlock(&publish_lock); }

int preoom_agent_pressure(void)
{
    if (!reg.hdr)
        return 0;
    uint64_t p = __atomic_load_n(&reg.hdr->pressure, __ATOMIC_ACQUIRE);
    uint64_t at = __atomic_load_n(&reg.hdr->pressure_ns, __ATOMIC_RELAXED);
    /* An arbiter that stopped publishing is no longer a source of truth. */
    if (p > PREOOM_PRESSURE_COMPLETE || preoom_now_ns(CLOCK_MONOTONIC) - at > 30000000000ULL)
        return 0;
    return (int)p;
}

void preoom_agent_shutdown(void)
{
    if (atomic_exchange(&shut_down, 1))
        return;
    pthread_mutex_lock(&publish_lock);
    atomic_store(&stopping, 1);
    pthread_mutex_unlock(&publish_lock);
    if (slot_idx >= 0)
        futex(preoom_slot_futex_word(preoom_reg_slot(&reg, (uint64_t)slot_idx)), FUTEX_WAKE,
              1 << 30, NULL);
    futex(&local_wake, FUTEX_WAKE_PRIVATE, 1, NULL);
    preoom_totals_t t;
    preoom_agent_measure(&t);
    preoom_report_write(&t);
    if (slot_idx >= 0) {
        preoom_reg_publish(&reg, slot_idx, &t, preoom_agent_adj());
        preoom_reg_release(&reg, slot_idx);
        slot_idx = -1;
    }
}

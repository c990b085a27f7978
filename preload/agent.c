/* preload/agent.c — the one background thread preoom adds to a process.
 *
 * Every PREOOM_INTERVAL_MS it measures touched memory from the kernel, sums the counters,
 * and publishes them to the process's registry slot. Between measurements it sleeps on the
 * slot's request word (a futex in shared memory), so the arbiter's release request wakes it
 * at once: it then runs the app's callbacks, malloc_trim (glibc) or the purge of jemalloc
 * or tcmalloc, and answers with the bytes released. All measuring and publishing happens here, never on the allocation path. The
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
static _Atomic int64_t hint_adj = -1;   /* see preoom_agent_adj; -1: PREOOM_ADJ's value */

uint64_t preoom_agent_adj(void)
{
    int64_t v = atomic_load_explicit(&hint_adj, memory_order_relaxed);
    return v < 0 ? preoom_opt.adj : (uint64_t)v;
}

int preoom_agent_raise_adj(uint64_t v)
{
    /* Only ever more willing: a hint can raise adj, never lower it (two racing hints: the
     * higher stays). */
    int64_t cur = atomic_load_explicit(&hint_adj, memory_order_relaxed);
    for (;;) {
        uint64_t eff = cur < 0 ? preoom_opt.adj : (uint64_t)cur;
        if (v < eff)
            return -EPERM;
        if (atomic_compare_exchange_weak_explicit(&hint_adj, &cur, (int64_t)v, memory_order_relaxed,
                                                  memory_order_relaxed))
            return 0;
    }
}

static long futex(void *addr, int op, uint32_t val, const struct timespec *ts)
{
    return syscall(SYS_futex, addr, op, val, ts, NULL, 0);
}

static _Atomic int reg_bad;              /* the registry failed under us: never again */
static uint64_t named_adj = UINT64_MAX;  /* the adj our thread name proves, once named */

static void registry_attach(void)
{
    if (strcmp(preoom_opt.registry, "off") == 0 || atomic_load(&reg_bad))
        return;
    const char *why = "";
    if (!reg.hdr) {
        if (preoom_opt.registry_dir[0] && preoom_reg_set_dir(preoom_opt.registry_dir) != 0) {
            preoom_log_error("PREOOM_REGISTRY_DIR %s is not an absolute directory; this "
                             "process runs on, not registered", preoom_opt.registry_dir);
            return;
        }
        /* Before the first touch of any mapping: a file shrunk under us must not kill us. */
        preoom_bus_install();
        int rc = preoom_reg_open(preoom_opt.registry, PREOOM_REG_CREATE | PREOOM_REG_REPAIR,
                                 preoom_opt.registry_slots, preoom_opt.registry_gid, 1, &reg,
                                 &why);
        if (rc != 0) {
            /* A registry this process may not open (a process of another user inherited
             * LD_PRELOAD, or runs under a shared environment): not a fault of this process,
             * and said on every exec and fork it would fill the program's output. Only when
             * asked. A file at the path that is wrong (a squatter's, a stale one) is said. */
            int foreign = rc == -EACCES;
            if (foreign)
                preoom_log_verbose(1, "registry %s/preoom.%s: %s (%s); this process runs on, "
                                      "not registered",
                                   preoom_reg_dir(), preoom_opt.registry, why, strerrordesc_np(-rc));
            else
                preoom_log_error("registry %s/preoom.%s: %s (%s); this process runs on, not "
                                 "registered",
                                 preoom_reg_dir(), preoom_opt.registry, why, strerrordesc_np(-rc));
            return;
        }
        if (reg.event && strncmp(reg.event, "replaced", 8) == 0)
            preoom_log_error("registry %s: %s", reg.path, reg.event);
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
        /* A full registry is the operator's business, not every worker's stderr. */
        if (idx == -ENOSPC)
            preoom_log_verbose(1, "registry %s is full (%llu slots); this process runs on, "
                               "not registered", reg.path, (unsigned long long)reg.slot_count);
        else
            preoom_log_error("registry %s went bad while claiming a slot (%s); this process "
                             "runs on, not registered", reg.path, strerrordesc_np((int)-idx));
        return;
    }
    slot_idx = idx;
    last_answered = 0;
    named_adj = UINT64_MAX;
    preoom_log_verbose(1, "registered in %s, slot %ld", reg.path, idx);
}

/* The registry failed under us (truncated: SIGBUS caught): stop using it, say so once. */
static void registry_went_bad(void)
{
    if (slot_idx < 0)
        return;
    slot_idx = -1;
    if (!atomic_exchange(&reg_bad, 1))
        preoom_log_error("registry %s shrank under this process (truncated?); no longer "
                         "publishing to it, running on", reg.path);
}

/* Our thread's name proves which slot is ours and carries the adj hint (registry.h). */
static void name_self(uint64_t adj)
{
    if (slot_idx < 0 || adj == named_adj)
        return;
    char name[16];
    preoom_reg_proof_name((uint64_t)slot_idx, adj, name, sizeof name);
    prctl(PR_SET_NAME, name, 0, 0, 0);
    if (preoom_reg_set_agent(&reg, slot_idx, (uint64_t)syscall(SYS_gettid)) != 0)
        registry_went_bad();
    named_adj = adj;
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
    if (slot_idx >= 0 && !atomic_load(&stopping)) {
        uint64_t adj = preoom_agent_adj();
        /* The host may have installed its own SIGBUS handler since: ours goes back in front
         * (one system call per interval) and passes every other SIGBUS on to theirs. */
        preoom_bus_install();
        name_self(adj);
        if (slot_idx >= 0 && preoom_reg_publish(&reg, slot_idx, &t, adj) != 0) {
            registry_went_bad();
        } else if (slot_idx >= 0) {
            /* What the arbiter needs to ask well: whether asking can free anything, how much
             * the app thinks it could, and how long it needs to stop. */
            uint64_t ncb, bytes;
            preoom_callbacks_offer(&ncb, &bytes);
            preoom_reg_publish_offer(&reg, slot_idx, ncb, bytes, preoom_opt.term_grace_ms);
        }
    }
    pthread_mutex_unlock(&publish_lock);
}

static uint64_t touched_now(void)
{
    uint64_t a = 0, s = 0;
    preoom_procself_touched(&a, &s);
    return a + s;
}

/* One request: callbacks, then the allocator's trim or purge, then the answer in the slot. */
static void answer(uint64_t req, uint64_t target)
{
    int level = (int)PREOOM_REQ_LEVEL(req);
    preoom_answer_t a = {0, 0, 0, 0};
    last_answered = PREOOM_REQ_SERIAL(req);
    if (level == PREOOM_REQ_LEVEL_DUMP) {
        /* Not a release: `preoom report PID` asks for the report now. */
        preoom_totals_t t;
        preoom_agent_measure(&t);
        long written = preoom_report_dump_now(&t);
        a.bytes = written > 0 ? (uint64_t)written : 0;
        a.at_ns = preoom_now_ns(CLOCK_MONOTONIC);
        if (preoom_reg_answer(&reg, slot_idx, req, &a) != 0)
            registry_went_bad();
        return;
    }
    uint64_t before = touched_now();
    uint64_t cb = preoom_callbacks_run(level, target);
    uint64_t mid = touched_now();
    /* Then the allocator's own free memory: malloc_trim for glibc, a purge of its arenas
     * for jemalloc, a release of its free pages for tcmalloc (the one in charge has only one
     * of these). Each measured by the fall of touched memory around it. */
    uint64_t trim = 0, purge = 0, after = mid;
    if (preoom_opt.trim) {
        preoom_real_malloc_trim(0);
        uint64_t t = touched_now();
        trim = after > t ? after - t : 0;
        after = t;
    }
    int purged = 0;
    if (preoom_opt.purge) {
        purged = preoom_real_purge();
        if (purged != 0) {
            uint64_t t = touched_now();
            purge = after > t ? after - t : 0;
            after = t;
        }
    }
    /* The answer is what the system got back, measured, not what anyone says: the
     * callbacks' own figure is kept beside it, so the arbiter (and its log) can tell an app
     * that freed into malloc's arenas from one that really gave memory back. The slot has
     * one field for what the allocator gave back (ABI 2): malloc_trim's and the purge's
     * together; the log line tells them apart. */
    uint64_t released = before > after ? before - after : 0;
    a.bytes = released;
    a.callback_bytes = cb;
    a.trim_bytes = trim + purge;
    a.at_ns = preoom_now_ns(CLOCK_MONOTONIC);
    if (preoom_reg_answer(&reg, slot_idx, req, &a) != 0)
        registry_went_bad();
    static const char *const purge_names[] = {"no purge", "jemalloc purge", "tcmalloc release"};
    if (purged < 0)
        preoom_log_verbose(1, "release request: jemalloc's arena purge failed (%s)",
                           strerrordesc_np(-purged));
    preoom_log_verbose(1, "release request %u level %d for %llu bytes: callbacks %llu, trim "
                       "%llu, %s %llu, touched fell %llu",
                       (unsigned)PREOOM_REQ_SERIAL(req), level, (unsigned long long)target,
                       (unsigned long long)cb, (unsigned long long)trim,
                       purge_names[purged > 0 ? purged : 0], (unsigned long long)purge,
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
            uint64_t req = 0, bytes = 0;
            int pend = preoom_reg_pending(&reg, slot_idx, (uint32_t)last_answered, &req, &bytes);
            if (pend < 0) {
                registry_went_bad();
                continue;
            }
            /* The futex reads the word itself: on a truncated file it fails (EFAULT), it
             * does not fault, and the next publication notices. */
            if (pend == 0)
                futex(w, FUTEX_WAIT, (uint32_t)req, &ts);
            if (atomic_load(&stopping))
                break;
            pend = preoom_reg_pending(&reg, slot_idx, (uint32_t)last_answered, &req, &bytes);
            if (pend == 1) {
                answer(req, bytes);
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
    /* Except SIGBUS: a fault with it blocked kills the process outright, before our guard
     * (busguard.c) could turn a truncated registry into an error. */
    sigdelset(&all, SIGBUS);
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
    uint64_t p = 0, at = 0;
    if (!reg.hdr || atomic_load(&reg_bad) || preoom_reg_pressure(&reg, &p, &at, NULL) != 0)
        return 0;
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
        /* Guarded: a registry truncated by now costs nothing but these two stores. */
        if (preoom_reg_publish(&reg, slot_idx, &t,
                               preoom_agent_adj()) == 0)
            preoom_reg_release(&reg, slot_idx);
        slot_idx = -1;
    }
}

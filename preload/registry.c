/* preload/registry.c — the only file that maps the shared-memory registry. Linked into the
 * preload (claim, publish, release) and into the tools (open read-only or read-write,
 * snapshot, reap the slots of dead processes).
 *
 * Every byte of the file is untrusted: the header is checked before any slot is touched, the
 * file's length against the slot count, and a slot names a process only if pid and start time
 * still match /proc. Writers refuse a file they do not own. Never allocates (the tools'
 * callers own their buffers), never blocks on a lock: the seqlock and compare-and-swap are the
 * only synchronisation.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)

static int reg_path(const char *name, char *out, size_t size)
{
    char safe[64];
    if (preoom_parse_name(name, safe, sizeof safe) != 0)
        return -EINVAL;
    preoom_fmt(out, size, "/dev/shm/preoom.%s", safe);
    return 0;
}

static uint64_t total_bytes(uint64_t slots)
{
    return PREOOM_REGISTRY_HEADER_BYTES + slots * (uint64_t)PREOOM_REGISTRY_SLOT_BYTES;
}

/* Check a header copy against the file size. Pure; *why names what is wrong. */
static int check_header(const struct preoom_registry_header *h, uint64_t file_bytes,
                        const char **why)
{
    if (LOAD(&h->magic) != PREOOM_REGISTRY_MAGIC) {
        *why = "not a preoom registry (bad magic)";
        return -EPROTO;
    }
    if (LOAD(&h->abi) != PREOOM_REGISTRY_ABI) {
        *why = "registry ABI version not supported";
        return -EPROTO;
    }
    if (LOAD(&h->header_bytes) != PREOOM_REGISTRY_HEADER_BYTES ||
        LOAD(&h->slot_bytes) != PREOOM_REGISTRY_SLOT_BYTES) {
        *why = "registry header or slot size does not match this version";
        return -EPROTO;
    }
    uint64_t n = LOAD(&h->slot_count);
    if (n == 0 || n > PREOOM_REGISTRY_MAX_SLOTS) {
        *why = "registry slot count out of range";
        return -EPROTO;
    }
    if (file_bytes < total_bytes(n)) {
        *why = "registry file shorter than its slot count says (truncated)";
        return -EPROTO;
    }
    return 0;
}

static void init_header(struct preoom_registry_header *h, uint64_t slots)
{
    STORE(&h->abi, PREOOM_REGISTRY_ABI);
    STORE(&h->header_bytes, PREOOM_REGISTRY_HEADER_BYTES);
    STORE(&h->slot_bytes, PREOOM_REGISTRY_SLOT_BYTES);
    STORE(&h->slot_count, slots);
    STORE(&h->creator_uid, (uint64_t)geteuid());
    STORE(&h->created_ns, preoom_now_ns(CLOCK_REALTIME));
    /* Magic last: a reader that sees it sees a finished header. */
    __atomic_store_n(&h->magic, PREOOM_REGISTRY_MAGIC, __ATOMIC_RELEASE);
}

int preoom_reg_open(const char *name, int create, uint64_t slots, int64_t gid, int writable,
                    preoom_reg_t *out, const char **why)
{
    char path[128];
    memset(out, 0, sizeof *out);
    out->fd = -1;
    *why = "";
    if (reg_path(name, path, sizeof path) != 0) {
        *why = "invalid registry name";
        return -EINVAL;
    }
    if (slots == 0 || slots > PREOOM_REGISTRY_MAX_SLOTS)
        slots = PREOOM_REGISTRY_DEFAULT_SLOTS;
    int created = 0;
    /* O_NONBLOCK: a FIFO planted at the path must not hang us in open (a read-only open
     * of a FIFO waits for a writer); fstat below then refuses it. No effect on a file. */
    int fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 && errno == ENOENT && create && writable) {
        mode_t mode = gid >= 0 ? 0660 : 0600;
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd >= 0) {
            created = 1;
            /* The umask must not widen or narrow what we meant. */
            if (fchmod(fd, mode) != 0 ||
                (gid >= 0 && fchown(fd, (uid_t)-1, (gid_t)gid) != 0) ||
                ftruncate(fd, (off_t)total_bytes(slots)) != 0) {
                int e = errno;
                close(fd);
                unlink(path);
                *why = "cannot size the new registry file";
                return -e;
            }
        } else if (errno == EEXIST) {
            fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        }
    }
    if (fd < 0) {
        int e = errno;
        *why = e == ELOOP ? "registry path is a symbolic link (refused)"
               : e == EACCES ? "permission denied"
               : e == ENOENT ? "no such registry"
                             : "cannot open the registry";
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        *why = "registry path is not a regular file";
        return -EINVAL;
    }
    if (writable && st.st_uid != geteuid() && !(gid >= 0 && st.st_gid == (gid_t)gid)) {
        close(fd);
        *why = "registry file belongs to another user (refused)";
        return -EPERM;
    }
    if (writable && (st.st_mode & 0002)) {
        close(fd);
        *why = "registry file is writable by anyone (refused)";
        return -EPERM;
    }
    /* A file someone else is creating right now: wait briefly for its header. */
    for (int tries = 0; !created && tries < 50; tries++) {
        if ((uint64_t)st.st_size >= PREOOM_REGISTRY_HEADER_BYTES) {
            struct preoom_registry_header h;
            if (pread(fd, &h, sizeof h, 0) == (ssize_t)sizeof h && h.magic != 0)
                break;
        }
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
        if (fstat(fd, &st) != 0)
            break;
    }
    if ((uint64_t)st.st_size < PREOOM_REGISTRY_HEADER_BYTES) {
        close(fd);
        *why = "registry file too short for a header (truncated)";
        return -EPROTO;
    }
    size_t map_bytes = created ? (size_t)total_bytes(slots) : (size_t)st.st_size;
    if ((uint64_t)map_bytes > total_bytes(PREOOM_REGISTRY_MAX_SLOTS))
        map_bytes = (size_t)total_bytes(PREOOM_REGISTRY_MAX_SLOTS);
    void *m = preoom_sys_mmap(NULL, map_bytes, PROT_READ | (writable ? PROT_WRITE : 0),
                              MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        int e = errno;
        close(fd);
        *why = "cannot map the registry";
        return -e;
    }
    struct preoom_registry_header *h = m;
    if (created)
        init_header(h, slots);
    int rc = check_header(h, (uint64_t)map_bytes, why);
    if (rc == 0 && writable && LOAD(&h->creator_uid) != (uint64_t)st.st_uid) {
        *why = "registry header names another creator than the file's owner (refused)";
        rc = -EPERM;
    }
    if (rc != 0) {
        preoom_sys_munmap(m, map_bytes);
        close(fd);
        return rc;
    }
    out->hdr = h;
    out->map_bytes = map_bytes;
    out->slot_count = LOAD(&h->slot_count);
    out->fd = fd;
    return 0;
}

void preoom_reg_close(preoom_reg_t *r)
{
    if (r->hdr)
        preoom_sys_munmap(r->hdr, r->map_bytes);
    if (r->fd >= 0)
        close(r->fd);
    memset(r, 0, sizeof *r);
    r->fd = -1;
}

int preoom_reg_pid_matches(pid_t pid, uint64_t start_time)
{
    if (pid <= 0)
        return 0;
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return 0;
    char path[64], buf[1024];
    preoom_fmt(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    uint64_t st;
    if (preoom_parse_stat_start_time(buf, (size_t)n, &st) != 0 || st != start_time)
        return 0;
    /* A zombie whose last thread is gone has freed its memory and will never publish again:
     * its slot is free even before its parent reaps it. (A lone "Z" is not enough: a main
     * thread that called pthread_exit shows Z while other threads run.) */
    return !preoom_parse_stat_defunct(buf, (size_t)n);
}

/* Free a slot whose owner is gone, if its state is still `st`. */
static int reap_one(struct preoom_slot *s, uint64_t st)
{
    uint64_t freed = PREOOM_STATE_MAKE(PREOOM_SLOT_FREE, PREOOM_STATE_GEN(st) + 1, 0);
    return __atomic_compare_exchange_n(&s->state, &st, freed, 0, __ATOMIC_ACQ_REL,
                                       __ATOMIC_RELAXED);
}

/* Is the owner of a slot in state `st` gone? Uses the slot's pid and start time. */
static int slot_is_dead(struct preoom_slot *s, uint64_t st)
{
    pid_t pid = PREOOM_STATE_PID(st);
    if (PREOOM_STATE_KIND(st) == PREOOM_SLOT_CLAIMING)
        return pid <= 0 || (kill(pid, 0) != 0 && errno == ESRCH);
    uint64_t start = LOAD(&s->start_time);
    return !preoom_reg_pid_matches(pid, start);
}

long preoom_reg_reap(preoom_reg_t *r)
{
    long n = 0;
    for (uint64_t i = 0; i < r->slot_count; i++) {
        struct preoom_slot *s = preoom_reg_slot(r, i);
        uint64_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
        if (PREOOM_STATE_KIND(st) == PREOOM_SLOT_FREE)
            continue;
        if (slot_is_dead(s, st) && reap_one(s, st))
            n++;
    }
    return n;
}

static void fill_slot(struct preoom_slot *s, pid_t pid, uint64_t start_time,
                      uint64_t interval_ms, const char *name)
{
    /* The slot is ours (CLAIMING) but readers skip it until LIVE: plain resets are fine. */
    uint64_t *w = (uint64_t *)(void *)s;
    for (size_t k = 1; k < PREOOM_REGISTRY_SLOT_BYTES / sizeof(uint64_t); k++)
        STORE(&w[k], 0);
    STORE(&s->pid, (uint64_t)pid);
    STORE(&s->start_time, start_time);
    STORE(&s->uid, (uint64_t)geteuid());
    STORE(&s->registered_ns, preoom_now_ns(CLOCK_REALTIME));
    STORE(&s->heartbeat_ns, preoom_now_ns(CLOCK_MONOTONIC));
    STORE(&s->interval_ms, interval_ms);
    /* Word by word, atomically: a reader still copying the previous owner's slot reads it. */
    uint64_t nm[2] = {0, 0};
    if (name)
        strncpy((char *)nm, name, sizeof nm - 1);
    uint64_t *dst = (uint64_t *)(void *)s->name;
    STORE(&dst[0], nm[0]);
    STORE(&dst[1], nm[1]);
}

long preoom_reg_claim(preoom_reg_t *r, pid_t pid, uint64_t start_time, uint64_t interval_ms,
                      const char *name)
{
    /* A slot with our own pid and start time is ours from before an exec: take it back
     * rather than appear twice. */
    for (uint64_t i = 0; i < r->slot_count; i++) {
        struct preoom_slot *s = preoom_reg_slot(r, i);
        uint64_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
        if (PREOOM_STATE_KIND(st) == PREOOM_SLOT_LIVE && PREOOM_STATE_PID(st) == pid &&
            LOAD(&s->start_time) == start_time)
            reap_one(s, st);
    }
    for (int pass = 0; pass < 2; pass++) {
        for (uint64_t i = 0; i < r->slot_count; i++) {
            struct preoom_slot *s = preoom_reg_slot(r, i);
            uint64_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
            if (PREOOM_STATE_KIND(st) != PREOOM_SLOT_FREE)
                continue;
            uint64_t mine = PREOOM_STATE_MAKE(PREOOM_SLOT_CLAIMING, PREOOM_STATE_GEN(st), pid);
            if (!__atomic_compare_exchange_n(&s->state, &st, mine, 0, __ATOMIC_ACQ_REL,
                                             __ATOMIC_RELAXED))
                continue;
            fill_slot(s, pid, start_time, interval_ms, name);
            uint64_t live = PREOOM_STATE_MAKE(PREOOM_SLOT_LIVE, PREOOM_STATE_GEN(st), pid);
            __atomic_store_n(&s->state, live, __ATOMIC_RELEASE);
            return (long)i;
        }
        /* Full: free the slots of processes that died, then try once more. */
        if (pass == 0 && preoom_reg_reap(r) == 0)
            break;
    }
    return -ENOSPC;
}

void preoom_reg_publish(preoom_reg_t *r, long idx, const preoom_totals_t *t, uint64_t adj)
{
    struct preoom_slot *s = preoom_reg_slot(r, (uint64_t)idx);
    uint64_t seq = LOAD(&s->seq);
    __atomic_store_n(&s->seq, seq + 1, __ATOMIC_RELAXED);
    /* The data are release stores, not relaxed stores after a fence: each is then ordered
     * after the odd sequence number, so a reader that sees a new value also sees the odd
     * number (see preoom_reg_snapshot). Same cost on x86, and ThreadSanitizer, which does not
     * model fences (GCC refuses them under -fsanitize=thread), can check it. */
#define PUT(field, v) __atomic_store_n(&s->field, (v), __ATOMIC_RELEASE)
    PUT(committed, t->committed);
    PUT(touched, t->touched);
    PUT(peak_committed, t->peak_committed);
    PUT(peak_touched, t->peak_touched);
    PUT(rss_anon, t->rss_anon);
    PUT(swap, t->swap);
    PUT(malloc_bytes, t->malloc_bytes);
    PUT(mmap_bytes, t->mmap_bytes);
    PUT(brk_bytes, t->brk_bytes);
    PUT(slack, t->slack);
    PUT(exposure, t->exposure);
    PUT(adj, adj);
    for (int k = 0; k < PREOOM_CALL_COUNT; k++)
        PUT(calls[k], t->calls[k]);
    PUT(heartbeat_ns, preoom_now_ns(CLOCK_MONOTONIC));
#undef PUT
    __atomic_store_n(&s->seq, seq + 2, __ATOMIC_RELEASE);
}

void preoom_reg_release(preoom_reg_t *r, long idx)
{
    struct preoom_slot *s = preoom_reg_slot(r, (uint64_t)idx);
    uint64_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
    if (PREOOM_STATE_KIND(st) == PREOOM_SLOT_LIVE && PREOOM_STATE_PID(st) == getpid())
        reap_one(s, st);
}

int preoom_reg_snapshot(const preoom_reg_t *r, uint64_t idx, struct preoom_slot *out)
{
    if (idx >= r->slot_count)
        return -EINVAL;
    struct preoom_slot *s = preoom_reg_slot(r, idx);
    const uint64_t *src = (const uint64_t *)(const void *)s;
    uint64_t *dst = (uint64_t *)(void *)out;
    for (int tries = 0; tries < 64; tries++) {
        uint64_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
        if (PREOOM_STATE_KIND(st) != PREOOM_SLOT_LIVE)
            return -ENOENT;
        uint64_t s1 = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
        if (s1 & 1) {
            if (tries >= 8)
                sched_yield(); /* the writer may have been preempted mid-publication */
            continue;
        }
        /* Acquire loads (no fence, as in publish): a value from an unfinished publication
         * carries the odd sequence number with it, and the load of s2 cannot move above. */
        for (size_t k = 0; k < PREOOM_REGISTRY_SLOT_BYTES / sizeof(uint64_t); k++)
            dst[k] = __atomic_load_n(&src[k], __ATOMIC_ACQUIRE);
        uint64_t s2 = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
        uint64_t st2 = __atomic_load_n(&s->state, __ATOMIC_RELAXED);
        if (s1 == s2 && st == st2) {
            out->name[sizeof out->name - 1] = '\0';
            return 0;
        }
    }
    return -EAGAIN;
}

int preoom_reg_check_buffer(const void *buf, size_t len, uint64_t *live, const char **why)
{
    *live = 0;
    *why = "";
    /* The atomic loads below need naturally aligned words, as a mapping always gives. */
    if (((uintptr_t)buf & 7) != 0) {
        *why = "registry buffer is not 8-byte aligned";
        return -EINVAL;
    }
    if (len < PREOOM_REGISTRY_HEADER_BYTES) {
        *why = "registry file too short for a header (truncated)";
        return -EPROTO;
    }
    int rc = check_header(buf, (uint64_t)len, why);
    if (rc != 0)
        return rc;
    /* Read-only from here on: snapshot never writes through r.hdr. */
    preoom_reg_t r = {.hdr = (struct preoom_registry_header *)(uintptr_t)buf,
                      .map_bytes = len,
                      .slot_count = LOAD(&((const struct preoom_registry_header *)buf)->slot_count),
                      .fd = -1};
    struct preoom_slot copy;
    for (uint64_t i = 0; i < r.slot_count; i++)
        if (preoom_reg_snapshot(&r, i, &copy) == 0)
            (*live)++;
    return 0;
}

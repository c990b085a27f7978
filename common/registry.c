/* common/registry.c — the only file that maps the shared-memory registry. Linked into the
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
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/futex.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "floor.h"

#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)

/* Run `call` (a static function touching the mapping) under a SIGBUS guard for r's mapping:
 * returns its value, or `fail` if the file shrank under it (see busguard.c). */
#define GUARDED(r, fail, call)                                                              \
    do {                                                                                    \
        preoom_bus_guard_t g_;                                                              \
        if (!(r)->hdr)                                                                      \
            return (fail);                                                                  \
        preoom_bus_arm(&g_, (r)->hdr, (r)->map_bytes);                                      \
        if (sigsetjmp(g_.env, 0) != 0)                                                      \
            return (fail);                                                                  \
        __typeof__(call) v_ = (call);                                                       \
        preoom_bus_disarm(&g_);                                                             \
        return v_;                                                                          \
    } while (0)

static char reg_dir[PREOOM_REG_DIR_MAX] = "/dev/shm";

int preoom_reg_set_dir(const char *dir)
{
    size_t n = dir ? strlen(dir) : 0;
    /* Absolute, no "..": the directory is part of every path we open or create. */
    if (n == 0 || dir[0] != '/' || n >= sizeof reg_dir || strstr(dir, "/.."))
        return -EINVAL;
    memcpy(reg_dir, dir, n + 1);
    while (n > 1 && reg_dir[n - 1] == '/')
        reg_dir[--n] = '\0';
    return 0;
}

const char *preoom_reg_dir(void) { return reg_dir; }

int preoom_reg_path(const char *name, char *out, size_t size)
{
    char safe[64];
    if (preoom_parse_name(name, safe, sizeof safe) != 0)
        return -EINVAL;
    if (preoom_fmt(out, size, "%s/preoom.%s", reg_dir, safe) + 1 > size)
        return -ENAMETOOLONG;
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

/* The guarded form: the mapping may already be shorter than its length says. */
static int check_mapped_header(const struct preoom_registry_header *h, uint64_t bytes,
                               const char **why)
{
    preoom_bus_guard_t g;
    preoom_bus_arm(&g, h, bytes);
    if (sigsetjmp(g.env, 0) != 0) {
        *why = "registry file shrank while being read (truncated)";
        return -EFAULT;
    }
    int rc = check_header(h, bytes, why);
    preoom_bus_disarm(&g);
    return rc;
}

/* Who may own a registry we use: ourselves, root (the arbiter's), or, when a group is
 * configured, a member of that group that made it for the group. Anyone else's file at our
 * path is a squatter's. */
static int owner_expected(const struct stat *st, int64_t gid)
{
    return st->st_uid == geteuid() || st->st_uid == 0 || (gid >= 0 && st->st_gid == (gid_t)gid);
}

/* A new registry is made complete under a temporary name, its blocks reserved (so a full
 * /dev/shm is an error here, never a SIGBUS later), then renamed into place: a registry at
 * its path always has a whole header. `replace` renames over what is there (a repair);
 * otherwise -EEXIST when someone else's was first. Returns an open descriptor or -errno. */
static int create_registry(const char *name, const char *path, uint64_t slots, int64_t gid,
                           int replace, const char **why)
{
    char tmp[PREOOM_REG_PATH_MAX + 64];
    preoom_fmt(tmp, sizeof tmp, "%s/.preoom-new.%s.%d.%llu", reg_dir, name, (int)getpid(),
               (unsigned long long)preoom_now_ns(CLOCK_MONOTONIC));
    mode_t mode = gid >= 0 ? 0660 : 0600;
    int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, mode);
    if (fd < 0) {
        int e = errno;
        *why = e == EACCES ? "cannot create a file in the registry directory (permission denied)"
                           : "cannot create the registry file";
        return -e;
    }
    int e = 0;
    /* The umask must not widen or narrow what we meant. */
    if (fchmod(fd, mode) != 0 || (gid >= 0 && fchown(fd, (uid_t)-1, (gid_t)gid) != 0)) {
        e = errno;
        *why = "cannot set the new registry's mode or group";
    } else if ((e = posix_fallocate(fd, 0, (off_t)total_bytes(slots))) != 0) {
        *why = e == ENOSPC ? "no space left to reserve the registry's blocks (the registry "
                             "directory, e.g. /dev/shm, is full)"
                           : "cannot reserve the registry's blocks";
    } else {
        struct preoom_registry_header h;
        memset(&h, 0, sizeof h);
        h.magic = PREOOM_REGISTRY_MAGIC;
        h.abi = PREOOM_REGISTRY_ABI;
        h.header_bytes = PREOOM_REGISTRY_HEADER_BYTES;
        h.slot_bytes = PREOOM_REGISTRY_SLOT_BYTES;
        h.slot_count = slots;
        h.creator_uid = (uint64_t)geteuid();
        h.created_ns = preoom_now_ns(CLOCK_REALTIME);
        if (pwrite(fd, &h, sizeof h, 0) != (ssize_t)sizeof h) {
            e = errno ? errno : EIO;
            *why = "cannot write the new registry's header";
        } else if (replace ? rename(tmp, path) != 0
                           : renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) != 0) {
            e = errno;
            *why = e == EEXIST ? "registry created by another process meanwhile"
                               : "cannot move the new registry into place";
        }
    }
    if (e != 0) {
        close(fd);
        unlink(tmp);
        return -e;
    }
    return fd;
}

int preoom_reg_open(const char *name, int flags, uint64_t slots, int64_t gid, int writable,
                    preoom_reg_t *out, const char **why)
{
    char path[PREOOM_REG_PATH_MAX];
    memset(out, 0, sizeof *out);
    out->fd = -1;
    *why = "";
    if (preoom_reg_path(name, path, sizeof path) != 0) {
        *why = "invalid registry name";
        return -EINVAL;
    }
    if (slots == 0 || slots > PREOOM_REGISTRY_MAX_SLOTS)
        slots = PREOOM_REGISTRY_DEFAULT_SLOTS;
    int create = (flags & PREOOM_REG_CREATE) && writable;
    int fd = -1;
    for (int attempt = 0; attempt < 3 && fd < 0; attempt++) {
        /* O_NONBLOCK: a FIFO planted at the path must not hang us in open (a read-only open
         * of a FIFO waits for a writer); fstat below then refuses it. No effect on a file. */
        fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (fd >= 0 || errno != ENOENT || !create)
            break;
        fd = create_registry(name, path, slots, gid, 0, why);
        if (fd >= 0)
            out->event = "created";
        else if (fd != -EEXIST)
            return fd;
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
    int replace = 0;
    if (!owner_expected(&st, gid)) {
        if (!(create && (flags & PREOOM_REG_TAKEOVER))) {
            close(fd);
            *why = "registry file belongs to another user than us or root (refused: squatted?)";
            return -EPERM;
        }
        replace = 1;
        out->event = "replaced a file of another user (squatted)";
    } else if (writable && (st.st_mode & 0002)) {
        close(fd);
        *why = "registry file is writable by anyone (refused)";
        return -EPERM;
    }
    /* Registries appear at their path complete (create_registry): an empty file, a zero
     * header, or a registry shorter than its own slot count is a leftover (a creator that
     * died, a truncation). Decided at once, no wait. Anything else that fails the checks
     * below is refused as it is, and left alone. */
    struct preoom_registry_header h0;
    memset(&h0, 0, sizeof h0);
    ssize_t got = st.st_size > 0 ? pread(fd, &h0, sizeof h0, 0) : 0;
    int stale = st.st_size == 0 || (got >= 8 && h0.magic == 0) ||
                (got == (ssize_t)sizeof h0 && h0.magic == PREOOM_REGISTRY_MAGIC &&
                 h0.slot_count > 0 && h0.slot_count <= PREOOM_REGISTRY_MAX_SLOTS &&
                 (uint64_t)st.st_size < total_bytes(h0.slot_count));
    if (stale && !replace) {
        if (!(create && (flags & PREOOM_REG_REPAIR) && st.st_uid == geteuid())) {
            close(fd);
            *why = "registry file is empty, has a zero header or was truncated (stale; ignored)";
            return -EPROTO;
        }
        replace = 1;
        out->event = "replaced a stale registry (empty, zero header or truncated)";
    }
    if (replace) {
        /* Only if the path still names the file we judged. */
        struct stat now;
        if (stat(path, &now) != 0 || now.st_dev != st.st_dev || now.st_ino != st.st_ino) {
            close(fd);
            *why = "registry file changed while being repaired";
            return -EAGAIN;
        }
        close(fd);
        fd = create_registry(name, path, slots, gid, 1, why);
        if (fd < 0)
            return fd;
        if (fstat(fd, &st) != 0) {
            close(fd);
            *why = "cannot stat the new registry";
            return -EIO;
        }
    }
    if ((uint64_t)st.st_size < total_bytes(1)) {
        close(fd);
        *why = "registry file too short for a header and a slot (truncated)";
        return -EPROTO;
    }
    size_t map_bytes = (size_t)st.st_size;
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
    int rc = check_mapped_header(h, (uint64_t)map_bytes, why);
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
    out->dev = st.st_dev;
    out->ino = st.st_ino;
    out->uid = st.st_uid;
    memcpy(out->path, path, sizeof out->path);
    return 0;
}

int preoom_reg_changed(const preoom_reg_t *r, const char **why)
{
    struct stat at_path, ours;
    *why = "";
    if (r->fd < 0 || fstat(r->fd, &ours) != 0) {
        *why = "is not open";
        return 1;
    }
    if ((uint64_t)ours.st_size < total_bytes(r->slot_count)) {
        *why = "was truncated";
        return 1;
    }
    if (lstat(r->path, &at_path) != 0) {
        *why = "was deleted";
        return 1;
    }
    if (at_path.st_dev != ours.st_dev || at_path.st_ino != ours.st_ino) {
        *why = "was replaced by another file";
        return 1;
    }
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

static long reap_all(preoom_reg_t *r)
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

long preoom_reg_reap(preoom_reg_t *r)
{
    GUARDED(r, -EFAULT, reap_all(r));
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

static long claim(preoom_reg_t *r, pid_t pid, uint64_t start_time, uint64_t interval_ms,
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
        if (pass == 0 && reap_all(r) == 0)
            break;
    }
    return -ENOSPC;
}

long preoom_reg_claim(preoom_reg_t *r, pid_t pid, uint64_t start_time, uint64_t interval_ms,
                      const char *name)
{
    GUARDED(r, -EFAULT, claim(r, pid, start_time, interval_ms, name));
}

static int publish(preoom_reg_t *r, long idx, const preoom_totals_t *t, uint64_t adj)
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
    return 0;
}

int preoom_reg_publish(preoom_reg_t *r, long idx, const preoom_totals_t *t, uint64_t adj)
{
    GUARDED(r, -EFAULT, publish(r, idx, t, adj));
}

static int publish_offer(preoom_reg_t *r, long idx, uint64_t callbacks, uint64_t reclaimable,
                         uint64_t term_grace_ms)
{
    struct preoom_slot *s = preoom_reg_slot(r, (uint64_t)idx);
    /* Single words a reader takes one by one: no sequence counter needed. */
    __atomic_store_n(&s->callbacks, callbacks, __ATOMIC_RELEASE);
    __atomic_store_n(&s->reclaimable, reclaimable, __ATOMIC_RELEASE);
    __atomic_store_n(&s->term_grace_ms, term_grace_ms, __ATOMIC_RELEASE);
    return 0;
}

int preoom_reg_publish_offer(preoom_reg_t *r, long idx, uint64_t callbacks,
                             uint64_t reclaimable, uint64_t term_grace_ms)
{
    GUARDED(r, -EFAULT, publish_offer(r, idx, callbacks, reclaimable, term_grace_ms));
}

static int release(preoom_reg_t *r, long idx)
{
    struct preoom_slot *s = preoom_reg_slot(r, (uint64_t)idx);
    uint64_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
    if (PREOOM_STATE_KIND(st) == PREOOM_SLOT_LIVE && PREOOM_STATE_PID(st) == getpid())
        reap_one(s, st);
    return 0;
}

int preoom_reg_release(preoom_reg_t *r, long idx)
{
    GUARDED(r, -EFAULT, release(r, idx));
}

static int snapshot(const preoom_reg_t *r, uint64_t idx, struct preoom_slot *out)
{
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

int preoom_reg_snapshot(const preoom_reg_t *r, uint64_t idx, struct preoom_slot *out)
{
    if (idx >= r->slot_count)
        return -EINVAL;
    GUARDED(r, -EFAULT, snapshot(r, idx, out));
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

/* ---- the request/answer protocol: one writer of each message ---------------------------- */

static int slot_names(struct preoom_slot *s, int32_t pid, uint64_t start_time)
{
    uint64_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
    return PREOOM_STATE_KIND(st) == PREOOM_SLOT_LIVE && PREOOM_STATE_PID(st) == pid &&
           LOAD(&s->start_time) == start_time;
}

static int request(preoom_reg_t *r, uint64_t idx, int32_t pid, uint64_t start_time,
                   unsigned level, uint64_t bytes, uint32_t *serial)
{
    struct preoom_slot *s = preoom_reg_slot(r, idx);
    if (!slot_names(s, pid, start_time))
        return -ESTALE;
    if (level != PREOOM_REQ_LEVEL_DUMP)
        STORE(&s->request_bytes, bytes);
    /* Compare-and-swap: two requesters (the arbiter, `preoom report`) never hand out one
     * serial twice. The release order publishes request_bytes with the request. */
    uint64_t old = __atomic_load_n(&s->request, __ATOMIC_ACQUIRE), req;
    uint32_t next;
    do {
        next = (PREOOM_REQ_SERIAL(old) + 1) & 0xffffffu;
        if (next == 0)
            next = 1; /* 0 means "no request" to the agent */
        req = PREOOM_REQ_MAKE(next, level);
    } while (!__atomic_compare_exchange_n(&s->request, &old, req, 0, __ATOMIC_ACQ_REL,
                                          __ATOMIC_ACQUIRE));
    /* A shared futex (no FUTEX_PRIVATE_FLAG): the waiter is another process. */
    syscall(SYS_futex, preoom_slot_futex_word(s), FUTEX_WAKE, 1 << 30, NULL, NULL, 0);
    *serial = next;
    return 0;
}

int preoom_reg_request(preoom_reg_t *r, uint64_t idx, int32_t pid, uint64_t start_time,
                       unsigned level, uint64_t bytes, uint32_t *serial)
{
    if (!((level >= PREOOM_PRESSURE_MODERATE && level <= PREOOM_PRESSURE_COMPLETE) ||
          level == PREOOM_REQ_LEVEL_DUMP))
        return -EINVAL;
    if (idx >= r->slot_count)
        return -ESTALE;
    GUARDED(r, -EFAULT, request(r, idx, pid, start_time, level, bytes, serial));
}

static int answered(const preoom_reg_t *r, uint64_t idx, int32_t pid, uint32_t serial,
                    unsigned level, preoom_answer_t *out)
{
    struct preoom_slot *s = preoom_reg_slot(r, idx);
    uint64_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
    if (PREOOM_STATE_KIND(st) != PREOOM_SLOT_LIVE || PREOOM_STATE_PID(st) != pid)
        return -ESTALE;
    memset(out, 0, sizeof *out);
    if (level == PREOOM_REQ_LEVEL_DUMP) {
        if (__atomic_load_n(&s->report_serial, __ATOMIC_ACQUIRE) != serial)
            return 0;
        out->bytes = LOAD(&s->report_bytes);
        out->at_ns = LOAD(&s->report_ns);
        return 1;
    }
    if (__atomic_load_n(&s->answer_serial, __ATOMIC_ACQUIRE) != serial)
        return 0;
    out->bytes = LOAD(&s->answer_bytes);
    out->callback_bytes = LOAD(&s->answer_callback_bytes);
    out->trim_bytes = LOAD(&s->answer_trim_bytes);
    out->at_ns = LOAD(&s->answer_ns);
    return 1;
}

int preoom_reg_answered(const preoom_reg_t *r, uint64_t idx, int32_t pid, uint32_t serial,
                        unsigned level, preoom_answer_t *out)
{
    if (idx >= r->slot_count)
        return -ESTALE;
    GUARDED(r, -EFAULT, answered(r, idx, pid, serial, level, out));
}

static int pending(const preoom_reg_t *r, long idx, uint32_t last, uint64_t *req,
                   uint64_t *bytes)
{
    struct preoom_slot *s = preoom_reg_slot(r, (uint64_t)idx);
    uint64_t w = __atomic_load_n(&s->request, __ATOMIC_ACQUIRE);
    *req = w; /* also when nothing is pending: the value to wait on */
    if (PREOOM_REQ_SERIAL(w) == 0 || PREOOM_REQ_SERIAL(w) == last)
        return 0;
    *req = w;
    *bytes = __atomic_load_n(&s->request_bytes, __ATOMIC_ACQUIRE);
    return 1;
}

int preoom_reg_pending(const preoom_reg_t *r, long idx, uint32_t last, uint64_t *req,
                       uint64_t *bytes)
{
    GUARDED(r, -EFAULT, pending(r, idx, last, req, bytes));
}

static int answer(preoom_reg_t *r, long idx, uint64_t req, const preoom_answer_t *a)
{
    struct preoom_slot *s = preoom_reg_slot(r, (uint64_t)idx);
    uint64_t serial = PREOOM_REQ_SERIAL(req);
    if (PREOOM_REQ_LEVEL(req) == PREOOM_REQ_LEVEL_DUMP) {
        STORE(&s->report_bytes, a->bytes);
        STORE(&s->report_ns, a->at_ns);
        __atomic_store_n(&s->report_serial, serial, __ATOMIC_RELEASE);
        return 0;
    }
    STORE(&s->answer_callback_bytes, a->callback_bytes);
    STORE(&s->answer_trim_bytes, a->trim_bytes);
    STORE(&s->answer_bytes, a->bytes);
    STORE(&s->answer_ns, a->at_ns);
    STORE(&s->answers, LOAD(&s->answers) + 1);
    __atomic_store_n(&s->answer_serial, serial, __ATOMIC_RELEASE);
    return 0;
}

int preoom_reg_answer(preoom_reg_t *r, long idx, uint64_t req, const preoom_answer_t *a)
{
    GUARDED(r, -EFAULT, answer(r, idx, req, a));
}

static int set_agent(preoom_reg_t *r, long idx, uint64_t tid)
{
    STORE(&preoom_reg_slot(r, (uint64_t)idx)->agent_tid, tid);
    return 0;
}

int preoom_reg_set_agent(preoom_reg_t *r, long idx, uint64_t tid)
{
    GUARDED(r, -EFAULT, set_agent(r, idx, tid));
}

static int set_pressure(preoom_reg_t *r, uint64_t level, uint64_t arbiter_pid)
{
    __atomic_store_n(&r->hdr->pressure, level, __ATOMIC_RELEASE);
    STORE(&r->hdr->pressure_ns, preoom_now_ns(CLOCK_MONOTONIC));
    STORE(&r->hdr->arbiter_pid, arbiter_pid);
    return 0;
}

int preoom_reg_set_pressure(preoom_reg_t *r, uint64_t level, uint64_t arbiter_pid)
{
    GUARDED(r, -EFAULT, set_pressure(r, level, arbiter_pid));
}

static int get_pressure(const preoom_reg_t *r, uint64_t *level, uint64_t *at_ns,
                        uint64_t *arbiter_pid)
{
    *level = __atomic_load_n(&r->hdr->pressure, __ATOMIC_ACQUIRE);
    *at_ns = LOAD(&r->hdr->pressure_ns);
    if (arbiter_pid)
        *arbiter_pid = LOAD(&r->hdr->arbiter_pid);
    return 0;
}

int preoom_reg_pressure(const preoom_reg_t *r, uint64_t *level, uint64_t *at_ns,
                        uint64_t *arbiter_pid)
{
    GUARDED(r, -EFAULT, get_pressure(r, level, at_ns, arbiter_pid));
}

static int set_measured(preoom_reg_t *r, const preoom_reg_measured_t *m)
{
    STORE(&r->hdr->total_bytes, m->total_bytes);
    STORE(&r->hdr->available_bytes, m->available_bytes);
    STORE(&r->hdr->ask_bytes, m->ask_bytes);
    STORE(&r->hdr->term_bytes, m->term_bytes);
    STORE(&r->hdr->kill_bytes, m->kill_bytes);
    STORE(&r->hdr->time_to_kill_ms, m->time_to_kill_ms);
    return 0;
}

int preoom_reg_set_measured(preoom_reg_t *r, const preoom_reg_measured_t *m)
{
    GUARDED(r, -EFAULT, set_measured(r, m));
}

static int get_measured(const preoom_reg_t *r, preoom_reg_measured_t *m)
{
    m->total_bytes = LOAD(&r->hdr->total_bytes);
    m->available_bytes = LOAD(&r->hdr->available_bytes);
    m->ask_bytes = LOAD(&r->hdr->ask_bytes);
    m->term_bytes = LOAD(&r->hdr->term_bytes);
    m->kill_bytes = LOAD(&r->hdr->kill_bytes);
    m->time_to_kill_ms = LOAD(&r->hdr->time_to_kill_ms);
    return 0;
}

int preoom_reg_measured(const preoom_reg_t *r, preoom_reg_measured_t *m)
{
    GUARDED(r, -EFAULT, get_measured(r, m));
}

static int get_state(const preoom_reg_t *r, uint64_t idx, uint64_t *state)
{
    *state = __atomic_load_n(&preoom_reg_slot(r, idx)->state, __ATOMIC_ACQUIRE);
    return 0;
}

int preoom_reg_state(const preoom_reg_t *r, uint64_t idx, uint64_t *state)
{
    if (idx >= r->slot_count)
        return -EINVAL;
    GUARDED(r, -EFAULT, get_state(r, idx, state));
}

/* ---- the proof that a slot is its process's own ------------------------------------------ */

size_t preoom_reg_proof_name(uint64_t idx, uint64_t adj, char *out, size_t size)
{
    return preoom_fmt(out, size, "preoom%llx:%llu", (unsigned long long)idx,
                      (unsigned long long)(adj > 1000 ? 1000 : adj));
}

int preoom_reg_proof_parse(const char *comm, size_t len, uint64_t *idx, uint64_t *adj)
{
    static const char pfx[] = "preoom";
    while (len > 0 && (comm[len - 1] == '\n' || comm[len - 1] == '\0'))
        len--;
    if (len <= sizeof pfx - 1 || memcmp(comm, pfx, sizeof pfx - 1) != 0)
        return -EINVAL;
    size_t i = sizeof pfx - 1;
    uint64_t x = 0, a = 0;
    size_t nd = 0;
    for (; i < len && nd < 5; i++, nd++) {
        char c = comm[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            break;
        x = x * 16 + (uint64_t)d;
    }
    if (nd == 0 || i >= len || comm[i] != ':')
        return -EINVAL;
    i++;
    nd = 0;
    for (; i < len && nd < 4; i++, nd++) {
        if (comm[i] < '0' || comm[i] > '9')
            return -EINVAL;
        a = a * 10 + (uint64_t)(comm[i] - '0');
    }
    if (nd == 0 || i != len || x >= PREOOM_REGISTRY_MAX_SLOTS || a > 1000)
        return -EINVAL;
    *idx = x;
    *adj = a;
    return 0;
}

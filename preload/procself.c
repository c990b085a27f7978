/* preload/procself.c — the kernel's own numbers for this process: touched memory
 * (RssAnon + VmSwap from /proc/self/status), start time and short name.
 *
 * Touched is measured, never derived from the calls: allocators give memory back with
 * madvise and glibc maps memory behind our back (DESIGN.md, trap 7). Reads go into stack
 * buffers with raw system calls, never stdio nor our own hooks, so this is safe on the agent
 * thread and at exit. What the agent reads every interval is opened once, at start-up, and
 * read with pread: after start-up the measuring makes no open (a seccomp sandbox may forbid
 * it). The parsers are pure for the unit tests.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* The files read every interval, opened once and read with pread from offset 0 (procfs
 * builds the text anew for each read at offset 0). -1 when not kept: opened for each read. */
enum { KEPT_STATUS, KEPT_STATM, KEPT_N };
static const char *const kept_path[KEPT_N] = {"/proc/self/status", "/proc/self/statm"};
static int kept_fd[KEPT_N] = {-1, -1};
static int parent_sandboxed;  /* seen in the fork's prepare: the child must not open */

static long read_fd(int fd, char *buf, size_t size)
{
    size_t n = 0;
    while (n + 1 < size) {
        long r = syscall(SYS_pread64, fd, buf + n, size - 1 - n, (off_t)n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    return (long)n;
}

static long open_ro(const char *path)
{
    long fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

static long read_file(const char *path, char *buf, size_t size)
{
    if (parent_sandboxed)
        return -EPERM; /* a fork child of a sandboxed parent: an open may be fatal */
    long fd = open_ro(path);
    if (fd < 0)
        return fd;
    long n = read_fd((int)fd, buf, size);
    syscall(SYS_close, fd);
    return n;
}

static int no_room;   /* the descriptor limit leaves preoom none: touched is not measured */

static long read_kept(int which, char *buf, size_t size)
{
    int fd = __atomic_load_n(&kept_fd[which], __ATOMIC_RELAXED);
    if (fd >= 0)
        return read_fd(fd, buf, size);
    /* Not even for a moment: the agent's open, at the instant the program opens its last
     * free number, would make the program's fail (seen: `sort -m A B` under RLIMIT_NOFILE=5). */
    if (no_room)
        return -EMFILE;
    return read_file(kept_path[which], buf, size);
}

/* A kept file that no longer reads as itself: the program closed the number in a sweep of its
 * descriptors, or put one of its own files there. It is the program's now: forgotten, not
 * closed, and the file is opened for each read from then on. */
static void kept_lost(int which)
{
    __atomic_store_n(&kept_fd[which], -1, __ATOMIC_RELAXED);
}

void preoom_procself_open(void)
{
    no_room = !preoom_fd_room();
    if (no_room)
        return; /* every descriptor is the program's */
    for (int i = 0; i < KEPT_N; i++) {
        if (kept_fd[i] >= 0)
            continue;
        long fd = open_ro(kept_path[i]);
        if (fd >= 0)
            __atomic_store_n(&kept_fd[i], preoom_fd_park((int)fd), __ATOMIC_RELAXED);
    }
}

void preoom_procself_atfork_prepare(void)
{
    /* Without a kept file this process opens for every read, sandboxed or not: so may the
     * child. */
    int fd = __atomic_load_n(&kept_fd[KEPT_STATUS], __ATOMIC_RELAXED);
    char buf[4096];
    long n = fd >= 0 ? read_fd(fd, buf, sizeof buf) : -1;
    parent_sandboxed = n > 0 && preoom_parse_status_seccomp(buf, (size_t)n) > 0;
}

void preoom_procself_atfork_child(void)
{
    /* The inherited files are the parent's /proc entries, not ours. */
    for (int i = 0; i < KEPT_N; i++) {
        if (kept_fd[i] >= 0)
            syscall(SYS_close, kept_fd[i]);
        kept_fd[i] = -1;
    }
    if (!parent_sandboxed)
        preoom_procself_open();
}

int preoom_parse_status_seccomp(const char *buf, size_t len)
{
    static const char key[] = "\nSeccomp:";
    for (size_t i = 0; i + sizeof key - 1 <= len; i++) {
        if (memcmp(buf + i, key, sizeof key - 1) != 0)
            continue;
        size_t p = i + sizeof key - 1;
        while (p < len && (buf[p] == ' ' || buf[p] == '\t'))
            p++;
        return p < len && buf[p] >= '0' && buf[p] <= '2' ? buf[p] - '0' : -1;
    }
    return -1;
}

/* The value of "Key:  123 kB" in a status buffer, in bytes. */
static int status_kb(const char *buf, size_t len, const char *key, uint64_t *out)
{
    size_t klen = strlen(key);
    const char *end = buf + len;
    for (const char *line = buf; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *le = nl ? nl : end;
        if ((size_t)(le - line) > klen && memcmp(line, key, klen) == 0 && line[klen] == ':') {
            const char *p = line + klen + 1;
            while (p < le && (*p == ' ' || *p == '\t'))
                p++;
            uint64_t v = 0;
            int digits = 0;
            while (p < le && *p >= '0' && *p <= '9') {
                if (v > (UINT64_MAX / 10 - 9) / 1024)
                    return -ERANGE;
                v = v * 10 + (uint64_t)(*p++ - '0');
                digits++;
            }
            if (!digits)
                return -EINVAL;
            *out = v * 1024;
            return 0;
        }
        line = le + 1;
    }
    return -ENOENT;
}

int preoom_parse_status_touched(const char *buf, size_t len, uint64_t *rss_anon, uint64_t *swap)
{
    uint64_t a, s;
    int rc = status_kb(buf, len, "RssAnon", &a);
    if (rc)
        return rc;
    /* VmSwap is missing on kernels without swap accounting: then nothing is swapped. */
    if (status_kb(buf, len, "VmSwap", &s) != 0)
        s = 0;
    *rss_anon = a;
    *swap = s;
    return 0;
}

int preoom_parse_statm_anon(const char *buf, size_t len, uint64_t page_bytes, uint64_t *rss_anon)
{
    /* "size resident shared text lib data dt", in pages; shared is RssFile + RssShmem, so
     * resident - shared is exactly RssAnon. */
    uint64_t v[3] = {0, 0, 0};
    size_t i = 0;
    for (int k = 0; k < 3; k++) {
        while (i < len && buf[i] == ' ')
            i++;
        int digits = 0;
        while (i < len && buf[i] >= '0' && buf[i] <= '9') {
            if (v[k] > UINT64_MAX / 10 - 9)
                return -ERANGE;
            v[k] = v[k] * 10 + (uint64_t)(buf[i++] - '0');
            digits++;
        }
        if (!digits)
            return -EINVAL;
    }
    *rss_anon = v[1] > v[2] ? (v[1] - v[2]) * page_bytes : 0;
    return 0;
}

/* VmSwap is only in /proc/self/status, which costs the kernel twice what statm does to
 * generate: it is refreshed once a second, and swap moves slowly. */
static uint64_t swap_cached, swap_read_ns;

int preoom_procself_touched_exact(uint64_t *rss_anon, uint64_t *swap)
{
    char buf[4096];
    long n = read_kept(KEPT_STATUS, buf, sizeof buf);
    int rc = n < 0 ? (int)n : preoom_parse_status_touched(buf, (size_t)n, rss_anon, swap);
    if (rc != 0 && kept_fd[KEPT_STATUS] >= 0) {
        kept_lost(KEPT_STATUS);
        n = read_kept(KEPT_STATUS, buf, sizeof buf);
        rc = n < 0 ? (int)n : preoom_parse_status_touched(buf, (size_t)n, rss_anon, swap);
    }
    if (rc == 0) {
        __atomic_store_n(&swap_cached, *swap, __ATOMIC_RELAXED);
        __atomic_store_n(&swap_read_ns, preoom_now_ns(CLOCK_MONOTONIC), __ATOMIC_RELAXED);
    }
    return rc;
}

int preoom_procself_touched(uint64_t *rss_anon, uint64_t *swap)
{
    uint64_t now = preoom_now_ns(CLOCK_MONOTONIC);
    if (now - __atomic_load_n(&swap_read_ns, __ATOMIC_RELAXED) >= 1000000000ULL)
        return preoom_procself_touched_exact(rss_anon, swap);
    char buf[256];
    long n = read_kept(KEPT_STATM, buf, sizeof buf);
    static long page;
    if (!page)
        page = sysconf(_SC_PAGESIZE);
    int rc = n < 0 ? (int)n : preoom_parse_statm_anon(buf, (size_t)n, (uint64_t)page, rss_anon);
    if (rc != 0) {
        if (kept_fd[KEPT_STATM] >= 0)
            kept_lost(KEPT_STATM);
        return preoom_procself_touched_exact(rss_anon, swap);
    }
    *swap = __atomic_load_n(&swap_cached, __ATOMIC_RELAXED);
    return 0;
}




int preoom_procself_start_time(uint64_t *start_ticks)
{
    char buf[1024];
    long n = read_file("/proc/self/stat", buf, sizeof buf);
    if (n < 0)
        return (int)n;
    return preoom_parse_stat_start_time(buf, (size_t)n, start_ticks);
}

int preoom_procself_comm(char *name, size_t size)
{
    char buf[64];
    long n = read_file("/proc/self/comm", buf, sizeof buf);
    if (n < 0)
        return (int)n;
    while (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    size_t k = (size_t)n < size - 1 ? (size_t)n : size - 1;
    memcpy(name, buf, k);
    name[k] = '\0';
    return 0;
}


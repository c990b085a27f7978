/* preload/procself.c — the kernel's own numbers for this process: touched memory
 * (RssAnon + VmSwap from /proc/self/status), start time and short name.
 *
 * Touched is measured, never derived from the calls: allocators give memory back with
 * madvise and glibc maps memory behind our back (DESIGN.md, trap 7). Reads go into stack
 * buffers with open/read, never stdio, so this is safe on the agent thread and at exit.
 * The parsers are pure for the unit tests.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static long read_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t n = 0;
    while (n + 1 < size) {
        ssize_t r = read(fd, buf + n, size - 1 - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            return -e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    return (long)n;
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
    long n = read_file("/proc/self/status", buf, sizeof buf);
    if (n < 0)
        return (int)n;
    int rc = preoom_parse_status_touched(buf, (size_t)n, rss_anon, swap);
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
    long n = read_file("/proc/self/statm", buf, sizeof buf);
    if (n < 0)
        return preoom_procself_touched_exact(rss_anon, swap);
    static long page;
    if (!page)
        page = sysconf(_SC_PAGESIZE);
    int rc = preoom_parse_statm_anon(buf, (size_t)n, (uint64_t)page, rss_anon);
    if (rc != 0)
        return preoom_procself_touched_exact(rss_anon, swap);
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


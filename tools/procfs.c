/* tools/procfs.c — parse the kernel's memory and process files for the arbiter.
 *
 * Every parser works on (buffer, length) and never reads a byte past the length, so a
 * truncated read, a file without a final newline or a hostile process name cannot make it
 * run off the end. Readers fetch a file into a stack buffer and hand it to a parser; the
 * roots come from a preoom_procfs_t so the tests can use a fake tree.
 *
 * Never: allocate on the heap (the daemon calls this on its kill path, mlocked and under
 * pressure), follow the process's own words about itself without bounds, or write a file.
 */
#include "procfs.h"
#include "lex.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KIB 1024ULL
/* Big enough for every file read here on kernels up to 6.x; a larger file is refused (-EFBIG)
 * rather than parsed from a prefix whose last number may be cut in half. */
#define SMALL_FILE_BYTES 4096
#define MEDIUM_FILE_BYTES 16384
/* The v1 controller reports "no limit" as PAGE_COUNTER_MAX pages, just under 2^63 bytes; no
 * machine has 2^62 bytes of memory, so anything at or above that is treated as no limit. */
#define V1_NO_LIMIT_BYTES (1ULL << 62)
/* A cgroup tree deeper than this is not walked further for ancestors' limits. */
#define MAX_CGROUP_DEPTH 64

/* ---- lexing: the floor's (common/lex.h), and what only these files need ------------ */

static int scan_hex(span_t s, size_t *i, uint64_t *out)
{
    size_t j = *i, digits = 0;
    uint64_t v = 0;
    while (j < s.n) {
        char c = s.p[j];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            break;
        if (v >> 60)
            return -ERANGE;
        v = (v << 4) | d;
        j++;
        digits++;
    }
    if (!digits)
        return -EINVAL;
    *i = j;
    *out = v;
    return 0;
}

/* "Key:" at the start of the line; *i is set just past the colon. */
static bool key_is(span_t line, const char *key, size_t *i)
{
    size_t k = strlen(key);
    if (line.n <= k || memcmp(line.p, key, k) != 0 || line.p[k] != ':')
        return false;
    *i = k + 1;
    return true;
}

/* "   123 kB" to the end of the line, in bytes. */
static int scan_kb_to_end(span_t line, size_t i, uint64_t *bytes)
{
    uint64_t kb;
    i = skip_blanks(line, i);
    int rc = scan_u64(line, &i, &kb);
    if (rc)
        return rc;
    i = skip_blanks(line, i);
    if (i + 2 > line.n || line.p[i] != 'k' || line.p[i + 1] != 'B')
        return -EINVAL;
    if (!only_blanks_left(line, i + 2))
        return -EINVAL;
    if (kb > UINT64_MAX / KIB)
        return -ERANGE;
    *bytes = kb * KIB;
    return 0;
}

/* ---- files ---------------------------------------------------------------------------- */

void preoom_procfs_init(preoom_procfs_t *fs)
{
    fs->proc_root = "/proc";
    fs->cgroup_root = "/sys/fs/cgroup";
}

int preoom_read_file(const char *path, char *buf, size_t cap, size_t *len, bool allow_truncate)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    size_t got = 0;
    int rc = 0;
    /* /proc files are produced per read(); loop until EOF so a short read is not the end. */
    while (got < cap) {
        ssize_t r = read(fd, buf + got, cap - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    if (!rc && got == cap && !allow_truncate) {
        char probe;
        ssize_t r;
        do
            r = read(fd, &probe, 1);
        while (r < 0 && errno == EINTR);
        if (r > 0)
            rc = -EFBIG;
        else if (r < 0)
            rc = -errno;
    }
    close(fd);
    if (!rc)
        *len = got;
    return rc;
}

static int pid_path(const preoom_procfs_t *fs, int pid, const char *file, char *path,
                    size_t cap)
{
    int n;
    if (pid < 0)
        return -EINVAL;
    if (pid == 0)
        n = snprintf(path, cap, "%s/self/%s", fs->proc_root, file);
    else
        n = snprintf(path, cap, "%s/%d/%s", fs->proc_root, pid, file);
    if (n < 0 || (size_t)n >= cap)
        return -ENAMETOOLONG;
    return 0;
}

/* Read /proc/PID/<file> (pid 0: self) into buf. 0 or -errno. */
static int read_pid_file(const preoom_procfs_t *fs, int pid, const char *file, char *buf,
                         size_t cap, size_t *len, bool allow_truncate)
{
    char path[4096];
    int rc = pid_path(fs, pid, file, path, sizeof path);
    return rc ? rc : preoom_read_file(path, buf, cap, len, allow_truncate);
}

static int join_path(char *path, size_t cap, const char *a, const char *b)
{
    int n = snprintf(path, cap, "%s/%s", a, b);
    if (n < 0 || (size_t)n >= cap)
        return -ENAMETOOLONG;
    return 0;
}

/* ---- /proc/meminfo -------------------------------------------------------------------- */

int preoom_parse_meminfo(const char *buf, size_t len, preoom_meminfo_t *out)
{
    uint64_t cached = PREOOM_VALUE_MISSING, buffers = PREOOM_VALUE_MISSING;
    uint64_t shmem = PREOOM_VALUE_MISSING;
    preoom_meminfo_t m = {
        .mem_total_bytes = PREOOM_VALUE_MISSING,
        .mem_free_bytes = PREOOM_VALUE_MISSING,
        .mem_available_bytes = PREOOM_VALUE_MISSING,
        .swap_total_bytes = PREOOM_VALUE_MISSING,
        .swap_free_bytes = PREOOM_VALUE_MISSING,
        .anon_bytes = PREOOM_VALUE_MISSING,
        .committed_as_bytes = PREOOM_VALUE_MISSING,
        .commit_limit_bytes = PREOOM_VALUE_MISSING,
    };
    const struct {
        const char *key;
        uint64_t *dst;
    } keys[] = {
        {"MemTotal", &m.mem_total_bytes},     {"MemFree", &m.mem_free_bytes},
        {"MemAvailable", &m.mem_available_bytes}, {"Buffers", &buffers},
        {"Cached", &cached},                  {"Shmem", &shmem},
        {"SwapTotal", &m.swap_total_bytes},   {"SwapFree", &m.swap_free_bytes},
        {"AnonPages", &m.anon_bytes},         {"Committed_AS", &m.committed_as_bytes},
        {"CommitLimit", &m.commit_limit_bytes},
    };
    size_t pos = 0;
    span_t line;
    while (next_line(buf, len, &pos, &line)) {
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            size_t i;
            if (!key_is(line, keys[k].key, &i))
                continue;
            /* Only the keys we use must be well formed; the kernel adds others freely. */
            if (*keys[k].dst == PREOOM_VALUE_MISSING) {
                int rc = scan_kb_to_end(line, i, keys[k].dst);
                if (rc)
                    return rc;
            }
            break;
        }
    }
    if (m.mem_total_bytes == PREOOM_VALUE_MISSING || m.mem_free_bytes == PREOOM_VALUE_MISSING)
        return -ENODATA;
    if (m.mem_available_bytes == PREOOM_VALUE_MISSING) {
        /* Kernels before 3.14: free plus what the page cache could give back; tmpfs/shm pages
         * sit in Cached but cannot be dropped, hence minus Shmem. */
        uint64_t sum = m.mem_free_bytes;
        if (cached != PREOOM_VALUE_MISSING)
            sum += cached;
        if (buffers != PREOOM_VALUE_MISSING)
            sum += buffers;
        if (shmem != PREOOM_VALUE_MISSING)
            sum = sum > shmem ? sum - shmem : 0;
        m.mem_available_bytes = sum;
        m.mem_available_estimated = true;
    }
    *out = m;
    return 0;
}

int preoom_read_meminfo(const preoom_procfs_t *fs, preoom_meminfo_t *out)
{
    char path[4096], buf[MEDIUM_FILE_BYTES];
    size_t len;
    int rc = join_path(path, sizeof path, fs->proc_root, "meminfo");
    if (!rc)
        rc = preoom_read_file(path, buf, sizeof buf, &len, false);
    return rc ? rc : preoom_parse_meminfo(buf, len, out);
}

/* ---- PSI ------------------------------------------------------------------------------ */

/* "12.34" → 1234. The kernel prints LOAD_INT.LOAD_FRAC with two decimals; accept one or two. */
static int scan_centi(span_t s, size_t *i, uint32_t *out)
{
    uint64_t whole, frac = 0;
    int rc = scan_u64(s, i, &whole);
    if (rc)
        return rc;
    if (*i < s.n && s.p[*i] == '.') {
        size_t j = *i + 1, digits = 0;
        while (j < s.n && s.p[j] >= '0' && s.p[j] <= '9') {
            if (digits < 2)
                frac = frac * 10 + (uint64_t)(s.p[j] - '0');
            digits++;
            j++;
        }
        if (!digits)
            return -EINVAL;
        if (digits == 1)
            frac *= 10;
        *i = j;
    }
    if (whole > (UINT32_MAX - frac) / 100)
        return -ERANGE;
    *out = (uint32_t)(whole * 100 + frac);
    return 0;
}

static int parse_psi_line(span_t line, size_t i, preoom_psi_line_t *out)
{
    enum { AVG10 = 1, AVG60 = 2, AVG300 = 4, TOTAL = 8 };
    unsigned seen = 0;
    preoom_psi_line_t v = {0};
    while ((i = skip_blanks(line, i)) < line.n) {
        size_t start = i;
        while (i < line.n && line.p[i] != '=' && line.p[i] != ' ' && line.p[i] != '\t')
            i++;
        if (i >= line.n || line.p[i] != '=')
            return -EINVAL;
        span_t key = {line.p + start, i - start};
        i++;
        int rc;
        if (key.n == 5 && !memcmp(key.p, "avg10", 5)) {
            rc = scan_centi(line, &i, &v.avg10_centipct);
            seen |= AVG10;
        } else if (key.n == 5 && !memcmp(key.p, "avg60", 5)) {
            rc = scan_centi(line, &i, &v.avg60_centipct);
            seen |= AVG60;
        } else if (key.n == 6 && !memcmp(key.p, "avg300", 6)) {
            rc = scan_centi(line, &i, &v.avg300_centipct);
            seen |= AVG300;
        } else if (key.n == 5 && !memcmp(key.p, "total", 5)) {
            rc = scan_u64(line, &i, &v.total_us);
            seen |= TOTAL;
        } else {
            /* A key a later kernel may add: skip its value. */
            while (i < line.n && line.p[i] != ' ' && line.p[i] != '\t')
                i++;
            rc = 0;
        }
        if (rc)
            return rc;
        if (i < line.n && line.p[i] != ' ' && line.p[i] != '\t')
            return -EINVAL;
    }
    if (seen != (AVG10 | AVG60 | AVG300 | TOTAL))
        return -ENODATA;
    *out = v;
    return 0;
}

int preoom_parse_psi(const char *buf, size_t len, preoom_psi_t *out)
{
    preoom_psi_t v = {0};
    bool has_some = false;
    size_t pos = 0;
    span_t line;
    while (next_line(buf, len, &pos, &line)) {
        int rc = 0;
        if (line.n >= 5 && !memcmp(line.p, "some ", 5)) {
            rc = parse_psi_line(line, 5, &v.some);
            has_some = true;
        } else if (line.n >= 5 && !memcmp(line.p, "full ", 5)) {
            rc = parse_psi_line(line, 5, &v.full);
            v.has_full = true;
        } else if (!only_blanks_left(line, 0)) {
            return -EINVAL;
        }
        if (rc)
            return rc;
    }
    if (!has_some)
        return -ENODATA;
    *out = v;
    return 0;
}

static int read_psi_path(const char *path, preoom_psi_t *out)
{
    char buf[SMALL_FILE_BYTES];
    size_t len;
    int rc = preoom_read_file(path, buf, sizeof buf, &len, false);
    return rc ? rc : preoom_parse_psi(buf, len, out);
}

int preoom_read_psi(const preoom_procfs_t *fs, preoom_psi_t *out)
{
    char path[4096];
    int rc = join_path(path, sizeof path, fs->proc_root, "pressure/memory");
    return rc ? rc : read_psi_path(path, out);
}

/* ---- /proc/uptime --------------------------------------------------------------------- */

int preoom_parse_uptime(const char *buf, size_t len, uint64_t *uptime_ms)
{
    span_t s = {buf, len};
    size_t i = skip_blanks(s, 0);
    uint64_t sec, ms = 0;
    int rc = scan_u64(s, &i, &sec);
    if (rc)
        return rc;
    if (i < s.n && s.p[i] == '.') {
        uint64_t scale = 100;
        i++;
        if (i >= s.n || s.p[i] < '0' || s.p[i] > '9')
            return -EINVAL;
        while (i < s.n && s.p[i] >= '0' && s.p[i] <= '9') {
            ms += (uint64_t)(s.p[i] - '0') * scale;
            scale /= 10;
            i++;
        }
    }
    if (i < s.n && s.p[i] != ' ' && s.p[i] != '\n')
        return -EINVAL;
    if (sec > (UINT64_MAX - ms) / 1000)
        return -ERANGE;
    *uptime_ms = sec * 1000 + ms;
    return 0;
}

int preoom_read_uptime(const preoom_procfs_t *fs, uint64_t *uptime_ms)
{
    char path[4096], buf[256];
    size_t len;
    int rc = join_path(path, sizeof path, fs->proc_root, "uptime");
    if (!rc)
        rc = preoom_read_file(path, buf, sizeof buf, &len, false);
    return rc ? rc : preoom_parse_uptime(buf, len, uptime_ms);
}

/* ---- /proc/PID/stat: parsed by the floor (common/procstat.c) ------------------------- */

int preoom_read_pid_stat(const preoom_procfs_t *fs, int pid, preoom_pid_stat_t *out)
{
    char buf[SMALL_FILE_BYTES];
    size_t len;
    int rc = read_pid_file(fs, pid, "stat", buf, sizeof buf, &len, false);
    return rc ? rc : preoom_parse_pid_stat(buf, len, out);
}

/* ---- /proc/PID/status ----------------------------------------------------------------- */

int preoom_parse_pid_status(const char *buf, size_t len, preoom_pid_status_t *out)
{
    preoom_pid_status_t v = {
        .vm_rss_bytes = PREOOM_VALUE_MISSING,
        .rss_anon_bytes = PREOOM_VALUE_MISSING,
        .rss_file_bytes = PREOOM_VALUE_MISSING,
        .rss_shmem_bytes = PREOOM_VALUE_MISSING,
        .vm_swap_bytes = PREOOM_VALUE_MISSING,
        .vm_pte_bytes = PREOOM_VALUE_MISSING,
        .kthread = -1,
    };
    const struct {
        const char *key;
        uint64_t *dst;
    } kb_keys[] = {
        {"VmRSS", &v.vm_rss_bytes},     {"RssAnon", &v.rss_anon_bytes},
        {"RssFile", &v.rss_file_bytes}, {"RssShmem", &v.rss_shmem_bytes},
        {"VmSwap", &v.vm_swap_bytes},   {"VmPTE", &v.vm_pte_bytes},
    };
    bool has_name = false;
    size_t pos = 0;
    span_t line;
    while (next_line(buf, len, &pos, &line)) {
        size_t i;
        int rc = 0;
        if (key_is(line, "Name", &i)) {
            /* The kernel escapes '\n' and '\\' in this line, so it is one line. */
            i = skip_blanks(line, i);
            copy_printable(v.name, sizeof v.name, line.p + i, line.n - i);
            has_name = true;
        } else if (key_is(line, "Uid", &i)) {
            uint64_t ids[2];
            for (int k = 0; k < 2 && !rc; k++) {
                i = skip_blanks(line, i);
                rc = scan_u64(line, &i, &ids[k]);
                if (!rc && ids[k] > UINT32_MAX)
                    rc = -ERANGE;
            }
            if (rc)
                return rc;
            v.uid_real = (uint32_t)ids[0];
            v.uid_effective = (uint32_t)ids[1];
            v.has_uid = true;
        } else if (key_is(line, "CapEff", &i)) {
            i = skip_blanks(line, i);
            rc = scan_hex(line, &i, &v.cap_eff);
            if (!rc && !only_blanks_left(line, i))
                rc = -EINVAL;
            if (rc)
                return rc;
            v.has_cap_eff = true;
        } else if (key_is(line, "Kthread", &i)) {
            uint64_t k;
            i = skip_blanks(line, i);
            rc = scan_u64(line, &i, &k);
            if (rc)
                return rc;
            v.kthread = k != 0;
        } else {
            for (size_t k = 0; k < sizeof kb_keys / sizeof kb_keys[0]; k++) {
                if (key_is(line, kb_keys[k].key, &i)) {
                    rc = scan_kb_to_end(line, i, kb_keys[k].dst);
                    if (rc)
                        return rc;
                    break;
                }
            }
        }
    }
    /* Without a uid the arbiter cannot tell whose process this is: not a status file. */
    if (!has_name || !v.has_uid)
        return -ENODATA;
    *out = v;
    return 0;
}

int preoom_read_pid_status(const preoom_procfs_t *fs, int pid, preoom_pid_status_t *out)
{
    char buf[MEDIUM_FILE_BYTES];
    size_t len;
    int rc = read_pid_file(fs, pid, "status", buf, sizeof buf, &len, false);
    return rc ? rc : preoom_parse_pid_status(buf, len, out);
}

/* ---- /proc/PID/oom_score_adj, cmdline ------------------------------------------------- */

int preoom_parse_oom_score_adj(const char *buf, size_t len, int *adj)
{
    span_t s = {buf, len};
    size_t i = skip_blanks(s, 0);
    int64_t v;
    int rc = scan_i64(s, &i, &v);
    if (rc)
        return rc;
    if (i < s.n && s.p[i] == '\n')
        i++;
    if (!only_blanks_left(s, i))
        return -EINVAL;
    if (v < -1000 || v > 1000)
        return -ERANGE;
    *adj = (int)v;
    return 0;
}

int preoom_read_oom_score_adj(const preoom_procfs_t *fs, int pid, int *adj)
{
    char buf[64];
    size_t len;
    int rc = read_pid_file(fs, pid, "oom_score_adj", buf, sizeof buf, &len, false);
    return rc ? rc : preoom_parse_oom_score_adj(buf, len, adj);
}

int preoom_parse_cmdline(const char *buf, size_t len, char *out, size_t cap)
{
    if (!cap)
        return -EINVAL;
    /* Arguments end with NUL; the last one's terminator (and any padding a process that
     * rewrote its title left behind) is not a separator. */
    while (len > 0 && buf[len - 1] == '\0')
        len--;
    size_t k = len < cap - 1 ? len : cap - 1;
    for (size_t j = 0; j < k; j++) {
        unsigned char c = (unsigned char)buf[j];
        out[j] = c == '\0' ? ' ' : (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    out[k] = '\0';
    return 0;
}

int preoom_read_cmdline(const preoom_procfs_t *fs, int pid, char *out, size_t cap)
{
    char buf[SMALL_FILE_BYTES];
    size_t len;
    /* The command line can be as long as ARG_MAX; its start is all we show. */
    int rc = read_pid_file(fs, pid, "cmdline", buf, sizeof buf, &len, true);
    return rc ? rc : preoom_parse_cmdline(buf, len, out, cap);
}

/* ---- /proc/PID/cgroup ----------------------------------------------------------------- */

static bool list_has_word(span_t list, char sep, const char *word)
{
    size_t w = strlen(word), i = 0;
    while (i <= list.n) {
        size_t start = i;
        while (i < list.n && list.p[i] != sep)
            i++;
        if (i - start == w && !memcmp(list.p + start, word, w))
            return true;
        i++;
    }
    return false;
}

static int copy_cgroup_path(span_t path, char *dst)
{
    if (path.n == 0 || path.p[0] != '/')
        return -EINVAL;
    if (path.n >= PREOOM_CGROUP_PATH_MAX)
        return -ENAMETOOLONG;
    memcpy(dst, path.p, path.n);
    dst[path.n] = '\0';
    if (strlen(dst) != path.n)
        return -EINVAL; /* an embedded NUL */
    return 0;
}

int preoom_parse_pid_cgroup(const char *buf, size_t len, preoom_pid_cgroup_t *out)
{
    preoom_pid_cgroup_t v;
    v.has_v1_memory = v.has_v2 = false;
    v.v1_memory[0] = v.v2[0] = '\0';
    size_t pos = 0;
    span_t line;
    while (next_line(buf, len, &pos, &line)) {
        if (line.n == 0)
            continue;
        /* hierarchy-ID:controller-list:path — the path may itself contain ':'. */
        const char *c1 = memchr(line.p, ':', line.n);
        if (!c1)
            return -EINVAL;
        size_t after1 = (size_t)(c1 - line.p) + 1;
        const char *c2 = memchr(c1 + 1, ':', line.n - after1);
        if (!c2)
            return -EINVAL;
        span_t id = {line.p, (size_t)(c1 - line.p)};
        span_t ctrls = {c1 + 1, (size_t)(c2 - c1 - 1)};
        span_t path = {c2 + 1, line.n - (size_t)(c2 + 1 - line.p)};
        size_t i = 0;
        uint64_t hid;
        if (scan_u64(id, &i, &hid) || i != id.n)
            return -EINVAL;
        int rc = 0;
        if (hid == 0 && ctrls.n == 0) {
            if (!v.has_v2) {
                rc = copy_cgroup_path(path, v.v2);
                v.has_v2 = true;
            }
        } else if (list_has_word(ctrls, ',', "memory")) {
            if (!v.has_v1_memory) {
                rc = copy_cgroup_path(path, v.v1_memory);
                v.has_v1_memory = true;
            }
        }
        if (rc)
            return rc;
    }
    *out = v;
    return 0;
}

int preoom_read_pid_cgroup(const preoom_procfs_t *fs, int pid, preoom_pid_cgroup_t *out)
{
    char buf[MEDIUM_FILE_BYTES];
    size_t len;
    int rc = read_pid_file(fs, pid, "cgroup", buf, sizeof buf, &len, false);
    return rc ? rc : preoom_parse_pid_cgroup(buf, len, out);
}

/* ---- memory cgroups ------------------------------------------------------------------- */

int preoom_parse_cgroup_u64(const char *buf, size_t len, uint64_t *value)
{
    span_t s = {buf, len};
    size_t i = skip_blanks(s, 0);
    uint64_t v;
    if (i + 3 <= s.n && !memcmp(s.p + i, "max", 3)) {
        v = PREOOM_LIMIT_NONE;
        i += 3;
    } else {
        int rc = scan_u64(s, &i, &v);
        if (rc)
            return rc;
    }
    if (i < s.n && s.p[i] == '\n')
        i++;
    if (!only_blanks_left(s, i))
        return -EINVAL;
    *value = v;
    return 0;
}

int preoom_parse_keyed_u64(const char *buf, size_t len, const char *key, uint64_t *value)
{
    size_t k = strlen(key), pos = 0;
    span_t line;
    while (next_line(buf, len, &pos, &line)) {
        if (line.n <= k || memcmp(line.p, key, k) != 0 || line.p[k] != ' ')
            continue;
        size_t i = skip_blanks(line, k);
        uint64_t v;
        int rc = scan_u64(line, &i, &v);
        if (rc)
            return rc;
        if (!only_blanks_left(line, i))
            return -EINVAL;
        *value = v;
        return 0;
    }
    return -ENOENT;
}

int preoom_parse_smaps_rollup(const char *buf, size_t len, uint64_t *anon_bytes,
                              uint64_t *swap_bytes)
{
    /* "Pss_Anon:        116 kB". Pss_Anon and SwapPss (5.x+) share a page between the
     * processes that map it; older kernels have only Private_Dirty and Swap. */
    static const char *const anon_keys[] = {"Pss_Anon:", "Private_Dirty:"};
    static const char *const swap_keys[] = {"SwapPss:", "Swap:"};
    const char *const *keys[2] = {anon_keys, swap_keys};
    uint64_t *out[2] = {anon_bytes, swap_bytes};
    for (int w = 0; w < 2; w++) {
        bool found = false;
        for (int alt = 0; alt < 2 && !found; alt++) {
            size_t k = strlen(keys[w][alt]), pos = 0;
            span_t line;
            while (next_line(buf, len, &pos, &line)) {
                if (line.n <= k || memcmp(line.p, keys[w][alt], k) != 0)
                    continue;
                size_t i = skip_blanks(line, k);
                uint64_t v;
                if (scan_u64(line, &i, &v) != 0 || v > (UINT64_MAX >> 10))
                    return -EINVAL;
                i = skip_blanks(line, i);
                if (line.n - i != 2 || memcmp(line.p + i, "kB", 2) != 0)
                    return -EINVAL;
                *out[w] = v << 10;
                found = true;
                break;
            }
        }
        if (!found) {
            if (w == 0)
                return -ENOENT;
            *out[w] = 0; /* no swap lines: no swap */
        }
    }
    return 0;
}

bool preoom_controllers_have(const char *buf, size_t len, const char *controller)
{
    size_t pos = 0;
    span_t line;
    while (next_line(buf, len, &pos, &line)) {
        /* Words are separated by single spaces; tolerate tabs by splitting on both. */
        size_t i = 0;
        while ((i = skip_blanks(line, i)) < line.n) {
            size_t start = i;
            while (i < line.n && line.p[i] != ' ' && line.p[i] != '\t')
                i++;
            if (i - start == strlen(controller) && !memcmp(line.p + start, controller, i - start))
                return true;
        }
    }
    return false;
}

static int resolve_dir(const preoom_procfs_t *fs, const char *dir, char *out, size_t cap)
{
    int n = dir[0] == '/' ? snprintf(out, cap, "%s", dir)
                          : snprintf(out, cap, "%s/%s", fs->cgroup_root, dir);
    if (n < 0 || (size_t)n >= cap)
        return -ENAMETOOLONG;
    /* "/a/b/" and "/a/b" name the same cgroup; the parent walk wants no trailing slash. */
    while (n > 1 && out[n - 1] == '/')
        out[--n] = '\0';
    return 0;
}

/* Read dir/file: a one-number file into *value. -ENOENT passes through untouched. */
static int read_cg_u64(const char *dir, const char *file, uint64_t *value)
{
    char path[4096], buf[128];
    size_t len;
    int rc = join_path(path, sizeof path, dir, file);
    if (!rc)
        rc = preoom_read_file(path, buf, sizeof buf, &len, false);
    return rc ? rc : preoom_parse_cgroup_u64(buf, len, value);
}

static int read_cg_text(const char *dir, const char *file, char *buf, size_t cap, size_t *len)
{
    char path[4096];
    int rc = join_path(path, sizeof path, dir, file);
    return rc ? rc : preoom_read_file(path, buf, cap, len, false);
}

/* The first of the keys present, or MISSING. Malformed values are errors. */
static int keyed_first(const char *buf, size_t len, const char *k1, const char *k2,
                       uint64_t *value)
{
    int rc = preoom_parse_keyed_u64(buf, len, k1, value);
    if (rc == -ENOENT && k2)
        rc = preoom_parse_keyed_u64(buf, len, k2, value);
    if (rc == -ENOENT) {
        *value = PREOOM_VALUE_MISSING;
        rc = 0;
    }
    return rc;
}

static uint64_t v1_limit(uint64_t bytes)
{
    return bytes >= V1_NO_LIMIT_BYTES ? PREOOM_LIMIT_NONE : bytes;
}

static int read_memcg_v1(const char *dir, preoom_memcg_t *m)
{
    char buf[MEDIUM_FILE_BYTES];
    size_t len;
    uint64_t hier;
    int rc = read_cg_u64(dir, "memory.limit_in_bytes", &m->limit_bytes);
    if (rc)
        return rc;
    m->limit_bytes = v1_limit(m->limit_bytes);
    rc = read_cg_u64(dir, "memory.usage_in_bytes", &m->usage_bytes);
    if (rc)
        return rc;
    rc = read_cg_text(dir, "memory.stat", buf, sizeof buf, &len);
    if (rc)
        return rc;
    /* total_* include the descendants, which is what the limit covers. */
    if ((rc = keyed_first(buf, len, "total_rss", "rss", &m->anon_bytes)) ||
        (rc = keyed_first(buf, len, "total_cache", "cache", &m->file_bytes)) ||
        (rc = keyed_first(buf, len, "total_swap", "swap", &m->swap_bytes)) ||
        (rc = keyed_first(buf, len, "hierarchical_memory_limit", NULL, &hier)))
        return rc;
    /* An unlimited child of a limited parent is limited by the parent: v1 says so here. */
    m->effective_limit_bytes = m->limit_bytes;
    if (hier != PREOOM_VALUE_MISSING && v1_limit(hier) < m->effective_limit_bytes)
        m->effective_limit_bytes = v1_limit(hier);
    rc = read_cg_text(dir, "memory.oom_control", buf, sizeof buf, &len);
    if (rc == -ENOENT) {
        m->oom_kill = PREOOM_VALUE_MISSING;
        return 0;
    }
    if (rc)
        return rc;
    /* The oom_kill line appeared in 4.13. */
    return keyed_first(buf, len, "oom_kill", NULL, &m->oom_kill);
}

static int read_memcg_v2(const char *dir, preoom_memcg_t *m)
{
    char buf[MEDIUM_FILE_BYTES], up[4096];
    size_t len;
    /* The root has no memory.max or memory.current: no limit, usage from /proc/meminfo. */
    int rc = read_cg_u64(dir, "memory.max", &m->limit_bytes);
    if (rc == -ENOENT)
        m->limit_bytes = PREOOM_LIMIT_NONE;
    else if (rc)
        return rc;
    rc = read_cg_u64(dir, "memory.current", &m->usage_bytes);
    if (rc == -ENOENT)
        m->usage_bytes = PREOOM_VALUE_MISSING;
    else if (rc)
        return rc;
    rc = read_cg_u64(dir, "memory.swap.current", &m->swap_bytes);
    if (rc == -ENOENT)
        m->swap_bytes = PREOOM_VALUE_MISSING;
    else if (rc)
        return rc;
    m->anon_bytes = m->file_bytes = PREOOM_VALUE_MISSING;
    rc = read_cg_text(dir, "memory.stat", buf, sizeof buf, &len);
    if (!rc) {
        if ((rc = keyed_first(buf, len, "anon", NULL, &m->anon_bytes)) ||
            (rc = keyed_first(buf, len, "file", NULL, &m->file_bytes)))
            return rc;
    } else if (rc != -ENOENT) {
        return rc;
    }
    m->oom_kill = PREOOM_VALUE_MISSING;
    rc = read_cg_text(dir, "memory.events", buf, sizeof buf, &len);
    if (!rc) {
        if ((rc = keyed_first(buf, len, "oom_kill", NULL, &m->oom_kill)))
            return rc;
    } else if (rc != -ENOENT) {
        return rc;
    }
    /* v2 has no hierarchical limit file: walk up while the parents have a memory.max (the
     * root has none, which is where the walk stops). */
    m->effective_limit_bytes = m->limit_bytes;
    snprintf(up, sizeof up, "%s", dir);
    for (int depth = 0; depth < MAX_CGROUP_DEPTH; depth++) {
        char *slash = strrchr(up, '/');
        if (!slash || slash == up)
            break;
        *slash = '\0';
        uint64_t parent;
        rc = read_cg_u64(up, "memory.max", &parent);
        if (rc)
            break; /* the root, or not a cgroup directory any more */
        if (parent < m->effective_limit_bytes)
            m->effective_limit_bytes = parent;
    }
    return 0;
}

int preoom_read_memcg(const preoom_procfs_t *fs, const char *dir, preoom_memcg_t *out)
{
    char path[4096], probe[4096];
    preoom_memcg_t m = {0};
    struct stat st;
    if (!dir || !*dir)
        return -EINVAL;
    int rc = resolve_dir(fs, dir, path, sizeof path);
    if (rc)
        return rc;
    /* The files present tell the version: only v1 has memory.limit_in_bytes, only v2 has
     * cgroup.controllers. */
    if ((rc = join_path(probe, sizeof probe, path, "memory.limit_in_bytes")))
        return rc;
    if (stat(probe, &st) == 0) {
        m.version = PREOOM_CGROUP_V1;
        rc = read_memcg_v1(path, &m);
    } else {
        if ((rc = join_path(probe, sizeof probe, path, "cgroup.controllers")))
            return rc;
        if (stat(probe, &st) != 0)
            return -ENOENT;
        m.version = PREOOM_CGROUP_V2;
        rc = read_memcg_v2(path, &m);
    }
    if (!rc)
        *out = m;
    return rc;
}

int preoom_read_memcg_psi(const preoom_procfs_t *fs, const char *dir, preoom_psi_t *out)
{
    char path[4096], file[4096];
    int rc = resolve_dir(fs, dir, path, sizeof path);
    if (!rc)
        rc = join_path(file, sizeof file, path, "memory.pressure");
    return rc ? rc : read_psi_path(file, out);
}

/* Is this v2 hierarchy root carrying the memory controller? */
static bool v2_root_has_memory(const char *root)
{
    char buf[SMALL_FILE_BYTES];
    size_t len;
    return read_cg_text(root, "cgroup.controllers", buf, sizeof buf, &len) == 0 &&
           preoom_controllers_have(buf, len, "memory");
}

/* A cgroup path from the kernel, under a hierarchy root, if it names a directory. */
static int cgroup_dir(const char *root, const char *cgpath, char *dir, size_t cap)
{
    struct stat st;
    /* The kernel never prints "..", but a fake or hostile tree could. */
    if (strstr(cgpath, "/../") || (strlen(cgpath) >= 3 && !strcmp(cgpath + strlen(cgpath) - 3, "/..")))
        return -EINVAL;
    int n = strcmp(cgpath, "/") == 0 ? snprintf(dir, cap, "%s", root)
                                     : snprintf(dir, cap, "%s%s", root, cgpath);
    if (n < 0 || (size_t)n >= cap)
        return -ENAMETOOLONG;
    if (stat(dir, &st) != 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int preoom_find_memcg(const preoom_procfs_t *fs, int pid, char *dir, size_t cap,
                      preoom_cgroup_version_t *version)
{
    preoom_pid_cgroup_t cg;
    char root[4096];
    int rc = preoom_read_pid_cgroup(fs, pid, &cg);
    if (rc)
        return rc;
    rc = -ENOENT;
    if (cg.has_v2) {
        /* Unified layout (v2 at the root) first, then hybrid (v2 at .../unified). */
        const char *roots[] = {"", "/unified"};
        for (size_t k = 0; k < 2; k++) {
            int n = snprintf(root, sizeof root, "%s%s", fs->cgroup_root, roots[k]);
            if (n < 0 || (size_t)n >= sizeof root)
                return -ENAMETOOLONG;
            if (!v2_root_has_memory(root))
                continue;
            rc = cgroup_dir(root, cg.v2, dir, cap);
            if (!rc) {
                *version = PREOOM_CGROUP_V2;
                return 0;
            }
        }
    }
    if (cg.has_v1_memory) {
        int n = snprintf(root, sizeof root, "%s/memory", fs->cgroup_root);
        if (n < 0 || (size_t)n >= sizeof root)
            return -ENAMETOOLONG;
        rc = cgroup_dir(root, cg.v1_memory, dir, cap);
        if (!rc)
            *version = PREOOM_CGROUP_V1;
    }
    return rc;
}

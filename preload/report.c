/* preload/report.c — the only writer of the report file: the process's totals as one JSON
 * object, followed by the call sites (stacks.c formats those) when PREOOM_STACKS is on; at
 * exit to PREOOM_REPORT, and on demand (a dump request) to the registry's dump path.
 *
 * The format is flat and stable: keys in bytes ("pid", "committed", "touched",
 * "peak_committed", "peak_touched", "malloc", "mmap", "brk", "slack", "exposure", "rss_anon",
 * "swap") and a "calls" object; call sites follow under "sites" when PREOOM_STACKS is on.
 * Written with our own formatter into a stack buffer, then write(2): exit handlers of the
 * host may have torn down stdio. Never allocates.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

static const char *const call_names[PREOOM_CALL_COUNT] = {
    "malloc", "free", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc",
    "memalign", "valloc", "pvalloc", "malloc_usable_size", "mmap", "munmap", "mremap", "brk",
    "sbrk", "operator_new", "operator_delete",
};



/* Our own descriptor: closed by the system call, not through the program's close (hooks.c). */
static int raw_close(int fd)
{
    return (int)syscall(SYS_close, fd);
}

long preoom_report_json(const preoom_totals_t *t, pid_t pid, const char *name, char *buf,
                        size_t size)
{
    char esc[80];
    /* The process chose its own name: escape it. */
    preoom_json_escape(esc, sizeof esc, name ? name : "");
    size_t n = preoom_fmt(
        buf, size,
        "{\"pid\": %d, \"name\": \"%s\", \"committed\": %llu, \"touched\": %llu, "
        "\"peak_committed\": %llu, \"peak_touched\": %llu, \"malloc\": %llu, \"mmap\": %llu, "
        "\"brk\": %llu, \"slack\": %llu, \"exposure\": %llu, \"rss_anon\": %llu, "
        "\"swap\": %llu, \"calls\": {",
        (int)pid, esc, (unsigned long long)t->committed, (unsigned long long)t->touched,
        (unsigned long long)t->peak_committed, (unsigned long long)t->peak_touched,
        (unsigned long long)t->malloc_bytes, (unsigned long long)t->mmap_bytes,
        (unsigned long long)t->brk_bytes, (unsigned long long)t->slack,
        (unsigned long long)t->exposure, (unsigned long long)t->rss_anon,
        (unsigned long long)t->swap);
    for (int k = 0; k < PREOOM_CALL_COUNT; k++)
        n += preoom_fmt(buf + n, size > n ? size - n : 0, "%s\"%s\": %llu", k ? ", " : "",
                        call_names[k], (unsigned long long)t->calls[k]);
    n += preoom_fmt(buf + n, size > n ? size - n : 0, "}");
    if (n + 1 >= size)
        return -ENOSPC;
    return (long)n;
}

void preoom_report_write(const preoom_totals_t *t)
{
    if (!preoom_opt.report[0])
        return;
    char path[600];
    pid_t pid = getpid();
    if (preoom_report_path(preoom_opt.report, pid, path, sizeof path) != 0) {
        preoom_log_error("PREOOM_REPORT: path too long; no report written");
        return;
    }
    char name[17] = "";
    preoom_procself_comm(name, sizeof name);
    char buf[2048];
    long n = preoom_report_json(t, pid, name, buf, sizeof buf);
    if (n < 0) {
        preoom_log_error("report: buffer too small; no report written");
        return;
    }
    /* Never blocks, never follows: a FIFO planted at the path fails here (no reader) or is
     * refused below (a reader), and only a regular file is emptied, after the check. */
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
    if (fd < 0) {
        preoom_log_error("cannot write report %s: %s", path, strerrordesc_np(errno));
        return;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || ftruncate(fd, 0) != 0) {
        preoom_log_error("cannot write report %s: not a regular file (refused)", path);
        raw_close(fd);
        return;
    }
    int rc = preoom_write_all(fd, buf, (size_t)n);
    if (rc == 0) {
        int src = preoom_stacks_write_report(fd);
        if (src != 0)
            preoom_log_error("call-site report: %s", strerrordesc_np(-src));
    }
    if (rc == 0)
        rc = preoom_write_all(fd, "}\n", 2);
    if (rc != 0)
        preoom_log_error("cannot write report %s: %s", path, strerrordesc_np(-rc));
    raw_close(fd);
}

long preoom_report_dump_now(const preoom_totals_t *t)
{
    char path[160], tmp[200];
    pid_t pid = getpid();
    if (preoom_stacks_dump_path(preoom_opt.registry, pid, path, sizeof path) != 0)
        return -ENAMETOOLONG;
    preoom_fmt(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)syscall(SYS_gettid));
    preoom_tls.guard++;
    char name[17] = "";
    preoom_procself_comm(name, sizeof name);
    char buf[2048];
    long n = preoom_report_json(t, pid, name, buf, sizeof buf);
    long rc = n < 0 ? n : 0;
    int fd = -1;
    if (rc == 0) {
        unlink(tmp);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
            rc = -errno;
    }
    if (rc == 0)
        rc = preoom_write_all(fd, buf, (size_t)n);
    if (rc == 0)
        rc = preoom_stacks_write_report(fd);
    if (rc == 0)
        rc = preoom_write_all(fd, "}\n", 2);
    off_t size_bytes = fd >= 0 ? lseek(fd, 0, SEEK_CUR) : 0;
    if (fd >= 0 && raw_close(fd) != 0 && rc == 0)
        rc = -errno;
    /* Renamed into place whole, so a reader never sees half a report. */
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0 && fd >= 0)
        unlink(tmp);
    preoom_tls.guard--;
    if (rc != 0) {
        preoom_log_error("report on demand to %s: %s", path, strerrordesc_np((int)-rc));
        return rc;
    }
    preoom_log_verbose(1, "report on demand written to %s", path);
    return (long)size_bytes;
}

/* common/procstat.c — the one parser of /proc/PID/stat, for both sides: the arbiter's
 * candidates (tools/procfs.c reads the file) and the registry's proof that a pid and start
 * time still name a live process (common/registry.c, and the preload's own start time).
 *
 * Pure functions over a buffer the caller read. The process chose its own name (field 2),
 * so the name ends at the last ')'. Never allocates.
 */
#include <errno.h>
#include <stdint.h>

#include "floor.h"
#include "lex.h"

/* PF_KTHREAD in include/linux/sched.h: stable since 2.6.27. */
#define PF_KTHREAD_FLAG 0x00200000ULL

/* Fields after the name, counted from 3 (state) as proc(5) numbers them. */
enum {
    STAT_STATE = 3,
    STAT_PPID = 4,
    STAT_FLAGS = 9,
    STAT_UTIME = 14,
    STAT_STIME = 15,
    STAT_NICE = 19,
    STAT_THREADS = 20,
    STAT_STARTTIME = 22,
    STAT_VSIZE = 23,
    STAT_RSS = 24,
};

int preoom_parse_pid_stat(const char *buf, size_t len, preoom_pid_stat_t *out)
{
    preoom_pid_stat_t v = {0};
    /* The name is the process's own choice and may hold ')', spaces and newlines; the kernel
     * writes nothing after it that contains ')'. So the name ends at the LAST ')'. */
    const char *open = memchr(buf, '(', len);
    const char *close = NULL;
    for (size_t j = len; j > 0; j--) {
        if (buf[j - 1] == ')') {
            close = buf + j - 1;
            break;
        }
    }
    if (!open || !close || close < open)
        return -EINVAL;

    span_t head = {buf, (size_t)(open - buf)};
    size_t i = skip_blanks(head, 0);
    int64_t pid;
    int rc = scan_i64(head, &i, &pid);
    if (rc)
        return rc;
    if (pid <= 0 || pid > INT32_MAX || !only_blanks_left(head, i))
        return -EINVAL;
    v.pid = (int32_t)pid;
    copy_printable(v.comm, sizeof v.comm, open + 1, (size_t)(close - open - 1));

    span_t rest = {close + 1, len - (size_t)(close + 1 - buf)};
    i = 0;
    for (int field = STAT_STATE; field <= STAT_RSS; field++) {
        if (i >= rest.n || rest.p[i] != ' ')
            return -EINVAL; /* truncated or not the kernel's layout */
        i++;
        if (field == STAT_STATE) {
            if (i >= rest.n || rest.p[i] == ' ' || rest.p[i] == '\n')
                return -EINVAL;
            v.state = rest.p[i++];
            continue;
        }
        int64_t x;
        rc = scan_i64(rest, &i, &x);
        if (rc)
            return rc;
        /* Signed fields (nice, tty, tpgid, cutime…) are kept or skipped; the ones we use as
         * counts must not be negative. */
        switch (field) {
        case STAT_PPID:
            if (x < 0 || x > INT32_MAX)
                return -ERANGE;
            v.ppid = (int32_t)x;
            break;
        case STAT_NICE:
            if (x < -20 || x > 19)
                return -ERANGE;
            v.nice = (int32_t)x;
            break;
        case STAT_FLAGS:
        case STAT_UTIME:
        case STAT_STIME:
        case STAT_THREADS:
        case STAT_STARTTIME:
        case STAT_VSIZE:
        case STAT_RSS:
            if (x < 0)
                return -ERANGE;
            if (field == STAT_FLAGS)
                v.flags = (uint64_t)x;
            else if (field == STAT_UTIME)
                v.utime_ticks = (uint64_t)x;
            else if (field == STAT_STIME)
                v.stime_ticks = (uint64_t)x;
            else if (field == STAT_THREADS)
                v.num_threads = (uint64_t)x;
            else if (field == STAT_STARTTIME)
                v.starttime_ticks = (uint64_t)x;
            else if (field == STAT_VSIZE)
                v.vsize_bytes = (uint64_t)x;
            else
                v.rss_pages = (uint64_t)x;
            break;
        default:
            break;
        }
    }
    /* Field 24 must be a whole number, not cut off by a short read. */
    if (i < rest.n && rest.p[i] != ' ' && rest.p[i] != '\n')
        return -EINVAL;
    v.kthread = (v.flags & PF_KTHREAD_FLAG) != 0;
    *out = v;
    return 0;
}

int preoom_parse_stat_start_time(const char *buf, size_t len, uint64_t *start_ticks)
{
    preoom_pid_stat_t st;
    int rc = preoom_parse_pid_stat(buf, len, &st);
    if (rc == 0)
        *start_ticks = st.starttime_ticks;
    return rc;
}

int preoom_parse_stat_defunct(const char *buf, size_t len)
{
    preoom_pid_stat_t st;
    /* A zombie whose last thread is gone (a lone "Z" is not enough: a main thread that
     * called pthread_exit shows Z while other threads run). */
    return preoom_parse_pid_stat(buf, len, &st) == 0 && (st.state == 'Z' || st.state == 'X') &&
           st.num_threads <= 1;
}

/* preload/log.c — the preload's one reporter of errors and notes.
 *
 * Writes whole lines with write(2), never through stdio (which allocates and locks), keeps
 * errno as the host left it, and stops reporting errors after PREOOM_LOG_MAX_ERRORS so a
 * broken setting or registry cannot flood a service's log. It never aborts the host.
 *
 * Where: to PREOOM_LOG when set (opened per line, appended, never following a link, never
 * anything but a regular file); else to descriptor 2, but only while it is still the file it
 * was when the process started. A host that closed its stderr and reused the number for its
 * own journal, socket or data file must never find our lines in it: then nothing is written.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

static _Atomic int errors_reported;
static int fd2_known = -1;            /* -1 not yet looked at, 0 closed at start, 1 known */
static dev_t fd2_dev;
static ino_t fd2_ino;

void preoom_log_init(void)
{
    struct stat st;
    if (fd2_known >= 0)
        return;
    if (fstat(2, &st) == 0) {
        fd2_dev = st.st_dev;
        fd2_ino = st.st_ino;
        fd2_known = 1;
    } else {
        fd2_known = 0;
    }
}

/* PREOOM_LOG and PREOOM_VERBOSE, handed in by options.c: log.c reads no settings. */
static const char *log_path = "";
static int verbosity;

void preoom_log_set_verbose(int level)
{
    verbosity = level;
}

void preoom_log_set_file(const char *path)
{
    log_path = path ? path : "";
}

static void put_line(const char *line, size_t n)
{
    struct stat st;
    if (log_path[0]) {
        int fd = open(log_path,
                      O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
        if (fd < 0)
            return;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
            (void)preoom_write_all(fd, line, n);
        syscall(SYS_close, fd); /* raw: our own descriptor, not the program's close hook */
        return;
    }
    preoom_log_init();
    if (fd2_known == 1 && fstat(2, &st) == 0 && st.st_dev == fd2_dev && st.st_ino == fd2_ino)
        (void)preoom_write_all(2, line, n);

}

static void emit(const char *fmt, va_list ap)
{
    int saved = errno;
    char line[512];
    size_t n = preoom_fmt(line, sizeof line, "preoom[%d]: ", (int)getpid());
    n += preoom_vfmt(line + n, sizeof line - n, fmt, ap);
    if (n >= sizeof line - 1)
        n = sizeof line - 2;
    line[n++] = '\n';
    put_line(line, n);
    errno = saved;
}

void preoom_log_error(const char *fmt, ...)
{
    int k = atomic_fetch_add_explicit(&errors_reported, 1, memory_order_relaxed);
    if (k > PREOOM_LOG_MAX_ERRORS)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (k == PREOOM_LOG_MAX_ERRORS) {
        va_end(ap);
        int saved = errno;
        char line[128];
        size_t n = preoom_fmt(line, sizeof line,
                              "preoom[%d]: further errors are not reported\n", (int)getpid());
        put_line(line, n);
        errno = saved;
        return;
    }
    emit(fmt, ap);
    va_end(ap);
}

void preoom_log_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(fmt, ap);
    va_end(ap);
}

void preoom_log_verbose(int level, const char *fmt, ...)
{
    if (verbosity < level)
        return;
    va_list ap;
    va_start(ap, fmt);
    emit(fmt, ap);
    va_end(ap);
}

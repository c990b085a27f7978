/* preload/log.c — the preload's one reporter of errors and notes.
 *
 * Writes whole lines to stderr with write(2), never through stdio (which allocates and
 * locks), keeps errno as the host left it, and stops reporting errors after
 * PREOOM_LOG_MAX_ERRORS so a broken setting or registry cannot flood a service's log.
 * It never aborts the host.
 */
#include <errno.h>
#include <stdarg.h>
#include <unistd.h>

#include "internal.h"

static _Atomic int errors_reported;
static int verbosity;  /* PREOOM_VERBOSE, handed in by options.c: log.c reads no settings */

void preoom_log_set_verbose(int level)
{
    verbosity = level;
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
    (void)preoom_write_all(2, line, n);
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
        (void)preoom_write_all(2, line, n);
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

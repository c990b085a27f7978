/* common/reportpath.c — where reports go: the PREOOM_REPORT template (%p is the pid), and
 * the path a running process writes the report `preoom report PID` asks it for, which the
 * asking tool then reads. One convention for both sides. Never allocates.
 */
#include <errno.h>
#include <string.h>

#include "floor.h"

int preoom_report_path(const char *tmpl, pid_t pid, char *out, size_t size)
{
    size_t n = 0;
    for (const char *p = tmpl; *p; p++) {
        char piece[24];
        size_t len;
        if (p[0] == '%' && p[1] == 'p') {
            len = preoom_fmt(piece, sizeof piece, "%d", (int)pid);
            p++;
        } else {
            piece[0] = *p;
            len = 1;
        }
        if (n + len + 1 > size)
            return -ENAMETOOLONG;
        memcpy(out + n, piece, len);
        n += len;
    }
    if (n + 1 > size)
        return -ENAMETOOLONG;
    out[n] = '\0';
    return 0;
}

int preoom_stacks_dump_path(const char *registry, pid_t pid, char *out, size_t size)
{
    size_t n = preoom_fmt(out, size, "/tmp/preoom-report.%s.%d.json", registry, (int)pid);
    return n + 1 >= size ? -ENAMETOOLONG : 0;
}

/* common/procstat.c — the fields of /proc/PID/stat that the registry trusts: the start time
 * that, with the pid, names one process, and whether it is a zombie with nothing left.
 *
 * Pure functions over a buffer the caller read; the process chose its own name (field 2), so
 * the fields are counted from the last ')'. Never allocates.
 */
#include <errno.h>
#include <stdint.h>

#include "floor.h"

/* /proc/PID/stat's name (field 2) may contain anything, ')' and spaces included: the fields
 * that follow are counted from the last ')'. NULL when there is none. */
static const char *after_comm(const char *buf, size_t len)
{
    for (size_t i = len; i > 0; i--)
        if (buf[i - 1] == ')')
            return buf + i;
    return NULL;
}

int preoom_parse_stat_start_time(const char *buf, size_t len, uint64_t *start_ticks)
{
    const char *p = after_comm(buf, len);
    if (!p)
        return -EINVAL;
    const char *end = buf + len;
    int field = 2;
    while (p < end && field < 22) {
        while (p < end && *p == ' ')
            p++;
        field++;
        if (field == 22)
            break;
        while (p < end && *p != ' ')
            p++;
    }
    if (field != 22 || p >= end || *p < '0' || *p > '9')
        return -EINVAL;
    uint64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        if (v > UINT64_MAX / 10 - 9)
            return -ERANGE;
        v = v * 10 + (uint64_t)(*p++ - '0');
    }
    *start_ticks = v;
    return 0;
}

int preoom_parse_stat_defunct(const char *buf, size_t len)
{
    const char *p = after_comm(buf, len);
    if (!p)
        return 0;
    const char *end = buf + len;
    while (p < end && *p == ' ')
        p++;
    if (p >= end || (*p != 'Z' && *p != 'X'))
        return 0;
    /* Field 3 is the state; num_threads is field 20, 17 fields further. */
    for (int field = 3; field < 20 && p < end; field++) {
        while (p < end && *p != ' ')
            p++;
        while (p < end && *p == ' ')
            p++;
    }
    uint64_t threads = 0;
    while (p < end && *p >= '0' && *p <= '9')
        threads = threads * 10 + (uint64_t)(*p++ - '0');
    return threads <= 1;
}

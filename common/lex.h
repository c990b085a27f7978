/* common/lex.h — lexing over (pointer, length), for the parsers of /proc and /sys files on
 * both sides (common/procstat.c, tools/procfs.c): decimal numbers that never wrap, blanks,
 * lines, and names made printable. Pure and allocation-free; static inline, so each user
 * gets its own copy of one definition.
 */
#ifndef PREOOM_COMMON_LEX_H
#define PREOOM_COMMON_LEX_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    const char *p;
    size_t n;
} span_t;

/* The next '\n'-terminated line (the last one may lack its newline). */
static inline bool next_line(const char *buf, size_t len, size_t *pos, span_t *line)
{
    if (*pos >= len)
        return false;
    const char *start = buf + *pos;
    const char *nl = memchr(start, '\n', len - *pos);
    size_t n = nl ? (size_t)(nl - start) : len - *pos;
    line->p = start;
    line->n = n;
    *pos += n + (nl ? 1 : 0);
    return true;
}

static inline size_t skip_blanks(span_t s, size_t i)
{
    while (i < s.n && (s.p[i] == ' ' || s.p[i] == '\t'))
        i++;
    return i;
}

static inline bool only_blanks_left(span_t s, size_t i)
{
    return skip_blanks(s, i) == s.n;
}

/* Decimal digits at s.p[*i]: at least one, no wrap-around. */
static inline int scan_u64(span_t s, size_t *i, uint64_t *out)
{
    size_t j = *i;
    uint64_t v = 0;
    if (j >= s.n || s.p[j] < '0' || s.p[j] > '9')
        return -EINVAL;
    while (j < s.n && s.p[j] >= '0' && s.p[j] <= '9') {
        unsigned d = (unsigned)(s.p[j] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
        j++;
    }
    *i = j;
    *out = v;
    return 0;
}

static inline int scan_i64(span_t s, size_t *i, int64_t *out)
{
    size_t j = *i;
    bool neg = false;
    uint64_t mag;
    if (j < s.n && (s.p[j] == '-' || s.p[j] == '+')) {
        neg = s.p[j] == '-';
        j++;
    }
    int rc = scan_u64(s, &j, &mag);
    if (rc)
        return rc;
    if ((!neg && mag > (uint64_t)INT64_MAX) || (neg && mag > (uint64_t)INT64_MAX + 1))
        return -ERANGE;
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    *i = j;
    return 0;
}

/* Copy at most cap-1 bytes as printable ASCII, NUL-terminated: a process chooses its own
 * name and arguments, and they end up in our log lines and terminals. */
static inline void copy_printable(char *dst, size_t cap, const char *src, size_t n)
{
    if (!cap)
        return;
    size_t k = n < cap - 1 ? n : cap - 1;
    for (size_t j = 0; j < k; j++) {
        unsigned char c = (unsigned char)src[j];
        dst[j] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    dst[k] = '\0';
}

#endif

/* common/parse.c — the parsers of settings and options, shared by the preload (PREOOM_*)
 * and the tools (their options, and `preoom run`'s check of the settings it passes on).
 *
 * Pure functions over a string, for table-driven tests: each returns 0 or -EINVAL/-ERANGE and
 * leaves *out untouched on error. Never allocates.
 */
#include <errno.h>
#include <string.h>

#include "floor.h"

int preoom_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!s || !*s)
        return -EINVAL;
    uint64_t v = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    if (p == s || *p != '\0')
        return -EINVAL;
    if (v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

/* Sizes like mimalloc's: a number with an optional binary unit (K, KiB, M, MiB, G, GiB; the
 * "B" and "i" are optional, case-insensitive). */
int preoom_parse_bytes(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!s || !*s)
        return -EINVAL;
    char digits[24];
    size_t n = 0;
    while (s[n] >= '0' && s[n] <= '9') {
        if (n + 1 >= sizeof digits)
            return -ERANGE;
        digits[n] = s[n];
        n++;
    }
    if (n == 0)
        return -EINVAL;
    digits[n] = '\0';
    uint64_t v;
    int rc = preoom_parse_u64(digits, 0, UINT64_MAX, &v);
    if (rc)
        return rc;
    const char *u = s + n;
    unsigned shift = 0;
    switch (*u | 0x20) {
    case 'k': shift = 10; u++; break;
    case 'm': shift = 20; u++; break;
    case 'g': shift = 30; u++; break;
    case 't': shift = 40; u++; break;
    default: break;
    }
    if (shift && (*u | 0x20) == 'i')
        u++;
    if ((*u | 0x20) == 'b')
        u++;
    if (*u != '\0')
        return -EINVAL;
    if (shift && v > (UINT64_MAX >> shift))
        return -ERANGE;
    v <<= shift;
    if (v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

static int lower_eq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if ((*a | 0x20) != *b)
            return 0;
    return *a == *b;
}

int preoom_parse_bool(const char *s, int *out)
{
    if (!s)
        return -EINVAL;
    if (lower_eq(s, "1") || lower_eq(s, "yes") || lower_eq(s, "on") || lower_eq(s, "true"))
        *out = 1;
    else if (lower_eq(s, "0") || lower_eq(s, "no") || lower_eq(s, "off") || lower_eq(s, "false"))
        *out = 0;
    else
        return -EINVAL;
    return 0;
}

int preoom_parse_stacks(const char *s, int *out)
{
    if (!s)
        return -EINVAL;
    if (lower_eq(s, "off") || lower_eq(s, "0"))
        *out = PREOOM_STACKS_OFF;
    else if (lower_eq(s, "sample"))
        *out = PREOOM_STACKS_SAMPLE;
    else if (lower_eq(s, "all"))
        *out = PREOOM_STACKS_ALL;
    else
        return -EINVAL;
    return 0;
}

int preoom_parse_stack_cache(const char *s, int *out)
{
    if (!s)
        return -EINVAL;
    if (lower_eq(s, "off") || lower_eq(s, "0"))
        *out = PREOOM_CACHE_OFF;
    else if (lower_eq(s, "on") || lower_eq(s, "1"))
        *out = PREOOM_CACHE_ON;
    else if (lower_eq(s, "verify"))
        *out = PREOOM_CACHE_VERIFY;
    else
        return -EINVAL;
    return 0;
}

/* A registry name becomes part of a path: only [A-Za-z0-9._-], not starting with '.'. */
int preoom_parse_name(const char *s, char *out, size_t out_size)
{
    if (!s || !*s || s[0] == '.')
        return -EINVAL;
    size_t n = strlen(s);
    if (n + 1 > out_size || n > 48)
        return -ERANGE;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return -EINVAL;
    }
    memcpy(out, s, n + 1);
    return 0;
}

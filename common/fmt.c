/* common/fmt.c — formatting and output that never allocate, for both sides.
 *
 * Used for every message and report the preload writes: glibc's printf family may allocate
 * (wide strings, large widths, positional arguments) and takes stdio locks, neither of which
 * is safe inside a malloc hook or after fork. Supports only what preoom itself prints.
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "floor.h"

static void put(char *buf, size_t size, size_t *n, char c)
{
    if (*n + 1 < size)
        buf[*n] = c;
    (*n)++;
}

static void put_u64(char *buf, size_t size, size_t *n, uint64_t v, unsigned base, int width,
                    char pad, int neg)
{
    char tmp[24];
    int len = 0;
    do {
        unsigned d = (unsigned)(v % base);
        tmp[len++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v != 0);
    if (neg)
        tmp[len++] = '-';
    for (int i = len; i < width; i++)
        put(buf, size, n, pad);
    while (len > 0)
        put(buf, size, n, tmp[--len]);
}

size_t preoom_vfmt(char *buf, size_t size, const char *fmt, va_list ap)
{
    size_t n = 0;
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            put(buf, size, &n, *f);
            continue;
        }
        f++;
        char pad = ' ';
        int width = 0, longs = 0, sz = 0;
        if (*f == '0') {
            pad = '0';
            f++;
        }
        while (*f >= '0' && *f <= '9')
            width = width * 10 + (*f++ - '0');
        while (*f == 'l') {
            longs++;
            f++;
        }
        if (*f == 'z') {
            sz = 1;
            f++;
        }
        switch (*f) {
        case 'd':
        case 'i': {
            int64_t v = sz ? (int64_t)va_arg(ap, ssize_t)
                        : longs ? (longs > 1 ? (int64_t)va_arg(ap, long long)
                                              : (int64_t)va_arg(ap, long))
                                : (int64_t)va_arg(ap, int);
            uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
            put_u64(buf, size, &n, mag, 10, width, pad, v < 0);
            break;
        }
        case 'u':
        case 'x': {
            uint64_t v = sz ? (uint64_t)va_arg(ap, size_t)
                         : longs ? (longs > 1 ? (uint64_t)va_arg(ap, unsigned long long)
                                               : (uint64_t)va_arg(ap, unsigned long))
                                 : (uint64_t)va_arg(ap, unsigned);
            put_u64(buf, size, &n, v, *f == 'x' ? 16 : 10, width, pad, 0);
            break;
        }
        case 'p':
            put(buf, size, &n, '0');
            put(buf, size, &n, 'x');
            put_u64(buf, size, &n, (uint64_t)(uintptr_t)va_arg(ap, void *), 16, width, pad, 0);
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s)
                s = "(null)";
            size_t len = strlen(s);
            for (size_t i = len; i < (size_t)width; i++)
                put(buf, size, &n, ' ');
            while (*s)
                put(buf, size, &n, *s++);
            break;
        }
        case 'c':
            put(buf, size, &n, (char)va_arg(ap, int));
            break;
        case '%':
            put(buf, size, &n, '%');
            break;
        case '\0':
            f--;
            break;
        default:
            put(buf, size, &n, '%');
            put(buf, size, &n, *f);
        }
    }
    if (size > 0)
        buf[n < size ? n : size - 1] = '\0';
    return n < size ? n : (size ? size - 1 : 0);
}

size_t preoom_fmt(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = preoom_vfmt(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

size_t preoom_json_escape(char *buf, size_t size, const char *s)
{
    size_t n = 0;
    for (; *s && n + 8 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            n += preoom_fmt(buf + n, size - n, "\\u%04x", c);
        } else {
            buf[n++] = (char)c;
        }
    }
    buf[n < size ? n : size - 1] = '\0';
    return n;
}

int preoom_write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

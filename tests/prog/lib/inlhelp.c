/* tests/prog/lib/inlhelp.c — a library whose allocation sits in a helper the compiler must
 * inline: the call-site report has to show the helper and the line inside it, then the
 * outer function at the line of the call (tests/prog/cxxleak.cc dlopens it; never dlclosed,
 * so the report can read its debug info). Never frees what it hands out. */
#include <stdlib.h>
#include <string.h>

static inline __attribute__((always_inline)) void *inlhelp_make(size_t n)
{
    void *p = malloc(n); /* INLHELP_MAKE_LINE */
    if (p)
        memset(p, 7, n);
    return p;
}

__attribute__((noinline)) void *inlhelp_outer(size_t n)
{
    void *p = inlhelp_make(n); /* INLHELP_CALL_LINE */
    __asm__ volatile("" ::: "memory"); /* keep the call a call, not a tail jump */
    return p;
}

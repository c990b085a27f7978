/* tests/prog/lib/stkleak.c — a library whose function leaks, so that its code is on a
 * recorded stack; tests/prog/leaky.c dlopens it, calls it, and dlcloses it before exit. */
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void *stkleak_make(size_t n)
{
    void *p = malloc(n);
    if (p)
        memset(p, 5, n);
    __asm__ volatile("" ::: "memory"); /* keep the call a call, not a tail jump */
    return p;
}

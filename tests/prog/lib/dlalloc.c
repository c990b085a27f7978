/* tests/prog/lib/dlalloc.c — a library that allocates in its constructor, in its functions
 * and frees in its destructor: dlopen'ed and dlclose'd in a loop by tests/prog/dl.c. */
#include <stdlib.h>
#include <string.h>

static char *held;

__attribute__((constructor)) static void dl_init(void)
{
    held = malloc(1 << 20);
    memset(held, 7, 1 << 20);
}

__attribute__((destructor)) static void dl_fini(void)
{
    free(held);
}

char *dlalloc_make(size_t n)
{
    char *p = malloc(n);
    if (p)
        memset(p, 3, n);
    return p;
}

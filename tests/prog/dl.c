/* tests/prog/dl.c — dlopen/dlclose a library that allocates, 200 times, while counting.
 *   dl PATH-TO-libdlalloc.so
 * Ends with the live malloc bytes back where they started (checked through preoom_stats). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "preoom.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: dl LIB\n");
        return 2;
    }
    preoom_stats_t a, b;
    preoom_stats(&a);
    for (int i = 0; i < 200; i++) {
        void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            fprintf(stderr, "dl: %s\n", dlerror());
            return 1;
        }
        char *(*make)(size_t) = (char *(*)(size_t))dlsym(h, "dlalloc_make");
        char *p = make ? make(4096) : NULL;
        free(p);
        dlclose(h);
    }
    preoom_stats(&b);
    long long d = (long long)b.malloc_bytes - (long long)a.malloc_bytes;
    if (preoom_api_version() == 0) {
        printf("dl: 200 rounds\n");
        return 0;
    }
    /* The loader keeps a little per-open state; a leak of the library's 1 MiB would show. */
    printf("%s - dlopen/dlclose x200: live malloc bytes moved %lld\n",
           d < 256 * 1024 && d > -256 * 1024 ? "ok" : "not ok", d);
    return 0;
}

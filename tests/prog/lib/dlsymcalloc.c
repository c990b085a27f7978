/* tests/prog/lib/dlsymcalloc.c — a dlsym that calls calloc, as glibc's own did in older
 * versions (and others' still do): preloaded ahead of libpreoom.so, it makes preoom's symbol
 * lookup allocate before the real allocator is known, so the bootstrap arena must serve it.
 * The blocks are freed later through preoom's free, which must recognise them. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *(*real_dlsym)(void *, const char *);
static void *held[64];
static int nheld;

void *dlsym(void *handle, const char *name)
{
    if (!real_dlsym)
        real_dlsym = (void *(*)(void *, const char *))dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
    if (!real_dlsym)
        real_dlsym = (void *(*)(void *, const char *))dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
    /* What an allocating dlsym does: scratch memory, some kept, some given back. */
    char *scratch = calloc(1, 32 + strlen(name));
    if (scratch) {
        strcpy(scratch, name);
        if (nheld < 64)
            held[nheld++] = scratch;
        else
            free(scratch);
    }
    return real_dlsym(handle, name);
}

/* Says how many of its blocks lie inside libpreoom.so itself, i.e. came from its static
 * bootstrap arena, so a test can tell the trap was really sprung. */
__attribute__((destructor)) static void give_back(void)
{
    int boot = 0;
    for (int i = 0; i < nheld; i++) {
        Dl_info info;
        if (dladdr(held[i], &info) && info.dli_fname && strstr(info.dli_fname, "libpreoom"))
            boot++;
    }
    fprintf(stderr, "dlsymcalloc: %d of %d blocks from libpreoom's bootstrap arena\n", boot, nheld);
    for (int i = 0; i < nheld; i++)
        free(held[i]);
}

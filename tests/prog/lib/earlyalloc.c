/* tests/prog/lib/earlyalloc.c — preloaded next to libpreoom.so, its constructor allocates
 * through every family before (or after) preoom's own constructor has run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *keep[4];

__attribute__((constructor)) static void early(void)
{
    keep[0] = calloc(16, 64);
    keep[1] = malloc(100);
    keep[1] = realloc(keep[1], 10000);
    keep[2] = strdup("early");
    free(keep[0]);
    keep[0] = NULL;
}

int earlyalloc_alive(void)
{
    return keep[2] && strcmp(keep[2], "early") == 0;
}

/* tests/prog/manymaps.c — many disjoint private anonymous writable mappings, as a program
 * with its own page allocator makes them: N one-page mappings with a hole between each two
 * (so neither the kernel nor a tracker can merge them), then half of them unmapped one by
 * one in the middle of the set, then the rest in one munmap that spans them all.
 *
 *   manymaps [N]   default 60000 (fewer when vm.max_map_count does not allow that many)
 *
 * Under libpreoom.so it also checks, through the API, that each stage's committed mapping
 * bytes are what it mapped, printing "ok - ..." or "not ok - ..." lines (none without the
 * preload). Used by tests/e2e/hostile_hosts.sh and `make bench`.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "preoom.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

static long max_maps(void)
{
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    long v = 65530;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = 65530;
        fclose(f);
    }
    return v;
}

static void expect(const char *what, int64_t got, int64_t want)
{
    if (preoom_api_version() == 0)
        return;
    printf("%s - %s (%lld bytes, want %lld)\n", got == want ? "ok" : "not ok", what,
           (long long)got, (long long)want);
}

static int64_t mmap_bytes(void)
{
    preoom_stats_t s;
    memset(&s, 0, sizeof s);
    preoom_stats(&s);
    return (int64_t)s.mmap_bytes;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 60000;
    long room = max_maps() - 1000; /* the program's own mappings, the loader's, ours */
    if (n > room)
        n = room;
    if (n < 1)
        return 2;
    const size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    /* Far from where the kernel places mappings (top-down from below the stack), so no one
     * else's mapping lands in a hole. */
    char *base = (char *)(uintptr_t)0x200000000000ULL;
    int64_t start = mmap_bytes();
    for (long i = 0; i < n; i++) {
        void *p = mmap(base + 2 * (size_t)i * pg, pg, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (p != base + 2 * (size_t)i * pg) {
            fprintf(stderr, "manymaps: mapping %ld: %s\n", i, strerror(errno));
            return 1;
        }
    }
    expect("every mapping counted", mmap_bytes() - start, (int64_t)n * (int64_t)pg);
    for (long i = 1; i < n; i += 2)
        if (munmap(base + 2 * (size_t)i * pg, pg) != 0)
            return 1;
    expect("the odd half given back", mmap_bytes() - start, (int64_t)((n + 1) / 2) * (int64_t)pg);
    if (munmap(base, 2 * (size_t)n * pg) != 0)
        return 1;
    expect("one munmap over the rest", mmap_bytes() - start, 0);
    printf("manymaps: %ld disjoint mappings made and unmapped\n", n);
    return 0;
}

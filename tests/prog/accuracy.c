/* tests/prog/accuracy.c — allocates known amounts through every entry point and checks
 * what the preload counts, step by step, through preoom_stats() (include/preoom.h).
 *
 * Prints one "ok - " / "not ok - " line per check for tests/run.sh. Committed must match
 * within max(1%, 64 KiB); touched within 5% (DESIGN.md: committed is not touched). Run it
 * with libpreoom.so preloaded; without it every check is skipped with a reason.
 */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "preoom.h"

#define MiB (1024ULL * 1024ULL)
static int failed;
/* Sizes the compiler must not see: the overflow and failure cases are the point. */
static volatile size_t v_half_max = SIZE_MAX / 2, v_nearly_max = SIZE_MAX - 4096;
/* A failing realloc leaves its block valid, which GCC's use-after-free analysis cannot know. */
#pragma GCC diagnostic ignored "-Wuse-after-free"

static preoom_stats_t now(void)
{
    preoom_stats_t s;
    preoom_stats(&s);
    return s;
}

static int close_to(int64_t got, int64_t want, double pct, int64_t floor_bytes)
{
    int64_t tol = (int64_t)((double)(want < 0 ? -want : want) * pct / 100.0);
    if (tol < floor_bytes)
        tol = floor_bytes;
    int64_t d = got - want;
    return d <= tol && d >= -tol;
}

static void check(const char *name, int64_t got, int64_t want, double pct, int64_t floor_bytes)
{
    if (close_to(got, want, pct, floor_bytes)) {
        printf("ok - %s (%lld, expected %lld)\n", name, (long long)got, (long long)want);
    } else {
        printf("not ok - %s: got %lld, expected %lld (tolerance %.1f%% / %lld)\n", name,
               (long long)got, (long long)want, pct, (long long)floor_bytes);
        failed = 1;
    }
}

static void check_true(const char *name, int cond)
{
    printf("%s - %s\n", cond ? "ok" : "not ok", name);
    if (!cond)
        failed = 1;
}

#define COMMITTED(name, before, want)                                                     \
    check(name, (int64_t)now().committed - (int64_t)(before).committed, (int64_t)(want), \
          1.0, 64 * 1024)

int main(void)
{
    if (preoom_api_version() == 0) {
        printf("skip - accuracy: libpreoom.so is not preloaded\n");
        return 0;
    }
    preoom_stats_t b = now();

    /* malloc in 1 MiB pieces, then free */
    void *p[64];
    for (int i = 0; i < 64; i++)
        p[i] = malloc(MiB);
    COMMITTED("malloc 64 x 1 MiB", b, 64 * MiB);
    for (int i = 0; i < 64; i++)
        free(p[i]);
    COMMITTED("free 64 x 1 MiB", b, 0);

    /* many small ones */
    void **small = malloc(100000 * sizeof *small);
    preoom_stats_t b2 = now();
    for (int i = 0; i < 100000; i++)
        small[i] = malloc(100);
    COMMITTED("malloc 100000 x 100 B (usable 104)", b2, 100000 * 104);
    for (int i = 0; i < 100000; i++)
        free(small[i]);
    free(small);
    COMMITTED("free them", b, 0);

    /* committed moves by exactly what the allocator's own malloc_usable_size says, for chunks
     * in an arena and for mmapped ones (the preload may read glibc's header inline) */
    static const size_t exact[] = {1, 100, 5000, 100000, 200000, 3 << 20};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
        preoom_stats_t be = now();
        char *volatile q = malloc(exact[i] + 123);
        char name[96];
        snprintf(name, sizeof name, "malloc(%zu): committed moves by exactly its usable size",
                 exact[i] + 123);
        check(name, (int64_t)now().committed - (int64_t)be.committed,
              (int64_t)malloc_usable_size(q), 0, 0);
        free(q);
    }

    /* calloc, including overflow */
    void *c = calloc(8, 2 * MiB);
    COMMITTED("calloc 8 x 2 MiB", b, 16 * MiB);
    errno = 0;
    void *ov = calloc(v_half_max, 4);
    check_true("calloc overflow returns NULL with ENOMEM", ov == NULL && errno == ENOMEM);
    COMMITTED("calloc overflow counts nothing", b, 16 * MiB);
    free(c);

    /* realloc: NULL, grow, shrink, failure, zero */
    void *r = realloc(NULL, 4 * MiB);
    COMMITTED("realloc(NULL, 4 MiB)", b, 4 * MiB);
    r = realloc(r, 12 * MiB);
    COMMITTED("realloc grow to 12 MiB", b, 12 * MiB);
    r = realloc(r, 2 * MiB);
    COMMITTED("realloc shrink to 2 MiB", b, 2 * MiB);
    errno = 0;
    void *rf = realloc(r, v_nearly_max);
    check_true("failing realloc returns NULL, ENOMEM", rf == NULL && errno == ENOMEM);
    COMMITTED("failing realloc is not a free", b, 2 * MiB);
    void *rz = realloc(r, 0);
    check_true("realloc(p, 0) returns NULL (glibc frees p)", rz == NULL);
    COMMITTED("realloc(p, 0) frees", b, 0);

    /* reallocarray, with overflow */
    void *ra = reallocarray(NULL, 1024, 4096);
    COMMITTED("reallocarray 1024 x 4 KiB", b, 4 * MiB);
    errno = 0;
    void *rao = reallocarray(ra, v_half_max, 3);
    check_true("reallocarray overflow: NULL, ENOMEM, block kept", rao == NULL && errno == ENOMEM);
    COMMITTED("reallocarray overflow counts nothing", b, 4 * MiB);
    free(ra);

    /* the aligned family, with large alignments */
    void *pm = NULL;
    int rc = posix_memalign(&pm, 2 * MiB, 8 * MiB);
    check_true("posix_memalign 2 MiB alignment", rc == 0 && ((uintptr_t)pm & (2 * MiB - 1)) == 0);
    COMMITTED("posix_memalign 8 MiB", b, 8 * MiB);
    void *pm2 = NULL;
    check_true("posix_memalign bad alignment: EINVAL", posix_memalign(&pm2, 24, 64) == EINVAL);
    COMMITTED("posix_memalign EINVAL counts nothing", b, 8 * MiB);
    void *aa = aligned_alloc(65536, 4 * MiB);
    void *ma = memalign(1 << 20, 4 * MiB);
    void *va = valloc(4 * MiB);
    void *pv = pvalloc(4 * MiB - 100);
    check_true("aligned_alloc/memalign/valloc/pvalloc aligned",
               aa && ma && va && pv && ((uintptr_t)aa & 65535) == 0 &&
                   ((uintptr_t)ma & ((1 << 20) - 1)) == 0 && ((uintptr_t)va & 4095) == 0 &&
                   ((uintptr_t)pv & 4095) == 0);
    COMMITTED("aligned_alloc+memalign+valloc+pvalloc 4 x 4 MiB", b, 24 * MiB);
    check_true("malloc_usable_size agrees", malloc_usable_size(aa) >= 4 * MiB);
    free(pm);
    free(aa);
    free(ma);
    free(va);
    free(pv);
    COMMITTED("aligned blocks freed", b, 0);

    /* free keeps errno */
    void *fe = malloc(1000);
    errno = 1234;
    free(fe);
    check_true("free preserves errno", errno == 1234);

    /* mmap: committed is not touched */
    preoom_stats_t bm = now();
    size_t len = 256 * MiB;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check_true("mmap 256 MiB", m != MAP_FAILED);
    COMMITTED("mmap 256 MiB private anonymous", bm, 256 * MiB);
    check("mmap: touched barely moves before writing", (int64_t)now().touched - (int64_t)bm.touched,
          0, 0, 4 * (int64_t)MiB);
    memset(m, 1, len / 2);
    check("memset half: touched rises by 128 MiB", (int64_t)now().touched - (int64_t)bm.touched,
          128 * MiB, 5.0, 0);
    /* partial munmap of the middle */
    munmap(m + 96 * MiB, 64 * MiB);
    COMMITTED("munmap 64 MiB from the middle", bm, 192 * MiB);
    check("partial munmap: touched falls by the 32 MiB written there",
          (int64_t)now().touched - (int64_t)bm.touched, 96 * MiB, 5.0, 0);
    munmap(m, 96 * MiB);
    munmap(m + 160 * MiB, 96 * MiB);
    COMMITTED("munmap the rest", bm, 0);
    check("munmap: touched falls back", (int64_t)now().touched - (int64_t)bm.touched, 0, 0,
          4 * (int64_t)MiB);

    /* mappings that are not committed memory */
    void *ro = mmap(NULL, 64 * MiB, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void *sh = mmap(NULL, 64 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    COMMITTED("read-only and shared mappings are not counted", bm, 0);
    munmap(ro, 64 * MiB);
    munmap(sh, 64 * MiB);

    /* failing mmap */
    errno = 0;
    void *bad = mmap(NULL, (size_t)1 << 62, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    check_true("failing mmap: MAP_FAILED, ENOMEM", bad == MAP_FAILED && errno == ENOMEM);
    COMMITTED("failing mmap counts nothing", bm, 0);

    /* mremap grow and move */
    char *g = mmap(NULL, 64 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    g = mremap(g, 64 * MiB, 128 * MiB, MREMAP_MAYMOVE);
    check_true("mremap grow", g != MAP_FAILED);
    COMMITTED("mremap 64 -> 128 MiB", bm, 128 * MiB);
    g = mremap(g, 128 * MiB, 32 * MiB, 0);
    COMMITTED("mremap shrink to 32 MiB", bm, 32 * MiB);
    munmap(g, 32 * MiB);
    COMMITTED("mremap'd mapping unmapped", bm, 0);

    /* MAP_FIXED over a counted mapping with a file-backed one */
    char *f = mmap(NULL, 16 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mmap(f, 8 * MiB, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    COMMITTED("MAP_FIXED read-only over half: the half is gone", bm, 8 * MiB);
    munmap(f, 16 * MiB);

    /* brk and sbrk */
    preoom_stats_t bb = now();
    void *cur = sbrk(0);
    check_true("sbrk(0)", cur != (void *)-1);
    sbrk(4 * MiB);
    check("sbrk +4 MiB counted as brk", (int64_t)now().brk_bytes - (int64_t)bb.brk_bytes,
          4 * MiB, 0, 0);
    sbrk(-(intptr_t)(4 * MiB));
    check("sbrk -4 MiB", (int64_t)now().brk_bytes - (int64_t)bb.brk_bytes, 0, 0, 0);
    void *top = sbrk(0);
    check_true("brk up", brk((char *)top + MiB) == 0);
    check("brk +1 MiB", (int64_t)now().brk_bytes - (int64_t)bb.brk_bytes, MiB, 0, 0);
    check_true("brk back", brk(top) == 0);
    check("brk back to 0", (int64_t)now().brk_bytes - (int64_t)bb.brk_bytes, 0, 0, 0);

    /* malloc of 1 GiB: a promise, not a cost (DESIGN.md trap 9) */
    preoom_stats_t bg = now();
    char *volatile huge = malloc(1024 * MiB);
    huge[0] = 1; /* one page: and the compiler may not drop the pair */
    COMMITTED("malloc 1 GiB is committed", bg, 1024 * MiB);
    check("malloc 1 GiB touches almost nothing", (int64_t)now().touched - (int64_t)bg.touched, 0,
          0, 2 * (int64_t)MiB);
    check_true("exposure reflects the untouched GiB", now().exposure >= 1000 * MiB);
    free(huge);

    COMMITTED("everything given back", b, 0);
    return failed;
}

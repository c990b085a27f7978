/* tests/unit/test_real.c — real.c alone, without the hooks: the bootstrap pool (sizes,
 * alignment, and the zero word before each block that free's fast path relies on), and the
 * inline reading of glibc's chunk header against glibc's own malloc_usable_size. */
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "real.h"

static void t_boot(void)
{
    static const size_t sizes[] = {1, 7, 16, 100, 4096, 10000};
    static const size_t aligns[] = {16, 16, 32, 64, 4096, 16};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *p = preoom_boot_alloc(sizes[i], aligns[i]);
        CHECK(p != NULL);
        if (!p)
            return;
        CHECK_EQ_U64((uintptr_t)p % aligns[i], 0);
        CHECK_EQ_U64(preoom_boot_size(p), sizes[i]);
        CHECK(preoom_boot_owns(p));
        CHECK(preoom_boot_owns(p + sizes[i] - 1));
        /* The word right before a block is 0: no glibc chunk header is. */
        CHECK_EQ_U64(((const size_t *)(const void *)p)[-1], 0);
        /* Static memory: zero, as calloc must be. */
        int zero = 1;
        for (size_t k = 0; k < sizes[i]; k++)
            zero &= p[k] == 0;
        CHECK(zero);
        memset(p, 0xab, sizes[i]);
    }
    int on_heap = 0;
    void *h = malloc(64);
    CHECK(!preoom_boot_owns(h));
    CHECK(!preoom_boot_owns(&on_heap));
    CHECK(!preoom_boot_owns(NULL));
    free(h);
    /* Too big for the pool: NULL, never a crash. */
    CHECK(preoom_boot_alloc((size_t)1 << 40, 16) == NULL);
}

static void t_glibc_usable(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    /* The sanitizer's malloc has headers of its own: nothing of glibc's to read. */
    CHECK(1);
#else
    /* Small, large, and mmapped chunks (above glibc's 128 KiB threshold), calloc too. */
    static const size_t sizes[] = {0, 1, 24, 25, 100, 1000, 4096, 40000, 131072, 200000,
                                   1 << 22};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        /* Through a volatile: GCC knows where malloc's block begins and would refuse the
         * header read before it at compile time. */
        void *volatile fresh = i % 2 ? calloc(1, sizes[i]) : malloc(sizes[i]);
        void *p = fresh;
        CHECK(p != NULL);
        if (!p)
            continue;
        CHECK_EQ_U64(glibc_usable(p), malloc_usable_size(p));
        CHECK(glibc_usable(p) >= sizes[i]);
        free(p);
    }
#endif
}

int main(void)
{
    TEST_CASE("real: the bootstrap pool, sizes, alignment, the zero word before a block", t_boot);
    TEST_CASE("real: glibc's chunk header read inline agrees with malloc_usable_size", t_glibc_usable);
    TEST_END();
}

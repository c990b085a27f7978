/* tests/unit/test_maps.c — the tracked-mapping set: adds, partial and covering removes,
 * splits, MAP_FIXED replacement and mremap moves, checked against a brute-force page map. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"

#define PAGES 512
#define PG 4096
#define BASE ((uintptr_t)0x10000000)
static unsigned char model[PAGES];

static uint64_t model_bytes(void)
{
    uint64_t n = 0;
    for (int i = 0; i < PAGES; i++)
        n += model[i];
    return n * PG;
}

static void m_set(size_t first, size_t count, int v)
{
    for (size_t i = first; i < first + count && i < PAGES; i++)
        model[i] = (unsigned char)v;
}

static void t_basic(void)
{
    uint64_t before = preoom_maps_tracked_bytes();
    CHECK_EQ_I64(preoom_maps_add(BASE, 10 * PG), 10 * PG);
    CHECK_EQ_I64(preoom_maps_remove(BASE + 2 * PG, 3 * PG), -3 * PG);   /* split */
    CHECK_EQ_I64(preoom_maps_remove(BASE, 20 * PG), -7 * PG);           /* covers both */
    CHECK_EQ_I64(preoom_maps_remove(BASE, 20 * PG), 0);                 /* nothing left */
    CHECK_EQ_I64(preoom_maps_add(BASE, 1), PG);                         /* rounds to a page */
    CHECK_EQ_I64(preoom_maps_add(BASE, PG), 0);                         /* MAP_FIXED over itself */
    CHECK_EQ_I64(preoom_maps_move(BASE, PG, BASE + 100 * PG, 4 * PG, 0), 3 * PG);
    CHECK_EQ_I64(preoom_maps_move(BASE + 300 * PG, PG, BASE + 400 * PG, PG, 0), 0); /* not ours */
    CHECK_EQ_I64(preoom_maps_remove(BASE + 100 * PG, 4 * PG), -4 * PG);
    CHECK_EQ_U64(preoom_maps_tracked_bytes(), before);
}

/* Random operations against the page model. */
static void t_random(void)
{
    memset(model, 0, sizeof model);
    uint64_t base = preoom_maps_tracked_bytes();
    unsigned s = 12345;
    for (int k = 0; k < 20000; k++) {
        s = s * 1103515245 + 12345;
        size_t first = (s >> 8) % PAGES;
        s = s * 1103515245 + 12345;
        size_t count = 1 + (s >> 8) % 32;
        if (first + count > PAGES)
            count = PAGES - first;
        uintptr_t a = BASE + first * PG;
        int64_t d;
        uint64_t was = model_bytes();
        if ((s >> 4) % 3 == 0) {
            d = preoom_maps_remove(a, count * PG);
            m_set(first, count, 0);
        } else {
            d = preoom_maps_add(a, count * PG);
            m_set(first, count, 1);
        }
        if ((int64_t)(model_bytes() - was) != d) {
            CHECK_EQ_I64(d, (int64_t)(model_bytes() - was));
            return;
        }
        if (preoom_maps_tracked_bytes() - base != model_bytes()) {
            CHECK_EQ_U64(preoom_maps_tracked_bytes() - base, model_bytes());
            return;
        }
    }
    preoom_maps_remove(BASE, PAGES * PG);
    CHECK_EQ_U64(preoom_maps_tracked_bytes(), base);
}

/* Many disjoint ranges (the tree's depth, not the page model's width): 60,000 one-page
 * ranges two pages apart, moved, cut by wide removes that span thousands, and removed in a
 * scrambled order; every delta must be exact. */
static void t_many(void)
{
    enum { N = 60000 };
    const uintptr_t base = (uintptr_t)0x7000000000;
    uint64_t start = preoom_maps_tracked_bytes();
    int64_t sum = 0;
    for (unsigned i = 0; i < N; i++) {
        unsigned k = (i * 40507u) % N; /* scrambled order (coprime): the tree must rebalance */
        sum += preoom_maps_add(base + (uintptr_t)k * 2 * PG, PG);
    }
    CHECK_EQ_I64(sum, (int64_t)N * PG);
    CHECK_EQ_U64(preoom_maps_tracked_bytes() - start, (uint64_t)N * PG);
    /* Filling a hole merges three ranges into one. */
    CHECK_EQ_I64(preoom_maps_add(base + PG, PG), PG);
    CHECK_EQ_I64(preoom_maps_remove(base, 3 * PG), -3 * PG);
    /* A remove across 1000 ranges (pages 12, 14, ... 2010). */
    CHECK_EQ_I64(preoom_maps_remove(base + 11 * PG, 2000 * PG), -1000 * PG);
    /* One that starts inside a range (the end is rounded up to a page, as the kernel does):
     * 2100.5 .. 2105 of the merged 2100 .. 2105 leaves half a page. */
    CHECK_EQ_I64(preoom_maps_add(base + 2101 * PG, PG), PG);
    CHECK_EQ_I64(preoom_maps_add(base + 2103 * PG, PG), PG);
    CHECK_EQ_I64(preoom_maps_remove(base + 2100 * PG + 2048, 4 * PG), -4 * PG - 2048);
    CHECK_EQ_I64(preoom_maps_remove(base + 2100 * PG, PG), -2048);
    CHECK_EQ_I64(preoom_maps_remove(base + 2104 * PG, PG), 0);
    /* mremap of a tracked page far away. */
    CHECK_EQ_I64(preoom_maps_move(base + 4000 * PG, PG, base + 3 * N * PG, 2 * PG, 0), PG);
    uint64_t left = preoom_maps_tracked_bytes() - start;
    CHECK_EQ_U64(left, (uint64_t)(N - 1001 - 3) * PG);
    sum = 0;
    for (unsigned i = 0; i < N; i++) {
        unsigned k = (i * 7919u) % N;
        sum += preoom_maps_remove(base + (uintptr_t)k * 2 * PG, PG);
    }
    sum += preoom_maps_remove(base + 3 * N * PG, 2 * PG);
    CHECK_EQ_I64(-sum, (int64_t)left);
    CHECK_EQ_U64(preoom_maps_tracked_bytes(), start);
}

int main(void)
{
    TEST_CASE("maps: add, split, cover, move", t_basic);
    TEST_CASE("maps: 20000 random adds and removes match a page model", t_random);
    TEST_CASE("maps: 60,000 disjoint ranges, wide cuts, scrambled order", t_many);
    TEST_END();
}

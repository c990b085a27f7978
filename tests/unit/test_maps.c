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

int main(void)
{
    TEST_CASE("maps: add, split, cover, move", t_basic);
    TEST_CASE("maps: 20000 random adds and removes match a page model", t_random);
    TEST_END();
}

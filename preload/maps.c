/* preload/maps.c — which private, anonymous, writable mappings the program made itself.
 *
 * munmap and mremap name address ranges, not the calls that created them, and may cut a
 * mapping in two or cover several at once. So the tracked ranges live in a sorted array of
 * disjoint [start, end) intervals (arena memory), with a binary search and memmove per change.
 * mmap is a system call already, so one mutex here costs nothing that matters. Glibc's own
 * internal mmap calls never reach the hooks and are not tracked (DESIGN.md, trap 7).
 */
#include <pthread.h>
#include <string.h>

#include "internal.h"

struct range { uintptr_t start, end; };

static pthread_mutex_t maps_lock = PTHREAD_MUTEX_INITIALIZER;
static struct range *ranges;
static size_t nranges, capacity;
static uint64_t tracked;

/* First range whose end is above addr. */
static size_t lower_bound(uintptr_t addr)
{
    size_t lo = 0, hi = nranges;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ranges[mid].end <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int reserve(size_t need)
{
    if (need <= capacity)
        return 0;
    size_t cap = capacity ? capacity * 2 : 256;
    while (cap < need)
        cap *= 2;
    struct range *r = preoom_arena_realloc(ranges, capacity * sizeof *ranges, cap * sizeof *ranges);
    if (!r)
        return -1;
    ranges = r;
    capacity = cap;
    return 0;
}

/* Remove [a, b) from the set; returns bytes removed. Caller holds the lock. */
static uint64_t cut(uintptr_t a, uintptr_t b)
{
    uint64_t removed = 0;
    size_t i = lower_bound(a);
    while (i < nranges && ranges[i].start < b) {
        struct range *r = &ranges[i];
        uintptr_t lo = r->start > a ? r->start : a;
        uintptr_t hi = r->end < b ? r->end : b;
        removed += hi - lo;
        if (r->start < a && r->end > b) {
            /* The hole is inside: split in two. */
            if (reserve(nranges + 1) != 0) {
                /* No internal memory to split: stop tracking the tail as well, so the
                 * count errs low rather than keeping bytes that were given back. */
                removed += r->end - b;
                r->end = a;
                tracked -= removed;
                return removed;
            }
            r = &ranges[i];
            memmove(&ranges[i + 2], &ranges[i + 1], (nranges - i - 1) * sizeof *ranges);
            ranges[i + 1].start = b;
            ranges[i + 1].end = r->end;
            r->end = a;
            nranges++;
            break;
        } else if (r->start < a) {
            r->end = a;
            i++;
        } else if (r->end > b) {
            r->start = b;
            break;
        } else {
            memmove(&ranges[i], &ranges[i + 1], (nranges - i - 1) * sizeof *ranges);
            nranges--;
        }
    }
    tracked -= removed;
    return removed;
}

/* Add [a, b), which the caller has cut first so it overlaps nothing; merges neighbours. */
static uint64_t insert(uintptr_t a, uintptr_t b)
{
    size_t i = lower_bound(a);
    int merge_left = i > 0 && ranges[i - 1].end == a;
    int merge_right = i < nranges && ranges[i].start == b;
    if (merge_left && merge_right) {
        ranges[i - 1].end = ranges[i].end;
        memmove(&ranges[i], &ranges[i + 1], (nranges - i - 1) * sizeof *ranges);
        nranges--;
    } else if (merge_left) {
        ranges[i - 1].end = b;
    } else if (merge_right) {
        ranges[i].start = a;
    } else {
        if (reserve(nranges + 1) != 0)
            return 0;  /* out of internal memory: the mapping goes uncounted */
        memmove(&ranges[i + 1], &ranges[i], (nranges - i) * sizeof *ranges);
        ranges[i].start = a;
        ranges[i].end = b;
        nranges++;
    }
    tracked += b - a;
    return b - a;
}

static uintptr_t page_end(uintptr_t addr, size_t len)
{
    uintptr_t e = addr + len;
    if (e < addr)
        return UINTPTR_MAX & ~(uintptr_t)4095;
    return (e + 4095) & ~(uintptr_t)4095;
}

int64_t preoom_maps_add(uintptr_t addr, size_t len)
{
    if (len == 0)
        return 0;
    uintptr_t b = page_end(addr, len);
    pthread_mutex_lock(&maps_lock);
    /* MAP_FIXED may replace a mapping we tracked: the old part is gone. */
    int64_t delta = -(int64_t)cut(addr, b);
    delta += (int64_t)insert(addr, b);
    pthread_mutex_unlock(&maps_lock);
    return delta;
}

int64_t preoom_maps_remove(uintptr_t addr, size_t len)
{
    if (len == 0)
        return 0;
    uintptr_t b = page_end(addr, len);
    pthread_mutex_lock(&maps_lock);
    int64_t delta = -(int64_t)cut(addr, b);
    pthread_mutex_unlock(&maps_lock);
    return delta;
}

int64_t preoom_maps_move(uintptr_t old_addr, size_t old_len, uintptr_t new_addr, size_t new_len,
                         int keep_old)
{
    uintptr_t ob = page_end(old_addr, old_len);
    pthread_mutex_lock(&maps_lock);
    /* Was any of the old range ours? Then the new range is too (it is the same memory). */
    size_t i = lower_bound(old_addr);
    int ours = i < nranges && ranges[i].start < ob;
    int64_t delta = 0;
    if (ours) {
        if (!keep_old)
            delta -= (int64_t)cut(old_addr, ob);
        uintptr_t nb = page_end(new_addr, new_len);
        delta -= (int64_t)cut(new_addr, nb);
        delta += (int64_t)insert(new_addr, nb);
    }
    pthread_mutex_unlock(&maps_lock);
    return delta;
}

uint64_t preoom_maps_tracked_bytes(void)
{
    pthread_mutex_lock(&maps_lock);
    uint64_t t = tracked;
    pthread_mutex_unlock(&maps_lock);
    return t;
}

void preoom_maps_atfork_prepare(void) { pthread_mutex_lock(&maps_lock); }
void preoom_maps_atfork_parent(void) { pthread_mutex_unlock(&maps_lock); }
void preoom_maps_atfork_child(void) { pthread_mutex_init(&maps_lock, NULL); }

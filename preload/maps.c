/* preload/maps.c — which private, anonymous, writable mappings the program made itself.
 *
 * munmap and mremap name address ranges, not the calls that created them, and may cut a
 * mapping in two or cover several at once. So the tracked ranges are disjoint [start, end)
 * intervals in a balanced tree (AVL) whose nodes come from our arena in chunks: each change
 * costs O(log n), however many mappings there are (a sorted array with memmove per insert
 * made 60,000 mappings 2.7x slower than bare). mmap is a system call already, so one mutex
 * here costs nothing that matters. Never allocates through malloc. Glibc's own
 * internal mmap calls never reach the hooks and are not tracked (DESIGN.md, trap 7).
 */
#include <pthread.h>
#include <string.h>

#include "internal.h"

/* One tracked range, a node of an AVL tree ordered by start. The ranges are disjoint, so
 * their ends are in the same order as their starts, and a node's bounds may be moved in place
 * as long as it stays clear of its neighbours. */
typedef struct node {
    uintptr_t start, end;
    struct node *l, *r;
    int h;
} node_t;

static pthread_mutex_t maps_lock = PTHREAD_MUTEX_INITIALIZER;
static node_t *root;
static node_t *spare;           /* free nodes, linked through l */
static uint64_t tracked;

#define NODES_PER_CHUNK 512

static node_t *node_new(uintptr_t a, uintptr_t b)
{
    if (!spare) {
        node_t *c = preoom_arena_alloc(NODES_PER_CHUNK * sizeof *c);
        if (!c)
            return NULL;
        for (int i = 0; i < NODES_PER_CHUNK; i++) {
            c[i].l = spare;
            spare = &c[i];
        }
    }
    node_t *n = spare;
    spare = n->l;
    n->start = a;
    n->end = b;
    n->l = n->r = NULL;
    n->h = 1;
    return n;
}

static void node_free(node_t *n)
{
    n->l = spare;
    spare = n;
}

static int height(const node_t *n)
{
    return n ? n->h : 0;
}

static void fix(node_t *n)
{
    int a = height(n->l), b = height(n->r);
    n->h = (a > b ? a : b) + 1;
}

static node_t *rot_right(node_t *y)
{
    node_t *x = y->l;
    y->l = x->r;
    x->r = y;
    fix(y);
    fix(x);
    return x;
}

static node_t *rot_left(node_t *x)
{
    node_t *y = x->r;
    x->r = y->l;
    y->l = x;
    fix(x);
    fix(y);
    return y;
}

static node_t *rebalance(node_t *n)
{
    fix(n);
    int bf = height(n->l) - height(n->r);
    if (bf > 1) {
        if (height(n->l->l) < height(n->l->r))
            n->l = rot_left(n->l);
        return rot_right(n);
    }
    if (bf < -1) {
        if (height(n->r->r) < height(n->r->l))
            n->r = rot_right(n->r);
        return rot_left(n);
    }
    return n;
}

/* Recursion depth is the tree's height: under 1.45 log2(n) + 2, about 40 for 2^26 ranges. */
static node_t *tree_insert(node_t *t, node_t *k)
{
    if (!t)
        return k;
    if (k->start < t->start)
        t->l = tree_insert(t->l, k);
    else
        t->r = tree_insert(t->r, k);
    return rebalance(t);
}

static node_t *take_min(node_t *t, node_t **min)
{
    if (!t->l) {
        *min = t;
        return t->r;
    }
    t->l = take_min(t->l, min);
    return rebalance(t);
}

static node_t *tree_delete(node_t *t, uintptr_t start)
{
    if (!t)
        return NULL;
    if (start < t->start) {
        t->l = tree_delete(t->l, start);
    } else if (start > t->start) {
        t->r = tree_delete(t->r, start);
    } else {
        node_t *l = t->l, *r = t->r, *m;
        node_free(t);
        if (!r)
            return l;
        r = take_min(r, &m);
        m->l = l;
        m->r = r;
        return rebalance(m);
    }
    return rebalance(t);
}

/* The first range whose end is above addr (the first that can hold addr or lie after it). */
static node_t *first_after(uintptr_t addr)
{
    node_t *best = NULL;
    for (node_t *n = root; n;) {
        if (n->end > addr) {
            best = n;
            n = n->l;
        } else {
            n = n->r;
        }
    }
    return best;
}

/* The last range that starts below addr. */
static node_t *last_before(uintptr_t addr)
{
    node_t *best = NULL;
    for (node_t *n = root; n;) {
        if (n->start < addr) {
            best = n;
            n = n->r;
        } else {
            n = n->l;
        }
    }
    return best;
}

/* Remove [a, b) from the set; returns bytes removed. Caller holds the lock. */
static uint64_t cut(uintptr_t a, uintptr_t b)
{
    uint64_t removed = 0;
    node_t *r = first_after(a);
    while (r && r->start < b) {
        uintptr_t lo = r->start > a ? r->start : a;
        uintptr_t hi = r->end < b ? r->end : b;
        removed += hi - lo;
        if (r->start < a && r->end > b) {
            /* The hole is inside: split in two. */
            node_t *tail = node_new(b, r->end);
            if (!tail)
                /* No internal memory to split: stop tracking the tail as well, so the
                 * count errs low rather than keeping bytes that were given back. */
                removed += r->end - b;
            r->end = a;
            if (tail)
                root = tree_insert(root, tail);
            break;
        } else if (r->start < a) {
            r->end = a;
            r = first_after(a);
        } else if (r->end > b) {
            r->start = b;
            break;
        } else {
            root = tree_delete(root, r->start);
            r = first_after(a);
        }
    }
    tracked -= removed;
    return removed;
}

/* Add [a, b), which the caller has cut first so it overlaps nothing; merges neighbours. */
static uint64_t insert(uintptr_t a, uintptr_t b)
{
    node_t *left = last_before(a), *right = first_after(a);
    int merge_left = left && left->end == a;
    int merge_right = right && right->start == b;
    if (merge_left && merge_right) {
        uintptr_t end = right->end;
        root = tree_delete(root, right->start);
        left->end = end;
    } else if (merge_left) {
        left->end = b;
    } else if (merge_right) {
        right->start = a;
    } else {
        node_t *n = node_new(a, b);
        if (!n)
            return 0;  /* out of internal memory: the mapping goes uncounted */
        root = tree_insert(root, n);
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
    node_t *n = first_after(old_addr);
    int ours = n && n->start < ob;
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

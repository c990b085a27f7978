/* preload/arena.c — preoom's own memory: site tables, pointer maps, mapping lists.
 *
 * Everything preoom keeps for itself comes from here, never from the malloc it wraps: that
 * would recurse into the hooks and distort the host's counts. Power-of-two size classes with
 * free lists, carved from 1 MiB regions that are never returned; larger blocks are mapped
 * directly. Memory is zeroed. Only slow paths use it, so one mutex is enough; fork handlers
 * keep the child from inheriting it locked. System calls are raw so our own mmap hook never
 * sees them.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

#define MIN_SHIFT 4                 /* 16 bytes */
#define MAX_SHIFT 16                /* 64 KiB: larger goes straight to mmap */
#define NCLASSES (MAX_SHIFT - MIN_SHIFT + 1)
#define REGION_BYTES (1u << 20)

struct free_block { struct free_block *next; };

static pthread_mutex_t arena_lock = PTHREAD_MUTEX_INITIALIZER;
static struct free_block *free_lists[NCLASSES];
static char *region_cur, *region_end;



static size_t page_round(size_t n)
{
    size_t pg = 4096;
    return (n + pg - 1) & ~(pg - 1);
}

static int class_of(size_t bytes)
{
    int c = 0;
    size_t sz = (size_t)1 << MIN_SHIFT;
    while (sz < bytes) {
        sz <<= 1;
        c++;
    }
    return c;
}

void *preoom_arena_alloc(size_t bytes)
{
    if (bytes == 0)
        bytes = 1;
    if (bytes > ((size_t)1 << MAX_SHIFT)) {
        size_t len = page_round(bytes);
        if (len < bytes)
            return NULL;
        void *p = preoom_sys_mmap(NULL, len, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
        return p;
    }
    int c = class_of(bytes);
    size_t sz = (size_t)1 << (c + MIN_SHIFT);
    void *p = NULL;
    pthread_mutex_lock(&arena_lock);
    if (free_lists[c]) {
        struct free_block *b = free_lists[c];
        free_lists[c] = b->next;
        p = b;
        pthread_mutex_unlock(&arena_lock);
        memset(p, 0, sz);
        return p;
    }
    if ((size_t)(region_end - region_cur) < sz) {
        char *r = preoom_sys_mmap(NULL, REGION_BYTES, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (r == MAP_FAILED) {
            pthread_mutex_unlock(&arena_lock);
            return NULL;
        }
        /* The tail of the old region is too small for this class: give it to smaller ones. */
        while (region_end - region_cur >= (1 << MIN_SHIFT)) {
            int k = NCLASSES - 1;
            while (((size_t)1 << (k + MIN_SHIFT)) > (size_t)(region_end - region_cur))
                k--;
            struct free_block *fb = (struct free_block *)(void *)region_cur;
            fb->next = free_lists[k];
            free_lists[k] = fb;
            region_cur += (size_t)1 << (k + MIN_SHIFT);
        }
        region_cur = r;
        region_end = r + REGION_BYTES;
    }
    p = region_cur;          /* fresh region memory is already zero */
    region_cur += sz;
    pthread_mutex_unlock(&arena_lock);
    return p;
}

void preoom_arena_free(void *p, size_t bytes)
{
    if (!p)
        return;
    if (bytes == 0)
        bytes = 1;
    if (bytes > ((size_t)1 << MAX_SHIFT)) {
        size_t len = page_round(bytes);
        preoom_sys_munmap(p, len);
        return;
    }
    int c = class_of(bytes);
    pthread_mutex_lock(&arena_lock);
    struct free_block *b = p;
    b->next = free_lists[c];
    free_lists[c] = b;
    pthread_mutex_unlock(&arena_lock);
}

void *preoom_arena_realloc(void *p, size_t old_bytes, size_t new_bytes)
{
    void *q = preoom_arena_alloc(new_bytes);
    if (!q)
        return NULL;
    if (p) {
        memcpy(q, p, old_bytes < new_bytes ? old_bytes : new_bytes);
        preoom_arena_free(p, old_bytes);
    }
    return q;
}

static void arena_prepare(void) { pthread_mutex_lock(&arena_lock); }
static void arena_parent(void) { pthread_mutex_unlock(&arena_lock); }
static void arena_child(void) { pthread_mutex_init(&arena_lock, NULL); }

__attribute__((constructor(101))) static void arena_init(void)
{
    pthread_atfork(arena_prepare, arena_parent, arena_child);
}

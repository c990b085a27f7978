/* preload/real.h — what hooks.c needs from real.c: the real functions behind each wrapper,
 * whether glibc's malloc is below us, and the bootstrap pool. Included by those two files
 * only. Must never: hold anything but declarations and the few inline reads the hot path
 * makes (a function pointer, glibc's chunk header).
 */
#ifndef PREOOM_REAL_H
#define PREOOM_REAL_H

#include <link.h>
#include <stdint.h>
#include <sys/types.h>

#include "internal.h"

typedef void *(*malloc_fn)(size_t);
typedef void (*free_fn)(void *);
typedef void *(*calloc_fn)(size_t, size_t);
typedef void *(*realloc_fn)(void *, size_t);
typedef int (*posix_memalign_fn)(void **, size_t, size_t);
typedef void *(*aligned_fn)(size_t, size_t);
typedef void *(*valloc_fn)(size_t);
typedef size_t (*usable_fn)(void *);
typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);
typedef int (*munmap_fn)(void *, size_t);
typedef void *(*mremap_fn)(void *, size_t, size_t, int, ...);
typedef int (*brk_fn)(void *);
typedef void *(*sbrk_fn)(intptr_t);
typedef int (*trim_fn)(size_t);
typedef int (*phdr_cb)(struct dl_phdr_info *, size_t, void *);
typedef int (*iterate_fn)(phdr_cb, void *);
typedef int (*pipe2_fn)(int *, int);
typedef int (*close_fn)(int);
typedef int (*close_range_fn)(unsigned, unsigned, int);
typedef void (*closefrom_fn)(int);
typedef int (*dup2_fn)(int, int);
typedef int (*dup3_fn)(int, int, int);

/* The real functions, published by preoom_real_resolve (malloc last). */
struct preoom_real_fns {
    malloc_fn malloc;
    free_fn free;
    calloc_fn calloc;
    realloc_fn realloc;
    posix_memalign_fn posix_memalign;
    aligned_fn aligned_alloc;
    aligned_fn memalign;
    valloc_fn valloc;
    valloc_fn pvalloc;
    usable_fn usable;
    mmap_fn mmap;
    mmap_fn mmap64;
    munmap_fn munmap;
    mremap_fn mremap;
    brk_fn brk;
    sbrk_fn sbrk;
    trim_fn malloc_trim;
};
#define PREOOM_HIDDEN __attribute__((visibility("hidden")))
extern struct preoom_real_fns preoom_real PREOOM_HIDDEN;
#define REAL(f) __atomic_load_n(&preoom_real.f, __ATOMIC_ACQUIRE)

/* Look the real functions up (once; a call during the look-up returns at once, and its
 * caller falls back to the bootstrap pool). */
void preoom_real_resolve(void);
/* Glibc's malloc is below us (decided by behaviour at resolution): sizes are read inline. */
extern int preoom_below_glibc PREOOM_HIDDEN;
/* An allocator loaded before us serves malloc (or the program defines it): count nothing. */
extern int preoom_alloc_shadowed PREOOM_HIDDEN;

/* glibc's usable size of a block from its chunk header: 8 bytes of header for a chunk in an
 * arena (its next chunk's prev_size field is ours), 16 for an mmapped one (IS_MMAPPED = 2),
 * which is rare: a branch the predictor gets right costs fewer instructions than arithmetic
 * on the flag. */
static inline size_t glibc_usable(const void *p)
{
    size_t head = ((const size_t *)p)[-1];
    size_t n = (head & ~(size_t)7) - 8;
    if (PREOOM_UNLIKELY(head & 2))
        n -= 8;
    return n;
}

/* The bootstrap pool: what dlsym and the loader allocate before the real malloc is known.
 * A block's size is in the word 16 bytes before it; the word right before it is 0, which
 * no glibc chunk header ever is. */
void *preoom_boot_alloc(size_t n, size_t align);
size_t preoom_boot_size(const void *p);
#define BOOT_BYTES (256 * 1024)
extern char preoom_boot_buf[BOOT_BYTES] PREOOM_HIDDEN;
static inline int preoom_boot_owns(const void *p)
{
    return (uintptr_t)p - (uintptr_t)preoom_boot_buf < BOOT_BYTES;
}

/* Real functions looked up at start-up (preoom_real_resolve_rest), not on first use: a child
 * of fork may call them before exec, when dlsym could wait for ever on a loader lock another
 * thread of the parent held. */
enum { FD_CLOSE, FD_CLOSE_RANGE, FD_CLOSEFROM, FD_DUP2, FD_DUP3, FD_N };
enum cxx_op {
    NEW, NEW_ARR, NEW_NT, NEW_ARR_NT, NEW_AL, NEW_ARR_AL, NEW_AL_NT, NEW_ARR_AL_NT,
    DEL, DEL_ARR, DEL_SZ, DEL_ARR_SZ, DEL_AL, DEL_ARR_AL, DEL_SZ_AL, DEL_ARR_SZ_AL, DEL_NT,
    DEL_ARR_NT, DEL_AL_NT, DEL_ARR_AL_NT, CXX_OPS
};
enum { OTHER_ITERATE, OTHER_PIPE2, OTHER_N };
extern void *preoom_real_fd_fns[FD_N] PREOOM_HIDDEN;
extern void *preoom_real_cxx_fns[CXX_OPS] PREOOM_HIDDEN;
extern void *preoom_real_other_fns[OTHER_N] PREOOM_HIDDEN;
void *preoom_real_lookup_fd(int which);
void *preoom_real_lookup_cxx(int op);
void *preoom_real_lookup_other(int which);
void preoom_real_resolve_rest(void);

static inline void *fd_fn(int which)
{
    void *f = __atomic_load_n(&preoom_real_fd_fns[which], __ATOMIC_ACQUIRE);
    return PREOOM_LIKELY(f != NULL) ? f : preoom_real_lookup_fd(which);
}

static inline void *cxx(enum cxx_op op)
{
    void *f = __atomic_load_n(&preoom_real_cxx_fns[op], __ATOMIC_ACQUIRE);
    return PREOOM_LIKELY(f != NULL) ? f : preoom_real_lookup_cxx((int)op);
}

static inline iterate_fn iterate_real(void)
{
    void *f = __atomic_load_n(&preoom_real_other_fns[OTHER_ITERATE], __ATOMIC_ACQUIRE);
    return (iterate_fn)(PREOOM_LIKELY(f != NULL) ? f : preoom_real_lookup_other(OTHER_ITERATE));
}

static inline pipe2_fn pipe2_real(void)
{
    void *f = __atomic_load_n(&preoom_real_other_fns[OTHER_PIPE2], __ATOMIC_ACQUIRE);
    return (pipe2_fn)(PREOOM_LIKELY(f != NULL) ? f : preoom_real_lookup_other(OTHER_PIPE2));
}

#endif

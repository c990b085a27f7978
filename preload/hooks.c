/* preload/hooks.c — the only file that defines the interposed symbols: the exported
 * wrappers, and what they count.
 *
 * Each wrapper calls the real function (real.c finds it, and serves allocations from its
 * bootstrap pool while it looks), then counts what happened: the semantics, return values
 * and errno of the real call are left exactly as they were. The hot path is an indirect call,
 * a thread-local pointer and a few adds (the fast path, record.h).
 *
 * C++ operators new and delete are wrapped too: under libstdc++ they reach malloc and free
 * (counted there, so the operator counts nothing), but an allocator like tcmalloc or jemalloc
 * may serve them directly. A thread-local flag set by the malloc/free hooks tells the two
 * cases apart, so each byte is added once and only what was added is subtracted.
 * Must never: look a symbol up (real.c does, at start-up), or allocate through malloc.
 */
#include <errno.h>
#include <link.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "real.h"

int preoom_hooks_stacks_on;       /* PREOOM_STACKS != off, fixed at init */
int preoom_hooks_fast;            /* the fast path's one flag (record.h), fixed at init */

#include "record.h"

void preoom_hooks_init(void)
{
    preoom_hooks_ready();
    preoom_real_resolve_rest();
    preoom_hooks_stacks_on = preoom_opt.stacks != PREOOM_STACKS_OFF;
    int fast = preoom_below_glibc && !preoom_hooks_stacks_on && REAL(malloc) && REAL(free) &&
               REAL(calloc);
    __atomic_store_n(&preoom_hooks_fast, fast, __ATOMIC_RELEASE);
    if (preoom_alloc_shadowed)
        preoom_log_verbose(1, "malloc is served by %s, loaded before libpreoom.so: malloc "
                              "bytes are not counted (put libpreoom.so first in LD_PRELOAD)",
                           preoom_hooks_shadowed_by());
}

/* ---- the malloc family ----------------------------------------------------------------- */
static __attribute__((noinline)) void *malloc_general(size_t n);
static __attribute__((noinline)) void free_general(void *p);
static __attribute__((noinline)) void *calloc_general(size_t nmemb, size_t size);

PREOOM_EXPORT void *malloc(size_t n)
{
    if (PREOOM_LIKELY(preoom_hooks_fast))
        return fast_count(preoom_real.malloc(n), PREOOM_CALL_MALLOC);
    return malloc_general(n);
}

/* A bootstrap block's header word is 0 (boot_alloc writes the size in the word before it),
 * and a glibc chunk's never is: one test tells them apart on the fast path. */
PREOOM_EXPORT void free(void *p)
{
    if (PREOOM_LIKELY(preoom_hooks_fast) && PREOOM_LIKELY(p != NULL)) {
        size_t head = ((const size_t *)p)[-1];
        preoom_tblock_t *b = preoom_tls.block;
        if (PREOOM_UNLIKELY(head == 0 || b == NULL)) {
            free_general(p);
            return;
        }
        preoom_tls.inner_hit = 1;
        owner_sub(&b->malloc_bytes, (int64_t)glibc_usable(p));
        owner_add(&b->calls[PREOOM_CALL_FREE], 1);
        preoom_real.free(p); /* errno is glibc's to keep: free preserves it */
        return;
    }
    free_general(p);
}

PREOOM_EXPORT void *calloc(size_t nmemb, size_t size)
{
    if (PREOOM_LIKELY(preoom_hooks_fast))
        return fast_count(preoom_real.calloc(nmemb, size), PREOOM_CALL_CALLOC);
    return calloc_general(nmemb, size);
}

static void *malloc_general(size_t n)
{
    malloc_fn f = REAL(malloc);
    if (PREOOM_UNLIKELY(!f)) {
        preoom_real_resolve();
        if (!(f = REAL(malloc)))
            return preoom_boot_alloc(n, 16);
    }
    int g = preoom_below_glibc;
    ALLOC_ENTER(g);
    void *p = f(n);
    ALLOC_LEAVE(g);
    counted_alloc(g, p, n, PREOOM_CALL_MALLOC);
    return p;
}

static void free_general(void *p)
{
    if (!p) {
        preoom_account_call(PREOOM_CALL_FREE);
        return;
    }
    if (PREOOM_UNLIKELY(preoom_boot_owns(p)))
        return;
    free_fn f = REAL(free);
    if (PREOOM_UNLIKELY(!f))
        return; /* cannot happen: nothing but boot blocks exists before resolution */
    int g = preoom_below_glibc;
    size_t n = counted_free_prepare(g, p);
    ALLOC_ENTER(g);
    f(p);
    ALLOC_LEAVE(g);
    preoom_account_malloc(-(int64_t)n, PREOOM_CALL_FREE);
}

static void *calloc_general(size_t nmemb, size_t size)
{
    calloc_fn f = REAL(calloc);
    if (PREOOM_UNLIKELY(!f)) {
        preoom_real_resolve();
        if (!(f = REAL(calloc))) {
            size_t total;
            if (__builtin_mul_overflow(nmemb, size, &total)) {
                errno = ENOMEM;
                return NULL;
            }
            return preoom_boot_alloc(total, 16);
        }
    }
    int g = preoom_below_glibc;
    ALLOC_ENTER(g);
    void *p = f(nmemb, size);
    ALLOC_LEAVE(g);
    counted_alloc(g, p, nmemb * size, PREOOM_CALL_CALLOC); /* no overflow when p is set */
    return p;
}

/* realloc of a bootstrap block: move it to the real heap. */
static void *boot_realloc(void *p, size_t n)
{
    if (!REAL(malloc))
        return preoom_boot_alloc(n, 16);
    void *q = malloc(n);
    if (q) {
        size_t old = preoom_boot_size(p);
        memcpy(q, p, old < n ? old : n);
    }
    return q;
}

ALWAYS_INLINE void *realloc_common(void *p, size_t n, int is_array, size_t nmemb, size_t size)
{
    enum preoom_call call = is_array ? PREOOM_CALL_REALLOCARRAY : PREOOM_CALL_REALLOC;
    if (is_array && __builtin_mul_overflow(nmemb, size, &n)) {
        preoom_account_call(call);
        errno = ENOMEM;
        return NULL;
    }
    if (PREOOM_UNLIKELY(!REAL(realloc))) {
        preoom_real_resolve();
        if (!REAL(realloc))
            return p ? boot_realloc(p, n) : preoom_boot_alloc(n, 16);
    }
    if (PREOOM_UNLIKELY(p && preoom_boot_owns(p)))
        return boot_realloc(p, n);
    int g = preoom_below_glibc;
    ALLOC_ENTER(g);
    if (!p) {
        void *q = REAL(realloc)(NULL, n);
        ALLOC_LEAVE(g);
        counted_alloc(g, q, n, call);
        return q;
    }
    size_t old = counted_free_prepare(g, p);
    void *q = REAL(realloc)(p, n);
    ALLOC_LEAVE(g);
    if (q) {
        /* Moved or resized: the old block is gone either way. */
        size_t now = usable_size(g, q);
        preoom_account_malloc((int64_t)now - (int64_t)old, call);
        sample(q, now, n);
    } else if (n == 0) {
        /* glibc's realloc(p, 0) frees p and returns NULL. */
        preoom_account_malloc(-(int64_t)old, call);
    } else {
        /* Failure leaves p as it was: nothing was freed. Put back a sampled record. */
        preoom_account_call(call);
        if (PREOOM_UNLIKELY(preoom_hooks_stacks_on))
            preoom_stacks_restore(p);
    }
    return q;
}

PREOOM_EXPORT void *realloc(void *p, size_t n)
{
    return realloc_common(p, n, 0, 0, 0);
}

PREOOM_EXPORT void *reallocarray(void *p, size_t nmemb, size_t size)
{
    return realloc_common(p, 0, 1, nmemb, size);
}

PREOOM_EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
    posix_memalign_fn f = REAL(posix_memalign);
    if (PREOOM_UNLIKELY(!f)) {
        preoom_real_resolve();
        if (!(f = REAL(posix_memalign))) {
            if (align < sizeof(void *) || (align & (align - 1)))
                return EINVAL;
            void *p = preoom_boot_alloc(n, align);
            if (!p)
                return ENOMEM;
            *out = p;
            return 0;
        }
    }
    int g = preoom_below_glibc;
    ALLOC_ENTER(g);
    int rc = f(out, align, n);
    ALLOC_LEAVE(g);
    counted_alloc(g, rc == 0 ? *out : NULL, n, PREOOM_CALL_POSIX_MEMALIGN);
    return rc;
}

ALWAYS_INLINE void *aligned_common(aligned_fn f, size_t align, size_t n, enum preoom_call call)
{
    if (PREOOM_UNLIKELY(!f))
        return preoom_boot_alloc(n, align);
    int g = preoom_below_glibc;
    ALLOC_ENTER(g);
    void *p = f(align, n);
    ALLOC_LEAVE(g);
    counted_alloc(g, p, n, call);
    return p;
}

PREOOM_EXPORT void *aligned_alloc(size_t align, size_t n)
{
    if (!REAL(aligned_alloc))
        preoom_real_resolve();
    return aligned_common(REAL(aligned_alloc), align, n, PREOOM_CALL_ALIGNED_ALLOC);
}

PREOOM_EXPORT void *memalign(size_t align, size_t n)
{
    if (!REAL(memalign))
        preoom_real_resolve();
    return aligned_common(REAL(memalign), align, n, PREOOM_CALL_MEMALIGN);
}

PREOOM_EXPORT void *valloc(size_t n)
{
    valloc_fn f = REAL(valloc);
    if (!f) {
        preoom_real_resolve();
        if (!(f = REAL(valloc)))
            return preoom_boot_alloc(n, 4096);
    }
    int g = preoom_below_glibc;
    ALLOC_ENTER(g);
    void *p = f(n);
    ALLOC_LEAVE(g);
    counted_alloc(g, p, n, PREOOM_CALL_VALLOC);
    return p;
}

PREOOM_EXPORT void *pvalloc(size_t n)
{
    valloc_fn f = REAL(pvalloc);
    if (!f) {
        preoom_real_resolve();
        if (!(f = REAL(pvalloc)))
            return preoom_boot_alloc((n + 4095) & ~(size_t)4095, 4096);
    }
    int g = preoom_below_glibc;
    ALLOC_ENTER(g);
    void *p = f(n);
    ALLOC_LEAVE(g);
    counted_alloc(g, p, n, PREOOM_CALL_PVALLOC);
    return p;
}

PREOOM_EXPORT size_t malloc_usable_size(void *p)
{
    preoom_account_call(PREOOM_CALL_USABLE_SIZE);
    if (!p)
        return 0;
    if (preoom_boot_owns(p))
        return preoom_boot_size(p);
    usable_fn f = REAL(usable);
    if (!f) {
        preoom_real_resolve();
        if (!(f = REAL(usable)))
            return 0;
    }
    return f(p);
}

/* ---- mappings ------------------------------------------------------------------------- */
/* Committed memory in the kernel's sense: private, anonymous, writable. */
static int counts_as_committed(int prot, int flags)
{
    return (flags & MAP_ANONYMOUS) && (flags & MAP_TYPE) == MAP_PRIVATE && (prot & PROT_WRITE);
}

static void *mmap_common(mmap_fn f, void *addr, size_t len, int prot, int flags, int fd,
                         off_t off)
{
    void *r = f ? f(addr, len, prot, flags, fd, off)
                : preoom_sys_mmap(addr, len, prot, flags, fd, off);
    preoom_account_call(PREOOM_CALL_MMAP);
    if (r == MAP_FAILED)
        return r;
    /* An allocator below us (jemalloc, tcmalloc) maps its own memory inside malloc: those
     * bytes are counted as malloc's usable sizes already. */
    if (preoom_tls.in_alloc)
        return r;
    int saved = errno;
    if (counts_as_committed(prot, flags)) {
        preoom_account_mmap(preoom_maps_add((uintptr_t)r, len));
        /* The program's own anonymous mappings: few and large, so every one is recorded. Not
         * when an allocator loaded before us is in charge: its own mappings then come here
         * from inside its malloc, its lock held, and are not the program's. */
        if (PREOOM_UNLIKELY(preoom_hooks_stacks_on) && !preoom_tls.guard && !preoom_alloc_shadowed)
            preoom_stacks_mmap(r, len);
    } else if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE))
        /* Something else now lives where a counted mapping may have been. */
        preoom_account_mmap(preoom_maps_remove((uintptr_t)r, len));
    errno = saved;
    return r;
}

PREOOM_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (!REAL(mmap))
        preoom_real_resolve();
    return mmap_common(REAL(mmap), addr, len, prot, flags, fd, off);
}

PREOOM_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
{
    if (!REAL(mmap64))
        preoom_real_resolve();
    return mmap_common(REAL(mmap64), addr, len, prot, flags, fd, (off_t)off);
}

PREOOM_EXPORT int munmap(void *addr, size_t len)
{
    if (!REAL(munmap))
        preoom_real_resolve();
    munmap_fn f = REAL(munmap);
    int rc = f ? f(addr, len) : preoom_sys_munmap(addr, len);
    preoom_account_call(PREOOM_CALL_MUNMAP);
    if (rc == 0) {
        int saved = errno;
        preoom_account_mmap(preoom_maps_remove((uintptr_t)addr, len));
        if (PREOOM_UNLIKELY(preoom_hooks_stacks_on) && preoom_stacks_maybe_sampled(addr))
            preoom_stacks_free(addr);
        errno = saved;
    }
    return rc;
}

PREOOM_EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
    void *new_addr = NULL;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        new_addr = va_arg(ap, void *);
        va_end(ap);
    }
    if (!REAL(mremap))
        preoom_real_resolve();
    mremap_fn f = REAL(mremap);
    void *r;
    if (f)
        r = f(old, old_len, new_len, flags, new_addr);
    else {
        long rr = syscall(SYS_mremap, old, old_len, new_len, flags, new_addr);
        r = rr == -1 ? MAP_FAILED : (void *)rr;
    }
    preoom_account_call(PREOOM_CALL_MREMAP);
    if (r != MAP_FAILED && old_len != 0) {
        int saved = errno;
#ifdef MREMAP_DONTUNMAP
        int keep = (flags & MREMAP_DONTUNMAP) != 0;
#else
        int keep = 0;
#endif
        preoom_account_mmap(preoom_maps_move((uintptr_t)old, old_len, (uintptr_t)r, new_len, keep));
        if (PREOOM_UNLIKELY(preoom_hooks_stacks_on) && !keep && preoom_stacks_maybe_sampled(old)) {
            preoom_stacks_free(old);
            preoom_stacks_mmap(r, new_len);
        }
        errno = saved;
    }
    return r;
}

/* ---- the break -------------------------------------------------------------------------- */
PREOOM_EXPORT int brk(void *addr)
{
    if (!REAL(brk))
        preoom_real_resolve();
    brk_fn f = REAL(brk);
    sbrk_fn s = REAL(sbrk);
    if (!f || !s) {
        errno = ENOMEM;
        return -1;
    }
    char *before = s(0);
    int rc = f(addr);
    preoom_account_call(PREOOM_CALL_BRK);
    /* tcmalloc grows its heap with sbrk from inside malloc: counted as malloc bytes. */
    if (rc == 0 && !preoom_tls.in_alloc) {
        int saved = errno;
        preoom_account_brk((int64_t)((char *)s(0) - before));
        errno = saved;
    }
    return rc;
}

PREOOM_EXPORT void *sbrk(intptr_t incr)
{
    if (!REAL(sbrk))
        preoom_real_resolve();
    sbrk_fn s = REAL(sbrk);
    if (!s) {
        errno = ENOMEM;
        return (void *)-1;
    }
    void *r = s(incr);
    preoom_account_call(PREOOM_CALL_SBRK);
    if (r != (void *)-1 && incr != 0 && !preoom_tls.in_alloc)
        preoom_account_brk((int64_t)incr);
    return r;
}

/* ---- descriptor sweeps ------------------------------------------------------------------ */
/* libunwind's two descriptors must outlive a program that closes every descriptor it did not
 * open (unwind.c says why). close, close_range and closefrom leave them alone and report
 * success for them; dup2 and dup3 onto one of them first stop all unwinding, then let the
 * program have the number. Everything else passes straight through: with stacks off, or
 * when libunwind's pipe was not found, these wrappers only compare two integers. */
/* libunwind's two descriptors, lower first (-1, -1 when there are none to keep). */
static void kept_fds(int keep[2])
{
    int a = __atomic_load_n(&preoom_unwind_fds[0], __ATOMIC_RELAXED);
    int b = __atomic_load_n(&preoom_unwind_fds[1], __ATOMIC_RELAXED);
    keep[0] = a < b ? a : b;
    keep[1] = a < b ? b : a;
}

static int sweep_touches_ours(unsigned first, unsigned last)
{
    int keep[2];
    kept_fds(keep);
    for (int i = 0; i < 2; i++)
        if (keep[i] >= 0 && (unsigned)keep[i] >= first && (unsigned)keep[i] <= last)
            return 1;
    return 0;
}

/* close_range over [first, last] without libunwind's descriptors: up to three pieces. */
static int close_range_around(unsigned first, unsigned last, int flags)
{
    close_range_fn f = (close_range_fn)fd_fn(FD_CLOSE_RANGE);
    if (!f) {
        errno = ENOSYS;
        return -1;
    }
    int keep[2], rc = 0;
    kept_fds(keep);
    unsigned lo = first;
    for (int i = 0; i < 2 && lo <= last; i++) {
        if (keep[i] < 0 || (unsigned)keep[i] < lo || (unsigned)keep[i] > last)
            continue;
        if ((unsigned)keep[i] > lo && f(lo, (unsigned)keep[i] - 1, flags) != 0)
            rc = -1;
        if ((unsigned)keep[i] == ~0U)
            return rc;
        lo = (unsigned)keep[i] + 1;
    }
    if (lo <= last && f(lo, last, flags) != 0)
        rc = -1;
    return rc;
}

PREOOM_EXPORT int close(int fd)
{
    if (PREOOM_UNLIKELY(preoom_unwind_owns_fd(fd))) {
        if (!preoom_tls.own_walk)
            return 0; /* libunwind's: the program never opened it */
        preoom_unwind_pipe_closed(fd); /* libunwind's own close, to make a new pipe */
    }
    close_fn f = (close_fn)fd_fn(FD_CLOSE);
    return f ? f(fd) : (int)syscall(SYS_close, fd);
}

PREOOM_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
    /* CLOSE_RANGE_CLOEXEC only marks them close-on-exec, which libunwind's already are. */
    if (PREOOM_UNLIKELY(!(flags & CLOSE_RANGE_CLOEXEC) && sweep_touches_ours(first, last)))
        return close_range_around(first, last, flags);
    close_range_fn f = (close_range_fn)fd_fn(FD_CLOSE_RANGE);
    if (!f) {
        errno = ENOSYS;
        return -1;
    }
    return f(first, last, flags);
}

PREOOM_EXPORT void closefrom(int low)
{
    if (PREOOM_UNLIKELY(low >= 0 && sweep_touches_ours((unsigned)low, ~0U))) {
        if (close_range_around((unsigned)low, ~0U, 0) == 0)
            return;
        /* No close_range: one by one up to ours (close keeps them), glibc's above. */
        int keep[2];
        kept_fds(keep);
        for (int fd = low; fd <= keep[1]; fd++)
            close(fd);
        low = keep[1] + 1;
    }
    closefrom_fn f = (closefrom_fn)fd_fn(FD_CLOSEFROM);
    if (f)
        f(low);
}

PREOOM_EXPORT int dup2(int old, int fd)
{
    if (PREOOM_UNLIKELY(preoom_unwind_owns_fd(fd) && old != fd))
        preoom_unwind_give_up("dup2()ed onto");
    dup2_fn f = (dup2_fn)fd_fn(FD_DUP2);
    return f ? f(old, fd) : (int)syscall(SYS_dup2, old, fd);
}

PREOOM_EXPORT int dup3(int old, int fd, int flags)
{
    if (PREOOM_UNLIKELY(preoom_unwind_owns_fd(fd) && old != fd))
        preoom_unwind_give_up("dup3()ed onto");
    dup3_fn f = (dup3_fn)fd_fn(FD_DUP3);
    return f ? f(old, fd, flags) : (int)syscall(SYS_dup3, old, fd, flags);
}

/* libunwind's pipe: made inside one of our walks, it is ours to place (unwind.c). Under a
 * descriptor limit with no room to spare it is refused, and libunwind's copy of the numbers
 * set to -1 so that it never closes a number the program may hold by then. */
PREOOM_EXPORT int pipe2(int fds[2], int flags)
{
    pipe2_fn f = pipe2_real();
    if (PREOOM_LIKELY(!preoom_tls.own_walk))
        return f ? f(fds, flags) : (int)syscall(SYS_pipe2, fds, flags);
    if (!preoom_fd_room()) {
        fds[0] = fds[1] = -1;
        errno = EMFILE;
        return -1;
    }
    int rc = f ? f(fds, flags) : (int)syscall(SYS_pipe2, fds, flags);
    if (rc == 0) {
        int saved = errno;
        preoom_unwind_pipe_made(fds);
        errno = saved;
    }
    return rc;
}

/* ---- the loader's list of objects -------------------------------------------------------- */
/* dlsnap.c says why: in a fork child whose loader lock may be held by a thread that no longer
 * exists, preoom's own walks (libunwind's among them) read the copy taken before the fork.
 * The program's own calls go to the real one, and the first that comes back proves the lock
 * free. Otherwise a tail call: glibc picks the namespace from its caller's address. */
PREOOM_EXPORT int dl_iterate_phdr(phdr_cb cb, void *data)
{
    if (PREOOM_UNLIKELY(atomic_load_explicit(&preoom_dlsnap_child, memory_order_relaxed))) {
        if (preoom_tls.own_walk)
            return preoom_dlsnap_iterate(cb, data);
        int rc = iterate_real()(cb, data);
        atomic_store_explicit(&preoom_dlsnap_child, 0, memory_order_relaxed);
        return rc;
    }
    return iterate_real()(cb, data);
}

/* ---- C++ operators new and delete ------------------------------------------------------ */
/* Mangled names of every replaceable form (Itanium C++ ABI, size_t = unsigned long). */
/* Unconditional, unlike ALLOC_ENTER: operator new may be served by an allocator of its own
 * (tcmalloc's) even where malloc is glibc's. */
static inline uint32_t *enter_alloc(void)
{
    preoom_tls.in_alloc++;
    return &preoom_tls.in_alloc;
}

static inline void leave_alloc(uint32_t **depth)
{
    (**depth)--;
}

/* new: count here only if the real operator did not go through our malloc (inner_hit is
 * reset by every call). The real call may throw: the in-allocator depth is then restored by
 * the cleanup attribute as the exception unwinds. */
#define NEW_BODY(op, type, ...)                                                            \
    preoom_tls.inner_hit = 0;                                                             \
    void *p;                                                                              \
    {                                                                                     \
        /* new may throw: the cleanup runs while the exception unwinds (-fexceptions). */ \
        uint32_t *depth __attribute__((cleanup(leave_alloc))) = enter_alloc();            \
        (void)depth;                                                                      \
        p = ((type)cxx(op))(__VA_ARGS__);                                                 \
    }                                                                                     \
    if (!preoom_tls.inner_hit && p)                                                       \
        preoom_account_malloc((int64_t)usable_of(p), PREOOM_CALL_NEW);                    \
    else                                                                                  \
        preoom_account_call(PREOOM_CALL_NEW);                                             \
    return p;

/* delete: the size is read before the real call, and subtracted only if the real operator
 * did not reach our free (which subtracted it). Whether it does is not a property of the
 * allocator: jemalloc's unsized delete calls free through the PLT, its sized one does not. */
#define DEL_BODY(op, type, p, ...)                                                         \
    if (!p)                                                                               \
        return;                                                                           \
    size_t n = usable_of(p);                                                              \
    preoom_tls.inner_hit = 0;                                                             \
    preoom_tls.in_alloc++;                                                                \
    ((type)cxx(op))(p, ##__VA_ARGS__);                                                    \
    preoom_tls.in_alloc--;                                                                \
    if (preoom_tls.inner_hit)                                                             \
        preoom_account_call(PREOOM_CALL_DELETE);                                          \
    else                                                                                  \
        preoom_account_malloc(-(int64_t)n, PREOOM_CALL_DELETE);

typedef struct { char c; } preoom_nothrow_t; /* stands in for std::nothrow_t (by reference) */
typedef void *(*new_t)(size_t);
typedef void *(*new_nt_t)(size_t, const preoom_nothrow_t *);
typedef void *(*new_al_t)(size_t, size_t);
typedef void *(*new_al_nt_t)(size_t, size_t, const preoom_nothrow_t *);
typedef void (*del_t)(void *);
typedef void (*del_sz_t)(void *, size_t);
typedef void (*del_sz_al_t)(void *, size_t, size_t);
typedef void (*del_nt_t)(void *, const preoom_nothrow_t *);
typedef void (*del_al_nt_t)(void *, size_t, const preoom_nothrow_t *);

PREOOM_EXPORT void *preoom_op_new(size_t n) __asm__("_Znwm");
PREOOM_EXPORT void *preoom_op_new(size_t n) { NEW_BODY(NEW, new_t, n) }
PREOOM_EXPORT void *preoom_op_new_arr(size_t n) __asm__("_Znam");
PREOOM_EXPORT void *preoom_op_new_arr(size_t n) { NEW_BODY(NEW_ARR, new_t, n) }
PREOOM_EXPORT void *preoom_op_new_nt(size_t n, const preoom_nothrow_t *t) __asm__("_ZnwmRKSt9nothrow_t");
PREOOM_EXPORT void *preoom_op_new_nt(size_t n, const preoom_nothrow_t *t) { NEW_BODY(NEW_NT, new_nt_t, n, t) }
PREOOM_EXPORT void *preoom_op_new_arr_nt(size_t n, const preoom_nothrow_t *t) __asm__("_ZnamRKSt9nothrow_t");
PREOOM_EXPORT void *preoom_op_new_arr_nt(size_t n, const preoom_nothrow_t *t) { NEW_BODY(NEW_ARR_NT, new_nt_t, n, t) }
PREOOM_EXPORT void *preoom_op_new_al(size_t n, size_t al) __asm__("_ZnwmSt11align_val_t");
PREOOM_EXPORT void *preoom_op_new_al(size_t n, size_t al) { NEW_BODY(NEW_AL, new_al_t, n, al) }
PREOOM_EXPORT void *preoom_op_new_arr_al(size_t n, size_t al) __asm__("_ZnamSt11align_val_t");
PREOOM_EXPORT void *preoom_op_new_arr_al(size_t n, size_t al) { NEW_BODY(NEW_ARR_AL, new_al_t, n, al) }
PREOOM_EXPORT void *preoom_op_new_al_nt(size_t n, size_t al, const preoom_nothrow_t *t) __asm__("_ZnwmSt11align_val_tRKSt9nothrow_t");
PREOOM_EXPORT void *preoom_op_new_al_nt(size_t n, size_t al, const preoom_nothrow_t *t) { NEW_BODY(NEW_AL_NT, new_al_nt_t, n, al, t) }
PREOOM_EXPORT void *preoom_op_new_arr_al_nt(size_t n, size_t al, const preoom_nothrow_t *t) __asm__("_ZnamSt11align_val_tRKSt9nothrow_t");
PREOOM_EXPORT void *preoom_op_new_arr_al_nt(size_t n, size_t al, const preoom_nothrow_t *t) { NEW_BODY(NEW_ARR_AL_NT, new_al_nt_t, n, al, t) }

PREOOM_EXPORT void preoom_op_del(void *p) __asm__("_ZdlPv");
PREOOM_EXPORT void preoom_op_del(void *p) { DEL_BODY(DEL, del_t, p) }
PREOOM_EXPORT void preoom_op_del_arr(void *p) __asm__("_ZdaPv");
PREOOM_EXPORT void preoom_op_del_arr(void *p) { DEL_BODY(DEL_ARR, del_t, p) }
PREOOM_EXPORT void preoom_op_del_sz(void *p, size_t sz) __asm__("_ZdlPvm");
PREOOM_EXPORT void preoom_op_del_sz(void *p, size_t sz) { DEL_BODY(DEL_SZ, del_sz_t, p, sz) }
PREOOM_EXPORT void preoom_op_del_arr_sz(void *p, size_t sz) __asm__("_ZdaPvm");
PREOOM_EXPORT void preoom_op_del_arr_sz(void *p, size_t sz) { DEL_BODY(DEL_ARR_SZ, del_sz_t, p, sz) }
PREOOM_EXPORT void preoom_op_del_al(void *p, size_t al) __asm__("_ZdlPvSt11align_val_t");
PREOOM_EXPORT void preoom_op_del_al(void *p, size_t al) { DEL_BODY(DEL_AL, del_sz_t, p, al) }
PREOOM_EXPORT void preoom_op_del_arr_al(void *p, size_t al) __asm__("_ZdaPvSt11align_val_t");
PREOOM_EXPORT void preoom_op_del_arr_al(void *p, size_t al) { DEL_BODY(DEL_ARR_AL, del_sz_t, p, al) }
PREOOM_EXPORT void preoom_op_del_sz_al(void *p, size_t sz, size_t al) __asm__("_ZdlPvmSt11align_val_t");
PREOOM_EXPORT void preoom_op_del_sz_al(void *p, size_t sz, size_t al) { DEL_BODY(DEL_SZ_AL, del_sz_al_t, p, sz, al) }
PREOOM_EXPORT void preoom_op_del_arr_sz_al(void *p, size_t sz, size_t al) __asm__("_ZdaPvmSt11align_val_t");
PREOOM_EXPORT void preoom_op_del_arr_sz_al(void *p, size_t sz, size_t al) { DEL_BODY(DEL_ARR_SZ_AL, del_sz_al_t, p, sz, al) }
PREOOM_EXPORT void preoom_op_del_nt(void *p, const preoom_nothrow_t *t) __asm__("_ZdlPvRKSt9nothrow_t");
PREOOM_EXPORT void preoom_op_del_nt(void *p, const preoom_nothrow_t *t) { DEL_BODY(DEL_NT, del_nt_t, p, t) }
PREOOM_EXPORT void preoom_op_del_arr_nt(void *p, const preoom_nothrow_t *t) __asm__("_ZdaPvRKSt9nothrow_t");
PREOOM_EXPORT void preoom_op_del_arr_nt(void *p, const preoom_nothrow_t *t) { DEL_BODY(DEL_ARR_NT, del_nt_t, p, t) }
PREOOM_EXPORT void preoom_op_del_al_nt(void *p, size_t al, const preoom_nothrow_t *t) __asm__("_ZdlPvSt11align_val_tRKSt9nothrow_t");
PREOOM_EXPORT void preoom_op_del_al_nt(void *p, size_t al, const preoom_nothrow_t *t) { DEL_BODY(DEL_AL_NT, del_al_nt_t, p, al, t) }
PREOOM_EXPORT void preoom_op_del_arr_al_nt(void *p, size_t al, const preoom_nothrow_t *t) __asm__("_ZdaPvSt11align_val_tRKSt9nothrow_t");
PREOOM_EXPORT void preoom_op_del_arr_al_nt(void *p, size_t al, const preoom_nothrow_t *t) { DEL_BODY(DEL_ARR_AL_NT, del_al_nt_t, p, al, t) }

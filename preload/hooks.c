/* preload/hooks.c — the only file that defines the interposed symbols and includes <dlfcn.h>.
 *
 * Each wrapper calls the real function found with dlsym(RTLD_NEXT, ...), then counts what
 * happened: the semantics, return values and errno of the real call are left exactly as they
 * were. While the real symbols are being looked up (dlsym itself calls calloc), allocations
 * are served from a static bootstrap arena whose blocks are recognised and never handed to
 * the real free. The hot path is an indirect call, a thread-local pointer and a few adds.
 *
 * C++ operators new and delete are wrapped too: under libstdc++ they reach malloc and free
 * (counted there, so the operator counts nothing), but an allocator like tcmalloc or jemalloc
 * may serve them directly. A thread-local flag set by the malloc/free hooks tells the two
 * cases apart, so each byte is added once and only what was added is subtracted.
 */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

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

static struct {
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
} real;

#define REAL(f) __atomic_load_n(&real.f, __ATOMIC_ACQUIRE)

static _Atomic int resolve_state; /* 0 not started, 1 under way, 2 done */
static int stacks_on;             /* PREOOM_STACKS != off, fixed at init */
static int fast;                  /* the fast path's one flag (see there), fixed at init */

/* ---- bootstrap arena ------------------------------------------------------------------ */
/* What dlsym and the loader allocate before the real malloc is known. 16-byte header with
 * the size, so realloc and malloc_usable_size work on these blocks too. */
#define BOOT_BYTES (256 * 1024)
static char boot_buf[BOOT_BYTES] __attribute__((aligned(64)));
static _Atomic size_t boot_used;

static int is_boot(const void *p)
{
    return (uintptr_t)p - (uintptr_t)boot_buf < BOOT_BYTES;
}

static void *boot_alloc(size_t n, size_t align)
{
    if (align < 16)
        align = 16;
    if (n > BOOT_BYTES || align > 4096)
        goto nomem;
    size_t cur = atomic_load(&boot_used), start, end;
    do {
        start = (cur + 16 + align - 1) & ~(align - 1);
        end = start + ((n + 15) & ~(size_t)15);
        if (end > BOOT_BYTES)
            goto nomem;
    } while (!atomic_compare_exchange_weak(&boot_used, &cur, end));
    /* The word right before the block stays 0: free's fast path knows a boot block by it. */
    *(size_t *)(void *)(boot_buf + start - 16) = n;
    return boot_buf + start; /* static memory: already zero */
nomem:
    errno = ENOMEM;
    return NULL;
}

static size_t boot_size(const void *p)
{
    return *(const size_t *)(const void *)((const char *)p - 16);
}

/* ---- resolution ----------------------------------------------------------------------- */
#define RESOLVE(f)                                                                        \
    __atomic_store_n((void **)&real.f, dlsym(RTLD_NEXT, #f), __ATOMIC_RELEASE)

/* Is the allocator below us glibc's, with its chunk header where malloc_usable_size reads
 * it? Then the hot path reads the size inline (one load instead of a call), and skips the
 * in-allocator flag, which only matters for allocators that call mmap through the dynamic
 * linker (glibc's are internal calls). Decided by behaviour, not by name alone: the inline
 * reading must agree with the real malloc_usable_size on small, large and mmapped chunks. */
static int below_glibc;

static size_t glibc_usable(const void *p)
{
    size_t head = ((const size_t *)p)[-1];
    /* chunk size without its 3 flag bits, less the header: 8 bytes for a chunk in an arena
     * (its next chunk's prev_size field is ours), 16 for an mmapped one (IS_MMAPPED = 2),
     * which is rare: a branch the predictor gets right costs fewer instructions than
     * arithmetic on the flag. */
    size_t n = (head & ~(size_t)7) - 8;
    if (PREOOM_UNLIKELY(head & 2))
        n -= 8;
    return n;
}

/* The loaded object holding `fn` (its lowest mapped address: one per object) and its name
 * ("" for the program). A walk of the program headers: dladdr would also search the symbol
 * tables, some 50,000 instructions a call, paid by every process at start-up. */
struct lib_query {
    uintptr_t addr, lo;
    const char *name;
};

static int lib_query_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct lib_query *q = data;
    uintptr_t lo = UINTPTR_MAX;
    int inside = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (a < lo)
            lo = a;
        if (q->addr >= a && q->addr < a + ph->p_memsz)
            inside = 1;
    }
    if (!inside)
        return 0;
    q->lo = lo;
    q->name = info->dlpi_name;
    return 1;
}

static const void *lib_of(const void *fn, const char **name)
{
    struct lib_query q = {(uintptr_t)fn, 0, NULL};
    if (!fn || !dl_iterate_phdr(lib_query_cb, &q))
        return NULL;
    if (name)
        *name = q.name;
    return (const void *)q.lo;
}

static int detect_glibc(malloc_fn m, free_fn f, usable_fn u, calloc_fn c)
{
    const char *name = NULL;
    if (!m || !f || !u || !c || !lib_of((const void *)m, &name) || !name ||
        !strstr(name, "libc.so"))
        return 0;
    /* Below glibc's initial mmap threshold (128 KiB) only: freeing an mmapped chunk raises
     * glibc's dynamic threshold, which would change where the host's later allocations come
     * from. The mmapped case (IS_MMAPPED) is the same header, read the same way. */
    static const size_t sizes[] = {1, 24, 100, 1000, 4096, 40000, 100000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = i % 2 ? c(1, sizes[i]) : m(sizes[i]);
        if (!p)
            return 0;
        int same = glibc_usable(p) == u(p) && u(p) >= sizes[i];
        f(p);
        if (!same)
            return 0;
    }
    return 1;
}

/* ---- which allocator is in charge ------------------------------------------------------ */
/* The functions of one malloc family must come from one library: a pointer from glibc's
 * reallocarray handed to tcmalloc's free aborts the host. Allocators export different sets
 * (tcmalloc and jemalloc have no reallocarray, jemalloc no pvalloc, none but glibc has
 * malloc_trim), and RTLD_NEXT would find the missing ones in glibc. So every function of the
 * family is taken from the library whose malloc is in charge, and a missing one is built on
 * that library's posix_memalign (below) or left out (malloc_trim).
 *
 * The malloc in charge is the first in the global scope. When that is not ours (an allocator
 * preloaded before libpreoom.so, or a program that defines malloc itself) the program's
 * malloc and free never reach us: the family's hooks then forward to it and count nothing,
 * since counting only the calls that do reach us (reallocarray, pvalloc) would add bytes
 * whose free is never seen. */
static int alloc_shadowed;
static const char *shadow_name; /* the library that shadows our malloc, for one note */

/* `name` from the library at `base`: the first definition in the global scope that is not
 * ours, or NULL when that library does not define it. */
static void *family_sym(const char *name, const void *base, const void *self)
{
    void *f = dlsym(RTLD_DEFAULT, name);
    if (!f || lib_of(f, NULL) == self)
        f = dlsym(RTLD_NEXT, name);
    return f && lib_of(f, NULL) == base ? f : NULL;
}

/* Stand-ins for the aligned forms an allocator lacks, built on its posix_memalign (every
 * allocator we know exports it). With glibc below they are never used. */
static void *fb_memalign(size_t align, size_t n)
{
    posix_memalign_fn f = REAL(posix_memalign);
    if (align < sizeof(void *))
        align = sizeof(void *);
    void *p = NULL;
    int rc = f ? f(&p, align, n) : ENOMEM;
    if (rc != 0) {
        errno = rc;
        return NULL;
    }
    return p;
}

static int fb_posix_memalign(void **out, size_t align, size_t n)
{
    (void)out, (void)align, (void)n;
    return ENOMEM; /* an allocator without posix_memalign: nothing of its own to align with */
}

static void *fb_valloc(size_t n)
{
    return fb_memalign((size_t)sysconf(_SC_PAGESIZE), n);
}

static void *fb_pvalloc(size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (n > SIZE_MAX - page) {
        errno = ENOMEM;
        return NULL;
    }
    return fb_memalign(page, n ? (n + page - 1) & ~(page - 1) : page);
}

#define RESOLVE_FAMILY(f, fallback)                                                       \
    do {                                                                                  \
        void *sym_ = family_sym(#f, base, self);                                          \
        __atomic_store_n((void **)&real.f, sym_ ? sym_ : (void *)(fallback), __ATOMIC_RELEASE); \
    } while (0)

static void resolve(void)
{
    int expect = 0;
    if (!atomic_compare_exchange_strong(&resolve_state, &expect, 1))
        return; /* done, or under way in this or another thread: callers fall back */
    const void *self = lib_of((const void *)resolve, NULL);
    malloc_fn m = (malloc_fn)dlsym(RTLD_DEFAULT, "malloc");
    const char *mname = NULL;
    if (m && lib_of((const void *)m, &mname) != self && self) {
        alloc_shadowed = 1;
        shadow_name = mname && *mname ? mname : NULL;
    } else {
        m = (malloc_fn)dlsym(RTLD_NEXT, "malloc");
    }
    const void *base = lib_of((const void *)m, NULL);
    free_fn f = (free_fn)family_sym("free", base, self);
    usable_fn u = (usable_fn)family_sym("malloc_usable_size", base, self);
    calloc_fn c = (calloc_fn)family_sym("calloc", base, self);
    realloc_fn r = (realloc_fn)family_sym("realloc", base, self);
    if (!f || !c || !r) {
        /* Not a whole allocator: take the next definitions, as the loader would. */
        alloc_shadowed = 0;
        m = (malloc_fn)dlsym(RTLD_NEXT, "malloc");
        f = (free_fn)dlsym(RTLD_NEXT, "free");
        u = (usable_fn)dlsym(RTLD_NEXT, "malloc_usable_size");
        c = (calloc_fn)dlsym(RTLD_NEXT, "calloc");
        r = (realloc_fn)dlsym(RTLD_NEXT, "realloc");
        base = lib_of((const void *)m, NULL);
    }
    /* Before any pointer is published, so no wrapper ever sees it change under it. */
    below_glibc = !alloc_shadowed && detect_glibc(m, f, u, c);
    /* Order matters: once malloc is set, the other wrappers stop using the bootstrap arena,
     * so free and usable must be there first. */
    __atomic_store_n(&real.free, f, __ATOMIC_RELEASE);
    __atomic_store_n(&real.usable, u, __ATOMIC_RELEASE);
    __atomic_store_n(&real.calloc, c, __ATOMIC_RELEASE);
    __atomic_store_n(&real.realloc, r, __ATOMIC_RELEASE);
    RESOLVE_FAMILY(posix_memalign, fb_posix_memalign);
    RESOLVE_FAMILY(aligned_alloc, fb_memalign);
    RESOLVE_FAMILY(memalign, fb_memalign);
    RESOLVE_FAMILY(valloc, fb_valloc);
    RESOLVE_FAMILY(pvalloc, fb_pvalloc);
    RESOLVE_FAMILY(malloc_trim, NULL);
    RESOLVE(mmap);
    RESOLVE(mmap64);
    RESOLVE(munmap);
    RESOLVE(mremap);
    RESOLVE(brk);
    RESOLVE(sbrk);
    __atomic_store_n(&real.malloc, m, __ATOMIC_RELEASE);
    atomic_store(&resolve_state, 2);
}

const char *preoom_hooks_shadowed_by(void)
{
    return alloc_shadowed ? (shadow_name ? shadow_name : "the program") : NULL;
}

int preoom_hooks_ready(void)
{
    if (atomic_load(&resolve_state) != 2)
        resolve();
    return atomic_load(&resolve_state) == 2;
}

int preoom_real_malloc_trim(size_t pad)
{
    trim_fn f = REAL(malloc_trim);
    return f ? f(pad) : 0;
}

static void fd_resolve_all(void);
static iterate_fn iterate_real(void);
typedef int (*pipe2_fn)(int *, int);
static pipe2_fn pipe2_real(void);

void preoom_hooks_init(void)
{
    preoom_hooks_ready();
    fd_resolve_all();
    stacks_on = preoom_opt.stacks != PREOOM_STACKS_OFF;
    __atomic_store_n(&fast, below_glibc && !stacks_on && REAL(malloc) && REAL(free) &&
                                REAL(calloc),
                     __ATOMIC_RELEASE);
    if (alloc_shadowed)
        preoom_log_verbose(1, "malloc is served by %s, loaded before libpreoom.so: malloc "
                              "bytes are not counted (put libpreoom.so first in LD_PRELOAD)",
                           preoom_hooks_shadowed_by());
}

/* ---- counting helpers ------------------------------------------------------------------ */
/* `g` is below_glibc, read once by the caller: the compiler must otherwise read it again
 * after every call into the allocator. */
/* The size of a block of an allocator other than glibc's, or 0 for "count nothing". Its
 * malloc_usable_size is foreign code called from inside a hook, and it may allocate:
 * tcmalloc's tc_malloc_size builds its MallocExtension with operator new on first use, which
 * comes back to our _Znwm, which asks the size again, for ever. A hook entered while this
 * thread is inside it (or inside any other foreign call of ours) counts nothing; that
 * allocation is the allocator's own, and never freed by the program. */
static __attribute__((noinline)) size_t foreign_usable(void *p)
{
    usable_fn u = REAL(usable);
    if (alloc_shadowed || preoom_tls.in_foreign || !u)
        return 0;
    preoom_tls.in_foreign++;
    size_t n = u(p);
    preoom_tls.in_foreign--;
    return n;
}

static inline size_t usable_size(int g, void *p)
{
    return PREOOM_LIKELY(g) ? glibc_usable(p) : foreign_usable(p);
}

static inline size_t usable_of(void *p)
{
    return p ? usable_size(below_glibc, p) : 0;
}

/* Around calls into the real allocator: see below_glibc. */
#define ALLOC_ENTER(g)                                                                    \
    do {                                                                                  \
        if (PREOOM_UNLIKELY(!(g)))                                                        \
            preoom_tls.in_alloc++;                                                        \
    } while (0)
#define ALLOC_LEAVE(g)                                                                    \
    do {                                                                                  \
        if (PREOOM_UNLIKELY(!(g)))                                                        \
            preoom_tls.in_alloc--;                                                        \
    } while (0)

/* Where an exported hook was called from: its return address and the stack pointer it
 * returns to (the caller's, just after the call), the key of stacks.c's stack cache. Read
 * only on the sampling branch, and only in functions that are always inlined into the
 * exported ones: inlined, both builtins answer for the function they are inlined into (GCC's
 * documented behaviour), which is the hook the program called. Reading them there, not
 * passing them down, keeps them off the common path: passed as arguments, GCC kept them in
 * two more saved registers on every malloc. */
#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Byte sampling for the call-site tables: each allocation spends its size from the thread's
 * countdown; the one that runs it out is recorded (stacks.c draws the next countdown). */
ALWAYS_INLINE void sample(void *p, size_t n)
{
    /* Never while guard is set: our own slow paths (and libunwind inside them) allocate,
     * and those allocations are counted but must not recurse into the recorder. */
    if (PREOOM_UNLIKELY(stacks_on) && !preoom_tls.guard) {
        preoom_tls.sample_countdown -= (int64_t)n;
        if (preoom_opt.stacks == PREOOM_STACKS_ALL || preoom_tls.sample_countdown < 0)
            preoom_stacks_alloc(p, n, (uintptr_t)__builtin_return_address(0),
                                (uintptr_t)__builtin_dwarf_cfa());
    }
}

ALWAYS_INLINE void counted_alloc(int g, void *p, enum preoom_call call)
{
    preoom_tls.inner_hit = 1;
    if (!p) {
        preoom_account_call(call);
        return;
    }
    size_t n = usable_size(g, p);
    if (PREOOM_UNLIKELY(!g) && !n) {
        preoom_account_call(call); /* see foreign_usable */
        return;
    }
    preoom_account_malloc((int64_t)n, call);
    sample(p, n);
}

/* Before the real free: what is about to go. */
static inline size_t counted_free_prepare(int g, void *p)
{
    preoom_tls.inner_hit = 1;
    size_t n = usable_size(g, p);
    if (PREOOM_UNLIKELY(stacks_on) && preoom_stacks_maybe_sampled(p))
        preoom_stacks_free(p);
    return n;
}

/* ---- the fast path ---------------------------------------------------------------------- */
/* The common case in one flag, set once at start-up and never changed: glibc's malloc below
 * us, call stacks off, the real functions known. Its hooks read the size inline and count
 * after the real call with nothing to keep across it but the pointer; the rare turns (the
 * thread's first count, a new peak, NULL) are calls to functions of their own in tail
 * position, so the common path saves no register. free counts before it jumps to the real
 * free. Every other case takes the general hooks below. */
/* An owner-only counter bumped by one add to memory, where a relaxed load and store would be
 * two moves around an add: other threads only ever read it (relaxed loads), and an aligned
 * 8-byte store is never seen torn on x86-64. Not a locked instruction. */
static inline void owner_add(void *counter, int64_t v)
{
#if defined(__x86_64__)
    __asm__("addq %1, %0" : "+m"(*(int64_t *)counter) : "er"(v));
#else
    _Atomic int64_t *c = counter;
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
#endif
}

static __attribute__((noinline)) void *fast_rare(void *p, size_t n, enum preoom_call call)
{
    if (p)
        preoom_account_malloc((int64_t)n, call); /* first count of a thread, or an exited one */
    else
        preoom_account_call(call);
    return p;
}

static __attribute__((noinline)) void *fast_peak(void *p, int64_t now)
{
    preoom_account_peak_check(now);
    return p;
}

ALWAYS_INLINE void *fast_count(void *p, enum preoom_call call)
{
    preoom_tls.inner_hit = 1;
    preoom_tblock_t *b = preoom_tls.block;
    if (PREOOM_UNLIKELY(!p || !b))
        return fast_rare(p, p ? glibc_usable(p) : 0, call);
    int64_t now = atomic_load_explicit(&b->malloc_bytes, memory_order_relaxed) +
                  (int64_t)glibc_usable(p);
    atomic_store_explicit(&b->malloc_bytes, now, memory_order_relaxed);
    owner_add(&b->calls[call], 1);
    if (PREOOM_UNLIKELY(now > preoom_tls.peak_mark))
        return fast_peak(p, now);
    return p;
}

/* ---- the malloc family ----------------------------------------------------------------- */
static __attribute__((noinline)) void *malloc_general(size_t n);
static __attribute__((noinline)) void free_general(void *p);
static __attribute__((noinline)) void *calloc_general(size_t nmemb, size_t size);

PREOOM_EXPORT void *malloc(size_t n)
{
    if (PREOOM_LIKELY(fast))
        return fast_count(real.malloc(n), PREOOM_CALL_MALLOC);
    return malloc_general(n);
}

/* A bootstrap block's header word is 0 (boot_alloc writes the size in the word before it),
 * and a glibc chunk's never is: one test tells them apart on the fast path. */
PREOOM_EXPORT void free(void *p)
{
    if (PREOOM_LIKELY(fast) && PREOOM_LIKELY(p != NULL)) {
        size_t head = ((const size_t *)p)[-1];
        preoom_tblock_t *b = preoom_tls.block;
        if (PREOOM_UNLIKELY(head == 0 || b == NULL)) {
            free_general(p);
            return;
        }
        preoom_tls.inner_hit = 1;
        owner_add(&b->malloc_bytes, -(int64_t)glibc_usable(p));
        owner_add(&b->calls[PREOOM_CALL_FREE], 1);
        real.free(p); /* errno is glibc's to keep: free preserves it */
        return;
    }
    free_general(p);
}

PREOOM_EXPORT void *calloc(size_t nmemb, size_t size)
{
    if (PREOOM_LIKELY(fast))
        return fast_count(real.calloc(nmemb, size), PREOOM_CALL_CALLOC);
    return calloc_general(nmemb, size);
}

static void *malloc_general(size_t n)
{
    malloc_fn f = REAL(malloc);
    if (PREOOM_UNLIKELY(!f)) {
        resolve();
        if (!(f = REAL(malloc)))
            return boot_alloc(n, 16);
    }
    int g = below_glibc;
    ALLOC_ENTER(g);
    void *p = f(n);
    ALLOC_LEAVE(g);
    counted_alloc(g, p, PREOOM_CALL_MALLOC);
    return p;
}

static void free_general(void *p)
{
    if (!p) {
        preoom_account_call(PREOOM_CALL_FREE);
        return;
    }
    if (PREOOM_UNLIKELY(is_boot(p)))
        return;
    free_fn f = REAL(free);
    if (PREOOM_UNLIKELY(!f))
        return; /* cannot happen: nothing but boot blocks exists before resolution */
    int g = below_glibc;
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
        resolve();
        if (!(f = REAL(calloc))) {
            size_t total;
            if (__builtin_mul_overflow(nmemb, size, &total)) {
                errno = ENOMEM;
                return NULL;
            }
            return boot_alloc(total, 16);
        }
    }
    int g = below_glibc;
    ALLOC_ENTER(g);
    void *p = f(nmemb, size);
    ALLOC_LEAVE(g);
    counted_alloc(g, p, PREOOM_CALL_CALLOC);
    return p;
}

/* realloc of a bootstrap block: move it to the real heap. */
static void *boot_realloc(void *p, size_t n)
{
    if (!REAL(malloc))
        return boot_alloc(n, 16);
    void *q = malloc(n);
    if (q) {
        size_t old = boot_size(p);
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
        resolve();
        if (!REAL(realloc))
            return p ? boot_realloc(p, n) : boot_alloc(n, 16);
    }
    if (PREOOM_UNLIKELY(p && is_boot(p)))
        return boot_realloc(p, n);
    int g = below_glibc;
    ALLOC_ENTER(g);
    if (!p) {
        void *q = REAL(realloc)(NULL, n);
        ALLOC_LEAVE(g);
        counted_alloc(g, q, call);
        return q;
    }
    size_t old = counted_free_prepare(g, p);
    void *q = REAL(realloc)(p, n);
    ALLOC_LEAVE(g);
    if (q) {
        /* Moved or resized: the old block is gone either way. */
        size_t now = usable_size(g, q);
        preoom_account_malloc((int64_t)now - (int64_t)old, call);
        sample(q, now);
    } else if (n == 0) {
        /* glibc's realloc(p, 0) frees p and returns NULL. */
        preoom_account_malloc(-(int64_t)old, call);
    } else {
        /* Failure leaves p as it was: nothing was freed. Put back a sampled record. */
        preoom_account_call(call);
        if (PREOOM_UNLIKELY(stacks_on))
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
        resolve();
        if (!(f = REAL(posix_memalign))) {
            if (align < sizeof(void *) || (align & (align - 1)))
                return EINVAL;
            void *p = boot_alloc(n, align);
            if (!p)
                return ENOMEM;
            *out = p;
            return 0;
        }
    }
    int g = below_glibc;
    ALLOC_ENTER(g);
    int rc = f(out, align, n);
    ALLOC_LEAVE(g);
    counted_alloc(g, rc == 0 ? *out : NULL, PREOOM_CALL_POSIX_MEMALIGN);
    return rc;
}

ALWAYS_INLINE void *aligned_common(aligned_fn f, size_t align, size_t n, enum preoom_call call)
{
    if (PREOOM_UNLIKELY(!f))
        return boot_alloc(n, align);
    int g = below_glibc;
    ALLOC_ENTER(g);
    void *p = f(align, n);
    ALLOC_LEAVE(g);
    counted_alloc(g, p, call);
    return p;
}

PREOOM_EXPORT void *aligned_alloc(size_t align, size_t n)
{
    if (!REAL(aligned_alloc))
        resolve();
    return aligned_common(REAL(aligned_alloc), align, n, PREOOM_CALL_ALIGNED_ALLOC);
}

PREOOM_EXPORT void *memalign(size_t align, size_t n)
{
    if (!REAL(memalign))
        resolve();
    return aligned_common(REAL(memalign), align, n, PREOOM_CALL_MEMALIGN);
}

PREOOM_EXPORT void *valloc(size_t n)
{
    valloc_fn f = REAL(valloc);
    if (!f) {
        resolve();
        if (!(f = REAL(valloc)))
            return boot_alloc(n, 4096);
    }
    int g = below_glibc;
    ALLOC_ENTER(g);
    void *p = f(n);
    ALLOC_LEAVE(g);
    counted_alloc(g, p, PREOOM_CALL_VALLOC);
    return p;
}

PREOOM_EXPORT void *pvalloc(size_t n)
{
    valloc_fn f = REAL(pvalloc);
    if (!f) {
        resolve();
        if (!(f = REAL(pvalloc)))
            return boot_alloc((n + 4095) & ~(size_t)4095, 4096);
    }
    int g = below_glibc;
    ALLOC_ENTER(g);
    void *p = f(n);
    ALLOC_LEAVE(g);
    counted_alloc(g, p, PREOOM_CALL_PVALLOC);
    return p;
}

PREOOM_EXPORT size_t malloc_usable_size(void *p)
{
    preoom_account_call(PREOOM_CALL_USABLE_SIZE);
    if (!p)
        return 0;
    if (is_boot(p))
        return boot_size(p);
    usable_fn f = REAL(usable);
    if (!f) {
        resolve();
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
    if (counts_as_committed(prot, flags))
        preoom_account_mmap(preoom_maps_add((uintptr_t)r, len));
    else if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE))
        /* Something else now lives where a counted mapping may have been. */
        preoom_account_mmap(preoom_maps_remove((uintptr_t)r, len));
    errno = saved;
    return r;
}

PREOOM_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (!REAL(mmap))
        resolve();
    return mmap_common(REAL(mmap), addr, len, prot, flags, fd, off);
}

PREOOM_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
{
    if (!REAL(mmap64))
        resolve();
    return mmap_common(REAL(mmap64), addr, len, prot, flags, fd, (off_t)off);
}

PREOOM_EXPORT int munmap(void *addr, size_t len)
{
    if (!REAL(munmap))
        resolve();
    munmap_fn f = REAL(munmap);
    int rc = f ? f(addr, len) : preoom_sys_munmap(addr, len);
    preoom_account_call(PREOOM_CALL_MUNMAP);
    if (rc == 0) {
        int saved = errno;
        preoom_account_mmap(preoom_maps_remove((uintptr_t)addr, len));
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
        resolve();
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
        errno = saved;
    }
    return r;
}

/* ---- the break -------------------------------------------------------------------------- */
PREOOM_EXPORT int brk(void *addr)
{
    if (!REAL(brk))
        resolve();
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
        resolve();
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
typedef int (*close_fn)(int);
typedef int (*close_range_fn)(unsigned, unsigned, int);
typedef void (*closefrom_fn)(int);
typedef int (*dup2_fn)(int, int);
typedef int (*dup3_fn)(int, int, int);
static void *fd_real[5];
enum { FD_CLOSE, FD_CLOSE_RANGE, FD_CLOSEFROM, FD_DUP2, FD_DUP3 };
static const char *const fd_names[5] = {"close", "close_range", "closefrom", "dup2", "dup3"};

static void *fd_fn(int which)
{
    void *f = __atomic_load_n(&fd_real[which], __ATOMIC_ACQUIRE);
    if (PREOOM_UNLIKELY(!f)) {
        f = dlsym(RTLD_NEXT, fd_names[which]);
        __atomic_store_n(&fd_real[which], f, __ATOMIC_RELEASE);
    }
    return f;
}

/* At start-up, not on first use: a child of fork may call close before exec, when dlsym
 * could wait forever on a loader lock another thread of the parent held. */
static void fd_resolve_all(void)
{
    for (int i = 0; i < 5; i++)
        fd_fn(i);
    iterate_real();
    pipe2_real();
}

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
static pipe2_fn real_pipe2;

/* Looked up at start-up (fd_resolve_all), like the descriptor wrappers: a fork child's first
 * pipe2 must not need dlsym, which takes the loader's lock. */
static pipe2_fn pipe2_real(void)
{
    pipe2_fn f = __atomic_load_n(&real_pipe2, __ATOMIC_ACQUIRE);
    if (PREOOM_UNLIKELY(!f)) {
        f = (pipe2_fn)dlsym(RTLD_NEXT, "pipe2");
        __atomic_store_n(&real_pipe2, f, __ATOMIC_RELEASE);
    }
    return f;
}

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
static iterate_fn real_iterate;

static iterate_fn iterate_real(void)
{
    iterate_fn f = __atomic_load_n(&real_iterate, __ATOMIC_ACQUIRE);
    if (PREOOM_UNLIKELY(!f)) {
        f = (iterate_fn)dlsym(RTLD_NEXT, "dl_iterate_phdr");
        __atomic_store_n(&real_iterate, f, __ATOMIC_RELEASE);
    }
    return f;
}

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
enum cxx_op {
    NEW, NEW_ARR, NEW_NT, NEW_ARR_NT, NEW_AL, NEW_ARR_AL, NEW_AL_NT, NEW_ARR_AL_NT,
    DEL, DEL_ARR, DEL_SZ, DEL_ARR_SZ, DEL_AL, DEL_ARR_AL, DEL_SZ_AL, DEL_ARR_SZ_AL, DEL_NT,
    DEL_ARR_NT, DEL_AL_NT, DEL_ARR_AL_NT, CXX_OPS
};
static const char *const cxx_names[CXX_OPS] = {
    "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t", "_ZnwmSt11align_val_t",
    "_ZnamSt11align_val_t", "_ZnwmSt11align_val_tRKSt9nothrow_t",
    "_ZnamSt11align_val_tRKSt9nothrow_t", "_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm",
    "_ZdlPvSt11align_val_t", "_ZdaPvSt11align_val_t", "_ZdlPvmSt11align_val_t",
    "_ZdaPvmSt11align_val_t", "_ZdlPvRKSt9nothrow_t", "_ZdaPvRKSt9nothrow_t",
    "_ZdlPvSt11align_val_tRKSt9nothrow_t", "_ZdaPvSt11align_val_tRKSt9nothrow_t",
};
static void *cxx_real[CXX_OPS];
static void *cxx(enum cxx_op op)
{
    void *f = __atomic_load_n(&cxx_real[op], __ATOMIC_ACQUIRE);
    if (PREOOM_UNLIKELY(!f)) {
        f = dlsym(RTLD_NEXT, cxx_names[op]);
        __atomic_store_n(&cxx_real[op], f, __ATOMIC_RELEASE);
    }
    return f;
}

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

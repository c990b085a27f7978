/* preload/real.c — the real functions behind the wrappers of hooks.c: which library's
 * malloc family is in charge and its functions (dlsym), whether that is glibc's, and the
 * bootstrap pool that serves allocations made while dlsym itself runs.
 *
 * Must never: call the wrapped malloc (the bootstrap pool serves what arrives during the
 * look-up), or look anything up after start-up that a fork child might need (the loader's
 * lock may be held there by a thread that does not exist).
 */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "real.h"

struct preoom_real_fns preoom_real;
static _Atomic int resolve_state; /* 0 not started, 1 under way, 2 done */

/* ---- bootstrap arena ------------------------------------------------------------------ */
/* What dlsym and the loader allocate before the real malloc is known. 16-byte header with
 * the size, so realloc and malloc_usable_size work on these blocks too. */
char preoom_boot_buf[BOOT_BYTES] __attribute__((aligned(64)));
static _Atomic size_t boot_used;


void *preoom_boot_alloc(size_t n, size_t align)
{
    if (align < 16)
        align = 16;
    if (n > BOOT_BYTES || align > 4096)
        goto nomem;
    size_t cur = atomic_load(&boot_used), start, end;
    do {
        /* Aligned as an address, not as an offset: the pool itself is only 64-aligned
         * (a 4096-aligned valloc from it was not, tests/unit/test_real.c). */
        uintptr_t base = (uintptr_t)preoom_boot_buf;
        start = ((base + cur + 16 + align - 1) & ~(uintptr_t)(align - 1)) - base;
        end = start + ((n + 15) & ~(size_t)15);
        if (end > BOOT_BYTES)
            goto nomem;
    } while (!atomic_compare_exchange_weak(&boot_used, &cur, end));
    /* The word right before the block stays 0: free's fast path knows a boot block by it. */
    *(size_t *)(void *)(preoom_boot_buf + start - 16) = n;
    return preoom_boot_buf + start; /* static memory: already zero */
nomem:
    errno = ENOMEM;
    return NULL;
}

size_t preoom_boot_size(const void *p)
{
    return *(const size_t *)(const void *)((const char *)p - 16);
}

/* ---- resolution ----------------------------------------------------------------------- */
#define RESOLVE(f)                                                                        \
    __atomic_store_n((void **)&preoom_real.f, dlsym(RTLD_NEXT, #f), __ATOMIC_RELEASE)

/* Is the allocator below us glibc's, with its chunk header where malloc_usable_size reads
 * it? Then the hot path reads the size inline (one load instead of a call), and skips the
 * in-allocator flag, which only matters for allocators that call mmap through the dynamic
 * linker (glibc's are internal calls). Decided by behaviour, not by name alone: the inline
 * reading must agree with the real malloc_usable_size on small, large and mmapped chunks. */
int preoom_below_glibc;


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
    if (!fn || !iterate_real()(lib_query_cb, &q))
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
int preoom_alloc_shadowed;
static const char *shadow_name; /* the library that shadows our malloc, for one note */
static const void *alloc_base;  /* the library whose malloc is in charge (lib_of) */

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
        __atomic_store_n((void **)&preoom_real.f, sym_ ? sym_ : (void *)(fallback), __ATOMIC_RELEASE); \
    } while (0)

void preoom_real_resolve(void)
{
    int expect = 0;
    if (!atomic_compare_exchange_strong(&resolve_state, &expect, 1))
        return; /* done, or under way in this or another thread: callers fall back */
    const void *self = lib_of((const void *)preoom_real_resolve, NULL);
    malloc_fn m = (malloc_fn)dlsym(RTLD_DEFAULT, "malloc");
    const char *mname = NULL;
    if (m && lib_of((const void *)m, &mname) != self && self) {
        preoom_alloc_shadowed = 1;
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
        preoom_alloc_shadowed = 0;
        m = (malloc_fn)dlsym(RTLD_NEXT, "malloc");
        f = (free_fn)dlsym(RTLD_NEXT, "free");
        u = (usable_fn)dlsym(RTLD_NEXT, "malloc_usable_size");
        c = (calloc_fn)dlsym(RTLD_NEXT, "calloc");
        r = (realloc_fn)dlsym(RTLD_NEXT, "realloc");
        base = lib_of((const void *)m, NULL);
    }
    alloc_base = base;
    /* Before any pointer is published, so no wrapper ever sees it change under it. */
    preoom_below_glibc = !preoom_alloc_shadowed && detect_glibc(m, f, u, c);
    /* Order matters: once malloc is set, the other wrappers stop using the bootstrap arena,
     * so free and usable must be there first. */
    __atomic_store_n(&preoom_real.free, f, __ATOMIC_RELEASE);
    __atomic_store_n(&preoom_real.usable, u, __ATOMIC_RELEASE);
    __atomic_store_n(&preoom_real.calloc, c, __ATOMIC_RELEASE);
    __atomic_store_n(&preoom_real.realloc, r, __ATOMIC_RELEASE);
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
    __atomic_store_n(&preoom_real.malloc, m, __ATOMIC_RELEASE);
    atomic_store(&resolve_state, 2);
}

const char *preoom_hooks_shadowed_by(void)
{
    return preoom_alloc_shadowed ? (shadow_name ? shadow_name : "the program") : NULL;
}

int preoom_hooks_ready(void)
{
    if (atomic_load(&resolve_state) != 2)
        preoom_real_resolve();
    return atomic_load(&resolve_state) == 2;
}

int preoom_real_malloc_trim(size_t pad)
{
    trim_fn f = REAL(malloc_trim);
    return f ? f(pad) : 0;
}

/* ---- the allocator in charge gives its free memory back -------------------------------- */
/* malloc_trim is glibc's alone. jemalloc keeps freed pages dirty in its arenas until they
 * decay (10 s by default, and only while the program allocates), and tcmalloc keeps freed
 * spans in its page heap; each has its own call to return them. Both are looked up once, at
 * start-up (a fork child's agent must not need dlsym, whose loader lock a vanished thread may
 * hold), and only in the library whose malloc is in charge: another copy loaded beside it
 * holds none of the program's memory. Never linked: preoom runs beside either or neither. */
typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);
typedef void (*release_free_fn)(void);
static mallctl_fn je_mallctl;
static release_free_fn tc_release;

static void *in_charge(const char *name)
{
    void *f = dlsym(RTLD_DEFAULT, name);
    return f && lib_of(f, NULL) == alloc_base ? f : NULL;
}

static void resolve_purge(void)
{
    /* glibc in charge (the common case) has neither: no lookup, nothing added to start-up. */
    if (preoom_below_glibc || !alloc_base)
        return;
    je_mallctl = (mallctl_fn)in_charge("mallctl");
    tc_release = (release_free_fn)in_charge("MallocExtension_ReleaseFreeMemory");
}

/* Every arena at once: MALLCTL_ARENAS_ALL in jemalloc 5; jemalloc 4 named "all" by the
 * arena count instead (arenas.narenas) and refuses 4096, so that is the second try. */
#define JE_ARENAS_ALL 4096

static int je_purge(mallctl_fn je)
{
    char name[40];
    preoom_fmt(name, sizeof name, "arena.%u.purge", (unsigned)JE_ARENAS_ALL);
    int rc = je(name, NULL, NULL, NULL, 0);
    if (rc == 0)
        return 0;
    unsigned narenas = 0;
    size_t len = sizeof narenas;
    if (je("arenas.narenas", &narenas, &len, NULL, 0) != 0 || narenas == JE_ARENAS_ALL)
        return rc;
    preoom_fmt(name, sizeof name, "arena.%u.purge", narenas);
    return je(name, NULL, NULL, NULL, 0);
}

int preoom_real_purge(void)
{
    mallctl_fn je = __atomic_load_n(&je_mallctl, __ATOMIC_ACQUIRE);
    if (je) {
        int rc = je_purge(je);
        return rc == 0 ? PREOOM_PURGE_JEMALLOC : -rc;
    }
    release_free_fn tc = __atomic_load_n(&tc_release, __ATOMIC_ACQUIRE);
    if (tc) {
        tc();
        return PREOOM_PURGE_TCMALLOC;
    }
    return 0;
}


/* ---- functions other than the malloc family ------------------------------------------- */
static const char *const fd_names[FD_N] = {"close", "close_range", "closefrom", "dup2", "dup3"};
static const char *const cxx_names[CXX_OPS] = {
    "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t", "_ZnwmSt11align_val_t",
    "_ZnamSt11align_val_t", "_ZnwmSt11align_val_tRKSt9nothrow_t",
    "_ZnamSt11align_val_tRKSt9nothrow_t", "_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm",
    "_ZdlPvSt11align_val_t", "_ZdaPvSt11align_val_t", "_ZdlPvmSt11align_val_t",
    "_ZdaPvmSt11align_val_t", "_ZdlPvRKSt9nothrow_t", "_ZdaPvRKSt9nothrow_t",
    "_ZdlPvSt11align_val_tRKSt9nothrow_t", "_ZdaPvSt11align_val_tRKSt9nothrow_t",
};
static const char *const other_names[OTHER_N] = {"dl_iterate_phdr", "pipe2"};
void *preoom_real_fd_fns[FD_N];
void *preoom_real_cxx_fns[CXX_OPS];
void *preoom_real_other_fns[OTHER_N];

static void *lookup(void **slot, const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    __atomic_store_n(slot, f, __ATOMIC_RELEASE);
    return f;
}

void *preoom_real_lookup_fd(int which)
{
    return lookup(&preoom_real_fd_fns[which], fd_names[which]);
}

void *preoom_real_lookup_cxx(int op)
{
    return lookup(&preoom_real_cxx_fns[op], cxx_names[op]);
}

void *preoom_real_lookup_other(int which)
{
    return lookup(&preoom_real_other_fns[which], other_names[which]);
}

int preoom_real_iterate_phdr(int (*cb)(struct dl_phdr_info *, size_t, void *), void *data)
{
    return iterate_real()(cb, data);
}

void preoom_real_resolve_rest(void)
{
    for (int i = 0; i < FD_N; i++)
        fd_fn(i);
    for (int i = 0; i < CXX_OPS; i++)
        cxx((enum cxx_op)i);
    iterate_real();
    pipe2_real();
    resolve_purge();
}

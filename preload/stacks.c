/* preload/stacks.c — call sites (PREOOM_STACKS=sample|all): which stacks hold the memory.
 *
 * The hooks spend each allocation's usable bytes from a per-thread countdown drawn from an
 * exponential distribution of mean PREOOM_SAMPLE_BYTES; the allocation that runs it out is
 * recorded here (in `all` mode every allocation is). Recording means: unwind (unwind.c),
 * find the site (a lock-free index in front of the uthash table; the site lock only for a
 * stack not seen before), add the allocation's weight with atomics, and remember the pointer
 * in its shard of the pointer map (one lock per shard) so its free takes the weight back.
 * A site counts usable bytes (what the allocator handed out) and requested bytes (what the
 * program asked for), its temporary allocations (freed before any other allocation on their
 * thread), and its share of the heap's peak (see peak_note). The program's own anonymous
 * mappings are recorded too, every one (preoom_stacks_mmap).
 *
 * Why the weights are unbiased. The countdown makes the sampled points a Poisson process on
 * the byte axis with rate 1/S (S = PREOOM_SAMPLE_BYTES; the exponential is memoryless, so
 * redrawing after each sample keeps it Poisson). An allocation of n bytes covers n points of
 * that axis and is recorded when at least one sample point falls in it: probability
 * p(n) = 1 - exp(-n/S). Weighting each recorded allocation by n / p(n) bytes and 1 / p(n)
 * allocations makes both sums unbiased (Horvitz-Thompson). For n << S the weight is about
 * S + n/2, for n >> S about n: tcmalloc's max(n, S) is the same curve's two asymptotes, this
 * is the exact middle. The relative error of a site's estimate is about sqrt(S / bytes):
 * 18% at 16 MiB with the default 512 KiB, so tighter estimates want a smaller S.
 *
 * Must never: unwind while holding any of our locks (DESIGN.md trap 4), hold two of them at
 * once (fork's handlers alone take them all, in one order: site, shards, peak), allocate
 * through the wrapped malloc (everything comes from arena.c), or take a lock on the common
 * free, which the free hook answers "not sampled" inline from a counting filter read without
 * any lock. Allocations made while preoom_tls.guard is set (our own slow path, libunwind) are
 * counted by the hooks but never sampled.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define HASH_NONFATAL_OOM 1
#define uthash_malloc(sz) preoom_arena_alloc(sz)
#define uthash_free(ptr, sz) preoom_arena_free((ptr), (sz))
#define uthash_nonfatal_oom(obj) (oom_hit = 1)
static int oom_hit;
#include <uthash.h>

/* ---- pure parts: random numbers, logarithms, weights ---------------------------------- */
uint64_t preoom_xorshift64(uint64_t *state)
{
    /* xorshift64*: fast, no tables; quality is plenty for choosing sample points. */
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

typedef union { double d; uint64_t u; } dbits_t;

/* The slow, table-free forms: they fill the tables below once. ln m for m in [1, 2) by the
 * atanh series (s = (m-1)/(m+1) <= 1/3 converges to 1e-16 in twenty terms); exp(-r) for r in
 * [0, ln 2) by its Taylor series. */
static double ln_series(double m)
{
    int e = 0;
    if (m > 1.4142135623730951) { /* keep s small: m in [0.707, 1.414) */
        m *= 0.5;
        e = 1;
    }
    double s = (m - 1) / (m + 1), s2 = s * s, term = s, sum = 0;
    for (int k = 1; k < 40; k += 2) {
        sum += term / k;
        term *= s2;
    }
    return 2 * sum + e * 0.6931471805599453;
}

static double exp_neg_series(double r)
{
    double term = 1, e = 0;
    for (int i = 1; i < 30; i++) {
        e += term;
        term *= -r / i;
    }
    return e;
}

/* Tables (filled once, pthread_once: no allocation): ln c and 1/c for c = 1 + i/128, and
 * 2^(-j/64). They turn ln and exp into a lookup and a short polynomial (the sampling hot
 * path draws one of each per sample; the series took ~500 instructions). */
#define LN_TBITS 7
#define EXP_TBITS 6
static double ln_c[1 << LN_TBITS], inv_c[1 << LN_TBITS], exp2_neg[1 << EXP_TBITS];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;
static int tables_ready; /* set once they are filled: one load per use instead of a call */

static void tables_fill(void)
{
    for (int i = 0; i < 1 << LN_TBITS; i++) {
        double c = 1 + (double)i / (1 << LN_TBITS);
        ln_c[i] = ln_series(c);
        inv_c[i] = 1 / c;
    }
    for (int j = 0; j < 1 << EXP_TBITS; j++)
        exp2_neg[j] = exp_neg_series(j * (0.6931471805599453 / (1 << EXP_TBITS)));
    __atomic_store_n(&tables_ready, 1, __ATOMIC_RELEASE);
}

static inline void tables_need(void)
{
    if (PREOOM_UNLIKELY(!__atomic_load_n(&tables_ready, __ATOMIC_ACQUIRE)))
        pthread_once(&tables_once, tables_fill);
}

/* ln(x) for x > 0 without libm: x = 2^e * c * (1 + r) with c = 1 + i/128 from the top bits
 * of the mantissa, so |r| < 1/128 and log1p(r) needs seven terms for 1e-17. */
double preoom_ln(double x)
{
    if (!(x > 0))
        return -1e308;
    tables_need();
    dbits_t v = {.d = x};
    int e = (int)((v.u >> 52) & 0x7ff) - 1023;
    if (e == -1023) { /* subnormal: scale up first */
        v.d = x * 4503599627370496.0; /* 2^52 */
        e = (int)((v.u >> 52) & 0x7ff) - 1023 - 52;
    }
    unsigned i = (unsigned)((v.u >> (52 - LN_TBITS)) & ((1u << LN_TBITS) - 1));
    v.u = (v.u & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
    double c = 1 + (double)i / (1 << LN_TBITS);
    double r = (v.d - c) * inv_c[i]; /* m - c is exact: same binade */
    double p = r * (1 - r * (1.0 / 2 - r * (1.0 / 3 - r * (1.0 / 4 - r * (1.0 / 5 -
               r * (1.0 / 6 - r * (1.0 / 7)))))));
    return e * 0.6931471805599453 + (ln_c[i] + p);
}

/* 1 - exp(-x) for x >= 0, accurate for small x too. Below 1/64 a series (no cancellation);
 * above, exp(-x) = 2^-k * 2^(-j/64) * exp(-g) with g in [0, ln2/64), where seven terms
 * reach 1e-20 (Cody-Waite split of ln2/64 so that g is exact enough up to x = 700). */
double preoom_one_minus_exp_neg(double x)
{
    if (!(x > 0))
        return 0;
    if (x < 1.0 / 64)
        return x * (1 - x / 2 * (1 - x / 3 * (1 - x / 4 * (1 - x / 5 * (1 - x / 6 *
               (1 - x / 7 * (1 - x / 8 * (1 - x / 9))))))));
    if (x > 700)
        return 1;
    tables_need();
    const double step_hi = 0x1.62e42fee00000p-7, step_lo = 0x1.a39ef35793c76p-39; /* ln2/64 */
    unsigned n = (unsigned)(x * (64 / 0.6931471805599453));
    double g = (x - n * step_hi) - n * step_lo;
    if (g < 0) { /* n rounded one too high */
        n--;
        g = (x - n * step_hi) - n * step_lo;
    }
    double eg = 1 - g * (1 - g / 2 * (1 - g / 3 * (1 - g / 4 * (1 - g / 5 * (1 - g / 6 *
                (1 - g / 7))))));
    dbits_t scale = {.u = (uint64_t)(1023 - (n >> EXP_TBITS)) << 52};
    return 1 - scale.d * exp2_neg[n & ((1u << EXP_TBITS) - 1)] * eg;
}

int64_t preoom_sample_draw(uint64_t *state, uint64_t mean_bytes)
{
    /* u in (0, 1]: 53 random bits, plus one so that ln(u) is finite. */
    double u = (double)((preoom_xorshift64(state) >> 11) + 1) * (1.0 / 9007199254740992.0);
    double d = -preoom_ln(u) * (double)mean_bytes;
    if (d > 9e18)
        return INT64_MAX;
    return (int64_t)d + 1;
}

void preoom_sample_weight(uint64_t bytes, uint64_t mean_bytes, uint64_t *w_bytes,
                          uint64_t *w_count)
{
    if (bytes == 0)
        bytes = 1;
    double p = preoom_one_minus_exp_neg((double)bytes / (double)mean_bytes);
    if (p <= 0)
        p = 1e-300;
    double inv = 1 / p; /* one division, not two */
    *w_bytes = (uint64_t)((double)bytes * inv + 0.5);
    /* In 1/PREOOM_COUNT_ONE units: rounding 1/p to whole allocations would bias the counts
     * of mid-sized blocks (1/p = 1.87 is not 2). */
    *w_count = (uint64_t)((double)PREOOM_COUNT_ONE * inv + 0.5);
}

/* ---- pure parts: the pointer filter ---------------------------------------------------- */
/* A counting filter over pointer hashes: a count per bucket of the sampled pointers that
 * hash there, changed under the lock of the shard it belongs to, read by the free hook
 * without any lock. Zero means "certainly not sampled", so the common free costs a hash and
 * one load. A count that reaches the top sticks there (never decremented again): a few wasted
 * lookups, never a missed free. The counters are atomic only so that the lock-free reader
 * reads whole values. */
preoom_pfilter_t *preoom_pfilter_new(unsigned bits)
{
    preoom_pfilter_t *f = preoom_arena_alloc(sizeof *f + ((size_t)1 << bits)); /* zeroed */
    if (f)
        f->bits = bits;
    return f;
}

void preoom_pfilter_add(preoom_pfilter_t *f, uintptr_t p)
{
    uint8_t *c = &f->counts[preoom_pfilter_index(f->bits, p)];
    uint8_t v = __atomic_load_n(c, __ATOMIC_RELAXED);
    if (v != UINT8_MAX)
        __atomic_store_n(c, (uint8_t)(v + 1), __ATOMIC_RELAXED);
}

void preoom_pfilter_del(preoom_pfilter_t *f, uintptr_t p)
{
    uint8_t *c = &f->counts[preoom_pfilter_index(f->bits, p)];
    uint8_t v = __atomic_load_n(c, __ATOMIC_RELAXED);
    if (v != UINT8_MAX && v != 0)
        __atomic_store_n(c, (uint8_t)(v - 1), __ATOMIC_RELAXED);
}


/* ---- pure parts: the pointer map -------------------------------------------------------- */
/* Open addressing with linear probing and backward-shift deletion (no tombstones, so a
 * long run of frees leaves no debris). Kept at most half full. Key 0 is "empty". */
static inline size_t pm_home(const preoom_pmap_t *m, uintptr_t p)
{
    return (size_t)(((uint64_t)p * 0x9E3779B97F4A7C15ULL) >> 17) & (m->cap - 1);
}

static int pm_grow(preoom_pmap_t *m)
{
    size_t cap = m->cap ? m->cap * 2 : 1024;
    preoom_pmap_entry_t *n = preoom_arena_alloc(cap * sizeof *n);
    if (!n)
        return -ENOMEM;
    preoom_pmap_entry_t *old = m->slots;
    size_t old_cap = m->cap;
    m->slots = n;
    m->cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (!old[i].ptr)
            continue;
        size_t j = pm_home(m, old[i].ptr);
        while (n[j].ptr)
            j = (j + 1) & (cap - 1);
        n[j] = old[i];
    }
    preoom_arena_free(old, old_cap * sizeof *old);
    return 0;
}

int preoom_pmap_put(preoom_pmap_t *m, const preoom_pmap_entry_t *e)
{
    if (!e->ptr)
        return -EINVAL;
    if ((m->used + 1) * 2 > m->cap && pm_grow(m) != 0)
        return -ENOMEM;
    size_t j = pm_home(m, e->ptr);
    while (m->slots[j].ptr && m->slots[j].ptr != e->ptr)
        j = (j + 1) & (m->cap - 1);
    if (!m->slots[j].ptr)
        m->used++;
    m->slots[j] = *e;
    return 0;
}

int preoom_pmap_take(preoom_pmap_t *m, uintptr_t p, preoom_pmap_entry_t *out)
{
    if (!m->cap || !p)
        return 0;
    size_t mask = m->cap - 1, j = pm_home(m, p);
    while (m->slots[j].ptr != p) {
        if (!m->slots[j].ptr)
            return 0;
        j = (j + 1) & mask;
    }
    if (out)
        *out = m->slots[j];
    /* Backward shift: pull later members of the cluster into the hole when their home
     * position allows it. */
    size_t hole = j;
    for (size_t k = (j + 1) & mask; m->slots[k].ptr; k = (k + 1) & mask) {
        size_t home = pm_home(m, m->slots[k].ptr);
        /* k may move to hole iff home is not in the cyclic interval (hole, k]. */
        int in_between = hole <= k ? (home > hole && home <= k) : (home > hole || home <= k);
        if (!in_between) {
            m->slots[hole] = m->slots[k];
            hole = k;
        }
    }
    memset(&m->slots[hole], 0, sizeof m->slots[hole]);
    m->used--;
    return 1;
}

/* ---- the site table ----------------------------------------------------------------------- */
/* Sites are found without a lock: a direct-mapped index from the stack's hash to a site
 * (a hint: a slot holds the last site stored there, and a reader checks the frames). The
 * uthash table stays the one record of every site, changed and walked under site_lock, which
 * is only taken for a stack the index does not know. Sites are never freed, so a pointer read
 * from the index stays valid. Their counters are atomics: a known site is updated with no lock
 * at all. */
typedef struct site {
    /* First cache line: the counters, which every recording thread writes. */
    /* What the threads have flushed (see pend_t): estimates in sample mode, exact in all
     * mode; counts in 1/PREOOM_COUNT_ONE allocations. live may dip below zero while one
     * thread's frees are flushed before another thread's allocations. */
    int64_t live_bytes, live_count;
    uint64_t total_bytes, total_count;
    int64_t peak_bytes;                  /* highest live_bytes seen at a flush */
    uint64_t samples;                    /* allocations recorded (not weighted) */
    uint32_t flushing, flushes;          /* flushes under way, and done (see site_read) */
    /* The same in requested bytes (what the program asked for; usable bytes above). */
    int64_t live_req, peak_req;
    uint64_t total_req;
    int64_t temp_count;                  /* temporary allocations (see preoom_stacks_free) */
    /* The heap's peak bookkeeping (see peak_note). */
    int64_t at_peak_req;
    uint64_t seen_epoch;
    /* From the next line on: what lookups read, written once (hh only under site_lock when a
     * site is added), so a lookup never misses on a line another thread keeps writing. */
    uint64_t hash __attribute__((aligned(PREOOM_CACHE_LINE))); /* stack_hash() of the frames */
    uint32_t id;
    uint16_t nframes;
    uint8_t truncated;
    uint8_t is_mmap;                     /* recorded by preoom_stacks_mmap (set once) */
    UT_hash_handle hh;
    uintptr_t frames[];                  /* innermost first: [0] called malloc */
} site_t;

/* The pointer map is split in shards, each with its own lock and filter, chosen by the 64 MiB
 * region the pointer lies in: glibc gives each thread arena its own 64 MiB-aligned heaps, so
 * a thread that allocates and frees its own blocks keeps using the same shard, whose lock,
 * slots and filter stay in its core's cache; threads on different arenas rarely meet, and one
 * thread's records never dirty the filter lines another thread's frees read. */
#define SHARD_BITS PREOOM_SHARD_BITS
#define SHARDS (1 << SHARD_BITS)
typedef struct shard {
    int lock;                            /* a spin lock: see shard_lock */
    preoom_pmap_t map;
} __attribute__((aligned(PREOOM_CACHE_LINE))) shard_t;

static pthread_mutex_t site_lock = PTHREAD_MUTEX_INITIALIZER;
static site_t *sites;                    /* uthash head */
static uint32_t site_count;
static site_t **site_index;              /* 1 << INDEX_BITS hints, atomic loads and stores */
static shard_t shards[SHARDS];
preoom_pfilter_t *preoom_stacks_pfilters[SHARDS]; /* read inline by the free hook */
static uint64_t dropped;                 /* samples we could not keep (out of memory, ...) */
static int mode;                         /* PREOOM_STACKS_* once init has run, else off */
static uint64_t mean_bytes = 512 * 1024;
static int depth = 32;

/* A shard's filter starts at 512 bytes, small enough to stay in the L1 cache that every free
 * reads it from, and grows eightfold whenever it holds more than one pointer per eight buckets
 * (at most a one-in-eight false "maybe"), up to 64 KiB. In sample mode a process holds about
 * one sampled pointer per PREOOM_SAMPLE_BYTES of live heap: 512 bytes serve 32 MiB of one
 * arena's heap. */
#define PFILTER_BITS_MIN 9
#define PFILTER_BITS_MAX 16
#define PFILTER_GROW_BITS 3
#define INDEX_BITS 14

/* Per thread: the random state; whether this thread holds site_lock or a shard lock (a signal
 * handler that frees while its thread is inside our section must not wait on itself); the
 * record the last free took away, so a failed realloc can put it back exactly. */
static __thread uint64_t rng __attribute__((tls_model("initial-exec")));
static __thread int holding __attribute__((tls_model("initial-exec")));
static __thread preoom_pmap_entry_t last_taken __attribute__((tls_model("initial-exec")));
/* The last allocation this thread recorded, and the thread's sampling countdown just after
 * it: freed while both still hold, no allocation came in between (a temporary, heaptrack's
 * definition). Every allocation the hooks see spends its usable bytes (never 0) from the
 * countdown, in both modes, so an unchanged countdown means none did: one load, where adding
 * up the thread's call counters took twenty instructions on every record and free. */
static __thread uintptr_t last_rec __attribute__((tls_model("initial-exec")));
static __thread int64_t last_rec_countdown __attribute__((tls_model("initial-exec")));

/* `holding` is raised before a mutex is taken and lowered after it is released, so a signal
 * handler never finds this thread owning one with the flag down. We never hold two. */
static void lock(pthread_mutex_t *l)
{
    holding = 1;
    pthread_mutex_lock(l);
}

static void unlock(pthread_mutex_t *l)
{
    pthread_mutex_unlock(l);
    holding = 0;
}

/* A shard's lock guards a handful of stores into its map, and rarely meets another thread
 * (see above): a spin lock, one exchange to take and a plain store to give back, where a
 * mutex cost some ninety instructions and two locked ones per sample. A holder that is
 * preempted is waited for with sched_yield after a short spin. `holding` as for lock(). */
static void shard_lock(shard_t *sh)
{
    holding = 1;
    for (unsigned n = 0; __atomic_exchange_n(&sh->lock, 1, __ATOMIC_ACQUIRE); ) {
        while (__atomic_load_n(&sh->lock, __ATOMIC_RELAXED)) {
            if (++n < 100) {
#if defined(__x86_64__) || defined(__i386__)
                __asm__ volatile("pause");
#endif
            } else {
                sched_yield();
            }
        }
    }
}

static void shard_unlock(shard_t *sh)
{
    __atomic_store_n(&sh->lock, 0, __ATOMIC_RELEASE);
    holding = 0;
}

static inline shard_t *shard_of(uintptr_t p)
{
    return &shards[preoom_stacks_shard(p)];
}

static void sc_init(void);
static uint64_t now_ns(void);
static uint64_t start_ns;
static inline __attribute__((always_inline)) char *sc_table(uintptr_t cfa);

static void seed(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t s = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
                 ((uint64_t)getpid() << 16) ^ ((uint64_t)syscall(SYS_gettid) << 40) ^
                 (uint64_t)(uintptr_t)&rng;
    rng = s ? s : 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < 4; i++)
        preoom_xorshift64(&rng);
}

int64_t preoom_stacks_next_countdown(void)
{
    if (!rng)
        seed();
    return preoom_sample_draw(&rng, mean_bytes);
}

static void thread_started(preoom_tblock_t *b)
{
    (void)b;
    preoom_tls.sample_countdown = preoom_stacks_next_countdown();
}

void preoom_stacks_init(void)
{
    if (preoom_opt.stacks == PREOOM_STACKS_OFF)
        return;
    preoom_tls.guard++;
    mean_bytes = preoom_opt.sample_bytes ? preoom_opt.sample_bytes : 512 * 1024;
    depth = (int)preoom_opt.stack_depth;
    if (depth < 1)
        depth = 1;
    if (depth > PREOOM_STACK_MAX_FRAMES)
        depth = PREOOM_STACK_MAX_FRAMES;
    site_index = preoom_arena_alloc(sizeof(site_t *) << INDEX_BITS);
    if (!site_index) {
        preoom_log_error("PREOOM_STACKS: out of memory for the call-site tables; using off");
        preoom_opt.stacks = PREOOM_STACKS_OFF;
        preoom_tls.guard--;
        return;
    }
    sc_init();
    start_ns = now_ns();
    /* The main thread's stack bounds now: glibc reads /proc/self/maps for them, and after
     * start-up a sandbox may forbid the open. */
    (void)sc_table(0);
    preoom_unwind_init();
    preoom_tls.sample_countdown = preoom_stacks_next_countdown();
    /* Every later thread draws its first countdown when it takes its block (thread.c). */
    preoom_thread_on_start(thread_started);
    __atomic_store_n(&mode, preoom_opt.stacks, __ATOMIC_RELEASE);
    preoom_tls.guard--;
}

uint64_t preoom_stack_hash(const uintptr_t *frames, int n)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (uint64_t)n;
    for (int i = 0; i < n; i++) {
        h = (h ^ (uint64_t)frames[i]) * 0xFF51AFD7ED558CCDULL;
        h ^= h >> 32;
    }
    return h ? h : 1;
}

static inline int same_stack(const site_t *s, uint64_t h, const uintptr_t *frames, int n)
{
    return s->hash == h && s->nframes == n &&
           memcmp(s->frames, frames, (size_t)n * sizeof *frames) == 0;
}

static inline site_t **index_slot(uint64_t h)
{
    return &site_index[h >> (64 - INDEX_BITS)];
}

/* Under site_lock. */
static site_t *find_site(const uintptr_t *frames, int n)
{
    site_t *s = NULL;
    HASH_FIND(hh, sites, frames, (unsigned)n * sizeof *frames, s);
    return s;
}

/* Sites are aligned to a cache line (the arena gives 16 bytes) and never freed once added. */
static site_t *add_site(const uintptr_t *frames, int n, int truncated, uint64_t h)
{
    size_t raw_bytes = sizeof(site_t) + (size_t)n * sizeof *frames + PREOOM_CACHE_LINE - 1;
    char *raw = preoom_arena_alloc(raw_bytes);
    if (!raw)
        return NULL;
    site_t *s = (site_t *)(void *)(((uintptr_t)raw + PREOOM_CACHE_LINE - 1) &
                                   ~(uintptr_t)(PREOOM_CACHE_LINE - 1));
    memcpy(s->frames, frames, (size_t)n * sizeof *frames);
    s->hash = h;
    s->nframes = (uint16_t)n;
    s->truncated = (uint8_t)truncated;
    s->id = site_count + 1;
    oom_hit = 0;
    HASH_ADD_KEYPTR(hh, sites, s->frames, (unsigned)n * sizeof *frames, s);
    if (oom_hit) {
        preoom_arena_free(raw, raw_bytes);
        return NULL;
    }
    site_count++;
    return s;
}

/* The site of a stack: the index without a lock; else the table under site_lock, adding the
 * site if it is new (its modules recorded first, outside our lock: a library may be dlclosed
 * before the report). The index slot is then pointed at it, its frames and hash complete. */
static site_t *site_of(const uintptr_t *frames, int n, int truncated)
{
    uint64_t h = preoom_stack_hash(frames, n);
    site_t **slot = index_slot(h);
    site_t *s = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (PREOOM_LIKELY(s && same_stack(s, h, frames, n)))
        return s;
    lock(&site_lock);
    s = find_site(frames, n);
    unlock(&site_lock);
    if (!s) {
        if (!preoom_modules_cover(frames, n))
            preoom_modules_refresh();
        lock(&site_lock);
        s = find_site(frames, n);
        if (!s)
            s = add_site(frames, n, truncated, h);
        unlock(&site_lock);
    }
    if (s)
        __atomic_store_n(slot, s, __ATOMIC_RELEASE);
    return s;
}

/* ---- per-thread pending counts ------------------------------------------------------------ */
/* A site's counters are written by every thread that records at it: with atomics on one cache
 * line, two threads at a hot site (a server's request buffer) spent more time passing the line
 * between cores than unwinding. So each thread adds its changes to a small table of its own,
 * one entry per site (direct-mapped by site id), with plain stores, and flushes an entry into
 * the site's atomics after PEND_FLUSH_OPS changes, when its live bytes move PEND_FLUSH_BYTES,
 * or when another site needs the entry. The table hangs off the thread's account block
 * (account.c), so it outlives the thread and the next thread to adopt the block carries on.
 *
 * Readers (the report) add every block's entry for a site to the site's atomics. An entry's
 * seq is odd while its owner changes it, so each entry is read whole; a site's flushing and
 * flushes counters tell the reader a flush moved counts between an entry and the site during
 * its reads, and it reads again: a report never counts a flush twice or not at all. (A first
 * version summed every entry's seq before and after the whole pass instead; with four
 * threads recording at one site the pass almost never found them all still, and gave up
 * inconsistent. tests/unit/test_stacks.c catches that.)
 *
 * The peak: an entry keeps the highest value its live bytes took since the last flush
 * (`rise`), and the flush raises the site's peak to the site's live before the flush plus
 * that rise. For a site recorded by one thread that is the exact peak;
 * with several, a peak can be short by what the other threads had not flushed yet (at most
 * PEND_FLUSH_BYTES, or PEND_FLUSH_OPS allocations, per thread). */
#define PEND_SLOTS 64
#define PEND_FLUSH_OPS 32
#define PEND_FLUSH_BYTES ((int64_t)8 << 20)
typedef struct pend {
    uint64_t seq;
    site_t *site;                        /* NULL: unused */
    int64_t live_bytes, live_count, total_bytes, total_count;
    int64_t rise;                        /* highest live_bytes since the flush, >= 0 */
    int64_t live_req, total_req, rise_req; /* the same in requested bytes */
    uint32_t samples, ops;
} pend_t;

/* As the registry's seqlock (registry.c): release stores and acquire loads rather than
 * fences, so that a value from an unfinished change carries the odd seq with it (and
 * ThreadSanitizer, which does not model fences, can check it). Plain moves on x86. */
#define LD(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define ST(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)

/* Set while this thread changes its table: a signal handler that frees a sampled pointer in
 * the middle goes to the site's atomics instead. */
static __thread int pend_busy __attribute__((tls_model("initial-exec")));

static void raise_peak(int64_t *at, int64_t v)
{
    int64_t peak = __atomic_load_n(at, __ATOMIC_RELAXED);
    while (v > peak && !__atomic_compare_exchange_n(at, &peak, v, 1, __ATOMIC_RELEASE,
                                                    __ATOMIC_RELAXED))
        ;
}

/* One change of a site's counters: usable bytes (b), requested bytes (r), counts (c). */
typedef struct chg {
    int64_t live_b, live_r, live_c, tot_b, tot_r, tot_c;
} chg_t;

/* Straight into the site's atomics: a flush, or a thread without a table (see below). */
static void site_apply(site_t *s, const chg_t *c, uint32_t samples, int64_t rise,
                       int64_t rise_req)
{
    int64_t before = __atomic_fetch_add(&s->live_bytes, c->live_b, __ATOMIC_RELEASE);
    int64_t before_req = __atomic_fetch_add(&s->live_req, c->live_r, __ATOMIC_RELEASE);
    if (c->live_c)
        __atomic_add_fetch(&s->live_count, c->live_c, __ATOMIC_RELEASE);
    if (c->tot_b)
        __atomic_add_fetch(&s->total_bytes, (uint64_t)c->tot_b, __ATOMIC_RELEASE);
    if (c->tot_r)
        __atomic_add_fetch(&s->total_req, (uint64_t)c->tot_r, __ATOMIC_RELEASE);
    if (c->tot_c)
        __atomic_add_fetch(&s->total_count, (uint64_t)c->tot_c, __ATOMIC_RELEASE);
    if (samples)
        __atomic_add_fetch(&s->samples, samples, __ATOMIC_RELEASE);
    if (rise > 0)
        raise_peak(&s->peak_bytes, before + rise);
    if (rise_req > 0)
        raise_peak(&s->peak_req, before_req + rise_req);
}

/* site_apply with the site's flushing and flushes counters around it, which tell a reader
 * that the counters it read may hold part of the change (site_read). */
static void site_apply_seen(site_t *s, const chg_t *c, uint32_t samples, int64_t rise,
                            int64_t rise_req)
{
    __atomic_add_fetch(&s->flushing, 1, __ATOMIC_ACQ_REL);
    site_apply(s, c, samples, rise, rise_req);
    __atomic_add_fetch(&s->flushes, 1, __ATOMIC_RELEASE);
    __atomic_sub_fetch(&s->flushing, 1, __ATOMIC_RELEASE);
}

/* Owner only, inside its seq window. */
static void pend_flush(pend_t *e)
{
    chg_t c = {e->live_bytes, e->live_req, e->live_count, e->total_bytes, e->total_req,
               e->total_count};
    site_apply_seen(e->site, &c, e->samples, e->rise, e->rise_req);
    ST(e->live_bytes, 0);
    ST(e->live_req, 0);
    ST(e->total_req, 0);
    ST(e->rise_req, 0);
    ST(e->live_count, 0);
    ST(e->total_bytes, 0);
    ST(e->total_count, 0);
    ST(e->rise, 0);
    ST(e->samples, 0);
    ST(e->ops, 0);
}

/* This thread's table, made on its first record; NULL when it has no block (exited, or in
 * our own slow path) or no memory. */
static pend_t *pend_table(void)
{
    preoom_tblock_t *b = preoom_tls.block;
    if (!b)
        return NULL;
    pend_t *t = __atomic_load_n(&b->stacks_pend, __ATOMIC_RELAXED);
    if (PREOOM_UNLIKELY(!t)) {
        /* One spare entry past the slots: the heap's changes not yet added (peak_note). */
        t = preoom_arena_alloc((PEND_SLOTS + 1) * sizeof *t); /* zeroed */
        if (t)
            __atomic_store_n(&b->stacks_pend, t, __ATOMIC_RELEASE);
    }
    return t;
}

/* ---- the heap's peak, as heaptrack defines it ------------------------------------------ */
/* The peak table wants each site's live bytes at the moment the process's own heap (the
 * requested bytes of every site together) was highest: those add up to the peak, unlike the
 * sites' own maxima, which come at different times. Kept lazily, so a new peak costs nothing
 * per site: a new peak starts a new epoch; a site whose last change came in an older epoch has
 * not changed since, so its live bytes at the latest peak are its current ones (site_read),
 * which it saves (at_peak_req) before its next change. Only that, once per site and epoch, and
 * a new peak take peak_lock.
 *
 * The heap's bytes: while one thread records, every change goes to heap_req at once and the
 * peak is exact. Once several do, each thread gathers its changes in its table's spare entry
 * and adds them to heap_req when they pass a batch either way: one shared counter changed on
 * every allocation of every thread halved the speed of two threads in `all` mode. The batch
 * is 1/128 of the peak so far, from 4 KiB to 16 MiB, so the peak is found to within 0.8% of
 * it per thread (a fixed 64 KiB missed 29% of a small program's 130 KB peak; 1/1024 still
 * cost two threads of the churn 10% more CPU, 1/128 costs them 3%), and a change in flight
 * while another thread starts an epoch may land on either side of it. The spare entry stays with the thread's block, which the next thread takes over, so
 * nothing is lost when a thread exits. A signal handler that arrives while its thread holds
 * the lock skips the bookkeeping and is counted (peak_skipped). In sample mode changes are
 * weighted: the peak and its shares are estimates. */
#define PEAK_BATCH_MIN ((int64_t)4 << 10)
#define PEAK_BATCH_MAX ((int64_t)16 << 20)
#define PEAK_BATCH_SHIFT 7
static __thread int peak_holding __attribute__((tls_model("initial-exec")));
static __thread int peak_joined __attribute__((tls_model("initial-exec")));
/* Read on every change, written only at a new peak (or a thread's first change): a line of
 * their own, apart from the counter and the lock that change all the time. */
static struct {
    uint64_t epoch;
    int64_t peak_req;
    uint64_t peak_ns;
    uint32_t writers;                    /* threads that have changed a site */
} heap_peak __attribute__((aligned(PREOOM_CACHE_LINE)));
static int64_t heap_req __attribute__((aligned(PREOOM_CACHE_LINE)));
static int peak_lock __attribute__((aligned(PREOOM_CACHE_LINE)));
static uint64_t peak_skipped;

/* A site as a report shows it: the flushed counters plus every thread's pending entry. */
typedef struct site_view {
    uint64_t live_bytes, live_count, total_bytes, total_count, peak_bytes, samples;
    uint64_t live_req, total_req, peak_req;
} site_view_t;
static void site_read(site_t *s, site_view_t *v);

static uint64_t now_ns(void)
{
    struct timespec ts;
    /* Coarse: a new peak is met at every allocation while the heap grows; a tick is plenty. */
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int peak_enter(void)
{
    if (peak_holding) {
        __atomic_add_fetch(&peak_skipped, 1, __ATOMIC_RELAXED);
        return 0;
    }
    peak_holding = 1;
    while (__atomic_exchange_n(&peak_lock, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(&peak_lock, __ATOMIC_RELAXED))
            __builtin_ia32_pause();
    return 1;
}

static void peak_leave(void)
{
    __atomic_store_n(&peak_lock, 0, __ATOMIC_RELEASE);
    peak_holding = 0;
}

/* Before site s changes by d requested bytes; t is this thread's table, or NULL. */
static void peak_note(site_t *s, int64_t d, pend_t *t)
{
    if (!d)
        return;
    if (PREOOM_UNLIKELY(!peak_joined)) {
        peak_joined = 1;
        __atomic_add_fetch(&heap_peak.writers, 1, __ATOMIC_RELAXED);
    }
    uint64_t epoch = __atomic_load_n(&heap_peak.epoch, __ATOMIC_ACQUIRE);
    if (PREOOM_UNLIKELY(__atomic_load_n(&s->seen_epoch, __ATOMIC_RELAXED) != epoch)) {
        if (!peak_enter())
            return;
        epoch = __atomic_load_n(&heap_peak.epoch, __ATOMIC_RELAXED);
        if (s->seen_epoch != epoch) {
            site_view_t v;
            site_read(s, &v);
            __atomic_store_n(&s->at_peak_req, (int64_t)v.live_req, __ATOMIC_RELAXED);
            __atomic_store_n(&s->seen_epoch, epoch, __ATOMIC_RELEASE);
        }
        peak_leave();
    }
    int64_t batch = 0;
    if (__atomic_load_n(&heap_peak.writers, __ATOMIC_RELAXED) > 1) {
        batch = __atomic_load_n(&heap_peak.peak_req, __ATOMIC_RELAXED) >> PEAK_BATCH_SHIFT;
        batch = batch < PEAK_BATCH_MIN ? PEAK_BATCH_MIN
                : batch > PEAK_BATCH_MAX ? PEAK_BATCH_MAX : batch;
        if (t) {
            int64_t *spare = &t[PEND_SLOTS].live_req;
            d += *spare;
            if (d < batch && d > -batch) {
                *spare = d;
                return;
            }
            *spare = 0;
        }
    }
    /* With several threads a new peak must also pass the old by a batch: every new epoch
     * makes each site read itself again, and a heap that grows by small steps would start
     * one at nearly every batch. */
    int64_t h = __atomic_add_fetch(&heap_req, d, __ATOMIC_ACQ_REL);
    if (d > 0 && h > __atomic_load_n(&heap_peak.peak_req, __ATOMIC_RELAXED) + batch && peak_enter()) {
        /* Read again under the lock: the heap may have moved on since. */
        h = __atomic_load_n(&heap_req, __ATOMIC_ACQUIRE);
        if (h > heap_peak.peak_req + batch) {
            __atomic_store_n(&heap_peak.peak_req, h, __ATOMIC_RELAXED);
            __atomic_store_n(&heap_peak.peak_ns, now_ns(), __ATOMIC_RELAXED);
            __atomic_store_n(&heap_peak.epoch, heap_peak.epoch + 1, __ATOMIC_RELEASE);
        }
        peak_leave();
    }
}

/* Site s's live requested bytes at the heap's peak (a report's read: see peak_note). */
static int64_t peak_share(site_t *s, const site_view_t *now)
{
    uint64_t epoch = __atomic_load_n(&heap_peak.epoch, __ATOMIC_RELAXED);
    return __atomic_load_n(&s->seen_epoch, __ATOMIC_RELAXED) != epoch
               ? (int64_t)now->live_req
               : __atomic_load_n(&s->at_peak_req, __ATOMIC_RELAXED);
}

/* A change of site s's counters by this thread. A record's weight is added before its
 * pointer can be freed (the pointer is not yet the program's) and taken off exactly once. */
static void site_change(site_t *s, const chg_t *c, uint32_t samples)
{
    pend_t *t = pend_busy ? NULL : pend_table();
    /* The heap's peak is the heap's, as heaptrack's: mappings are not in it. */
    if (!__atomic_load_n(&s->is_mmap, __ATOMIC_RELAXED))
        peak_note(s, c->live_r, t);
    if (!t) {
        site_apply_seen(s, c, samples, c->live_b, c->live_r);
        return;
    }
    pend_busy = 1;
    pend_t *e = &t[s->id & (PEND_SLOTS - 1)];
    uint64_t seq = e->seq;
    __atomic_store_n(&e->seq, seq + 1, __ATOMIC_RELAXED);
    if (e->site != s) {
        if (e->site)
            pend_flush(e);
        ST(e->site, s);
    }
    int64_t live = e->live_bytes + c->live_b, live_r = e->live_req + c->live_r;
    ST(e->live_bytes, live);
    if (live > e->rise)
        ST(e->rise, live);
    ST(e->live_req, live_r);
    if (live_r > e->rise_req)
        ST(e->rise_req, live_r);
    ST(e->live_count, e->live_count + c->live_c);
    if (samples) { /* a record; a free moves only the live counts */
        ST(e->total_bytes, e->total_bytes + c->tot_b);
        ST(e->total_req, e->total_req + c->tot_r);
        ST(e->total_count, e->total_count + c->tot_c);
        ST(e->samples, e->samples + samples);
    }
    ST(e->ops, e->ops + 1);
    if (e->ops >= PEND_FLUSH_OPS || live > PEND_FLUSH_BYTES || live < -PEND_FLUSH_BYTES)
        pend_flush(e);
    __atomic_store_n(&e->seq, seq + 2, __ATOMIC_RELEASE);
    pend_busy = 0;
}

static void site_sub(site_t *s, const preoom_pmap_entry_t *e)
{
    chg_t c = {-(int64_t)e->bytes, -(int64_t)e->req, -(int64_t)e->count, 0, 0, 0};
    site_change(s, &c, 0);
}


static int64_t pos(int64_t v) { return v > 0 ? v : 0; }

/* One thread's entry, whole: its owner's change is a few stores, so a retry or two will do;
 * an owner the scheduler stopped inside its window gets the processor after a yield (on a
 * loaded machine 64 bare retries gave up on one in a few hundred reports, with a torn entry);
 * after many (an owner stopped inside its window by fork) take what is there. */
static void pend_read(const pend_t *e, pend_t *out)
{
    for (int tries = 0; tries < 256; tries++) {
        if (tries >= 64)
            sched_yield();
        uint64_t q = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
        if (q & 1)
            continue;
        out->site = LD(e->site);
        out->live_bytes = LD(e->live_bytes);
        out->live_count = LD(e->live_count);
        out->total_bytes = LD(e->total_bytes);
        out->total_count = LD(e->total_count);
        out->samples = LD(e->samples);
        out->rise = LD(e->rise);
        out->live_req = LD(e->live_req);
        out->total_req = LD(e->total_req);
        out->rise_req = LD(e->rise_req);
        if (__atomic_load_n(&e->seq, __ATOMIC_RELAXED) == q)
            return;
    }
}

/* A site as of one moment for each thread: the flushed counters, read when no flush to the
 * site is under way and none happens meanwhile (else again), plus each thread's entry, each
 * read whole. A thread's change moves only its own entry, so the sum is what the counters
 * would show had every thread stopped at the moment its entry was read. */
static void site_read(site_t *s, site_view_t *v)
{
    unsigned slot = s->id & (PEND_SLOTS - 1);
    for (int tries = 0;; tries++) {
        uint32_t gen = __atomic_load_n(&s->flushes, __ATOMIC_ACQUIRE);
        int busy = __atomic_load_n(&s->flushing, __ATOMIC_ACQUIRE) != 0;
        int64_t lb = LD(s->live_bytes), lc = LD(s->live_count);
        int64_t tb = (int64_t)LD(s->total_bytes), tc = (int64_t)LD(s->total_count);
        int64_t peak = LD(s->peak_bytes), rise = 0, flushed_live = lb;
        int64_t lr = LD(s->live_req), tr = (int64_t)LD(s->total_req), peak_r = LD(s->peak_req);
        int64_t rise_r = 0, flushed_req = lr;
        uint64_t n = LD(s->samples);
        for (preoom_tblock_t *b = preoom_thread_blocks(); b; b = b->next) {
            const pend_t *t = __atomic_load_n(&b->stacks_pend, __ATOMIC_ACQUIRE);
            pend_t e = {0};
            if (!t)
                continue;
            pend_read(&t[slot], &e);
            if (e.site != s)
                continue;
            lb += e.live_bytes;
            lc += e.live_count;
            tb += e.total_bytes;
            tc += e.total_count;
            n += e.samples;
            if (e.rise > rise)
                rise = e.rise;
            lr += e.live_req;
            tr += e.total_req;
            if (e.rise_req > rise_r)
                rise_r = e.rise_req;
        }
        busy |= __atomic_load_n(&s->flushing, __ATOMIC_ACQUIRE) != 0;
        /* After many tries (a site flushed without pause) take what we have. */
        if ((!busy && __atomic_load_n(&s->flushes, __ATOMIC_RELAXED) == gen) || tries >= 100) {
            if (flushed_live + rise > peak)
                peak = flushed_live + rise;
            if (lb > peak)
                peak = lb;
            if (flushed_req + rise_r > peak_r)
                peak_r = flushed_req + rise_r;
            if (lr > peak_r)
                peak_r = lr;
            *v = (site_view_t){(uint64_t)pos(lb), (uint64_t)pos(lc), (uint64_t)pos(tb),
                               (uint64_t)pos(tc), (uint64_t)pos(peak), n,
                               (uint64_t)pos(lr), (uint64_t)pos(tr), (uint64_t)pos(peak_r)};
            return;
        }
        sched_yield();
    }
}

/* A shard's filter, under its lock (the only place it is replaced). */
static inline preoom_pfilter_t *filter_of(shard_t *sh)
{
    return __atomic_load_n(&preoom_stacks_pfilters[sh - shards], __ATOMIC_RELAXED);
}

/* Under sh's lock, after a pointer went into its map: a shard whose filter is missing or
 * holds more than one pointer per eight buckets gets a new filter, built from its map. The
 * old one is never freed: a free hook may still be reading it, and it stays right for every
 * pointer it was asked about (a pointer added later is freed after its malloc returned, so its
 * free loads the new filter). What is left behind is under a seventh of the final size. */
static void filter_fit(shard_t *sh)
{
    preoom_pfilter_t *old = filter_of(sh);
    if (old && (old->bits >= PFILTER_BITS_MAX || sh->map.used <= ((size_t)1 << old->bits) / 8))
        return;
    unsigned bits = old ? old->bits + PFILTER_GROW_BITS : PFILTER_BITS_MIN;
    if (bits > PFILTER_BITS_MAX)
        bits = PFILTER_BITS_MAX;
    preoom_pfilter_t *f = preoom_pfilter_new(bits);
    if (!f)
        return; /* the old filter still answers for every pointer, only less sharply */
    for (size_t j = 0; j < sh->map.cap; j++)
        if (sh->map.slots[j].ptr)
            preoom_pfilter_add(f, sh->map.slots[j].ptr);
    __atomic_store_n(&preoom_stacks_pfilters[sh - shards], f, __ATOMIC_RELEASE);
}

/* Under p's shard lock: take off whatever record p still has (a free we never saw) into
 * *old; the caller takes it off its site once the lock is released. */
static int take_stale(shard_t *sh, uintptr_t p, preoom_pmap_entry_t *old)
{
    preoom_pfilter_t *f = filter_of(sh);
    if (f && preoom_pfilter_maybe(f, p) && preoom_pmap_take(&sh->map, p, old)) {
        preoom_pfilter_del(f, p);
        return 1;
    }
    return 0;
}

/* Remember p's record in its shard; 0 or -errno. */
static int put_record(const preoom_pmap_entry_t *e)
{
    shard_t *sh = shard_of(e->ptr);
    preoom_pmap_entry_t old;
    shard_lock(sh);
    int stale = take_stale(sh, e->ptr, &old);
    int rc = e->site ? preoom_pmap_put(&sh->map, e) : -ENOMEM;
    if (rc == 0) {
        filter_fit(sh);
        preoom_pfilter_t *f = filter_of(sh);
        if (f) {
            preoom_pfilter_add(f, e->ptr);
        } else {
            /* No filter, no free would look for it: do not keep it. */
            preoom_pmap_take(&sh->map, e->ptr, NULL);
            rc = -ENOMEM;
        }
    }
    shard_unlock(sh);
    if (stale)
        site_sub(old.site, &old);
    return rc;
}

/* ---- the stack cache -------------------------------------------------------------------- */
/* Unwinding costs about as much as the rest of a record together: unw_backtrace's cached
 * trace still sets up a cursor and steps every frame. But most records come from a few
 * stacks, met again and again. So each thread keeps a small cache from where the hook was
 * called (its return address and the caller's stack pointer, which the hook hands us) to the
 * site. A hit is proven, not guessed: the entry also knows where on the stack each outer
 * frame keeps its return address, and the hit reads those slots and compares them with the
 * site's frames. Same caller at the same stack pointer, same return addresses in the same
 * slots: the unwinder, which would read exactly those slots by the same rules, would give
 * the same frames.
 *
 * Where the slots are is only learnt from libunwind's slow cursor walk (unw_step), about
 * thirty cached traces' worth. So a thread walks only for a key that has missed before, and
 * pays from credit: a walk costs SC_BUILD_COST, a hit earns one credit and a miss an eighth,
 * so a program whose stacks never repeat walks about once per 256 misses (sc_learn).
 *
 * Safety: the slots read lie between the caller's stack pointer and the top of this thread's
 * own stack, which is mapped for as long as the thread lives. A stack pointer outside the
 * thread's stack (a signal alternate stack, a coroutine's stack) is never cached. */
/* 32 entries: with the head, under 4 KiB a thread at the default depth of 32 (the arena
 * rounds up to a power of two: 16-bit word offsets keep it there). */
#define SC_SET_BITS 3
#define SC_WAYS 4
#define SC_BUILD_COST 32
#define SC_CREDIT_START (4 * SC_BUILD_COST)
#define SC_CREDIT_MAX (64 * SC_BUILD_COST)

typedef struct sc_entry {
    uintptr_t ra, cfa;                   /* the key; ra 0: empty */
    site_t *site;                        /* site->frames[0] == ra */
    uint16_t off[];                      /* j >= 1: frame j's return address is at
                                          * cfa + 8 * off[j] (slots are word-aligned) */
} sc_entry_t;

/* The table: these counts (written by its owner only), then the entries. */
#define SC_SEEN 32
typedef struct sc_head {
    uint64_t hits, builds, mismatches;
    uint32_t seen[SC_SEEN];              /* tags of keys that missed lately */
} sc_head_t;

static size_t sc_entry_bytes;            /* with room for `depth` offsets, set by init */
static int sc_mode;                      /* PREOOM_STACK_CACHE, set by init */
/* Per thread: its stack's bounds, once asked; state 0 not asked yet, 1 known, -1 no cache;
 * the credit; the next way to replace. */
static __thread uintptr_t sc_lo __attribute__((tls_model("initial-exec")));
static __thread uintptr_t sc_hi __attribute__((tls_model("initial-exec")));
static __thread int sc_state __attribute__((tls_model("initial-exec")));
static __thread int sc_credit __attribute__((tls_model("initial-exec")));
static __thread unsigned sc_victim __attribute__((tls_model("initial-exec")));
static __thread unsigned sc_misses __attribute__((tls_model("initial-exec")));

static void sc_init(void)
{
    sc_mode = preoom_opt.stack_cache;
    sc_entry_bytes = (offsetof(sc_entry_t, off) + (size_t)depth * sizeof(uint16_t) + 7) &
                     ~(size_t)7;
}

static inline sc_entry_t *sc_at(char *t, unsigned i)
{
    return (sc_entry_t *)(void *)(t + sizeof(sc_head_t) + (size_t)i * sc_entry_bytes);
}

/* Owner only: a plain add, stored atomically for the report's reader. */
static inline void sc_count(uint64_t *c)
{
    __atomic_store_n(c, *c + 1, __ATOMIC_RELAXED);
}

static inline uint64_t sc_hash(uintptr_t ra, uintptr_t cfa)
{
    return ((uint64_t)ra ^ ((uint64_t)cfa * 0x9E3779B97F4A7C15ULL)) * 0xFF51AFD7ED558CCDULL;
}

static inline unsigned sc_set(uintptr_t ra, uintptr_t cfa)
{
    return (unsigned)(sc_hash(ra, cfa) >> (64 - SC_SET_BITS));
}

/* This thread's cache, or NULL when the cache is off or cfa is not on this thread's own
 * stack (the one check of it: sc_find and sc_learn rely on it). The table hangs off the
 * account block, like the pending counts, so a thread that exits hands it on; the next
 * owner's bounds differ or the slots say no, so what it inherits is either still true or
 * never used. The bounds come from pthread_getattr_np once per thread (for the main thread
 * glibc reads /proc/self/maps, through the hooks, which let it pass: guard is set). */
static inline __attribute__((always_inline)) char *sc_table(uintptr_t cfa)
{
    if (sc_mode == PREOOM_CACHE_OFF)
        return NULL;
    if (PREOOM_UNLIKELY(sc_state <= 0)) {
        if (sc_state < 0)
            return NULL;
        sc_state = -1;
        pthread_attr_t a;
        if (pthread_getattr_np(pthread_self(), &a) == 0) {
            void *addr;
            size_t size;
            if (pthread_attr_getstack(&a, &addr, &size) == 0 && size > 0) {
                sc_lo = (uintptr_t)addr;
                sc_hi = (uintptr_t)addr + size;
                sc_credit = SC_CREDIT_START;
                sc_state = 1;
            }
            pthread_attr_destroy(&a);
        }
        if (sc_state < 0)
            return NULL;
    }
    if (cfa < sc_lo || cfa >= sc_hi)
        return NULL; /* never cached: a coroutine's or an alternate signal stack */
    preoom_tblock_t *b = preoom_tls.block;
    if (!b)
        return NULL;
    char *t = b->stacks_sc;
    if (PREOOM_UNLIKELY(!t)) {
        t = preoom_arena_alloc(sizeof(sc_head_t) +
                               ((size_t)SC_WAYS << SC_SET_BITS) * sc_entry_bytes); /* zeroed */
        __atomic_store_n(&b->stacks_sc, t, __ATOMIC_RELEASE);
    }
    return t;
}

/* The site of the stack the hook was called from, if the cache holds it and its slots agree.
 * An entry learnt by a thread that owned this table before may reach past this thread's
 * stack: its slots are read only if the highest lies below the top. */
static site_t *sc_find(char *t, uintptr_t ra, uintptr_t cfa)
{
    unsigned set = sc_set(ra, cfa);
    for (unsigned w = 0; w < SC_WAYS; w++) {
        sc_entry_t *e = sc_at(t, set * SC_WAYS + w);
        if (e->ra != ra || e->cfa != cfa)
            continue;
        const site_t *s = e->site;
        if (s->nframes > 1 &&
            ((uintptr_t)e->off[s->nframes - 1] + 1) * sizeof(uintptr_t) > sc_hi - cfa)
            continue;
        int j = 1;
        while (j < s->nframes && *(const uintptr_t *)(cfa + (uintptr_t)e->off[j] *
                                                              sizeof(uintptr_t)) == s->frames[j])
            j++;
        if (j == s->nframes)
            return e->site;
        /* Same caller, same stack pointer, other callers above it: another way may hold
         * that stack (two callers with frames of one size). */
    }
    return NULL;
}

/* Learn where site s's return addresses are kept on this stack (the slow walk) and cache
 * them under (ra, cfa). Every frame of the walk must be the site's frame and be found in its
 * slot, or nothing is cached. */
static void sc_build(char *t, uintptr_t ra, uintptr_t cfa, site_t *s)
{
    if (s->nframes < 1 || s->frames[0] != ra)
        return;
    uintptr_t ips[PREOOM_STACK_MAX_FRAMES + 16], sps[PREOOM_STACK_MAX_FRAMES + 16];
    int m = preoom_unwind_sp(ips, sps, (int)(sizeof ips / sizeof ips[0]));
    int k0 = 0;
    while (k0 < m && !(ips[k0] == ra && sps[k0] == cfa))
        k0++;
    int n = s->nframes;
    if (k0 + n > m)
        return;
    uint16_t off[PREOOM_STACK_MAX_FRAMES];
    uintptr_t prev = cfa - sizeof(uintptr_t); /* frame 0's own slot, in the hook's frame */
    for (int j = 1; j < n; j++) {
        /* A frame interrupted by a signal has no slot: its address was saved by the kernel,
         * and the word below its stack pointer is whatever an earlier call left there (a
         * first version cached such stacks; verify mode caught 11 wrong hits in 28,000). */
        if (sps[k0 + j] == 0)
            return;
        uintptr_t slot = sps[k0 + j] - sizeof(uintptr_t);
        /* Word-aligned and within 512 KiB of the caller's frame, or not cached. */
        if (ips[k0 + j] != s->frames[j] || slot <= prev || (slot - cfa) % sizeof(uintptr_t) ||
            (slot - cfa) / sizeof(uintptr_t) > UINT16_MAX ||
            slot + sizeof(uintptr_t) > sc_hi || *(const uintptr_t *)slot != s->frames[j])
            return;
        off[j] = (uint16_t)((slot - cfa) / sizeof(uintptr_t));
        prev = slot;
    }
    unsigned set = sc_set(ra, cfa), way = SC_WAYS;
    for (unsigned w = 0; w < SC_WAYS && way == SC_WAYS; w++)
        if (sc_at(t, set * SC_WAYS + w)->ra == 0)
            way = w;
    if (way == SC_WAYS)
        way = sc_victim++ % SC_WAYS;
    sc_entry_t *e = sc_at(t, set * SC_WAYS + way);
    sc_count(&((sc_head_t *)(void *)t)->builds);
    e->ra = 0; /* (only this thread reads it: no ordering needed) */
    e->cfa = cfa;
    e->site = s;
    for (int j = 1; j < n; j++)
        e->off[j] = off[j];
    e->ra = ra;
}

/* After a miss: walk only for a key that missed before (a stack met once, as most start-up
 * stacks are, is not worth thirty traces) and while the credit lasts. Misses earn a little
 * credit too, so a thread whose first walks went to stacks that never came back still
 * learns its hot ones later; in the worst case, keys that come back exactly once and never
 * hit, walking costs an eighth of a trace per miss. */
static void sc_learn(char *t, uintptr_t ra, uintptr_t cfa, site_t *s)
{
    sc_head_t *h = (sc_head_t *)(void *)t;
    uint64_t k = sc_hash(ra, cfa);
    /* Two places a key may be remembered in, so that two keys that miss by turns and hash
     * alike do not keep wiping each other out. */
    uint32_t tag = (uint32_t)(k >> 32) | 1, *seen = &h->seen[k & (SC_SEEN - 1)];
    if (++sc_misses % 8 == 0 && sc_credit < SC_CREDIT_MAX)
        sc_credit++;
    if (*seen != tag) {
        uint32_t *other = &h->seen[(k & (SC_SEEN - 1)) ^ 1];
        if (*other != tag) {
            *(sc_misses & 1 ? other : seen) = tag;
            return;
        }
        seen = other;
    }
    if (sc_credit < SC_BUILD_COST)
        return;
    sc_credit -= SC_BUILD_COST;
    *seen = 0;
    sc_build(t, ra, cfa, s);
}

static void record(void *p, size_t bytes, size_t req, uintptr_t ra, uintptr_t cfa, int is_mmap)
{
    int m = __atomic_load_n(&mode, __ATOMIC_ACQUIRE);
    if (!p || m == PREOOM_STACKS_OFF || preoom_tls.guard || holding)
        return;
    preoom_tls.guard++;
    uint64_t wb = bytes, wc = PREOOM_COUNT_ONE, wr = req;
    if (m == PREOOM_STACKS_SAMPLE && !is_mmap) {
        preoom_tls.sample_countdown = preoom_stacks_next_countdown();
        preoom_sample_weight(bytes, mean_bytes, &wb, &wc);
        /* The same 1/p (the draw is on usable bytes, which the allocator spends). */
        wr = bytes ? (uint64_t)((double)req * (double)wb / (double)bytes + 0.5) : wb;
    }
    /* The site: from the stack cache, else by unwinding (with no lock of ours held). A
     * mapping has no cache key (no return address from the hook), and its first record on a
     * thread must not set the cache up: that reads the thread's stack bounds through glibc,
     * which allocates, and an allocator may be mapping with its own lock held. */
    char *t = is_mmap ? NULL : sc_table(cfa);
    site_t *s = t ? sc_find(t, ra, cfa) : NULL;
    if (s) {
        sc_count(&((sc_head_t *)(void *)t)->hits);
        if (sc_credit < SC_CREDIT_MAX)
            sc_credit++;
    }
    if (!s || sc_mode == PREOOM_CACHE_VERIFY) {
        uintptr_t frames[PREOOM_STACK_MAX_FRAMES];
        int truncated = 0;
        int n = preoom_unwind(frames, depth, &truncated);
        site_t *u = site_of(frames, n, truncated);
        if (s && u != s)
            sc_count(&((sc_head_t *)(void *)t)->mismatches); /* the unwinder's word stands */
        if (!s && t && u)
            sc_learn(t, ra, cfa, u);
        s = u;
    }
    if (is_mmap && s && !s->is_mmap)
        __atomic_store_n(&s->is_mmap, 1, __ATOMIC_RELAXED);
    preoom_pmap_entry_t e = {.ptr = (uintptr_t)p, .site = s, .bytes = wb, .count = wc,
                             .req = wr};
    chg_t c = {(int64_t)wb, (int64_t)wr, (int64_t)wc, (int64_t)wb, (int64_t)wr, (int64_t)wc};
    if (put_record(&e) == 0) {
        site_change(s, &c, 1);
        if (!is_mmap) { /* temporaries are heap blocks, as heaptrack counts them */
            last_rec = (uintptr_t)p;
            last_rec_countdown = preoom_tls.sample_countdown;
        }
    } else
        __atomic_add_fetch(&dropped, 1, __ATOMIC_RELAXED);
    preoom_tls.guard--;
}

void preoom_stacks_alloc(void *p, size_t bytes, size_t req, uintptr_t ra, uintptr_t cfa)
{
    record(p, bytes, req, ra, cfa, 0);
}

void preoom_stacks_mmap(void *p, size_t bytes)
{
    record(p, bytes, bytes, 0, 0, 1); /* no cache key: a mapping's stack is always unwound */
}

void preoom_stacks_free(void *p)
{
    /* The free hook asked preoom_stacks_maybe_sampled() already. */
    uintptr_t key = (uintptr_t)p;
    if (!key)
        return;
    if (holding) {
        /* A signal handler freeing while this thread is inside our section: we cannot wait
         * for ourselves. The record stays (counted as dropped); take_stale cleans it up if
         * the address comes back. */
        __atomic_add_fetch(&dropped, 1, __ATOMIC_RELAXED);
        return;
    }
    preoom_tls.guard++;
    shard_t *sh = shard_of(key);
    preoom_pmap_entry_t e;
    shard_lock(sh);
    int found = preoom_pmap_take(&sh->map, key, &e);
    if (found)
        preoom_pfilter_del(filter_of(sh), key);
    shard_unlock(sh);
    if (found) {
        if (key == last_rec && preoom_tls.sample_countdown == last_rec_countdown)
            __atomic_add_fetch(&((site_t *)e.site)->temp_count, (int64_t)e.count,
                               __ATOMIC_RELAXED);
        last_rec = 0;
        site_sub(e.site, &e);
        last_taken = e;
    }
    preoom_tls.guard--;
}

void preoom_stacks_restore(void *p)
{
    uintptr_t key = (uintptr_t)p;
    if (!key || last_taken.ptr != key || holding)
        return;
    preoom_tls.guard++;
    preoom_pmap_entry_t e = last_taken;
    last_taken.ptr = 0;
    chg_t c = {(int64_t)e.bytes, (int64_t)e.req, (int64_t)e.count, 0, 0, 0};
    if (put_record(&e) == 0)
        site_change(e.site, &c, 0);
    else
        __atomic_add_fetch(&dropped, 1, __ATOMIC_RELAXED);
    preoom_tls.guard--;
}

/* ---- fork ----------------------------------------------------------------------------------- */
/* Our locks are never held while waiting for the loader or anything fork takes, so they can
 * be held across fork: the child then gets consistent tables (its heap is a copy of the
 * parent's, so the live records stay true for it). Taken before the arena's lock, as on the
 * recording path; the site lock first, then the shards in order (nothing else holds two). */
void preoom_stacks_atfork_prepare(void)
{
    if (mode == PREOOM_STACKS_OFF)
        return;
    pthread_mutex_lock(&site_lock);
    for (int i = 0; i < SHARDS; i++)
        while (__atomic_exchange_n(&shards[i].lock, 1, __ATOMIC_ACQUIRE))
            sched_yield();
    while (__atomic_exchange_n(&peak_lock, 1, __ATOMIC_ACQUIRE))
        sched_yield();
}

void preoom_stacks_atfork_parent(void)
{
    if (mode == PREOOM_STACKS_OFF)
        return;
    __atomic_store_n(&peak_lock, 0, __ATOMIC_RELEASE);
    for (int i = SHARDS - 1; i >= 0; i--)
        __atomic_store_n(&shards[i].lock, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&site_lock);
}

void preoom_stacks_atfork_child(void)
{
    pthread_mutex_init(&site_lock, NULL);
    for (int i = 0; i < SHARDS; i++)
        shards[i].lock = 0;
    peak_lock = 0;
    peak_holding = 0;
    last_rec = 0;
    holding = 0;
    pend_busy = 0;
    rng = 0;
    /* A thread that fork left behind may have stopped inside its table's window: close the
     * window (its half-made change stays), or readers would wait for it forever. */
    for (preoom_tblock_t *b = preoom_thread_blocks(); b; b = b->next) {
        pend_t *t = b->stacks_pend;
        for (int i = 0; t && i < PEND_SLOTS; i++)
            if (t[i].seq & 1)
                t[i].seq++;
    }
    preoom_unwind_atfork_child();
}

/* ---- the report ------------------------------------------------------------------------- */
typedef struct outbuf {
    int fd, rc;
    size_t n;
    char buf[8192];
} outbuf_t;

static void ob_flush(outbuf_t *o)
{
    if (o->rc == 0 && o->n)
        o->rc = preoom_write_all(o->fd, o->buf, o->n);
    o->n = 0;
}

static void ob_put(outbuf_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ob_put(outbuf_t *o, const char *fmt, ...)
{
    if (o->n > sizeof o->buf - 512)
        ob_flush(o);
    va_list ap;
    va_start(ap, fmt);
    o->n += preoom_vfmt(o->buf + o->n, sizeof o->buf - o->n, fmt, ap);
    va_end(ap);
}

static int write_sites(int fd)
{
    outbuf_t *o = preoom_arena_alloc(sizeof *o);
    if (!o)
        return -ENOMEM;
    o->fd = fd;
    static const char *const names[] = {"off", "sample", "all"};
    int m = mode;
    ob_put(o, ", \"stacks\": {\"version\": 2, \"mode\": \"%s\", \"sample_bytes\": %llu, "
              "\"depth\": %d, ",
           names[m], (unsigned long long)(m == PREOOM_STACKS_ALL ? 0 : mean_bytes), depth);
    uint64_t sc[3] = {0, 0, 0};
    for (preoom_tblock_t *b = preoom_thread_blocks(); b; b = b->next) {
        const sc_head_t *h = (const void *)__atomic_load_n(&b->stacks_sc, __ATOMIC_ACQUIRE);
        if (h) {
            sc[0] += __atomic_load_n(&h->hits, __ATOMIC_RELAXED);
            sc[1] += __atomic_load_n(&h->builds, __ATOMIC_RELAXED);
            sc[2] += __atomic_load_n(&h->mismatches, __ATOMIC_RELAXED);
        }
    }
    static const char *const cache_names[] = {"off", "on", "verify"};
    ob_put(o, "\"stack_cache\": {\"mode\": \"%s\", \"hits\": %llu, \"walks\": %llu, "
              "\"mismatches\": %llu}, ",
           cache_names[sc_mode], (unsigned long long)sc[0], (unsigned long long)sc[1],
           (unsigned long long)sc[2]);
    lock(&site_lock);
    uint64_t pk_ns = __atomic_load_n(&heap_peak.peak_ns, __ATOMIC_RELAXED);
    ob_put(o, "\"heap_peak_requested\": %lld, \"heap_peak_ms\": %llu, \"peak_skipped\": %llu, ",
           (long long)__atomic_load_n(&heap_peak.peak_req, __ATOMIC_RELAXED),
           (unsigned long long)(pk_ns > start_ns ? (pk_ns - start_ns) / 1000000 : 0),
           (unsigned long long)__atomic_load_n(&peak_skipped, __ATOMIC_RELAXED));
    ob_put(o, "\"dropped\": %llu, \"sites\": [",
           (unsigned long long)__atomic_load_n(&dropped, __ATOMIC_RELAXED));
    int first = 1;
    for (site_t *s = sites; s; s = s->hh.next) {
        site_view_t v;
        site_read(s, &v);
        ob_put(o, "%s\n  {\"id\": %u, \"live_bytes\": %llu, \"live_count\": %llu, "
                  "\"total_bytes\": %llu, \"total_count\": %llu, \"peak_bytes\": %llu, "
                  "\"samples\": %llu, \"live_requested\": %llu, \"total_requested\": %llu, "
               "\"peak_requested\": %llu, \"at_peak_requested\": %lld, \"temporary\": %llu, "
               "\"mmap\": %s, \"truncated\": %s, \"frames\": [",
               first ? "" : ",", s->id, (unsigned long long)v.live_bytes,
               (unsigned long long)((v.live_count + PREOOM_COUNT_ONE / 2) / PREOOM_COUNT_ONE),
               (unsigned long long)v.total_bytes,
               (unsigned long long)((v.total_count + PREOOM_COUNT_ONE / 2) / PREOOM_COUNT_ONE),
               (unsigned long long)v.peak_bytes, (unsigned long long)v.samples,
               (unsigned long long)v.live_req, (unsigned long long)v.total_req,
               (unsigned long long)v.peak_req, (long long)pos(peak_share(s, &v)),
               (unsigned long long)((pos(__atomic_load_n(&s->temp_count, __ATOMIC_RELAXED)) +
                                     PREOOM_COUNT_ONE / 2) / PREOOM_COUNT_ONE),
               s->is_mmap ? "true" : "false", s->truncated ? "true" : "false");
        for (int i = 0; i < s->nframes; i++)
            ob_put(o, "%s\"0x%lx\"", i ? ", " : "", (unsigned long)s->frames[i]);
        ob_put(o, "]}");
        first = 0;
    }
    unlock(&site_lock);
    ob_put(o, "],\n");
    ob_flush(o);
    int rc = o->rc;
    preoom_arena_free(o, sizeof *o);
    /* Modules last: refreshing them takes the loader lock, never under ours. */
    if (rc == 0)
        rc = preoom_modules_write_json(fd);
    if (rc == 0)
        rc = preoom_write_all(fd, "}", 1);
    return rc;
}

int preoom_stacks_write_report(int fd)
{
    if (mode == PREOOM_STACKS_OFF)
        return 0;
    preoom_tls.guard++;
    int rc = write_sites(fd);
    preoom_tls.guard--;
    return rc;
}

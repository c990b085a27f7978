/* preload/stacks.c — call sites (PREOOM_STACKS=sample|all): which stacks hold the memory.
 *
 * The hooks spend each allocation's usable bytes from a per-thread countdown drawn from an
 * exponential distribution of mean PREOOM_SAMPLE_BYTES; the allocation that runs it out is
 * recorded here (in `all` mode every allocation is). Recording means: unwind (unwind.c),
 * then take the site lock, find or add the site (uthash over the arena, keyed by the frames),
 * add the allocation's weight, and remember the pointer so its free takes the weight back.
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
 * Must never: unwind while holding the site lock (DESIGN.md trap 4), allocate through the
 * wrapped malloc (everything comes from arena.c), or take a lock on the common free, which
 * is answered "not sampled" by a counting filter read without any lock. Allocations made
 * while preoom_tls.guard is set (our own slow path, libunwind) are counted by the hooks but
 * never sampled.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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

/* ln(x) for x > 0 without libm: x = m * 2^e with m in [1, 2), ln m by the atanh series
 * (s = (m-1)/(m+1) <= 1/3 converges to 1e-15 in a dozen terms). */
double preoom_ln(double x)
{
    if (!(x > 0))
        return -1e308;
    union { double d; uint64_t u; } v = {.d = x};
    int e = (int)((v.u >> 52) & 0x7ff) - 1023;
    if (e == -1023) { /* subnormal: scale up first */
        v.d = x * 4503599627370496.0; /* 2^52 */
        e = (int)((v.u >> 52) & 0x7ff) - 1023 - 52;
    }
    v.u = (v.u & 0x800fffffffffffffULL) | 0x3ff0000000000000ULL;
    double m = v.d;
    if (m > 1.4142135623730951) { /* keep s small: m in [0.707, 1.414) */
        m *= 0.5;
        e++;
    }
    double s = (m - 1) / (m + 1), s2 = s * s, term = s, sum = 0;
    for (int k = 1; k < 40; k += 2) {
        sum += term / k;
        term *= s2;
    }
    return 2 * sum + e * 0.6931471805599453;
}

/* 1 - exp(-x) for x >= 0, accurate for small x too (the series avoids the cancellation). */
double preoom_one_minus_exp_neg(double x)
{
    if (x <= 0)
        return 0;
    if (x < 0.5) {
        double term = x, sum = 0;
        for (int k = 1; k < 30; k++) {
            sum += term;
            term *= -x / (k + 1);
        }
        return sum;
    }
    if (x > 700)
        return 1;
    /* exp(-x) = 2^-k * exp(-r), r = x - k ln 2 in [0, ln 2) */
    int k = (int)(x / 0.6931471805599453);
    double r = x - k * 0.6931471805599453, term = 1, e = 0;
    for (int i = 1; i < 30; i++) {
        e += term;
        term *= -r / i;
    }
    while (k-- > 0)
        e *= 0.5;
    return 1 - e;
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
    *w_bytes = (uint64_t)((double)bytes / p + 0.5);
    /* In 1/PREOOM_COUNT_ONE units: rounding 1/p to whole allocations would bias the counts
     * of mid-sized blocks (1/p = 1.87 is not 2). */
    *w_count = (uint64_t)((double)PREOOM_COUNT_ONE / p + 0.5);
}

/* ---- pure parts: the pointer filter ---------------------------------------------------- */
/* A counting filter over pointer hashes: a count per bucket of the sampled pointers that
 * hash there, changed under the site lock, read without it. Zero means "certainly not
 * sampled", so the common free costs a hash and one load. A count that reaches the top
 * sticks there (never decremented again): a few wasted lookups, never a missed free. */
static inline size_t pf_index(const preoom_pfilter_t *f, uintptr_t p)
{
    return (size_t)(((uint64_t)p * 0x9E3779B97F4A7C15ULL) >> (64 - f->bits));
}

void preoom_pfilter_add(preoom_pfilter_t *f, uintptr_t p)
{
    uint16_t *c = &f->counts[pf_index(f, p)];
    uint16_t v = __atomic_load_n(c, __ATOMIC_RELAXED);
    if (v != UINT16_MAX)
        __atomic_store_n(c, (uint16_t)(v + 1), __ATOMIC_RELAXED);
}

void preoom_pfilter_del(preoom_pfilter_t *f, uintptr_t p)
{
    uint16_t *c = &f->counts[pf_index(f, p)];
    uint16_t v = __atomic_load_n(c, __ATOMIC_RELAXED);
    if (v != UINT16_MAX && v != 0)
        __atomic_store_n(c, (uint16_t)(v - 1), __ATOMIC_RELAXED);
}

int preoom_pfilter_maybe(const preoom_pfilter_t *f, uintptr_t p)
{
    return __atomic_load_n(&f->counts[pf_index(f, p)], __ATOMIC_RELAXED) != 0;
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
typedef struct site {
    UT_hash_handle hh;
    uint64_t live_bytes, live_count;     /* estimates in sample mode, exact in all mode; */
    uint64_t total_bytes, total_count;   /* counts in 1/PREOOM_COUNT_ONE allocations */
    uint64_t peak_bytes;                 /* highest live_bytes this site reached */
    uint64_t samples;                    /* allocations recorded (not weighted) */
    uint32_t id;
    uint16_t nframes;
    uint8_t truncated;
    uintptr_t frames[];                  /* innermost first: [0] called malloc */
} site_t;

static pthread_mutex_t site_lock = PTHREAD_MUTEX_INITIALIZER;
static site_t *sites;                    /* uthash head */
static uint32_t site_count;
static preoom_pmap_t pmap;
static preoom_pfilter_t pfilter;
static uint64_t dropped;                 /* samples we could not keep (out of memory, ...) */
static int mode;                         /* PREOOM_STACKS_* once init has run, else off */
static uint64_t mean_bytes = 512 * 1024;
static int depth = 32;

#define PFILTER_BITS 17

/* Per thread: the random state; whether this thread holds site_lock (a signal handler that
 * frees while its thread is inside our section must not wait on itself); the record the last
 * free took away, so a failed realloc can put it back exactly. */
static __thread uint64_t rng __attribute__((tls_model("initial-exec")));
static __thread int holding __attribute__((tls_model("initial-exec")));
static __thread preoom_pmap_entry_t last_taken __attribute__((tls_model("initial-exec")));

/* `holding` is raised before the mutex is taken and lowered after it is released, so a
 * signal handler never finds this thread owning the mutex with the flag down. */
static void lock(void)
{
    holding = 1;
    pthread_mutex_lock(&site_lock);
}

static void unlock(void)
{
    pthread_mutex_unlock(&site_lock);
    holding = 0;
}

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
    pfilter.bits = PFILTER_BITS;
    pfilter.counts = preoom_arena_alloc(sizeof(uint16_t) << PFILTER_BITS);
    if (!pfilter.counts) {
        preoom_log_error("PREOOM_STACKS: out of memory for the call-site tables; using off");
        preoom_opt.stacks = PREOOM_STACKS_OFF;
        preoom_tls.guard--;
        return;
    }
    preoom_unwind_init();
    preoom_tls.sample_countdown = preoom_stacks_next_countdown();
    __atomic_store_n(&mode, preoom_opt.stacks, __ATOMIC_RELEASE);
    preoom_tls.guard--;
}

static site_t *find_site(const uintptr_t *frames, int n)
{
    site_t *s = NULL;
    HASH_FIND(hh, sites, frames, (unsigned)n * sizeof *frames, s);
    return s;
}

static site_t *add_site(const uintptr_t *frames, int n, int truncated)
{
    site_t *s = preoom_arena_alloc(sizeof *s + (size_t)n * sizeof *frames);
    if (!s)
        return NULL;
    memcpy(s->frames, frames, (size_t)n * sizeof *frames);
    s->nframes = (uint16_t)n;
    s->truncated = (uint8_t)truncated;
    s->id = site_count + 1;
    oom_hit = 0;
    HASH_ADD_KEYPTR(hh, sites, s->frames, (unsigned)n * sizeof *frames, s);
    if (oom_hit) {
        preoom_arena_free(s, sizeof *s + (size_t)n * sizeof *frames);
        return NULL;
    }
    site_count++;
    return s;
}

static void site_sub(site_t *s, uint64_t bytes, uint64_t count)
{
    s->live_bytes = s->live_bytes > bytes ? s->live_bytes - bytes : 0;
    s->live_count = s->live_count > count ? s->live_count - count : 0;
}

static void site_add_live(site_t *s, uint64_t bytes, uint64_t count)
{
    s->live_bytes += bytes;
    s->live_count += count;
    if (s->live_bytes > s->peak_bytes)
        s->peak_bytes = s->live_bytes;
}

/* Under site_lock: forget whatever record p still has (a free we never saw). */
static void drop_stale(uintptr_t p)
{
    preoom_pmap_entry_t old;
    if (preoom_pfilter_maybe(&pfilter, p) && preoom_pmap_take(&pmap, p, &old)) {
        site_sub(old.site, old.bytes, old.count);
        preoom_pfilter_del(&pfilter, p);
    }
}

void preoom_stacks_alloc(void *p, size_t bytes)
{
    int m = __atomic_load_n(&mode, __ATOMIC_ACQUIRE);
    if (!p || m == PREOOM_STACKS_OFF || preoom_tls.guard || holding)
        return;
    preoom_tls.guard++;
    uint64_t wb = bytes, wc = PREOOM_COUNT_ONE;
    if (m == PREOOM_STACKS_SAMPLE) {
        preoom_tls.sample_countdown = preoom_stacks_next_countdown();
        preoom_sample_weight(bytes, mean_bytes, &wb, &wc);
    }
    /* Unwind first, with no lock of ours held. */
    uintptr_t frames[PREOOM_STACK_MAX_FRAMES];
    int truncated = 0;
    int n = preoom_unwind(frames, depth, &truncated);

    lock();
    site_t *s = find_site(frames, n);
    if (!s) {
        /* A new site: make sure the modules its frames point into are recorded while they
         * are loaded (a library may be dlclosed before the report). Outside our lock. */
        unlock();
        if (!preoom_modules_cover(frames, n))
            preoom_modules_refresh();
        lock();
        s = find_site(frames, n);
        if (!s)
            s = add_site(frames, n, truncated);
    }
    uintptr_t key = (uintptr_t)p;
    drop_stale(key);
    preoom_pmap_entry_t e = {.ptr = key, .site = s, .bytes = wb, .count = wc};
    if (s && preoom_pmap_put(&pmap, &e) == 0) {
        preoom_pfilter_add(&pfilter, key);
        s->total_bytes += wb;
        s->total_count += wc;
        s->samples++;
        site_add_live(s, wb, wc);
    } else {
        dropped++;
    }
    unlock();
    preoom_tls.guard--;
}

void preoom_stacks_free(void *p)
{
    uintptr_t key = (uintptr_t)p;
    if (!key || !pfilter.counts || !preoom_pfilter_maybe(&pfilter, key))
        return;
    if (holding) {
        /* A signal handler freeing while this thread is inside our section: we cannot wait
         * for ourselves. The record stays (counted as dropped); drop_stale cleans it up if
         * the address comes back. */
        __atomic_add_fetch(&dropped, 1, __ATOMIC_RELAXED);
        return;
    }
    preoom_tls.guard++;
    lock();
    preoom_pmap_entry_t e;
    if (preoom_pmap_take(&pmap, key, &e)) {
        site_sub(e.site, e.bytes, e.count);
        preoom_pfilter_del(&pfilter, key);
        last_taken = e;
    }
    unlock();
    preoom_tls.guard--;
}

void preoom_stacks_restore(void *p)
{
    uintptr_t key = (uintptr_t)p;
    if (!key || last_taken.ptr != key || holding)
        return;
    preoom_tls.guard++;
    lock();
    preoom_pmap_entry_t e = last_taken;
    drop_stale(key);
    if (preoom_pmap_put(&pmap, &e) == 0) {
        preoom_pfilter_add(&pfilter, key);
        site_add_live(e.site, e.bytes, e.count);
    }
    last_taken.ptr = 0;
    unlock();
    preoom_tls.guard--;
}

/* ---- fork ----------------------------------------------------------------------------------- */
/* The site lock is never held while waiting for the loader or anything fork takes, so it
 * can be held across fork: the child then gets consistent tables (its heap is a copy of the
 * parent's, so the live records stay true for it). Taken before the arena's lock, as on
 * the recording path. */
void preoom_stacks_atfork_prepare(void)
{
    if (mode != PREOOM_STACKS_OFF)
        pthread_mutex_lock(&site_lock);
}

void preoom_stacks_atfork_parent(void)
{
    if (mode != PREOOM_STACKS_OFF)
        pthread_mutex_unlock(&site_lock);
}

void preoom_stacks_atfork_child(void)
{
    pthread_mutex_init(&site_lock, NULL);
    holding = 0;
    rng = 0;
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
    ob_put(o, ", \"stacks\": {\"version\": 1, \"mode\": \"%s\", \"sample_bytes\": %llu, "
              "\"depth\": %d, ",
           names[m], (unsigned long long)(m == PREOOM_STACKS_ALL ? 0 : mean_bytes), depth);
    lock();
    ob_put(o, "\"dropped\": %llu, \"sites\": [", (unsigned long long)dropped);
    int first = 1;
    for (site_t *s = sites; s; s = s->hh.next) {
        ob_put(o, "%s\n  {\"id\": %u, \"live_bytes\": %llu, \"live_count\": %llu, "
                  "\"total_bytes\": %llu, \"total_count\": %llu, \"peak_bytes\": %llu, "
                  "\"samples\": %llu, \"truncated\": %s, \"frames\": [",
               first ? "" : ",", s->id, (unsigned long long)s->live_bytes,
               (unsigned long long)((s->live_count + PREOOM_COUNT_ONE / 2) / PREOOM_COUNT_ONE),
               (unsigned long long)s->total_bytes,
               (unsigned long long)((s->total_count + PREOOM_COUNT_ONE / 2) / PREOOM_COUNT_ONE),
               (unsigned long long)s->peak_bytes,
               (unsigned long long)s->samples, s->truncated ? "true" : "false");
        for (int i = 0; i < s->nframes; i++)
            ob_put(o, "%s\"0x%lx\"", i ? ", " : "", (unsigned long)s->frames[i]);
        ob_put(o, "]}");
        first = 0;
    }
    unlock();
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

void preoom_stacks_write_report(int fd)
{
    if (mode == PREOOM_STACKS_OFF)
        return;
    preoom_tls.guard++;
    int rc = write_sites(fd);
    preoom_tls.guard--;
    if (rc != 0)
        preoom_log_error("call-site report: %s", strerrordesc_np(-rc));
}

int preoom_stacks_dump_path(const char *registry, pid_t pid, char *out, size_t size)
{
    size_t n = preoom_fmt(out, size, "/tmp/preoom-report.%s.%d.json", registry, (int)pid);
    return n + 1 >= size ? -ENAMETOOLONG : 0;
}

long preoom_stacks_dump_now(const preoom_totals_t *t)
{
    char path[160], tmp[200];
    pid_t pid = getpid();
    if (preoom_stacks_dump_path(preoom_opt.registry, pid, path, sizeof path) != 0)
        return -ENAMETOOLONG;
    preoom_fmt(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)syscall(SYS_gettid));
    preoom_tls.guard++;
    char name[17] = "";
    preoom_procself_comm(name, sizeof name);
    char buf[2048];
    long n = preoom_report_json(t, pid, name, buf, sizeof buf);
    long rc = n < 0 ? n : 0;
    int fd = -1;
    if (rc == 0) {
        unlink(tmp);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
            rc = -errno;
    }
    if (rc == 0)
        rc = preoom_write_all(fd, buf, (size_t)n);
    if (rc == 0 && mode != PREOOM_STACKS_OFF)
        rc = write_sites(fd);
    if (rc == 0)
        rc = preoom_write_all(fd, "}\n", 2);
    off_t size_bytes = fd >= 0 ? lseek(fd, 0, SEEK_CUR) : 0;
    if (fd >= 0 && close(fd) != 0 && rc == 0)
        rc = -errno;
    /* Renamed into place whole, so a reader never sees half a report. */
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0 && fd >= 0)
        unlink(tmp);
    preoom_tls.guard--;
    if (rc != 0) {
        preoom_log_error("report on demand to %s: %s", path, strerrordesc_np((int)-rc));
        return rc;
    }
    preoom_log_verbose(1, "report on demand written to %s", path);
    return (long)size_bytes;
}

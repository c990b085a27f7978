/* tests/prog/leaky.c — known leaks for the call-site reports (tests/e2e/stacks.sh).
 *
 *   leaky paths MIB      three paths leak MIB MiB each (leak_alpha: malloc of 4088 B,
 *                        leak_beta: calloc of 1000 B, leak_gamma: malloc of mixed sizes);
 *                        free_delta allocates as much and frees all of it
 *   leaky edge LIBDIR    deep recursion, an allocating signal handler (on the thread's stack
 *                        and on an alternate one), threads, a coroutine's stack
 *                        (swapcontext), and a dlclose'd library whose code is on a recorded
 *                        stack
 *   leaky wait FILE      leak_alpha 4 MiB, print "ready", wait (up to 30 s) until FILE exists
 *   leaky shared         sites that several threads share, or that look alike to a stack
 *                        cache: thread_shared (4 threads leak through one site), handoff_make
 *                        (one thread allocates, another frees it all), peak_once (a known
 *                        peak, then nothing live), via_a and via_b (one allocating function
 *                        reached through two callers with the same frame, alternately)
 *
 * For `paths` and `shared` it prints, for each function, "NAME BYTES COUNT" with the usable bytes it left
 * live (malloc_usable_size: what preoom counts), so the test compares against what the
 * allocator really handed out. Never frees what it reports as leaked.
 */
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <ucontext.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
#define KEEP_CALL() __asm__ volatile("" ::: "memory")

static void *volatile sink;
static unsigned long long leaked_bytes[3], leaked_count[3];

/* Leaked blocks go on a list the program keeps (so no one mistakes them for garbage). */
static void **keep;
static size_t keep_n, keep_cap;

static void hold(void *p)
{
    if (keep_n == keep_cap) {
        keep_cap = keep_cap ? keep_cap * 2 : 1024;
        /* mmap-free growth through realloc would add a site of its own: fine, it is named. */
        keep = realloc(keep, keep_cap * sizeof *keep);
        if (!keep)
            abort();
    }
    keep[keep_n++] = p;
}

NOINLINE static void *leak_alpha(void)
{
    void *p = malloc(4088);
    KEEP_CALL();
    return p;
}

NOINLINE static void *leak_beta(void)
{
    void *p = calloc(1, 1000);
    KEEP_CALL();
    return p;
}

NOINLINE static void *leak_gamma(size_t n)
{
    void *p = malloc(n);
    KEEP_CALL();
    return p;
}

NOINLINE static void free_delta(size_t total)
{
    void **v = malloc((total / 512 + 1) * sizeof *v);
    size_t k = 0;
    for (size_t got = 0; got < total; k++) {
        v[k] = malloc(512 + (k % 7) * 64);
        got += malloc_usable_size(v[k]);
    }
    for (size_t i = 0; i < k; i++)
        free(v[i]);
    free(v);
    KEEP_CALL();
}

static void run_path(int which, size_t total)
{
    static const size_t gamma_sizes[] = {24, 200, 3000, 40000, 120000, 7000};
    size_t got = 0;
    for (unsigned i = 0; got < total; i++) {
        void *p = which == 0 ? leak_alpha() : which == 1 ? leak_beta()
                                                         : leak_gamma(gamma_sizes[i % 6]);
        if (!p)
            abort();
        hold(p);
        size_t n = malloc_usable_size(p);
        got += n;
        leaked_bytes[which] += n;
        leaked_count[which]++;
    }
}

static int paths(size_t mib)
{
    size_t total = mib << 20;
    run_path(0, total);
    run_path(1, total);
    run_path(2, total);
    free_delta(total);
    static const char *const names[] = {"leak_alpha", "leak_beta", "leak_gamma"};
    for (int i = 0; i < 3; i++)
        printf("%s %llu %llu\n", names[i], leaked_bytes[i], leaked_count[i]);
    fflush(stdout);
    return 0;
}

/* ---- edge cases ---------------------------------------------------------------------- */
NOINLINE static int deep_recurse(int n)
{
    if (n == 0) {
        hold(malloc(777));
        return 1;
    }
    int r = deep_recurse(n - 1) + 1;
    KEEP_CALL();
    return r;
}

static volatile sig_atomic_t handled;

/* malloc in a signal handler is not async-signal-safe; programs do it anyway, and the
 * preload must survive it. */
static void on_alarm(int sig)
{
    (void)sig;
    void *p = malloc(96);
    sink = p;
    if (handled % 2)
        free(p);
    handled++;
}

NOINLINE static void *thread_leak(void *arg)
{
    long id = (long)arg;
    for (int i = 0; i < 2000; i++) {
        void *p = malloc(256 + (size_t)id * 16);
        if (i % 2)
            free(p);
        else
            sink = p; /* leaked on purpose */
    }
    return NULL;
}

/* On an alternate signal stack: outside the thread's own stack, where the stack cache never
 * reads (preload/stacks.c). */
static void on_usr1(int sig)
{
    (void)sig;
    hold(malloc(120));
}

/* A coroutine: its stack is a mapping of ours, freed after it returns. */
static ucontext_t main_uc, coro_uc;

NOINLINE static void coro_leak(void)
{
    for (int i = 0; i < 200; i++)
        hold(malloc(48));
    KEEP_CALL();
}

static void coro_entry(void)
{
    coro_leak();
}

static int run_coroutine(size_t stack_bytes)
{
    char *stk = mmap(NULL, stack_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (stk == MAP_FAILED || getcontext(&coro_uc) != 0)
        return -1;
    coro_uc.uc_stack.ss_sp = stk;
    coro_uc.uc_stack.ss_size = stack_bytes;
    coro_uc.uc_link = &main_uc;
    makecontext(&coro_uc, coro_entry, 0);
    if (swapcontext(&main_uc, &coro_uc) != 0)
        return -1;
    munmap(stk, stack_bytes);
    return 0;
}

static int edge(const char *libdir)
{
    deep_recurse(300);

    /* Two coroutines, the second on a smaller stack that may be mapped where the first was. */
    if (run_coroutine(256 << 10) != 0 || run_coroutine(64 << 10) != 0) {
        fprintf(stderr, "leaky: coroutine failed\n");
        return 1;
    }

    stack_t alt = {.ss_sp = malloc(64 << 10), .ss_size = 64 << 10};
    struct sigaction su;
    memset(&su, 0, sizeof su);
    su.sa_handler = on_usr1;
    su.sa_flags = SA_ONSTACK;
    if (!alt.ss_sp || sigaltstack(&alt, NULL) != 0 || sigaction(SIGUSR1, &su, NULL) != 0) {
        fprintf(stderr, "leaky: sigaltstack failed\n");
        return 1;
    }
    for (int i = 0; i < 50; i++)
        raise(SIGUSR1);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 200}, {0, 200}};
    setitimer(ITIMER_REAL, &it, NULL);
    /* glibc's malloc is not async-signal-safe: a handler that allocates while the interrupted
     * code is inside glibc's malloc can corrupt glibc's own lists, preload or not. So the
     * signal is blocked around this thread's calls and lands in the busy work between them;
     * the handler's allocations still go through the preload and unwind through the signal
     * frame. */
    sigset_t alrm, old;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    volatile unsigned long spin = 0;
    for (int i = 0; i < 20000; i++) {
        sigprocmask(SIG_BLOCK, &alrm, &old);
        void *p = malloc(64 + (size_t)(i % 100));
        sink = p;
        free(p);
        sigprocmask(SIG_SETMASK, &old, NULL);
        for (int k = 0; k < 500; k++)
            spin += (unsigned long)k;
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);

    pthread_t th[4];
    for (long i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, thread_leak, (void *)i);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);

    char path[4096];
    snprintf(path, sizeof path, "%s/libstkleak.so", libdir);
    void *h = dlopen(path, RTLD_NOW);
    if (!h) {
        fprintf(stderr, "leaky: %s\n", dlerror());
        return 1;
    }
    void *(*make)(size_t) = (void *(*)(size_t))dlsym(h, "stkleak_make");
    for (int i = 0; i < 64 && make; i++)
        hold(make(5000));
    dlclose(h);
    /* Something else now maps where the library was, ideally. */
    void *h2 = dlopen("libm.so.6", RTLD_NOW);
    (void)h2;
    printf("edge done: %d signals handled\n", (int)handled);
    return 0;
}

/* ---- shared sites ---------------------------------------------------------------------- */
static unsigned long long shared_bytes[4];

NOINLINE static void *thread_shared_alloc(size_t n)
{
    void *p = malloc(n);
    __asm__ volatile("# thread_shared_alloc" ::: "memory"); /* its own body: no code folding */
    KEEP_CALL();
    return p;
}

static void *thread_shared(void *arg)
{
    long id = (long)arg;
    for (int i = 0; i < 3000; i++) {
        void *p = thread_shared_alloc(100 + (size_t)(i % 50) * 8);
        if (!p)
            abort();
        if (i % 3 == 0) {
            free(p);
            continue;
        }
        shared_bytes[id] += malloc_usable_size(p);
        sink = p; /* leaked: 2000 blocks per thread */
    }
    return NULL;
}

#define HANDOFF 20000
static void *handed[HANDOFF];

NOINLINE static void *handoff_make(size_t n)
{
    void *p = malloc(n);
    __asm__ volatile("# handoff_make" ::: "memory"); /* its own body: no code folding */
    KEEP_CALL();
    return p;
}

static void *producer(void *arg)
{
    (void)arg;
    for (int i = 0; i < HANDOFF; i++)
        handed[i] = handoff_make(64 + (size_t)(i % 9) * 16);
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    for (int i = 0; i < HANDOFF; i++)
        free(handed[i]);
    return NULL;
}

NOINLINE static void *peak_once_alloc(void)
{
    void *p = malloc(10000);
    __asm__ volatile("# peak_once_alloc" ::: "memory"); /* its own body: no code folding */
    KEEP_CALL();
    return p;
}

/* Two callers with the same frame (and so the same stack pointer at the call) but different
 * return addresses: a stack cache keyed on the innermost frame alone would mix them up. */
NOINLINE static void *twin_alloc(size_t n)
{
    void *p = malloc(n);
    __asm__ volatile("# twin_alloc" ::: "memory"); /* its own body: no code folding */
    KEEP_CALL();
    return p;
}

NOINLINE static void *via_a(void)
{
    void *p = twin_alloc(300);
    __asm__ volatile("# via_a" ::: "memory");
    KEEP_CALL();
    return p;
}

NOINLINE static void *via_b(void)
{
    void *p = twin_alloc(300);
    __asm__ volatile("# via_b" ::: "memory");
    KEEP_CALL();
    return p;
}

static int shared(void)
{
    pthread_t th[4];
    for (long i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, thread_shared, (void *)i);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    unsigned long long sb = 0;
    for (int i = 0; i < 4; i++)
        sb += shared_bytes[i];
    printf("thread_shared_alloc %llu %d\n", sb, 4 * 2000);

    pthread_t p, c;
    pthread_create(&p, NULL, producer, NULL);
    pthread_join(p, NULL);
    pthread_create(&c, NULL, consumer, NULL);
    pthread_join(c, NULL);
    printf("handoff_make 0 0\n");

    void *v[500];
    unsigned long long peak = 0;
    for (int i = 0; i < 500; i++) {
        v[i] = peak_once_alloc();
        peak += malloc_usable_size(v[i]);
    }
    for (int i = 0; i < 500; i++)
        free(v[i]);
    printf("peak_once_alloc peak %llu\n", peak);

    unsigned long long ab[2] = {0, 0};
    for (int i = 0; i < 4000; i++) {
        void *q = i % 2 ? via_b() : via_a();
        if (!q)
            abort();
        hold(q);
        ab[i % 2] += malloc_usable_size(q);
    }
    printf("via_a %llu 2000\nvia_b %llu 2000\n", ab[0], ab[1]);
    fflush(stdout);
    return 0;
}

static int wait_for(const char *file)
{
    for (int i = 0; i < 1024; i++)
        hold(leak_alpha());
    printf("ready\n");
    fflush(stdout);
    for (int i = 0; i < 3000 && access(file, F_OK) != 0; i++)
        usleep(10000);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "paths";
    if (strcmp(mode, "paths") == 0)
        return paths(argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 1);
    if (strcmp(mode, "edge") == 0)
        return edge(argc > 2 ? argv[2] : ".");
    if (strcmp(mode, "wait") == 0 && argc > 2)
        return wait_for(argv[2]);
    if (strcmp(mode, "shared") == 0)
        return shared();
    fprintf(stderr, "usage: leaky paths MIB | edge LIBDIR | wait FILE | shared\n");
    return 2;
}

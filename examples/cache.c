/* examples/cache.c — a small in-memory cache that gives memory back when preoom asks.
 *
 *   cache [--mib N] [--entry-kib K] [--refill-mib-per-s R] [--seconds S]
 *         [--no-callback | --useless-callback | --slow-callback MS]
 *
 * It fills N MiB of entries (K KiB each, written so they are really touched), keeps them in
 * least-recently-used order, "serves" by touching random entries, and refills towards N MiB
 * at R MiB/s, as a cache refills on misses. It registers a release callback through
 * include/preoom.h: when the arbiter asks, the callback drops the least recently used entries
 * until the bytes asked for are free (at PREOOM_LEVEL_COMPLETE, everything but a tenth), and
 * returns what it freed. It prints one line per event. Without libpreoom.so it runs the same
 * and says the callback is not available.
 *
 * The callback runs on preoom's agent thread, so the cache is behind a mutex; the callback may
 * free (and could allocate) freely.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "preoom.h"

struct entry {
    struct entry *prev, *next; /* LRU list: head is the most recent */
    size_t bytes;
    char data[];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry *head, *tail;
static size_t n_entries, cache_bytes;
static size_t entry_bytes = 64 * 1024;
static long slow_ms = -1;
static int useless;
static volatile sig_atomic_t stop;

static void unlink_entry(struct entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        tail = e->prev;
}

static void push_front(struct entry *e)
{
    e->prev = NULL;
    e->next = head;
    if (head)
        head->prev = e;
    head = e;
    if (!tail)
        tail = e;
}

static int add_entry(unsigned seed)
{
    struct entry *e = malloc(sizeof *e + entry_bytes);
    if (!e)
        return -1;
    e->bytes = malloc_usable_size(e);
    memset(e->data, (int)(seed & 0xff), entry_bytes); /* really touched */
    pthread_mutex_lock(&lock);
    push_front(e);
    n_entries++;
    cache_bytes += e->bytes;
    pthread_mutex_unlock(&lock);
    return 0;
}

/* "Serve" a request: a random entry becomes the most recently used. */
static void touch_random(unsigned r)
{
    pthread_mutex_lock(&lock);
    if (n_entries) {
        struct entry *e = head;
        for (unsigned k = r % (unsigned)(n_entries < 64 ? n_entries : 64); k > 0 && e->next; k--)
            e = e->next;
        e->data[r % entry_bytes] ^= 1;
        unlink_entry(e);
        push_front(e);
    }
    pthread_mutex_unlock(&lock);
}

static size_t on_release(preoom_level_t level, size_t target, void *ctx)
{
    (void)ctx;
    if (slow_ms >= 0) {
        struct timespec ts = {slow_ms / 1000, (slow_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (useless) {
        printf("cache: asked for %zu bytes at level %d; giving nothing back\n", target, (int)level);
        fflush(stdout);
        return 0;
    }
    size_t freed = 0, dropped = 0;
    pthread_mutex_lock(&lock);
    size_t keep = level >= PREOOM_LEVEL_COMPLETE ? cache_bytes / 10 : 0;
    while (tail && (freed < target || (keep && cache_bytes > keep))) {
        struct entry *e = tail;
        unlink_entry(e);
        n_entries--;
        cache_bytes -= e->bytes;
        freed += e->bytes;
        dropped++;
        free(e);
    }
    size_t left = cache_bytes;
    pthread_mutex_unlock(&lock);
    /* A callback may allocate as well as free (it runs on preoom's agent thread, outside
     * any preoom lock): the message is built in malloc'ed memory on purpose. */
    char *msg = NULL;
    if (asprintf(&msg, "cache: asked for %.1f MiB at level %d: dropped %zu entries, freed "
                       "%.1f MiB, %.1f MiB left\n", (double)target / 1048576.0, (int)level,
                 dropped, (double)freed / 1048576.0, (double)left / 1048576.0) >= 0) {
        fputs(msg, stdout);
        free(msg);
    }
    fflush(stdout);
    return freed;
}

static void on_term(int sig)
{
    stop = sig;
}

int main(int argc, char **argv)
{
    long mib = 150, refill = 0, seconds = 0;
    int callback = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--mib") == 0 && v) { mib = atol(v); i++; }
        else if (strcmp(a, "--entry-kib") == 0 && v) { entry_bytes = (size_t)atol(v) * 1024; i++; }
        else if (strcmp(a, "--refill-mib-per-s") == 0 && v) { refill = atol(v); i++; }
        else if (strcmp(a, "--seconds") == 0 && v) { seconds = atol(v); i++; }
        else if (strcmp(a, "--slow-callback") == 0 && v) { slow_ms = atol(v); i++; }
        else if (strcmp(a, "--no-callback") == 0) callback = 0;
        else if (strcmp(a, "--useless-callback") == 0) useless = 1;
        else {
            fprintf(stderr, "usage: cache [--mib N] [--entry-kib K] [--refill-mib-per-s R] "
                            "[--seconds S] [--no-callback|--useless-callback|--slow-callback MS]\n");
            return 2;
        }
    }
    if (mib < 0 || entry_bytes < 1024 || refill < 0 || seconds < 0) {
        fprintf(stderr, "cache: bad arguments\n");
        return 2;
    }
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    if (callback) {
        int rc = preoom_on_release(on_release, NULL);
        if (rc == -ENOSYS)
            printf("cache: libpreoom.so is not loaded: no release callback, running plain\n");
        else if (rc != 0)
            printf("cache: preoom_on_release failed: %s\n", strerror(-rc));
        else
            printf("cache: release callback registered (preoom API %d)\n", preoom_api_version());
    }
    size_t want = (size_t)mib << 20;
    unsigned seed = 1;
    while (cache_bytes < want && !stop)
        if (add_entry(seed++) != 0)
            break;
    printf("cache: filled %zu entries, %.1f MiB\n", n_entries, (double)cache_bytes / 1048576.0);
    fflush(stdout);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double refill_credit = 0;
    int last_level = -1;
    while (!stop) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
        for (int k = 0; k < 50; k++)
            touch_random((unsigned)rand());
        refill_credit += (double)refill * 1048576.0 * 0.02;
        while (refill_credit >= (double)entry_bytes && cache_bytes < want) {
            add_entry(seed++);
            refill_credit -= (double)entry_bytes;
        }
        if (cache_bytes >= want)
            refill_credit = 0;
        if (callback && !useless) {
            /* Say what we could give (preoom API 2): preoomd asks the processes that can
             * give first, largest first, and sizes each ask by it. */
            pthread_mutex_lock(&lock);
            size_t held = cache_bytes;
            pthread_mutex_unlock(&lock);
            preoom_reclaimable(held);
        }
        int level = (int)preoom_pressure();
        if (level != last_level) {
            printf("cache: pressure level %d, %.1f MiB cached\n", level,
                   (double)cache_bytes / 1048576.0);
            fflush(stdout);
            last_level = level;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (seconds && now.tv_sec - t0.tv_sec >= seconds)
            break;
    }
    if (stop)
        printf("cache: %s received, exiting with %zu entries, %.1f MiB\n",
               stop == SIGTERM ? "SIGTERM" : "SIGINT", n_entries, (double)cache_bytes / 1048576.0);
    else
        printf("cache: exiting after %ld s with %zu entries, %.1f MiB\n", seconds, n_entries,
               (double)cache_bytes / 1048576.0);
    fflush(stdout);
    if (callback)
        preoom_off_release(on_release, NULL);
    return 0;
}

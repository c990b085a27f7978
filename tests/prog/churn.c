/* tests/prog/churn.c — a multi-threaded malloc/free churn of mixed sizes (16 B to 1 MiB).
 *
 *   churn [THREADS [ITERATIONS [SEED]]]
 *
 * Each thread keeps a working set of 256 blocks and replaces one at random per iteration,
 * with sizes drawn log-uniformly so small blocks dominate the calls and large ones the bytes,
 * as in real services. It writes into every block so the work is not optimised away. Prints
 * a checksum that depends only on the arguments (so runs with and without the preload can be
 * compared) and exits 0. Used by the tests and by `make bench`.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 256

struct worker { unsigned id; long iterations; uint64_t seed; uint64_t sum; };

static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* 16 B .. 1 MiB, log-uniform. */
static size_t draw_size(uint64_t *s)
{
    unsigned shift = 4 + (unsigned)(next(s) % 17);
    size_t lo = (size_t)1 << shift;
    return lo + (size_t)(next(s) % lo);
}

static void *work(void *arg)
{
    struct worker *w = arg;
    char *blocks[SLOTS] = {0};
    size_t sizes[SLOTS] = {0};
    uint64_t s = w->seed * 2654435761u + w->id + 1;
    for (long i = 0; i < w->iterations; i++) {
        unsigned k = (unsigned)(next(&s) % SLOTS);
        if (blocks[k]) {
            w->sum += (unsigned char)blocks[k][sizes[k] - 1];
            free(blocks[k]);
        }
        size_t n = draw_size(&s);
        if (n > (1u << 20))
            n = 1u << 20;
        blocks[k] = malloc(n);
        if (!blocks[k]) {
            fprintf(stderr, "churn: malloc(%zu) failed\n", n);
            exit(1);
        }
        sizes[k] = n;
        blocks[k][0] = (char)i;
        blocks[k][n - 1] = (char)(i >> 3);
    }
    for (unsigned k = 0; k < SLOTS; k++)
        free(blocks[k]);
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned threads = argc > 1 ? (unsigned)atoi(argv[1]) : 16;
    long iterations = argc > 2 ? atol(argv[2]) : 200000;
    uint64_t seed = argc > 3 ? (uint64_t)atoll(argv[3]) : 42;
    if (threads < 1 || threads > 1024 || iterations < 1) {
        fprintf(stderr, "usage: churn [THREADS 1..1024 [ITERATIONS [SEED]]]\n");
        return 2;
    }
    pthread_t *t = calloc(threads, sizeof *t);
    struct worker *w = calloc(threads, sizeof *w);
    for (unsigned i = 0; i < threads; i++) {
        w[i] = (struct worker){i, iterations, seed, 0};
        if (pthread_create(&t[i], NULL, work, &w[i]) != 0) {
            perror("pthread_create");
            return 1;
        }
    }
    uint64_t sum = 0;
    for (unsigned i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        sum += w[i].sum;
    }
    printf("churn: %u threads x %ld iterations, checksum %llu\n", threads, iterations,
           (unsigned long long)sum);
    free(t);
    free(w);
    return 0;
}

/* tests/prog/shape.c — touches memory along a scripted shape, for preoomd's scenes.
 *
 *   shape OP...
 *     grow:MIB:RATE     touch MIB more, at RATE MiB/s (0: as fast as it can)
 *     hold:MS           keep what it has for MS
 *     free:MIB          give MIB back (munmap: it leaves the cgroup at once)
 *     leak:RATE:MS      grow at RATE MiB/s for MS (forever when MS is 0)
 *     promise:MIB       malloc MIB and touch none of it (committed, not touched)
 *     term:MS           from now on, SIGTERM makes it take MS to exit (a slow shutdown)
 *     ready:FILE        write "ready" to FILE
 *
 * Blocks are 1 MiB mmaps, so a free returns memory to the system at once. Prints
 * "shape: done" and exits 0 when the script ends; killed by a signal otherwise (SIGTERM ends
 * it at once unless term: said otherwise). Keep shapes inside a memory cgroup.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MAXB 16384

static void *blocks[MAXB];
static long nblocks;
static volatile sig_atomic_t term_ms = -1, termed;

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && !termed)
        ;
}

static void on_term(int sig)
{
    (void)sig;
    termed = 1;
}

static void check_term(void)
{
    if (!termed)
        return;
    /* A slow shutdown: hold still (allocate nothing more) for term_ms, then go. */
    long until = now_ms() + term_ms;
    termed = 0;
    while (now_ms() < until)
        sleep_ms(until - now_ms());
    printf("shape: stopped by SIGTERM after %ld ms\n", (long)term_ms);
    fflush(stdout);
    _exit(143);
}

static int add_block(void)
{
    if (nblocks == MAXB)
        return -1;
    void *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    memset(p, 0x5a, 1 << 20);
    blocks[nblocks++] = p;
    return 0;
}

/* Touch mib more at rate MiB/s (0: flat out). */
static void grow(long mib, long rate)
{
    long t0 = now_ms();
    for (long i = 0; i < mib; i++) {
        check_term();
        if (add_block() != 0)
            break;
        if (rate > 0) {
            long due = t0 + (i + 1) * 1000 / rate;
            long w = due - now_ms();
            if (w > 0)
                sleep_ms(w);
        }
    }
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        char op[32];
        long a = 0, b = 0;
        char file[256];
        if (sscanf(argv[i], "grow:%ld:%ld", &a, &b) == 2) {
            grow(a, b);
        } else if (sscanf(argv[i], "hold:%ld", &a) == 1 && !strncmp(argv[i], "hold", 4)) {
            long until = now_ms() + a;
            while (now_ms() < until) {
                check_term();
                sleep_ms(until - now_ms() < 20 ? until - now_ms() : 20);
            }
        } else if (sscanf(argv[i], "free:%ld", &a) == 1 && !strncmp(argv[i], "free", 4)) {
            for (; a > 0 && nblocks > 0; a--)
                munmap(blocks[--nblocks], 1 << 20);
        } else if (sscanf(argv[i], "leak:%ld:%ld", &a, &b) == 2) {
            long t0 = now_ms();
            for (long k = 0; b == 0 || now_ms() - t0 < b; k++) {
                check_term();
                if (add_block() != 0)
                    break;
                long due = t0 + (k + 1) * 1000 / (a > 0 ? a : 1);
                long w = due - now_ms();
                if (w > 0)
                    sleep_ms(w);
            }
        } else if (sscanf(argv[i], "promise:%ld", &a) == 1 && !strncmp(argv[i], "promise", 7)) {
            if (!malloc((size_t)a << 20))
                fprintf(stderr, "shape: malloc of %ld MiB failed\n", a);
        } else if (sscanf(argv[i], "term:%ld", &a) == 1 && !strncmp(argv[i], "term", 4)) {
            term_ms = a;
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = on_term;
            sigaction(SIGTERM, &sa, NULL);
        } else if (sscanf(argv[i], "ready:%255s", file) == 1) {
            FILE *f = fopen(file, "w");
            if (f) {
                fprintf(f, "ready %d\n", (int)getpid());
                fclose(f);
            }
        } else {
            snprintf(op, sizeof op, "%s", argv[i]);
            fprintf(stderr, "shape: bad op '%s'\n", op);
            return 2;
        }
    }
    printf("shape: done with %ld MiB\n", nblocks);
    return 0;
}

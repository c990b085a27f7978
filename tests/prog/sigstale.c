/* tests/prog/sigstale.c — a signal handler that allocates, landing in a loop that calls the
 * same function over and over (tests/e2e/stacks.sh).
 *
 *   sigstale [ITERATIONS]
 *
 * The frame a signal interrupts was not called: its address comes from the context the
 * kernel saved, while the word just below its stack pointer still holds the return address
 * of the loop's last call. A stack cache that trusted that word (preload/stacks.c) would
 * name the interrupted frame wrongly; with PREOOM_STACK_CACHE=verify every such hit is
 * counted as a mismatch (three in four hits, before the cache learnt to skip signal frames).
 * Exits 0.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static void *volatile sink;

__attribute__((noinline)) static int step(int x)
{
    __asm__ volatile("" ::: "memory");
    return x * 3 + 1;
}

static void on_alarm(int sig)
{
    (void)sig;
    sink = malloc(32);
    free(sink);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 50000000;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 50}, {0, 50}};
    setitimer(ITIMER_REAL, &it, NULL);
    volatile int acc = 0;
    for (long i = 0; i < n; i++)
        acc += step((int)i);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    return 0;
}

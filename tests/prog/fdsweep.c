/* tests/prog/fdsweep.c — a program that sweeps away file descriptors it did not open, as
 * daemons do, then opens its own files and allocates from new call stacks. libunwind keeps a
 * pipe open for its memory checks; if the sweep closed it and the program's own files took
 * its numbers, the unwinder would read a byte from one of them and write a byte into the
 * other (tests/e2e/stacks.sh).
 *
 *   fdsweep closefrom|close|close_range|dup2 DIR
 *
 * Writes DIR/in (4096 known bytes), sweeps, opens DIR/in for reading and DIR/out for
 * writing, then allocates through many new stacks (recursion of every depth, a signal
 * handler, threads) so the unwinder runs its slow, checking path; then reads DIR/in to the end
 * and checks DIR/out holds exactly what it wrote. Prints "fdsweep ok" and exits 0, or says
 * what was wrong and exits 1.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
static void *volatile sink;

NOINLINE static int grow(int depth)
{
    if (depth == 0) {
        sink = malloc(64 + (size_t)depth);
        free(sink);
        return 1;
    }
    int r = grow(depth - 1) + 1;
    __asm__ volatile("" ::: "memory");
    return r;
}

static void on_usr1(int sig)
{
    (void)sig;
    sink = malloc(200);
    free(sink);
}

static void *worker(void *arg)
{
    for (int d = 0; d < 40; d++)
        grow(d + (int)(long)arg);
    return NULL;
}

static void sweep(const char *how)
{
    if (strcmp(how, "closefrom") == 0) {
        closefrom(3);
    } else if (strcmp(how, "close") == 0) {
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
    } else if (strcmp(how, "close_range") == 0) {
        close_range(3, ~0U, 0);
    } else { /* dup2: put /dev/null over every number below 1024 (preoom's are at the top) */
        int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
        for (int fd = 3; fd < 1024; fd++)
            if (fd != nul)
                dup2(nul, fd);
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: fdsweep closefrom|close|close_range|dup2 DIR\n");
        return 2;
    }
    char in[4096], path_in[4096], path_out[4096];
    snprintf(path_in, sizeof path_in, "%s/in", argv[2]);
    snprintf(path_out, sizeof path_out, "%s/out", argv[2]);
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (char)('a' + i % 26);
    FILE *f = fopen(path_in, "w");
    if (!f || fwrite(in, 1, sizeof in, f) != sizeof in || fclose(f) != 0)
        return 2;
    for (int d = 0; d < 10; d++) /* the unwinder is busy before the sweep */
        grow(d);

    sweep(argv[1]);

    int rfd = open(path_in, O_RDONLY | O_CLOEXEC);
    int wfd = open(path_out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (rfd < 0 || wfd < 0)
        return 2;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    for (int d = 0; d < 200; d++) {
        grow(d);
        if (d % 10 == 0)
            raise(SIGUSR1);
    }
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, worker, (void *)(i * 7));
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    if (write(wfd, "preoom", 6) != 6 || close(wfd) != 0)
        return 2;

    char got[8192];
    ssize_t n = read(rfd, got, sizeof got);
    int bad = 0;
    if (n != (ssize_t)sizeof in || memcmp(got, in, sizeof in) != 0) {
        fprintf(stderr, "fdsweep: %s read %zd of %zu bytes, or other bytes, from its own file\n",
                argv[1], n, sizeof in);
        bad = 1;
    }
    int r2 = open(path_out, O_RDONLY);
    n = read(r2, got, sizeof got);
    if (n != 6 || memcmp(got, "preoom", 6) != 0) {
        fprintf(stderr, "fdsweep: %s found %zd bytes in the file it wrote 6 to\n", argv[1], n);
        bad = 1;
    }
    if (!bad)
        printf("fdsweep ok\n");
    return bad;
}

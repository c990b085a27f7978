/* tests/prog/hold.c — allocate known amounts, touch a known part, then hold still.
 *
 *   hold [-m MALLOC_MIB] [-t TOUCH_MIB] [-a MMAP_MIB] [-s SECONDS] [-r READY_FILE]
 *
 * Mallocs MALLOC_MIB in 1 MiB blocks and writes into the first TOUCH_MIB of them, maps
 * MMAP_MIB of private anonymous memory and writes all of it, then writes its pid to
 * READY_FILE (if given) and sleeps until SIGTERM, SIGINT or SIGUSR1 arrives or SECONDS pass
 * (default 60); then it frees nothing and returns from main, so exit handlers (the preload's
 * report) run. The end-to-end tests compare what the registry says with what this program
 * did. Keep the amounts small: tests must never create memory pressure.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv)
{
    long malloc_mib = 0, touch_mib = 0, mmap_mib = 0, seconds = 60;
    const char *ready = NULL;
    int c;
    while ((c = getopt(argc, argv, "m:t:a:s:r:")) != -1) {
        switch (c) {
        case 'm': malloc_mib = atol(optarg); break;
        case 't': touch_mib = atol(optarg); break;
        case 'a': mmap_mib = atol(optarg); break;
        case 's': seconds = atol(optarg); break;
        case 'r': ready = optarg; break;
        default:
            fprintf(stderr, "usage: hold [-m MiB] [-t MiB] [-a MiB] [-s SECONDS] [-r FILE]\n");
            return 2;
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);

    const size_t mib = 1 << 20;
    char **blocks = calloc((size_t)(malloc_mib > 0 ? malloc_mib : 1), sizeof *blocks);
    if (!blocks)
        return 1;
    for (long i = 0; i < malloc_mib; i++) {
        if (!(blocks[i] = malloc(mib)))
            return 1;
        if (i < touch_mib)
            memset(blocks[i], (int)(i + 1), mib);
    }
    if (mmap_mib > 0) {
        char *m = mmap(NULL, (size_t)mmap_mib * mib, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return 1;
        memset(m, 7, (size_t)mmap_mib * mib);
    }
    if (ready) {
        char tmp[4096], line[32];
        snprintf(tmp, sizeof tmp, "%s.tmp", ready);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int n = snprintf(line, sizeof line, "%d\n", (int)getpid());
        if (fd < 0 || write(fd, line, (size_t)n) != n || close(fd) != 0 || rename(tmp, ready) != 0)
            return 1;
    }
    struct timespec ts = {0, 20 * 1000 * 1000};
    for (long ticks = seconds * 50; !stop && ticks > 0; ticks--)
        nanosleep(&ts, NULL);
    /* The blocks stay allocated: their bytes are what the exit report must show. */
    return blocks[0] == NULL && malloc_mib > 0;
}

/* tests/prog/freeall.c — allocate many small blocks, touch them, free them all, then hold
 * still: the memory is free in the allocator but still resident, which only the allocator's
 * own call gives back (glibc's malloc_trim, jemalloc's arena purge, tcmalloc's release).
 *
 *   freeall [-m MIB] [-b BLOCK_BYTES] [-s SECONDS] [-r READY_FILE]
 *
 * Every other block is freed first and the rest after, so the freed memory is scattered
 * through the heap rather than one run at its top (which glibc's free alone would return).
 * Writes its pid to READY_FILE when everything is freed, then sleeps until SIGTERM, SIGINT
 * or SECONDS (default 60). Allocates nothing while it holds still: an allocator that purges
 * as it goes (jemalloc's decay runs on allocation) is left alone. Keep MIB small: tests must
 * never create memory pressure.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv)
{
    long mib = 64, block = 4096, seconds = 60;
    const char *ready = NULL;
    int c;
    while ((c = getopt(argc, argv, "m:b:s:r:")) != -1) {
        switch (c) {
        case 'm': mib = atol(optarg); break;
        case 'b': block = atol(optarg); break;
        case 's': seconds = atol(optarg); break;
        case 'r': ready = optarg; break;
        default:
            fprintf(stderr, "usage: freeall [-m MiB] [-b BLOCK_BYTES] [-s SECONDS] [-r FILE]\n");
            return 2;
        }
    }
    if (mib < 1 || block < 16) {
        fprintf(stderr, "freeall: -m must be >= 1 and -b >= 16\n");
        return 2;
    }
    size_t n = (size_t)mib * 1024 * 1024 / (size_t)block;
    char **blocks = calloc(n, sizeof *blocks);
    if (!blocks) {
        perror("freeall: calloc");
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        blocks[i] = malloc((size_t)block);
        if (!blocks[i]) {
            perror("freeall: malloc");
            return 1;
        }
        memset(blocks[i], (int)(i & 0xff) | 1, (size_t)block);
    }
    for (size_t i = 0; i < n; i += 2)
        free(blocks[i]);
    for (size_t i = 1; i < n; i += 2)
        free(blocks[i]);
    free(blocks);

    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    if (ready) {
        char tmp[4096], line[32];
        snprintf(tmp, sizeof tmp, "%s.tmp", ready);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int len = snprintf(line, sizeof line, "%ld\n", (long)getpid());
        if (fd < 0 || write(fd, line, (size_t)len) != len || close(fd) != 0 ||
            rename(tmp, ready) != 0) {
            perror("freeall: ready file");
            return 1;
        }
    }
    struct timespec ts = {0, 50 * 1000 * 1000};
    for (long i = 0; i < seconds * 20 && !stop; i++)
        nanosleep(&ts, NULL);
    return 0;
}

/* tests/prog/prefork.c — a prefork server in miniature, for preoomd's scenes.
 *
 *   prefork SHARED_MIB CHILDREN CHILD_MIB LEAKER LEAK_MIB_S SECONDS PIDFILE
 *
 * The parent touches SHARED_MIB (inherited copy-on-write by every child: counted in each
 * child's RSS, freed by nobody's death but the last), then forks CHILDREN workers. Each touches
 * CHILD_MIB of its own; worker number LEAKER (0-based, -1 for none) then leaks LEAK_MIB_S
 * MiB/s. Everyone holds SECONDS. The pids go to PIDFILE ("parent P" then "child I PID"). The
 * parent reaps its children and exits 0 when it lives to the end.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void touch(long mib)
{
    for (long i = 0; i < mib; i++) {
        char *p = malloc(1 << 20);
        if (!p)
            return;
        memset(p, 0x33, 1 << 20);
    }
}

int main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: prefork SHARED_MIB CHILDREN CHILD_MIB LEAKER LEAK_MIB_S SECONDS PIDFILE\n");
        return 2;
    }
    long shared = atol(argv[1]), n = atol(argv[2]), own = atol(argv[3]), leaker = atol(argv[4]);
    long rate = atol(argv[5]), secs = atol(argv[6]);
    FILE *pf = fopen(argv[7], "w");
    if (!pf || n < 1 || n > 64)
        return 2;
    touch(shared);
    fprintf(pf, "parent %d\n", (int)getpid());
    fflush(pf);
    long end = now_ms() + secs * 1000;
    for (long i = 0; i < n; i++) {
        pid_t c = fork();
        if (c == 0) {
            touch(own);
            long t0 = now_ms(), k = 0;
            while (now_ms() < end) {
                if (i == leaker && rate > 0) {
                    touch(1);
                    k++;
                    long due = t0 + k * 1000 / rate, w = due - now_ms();
                    if (w > 0)
                        usleep((useconds_t)w * 1000);
                } else {
                    usleep(20000);
                }
            }
            _exit(0);
        }
        fprintf(pf, "child %ld %d\n", i, (int)c);
        fflush(pf);
    }
    fclose(pf);
    int st, bad = 0;
    pid_t w;
    while ((w = wait(&st)) > 0)
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            printf("prefork: child %d ended by signal %d\n", (int)w, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
            bad++;
        }
    printf("prefork: parent done, %d children ended early\n", bad);
    return 0;
}

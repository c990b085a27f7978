/* tests/prog/forker.c — fork and exec under the preload.
 *
 *   forker fork          fork without exec: the child counts its own, the parent stays right
 *   forker exec N CMD... fork N children that each exec CMD; exit 0 if all exit 0
 *
 * Prints "ok - "/"not ok - " lines (fork mode) for tests/run.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "preoom.h"

#define MiB (1024ULL * 1024ULL)

static int near(long long got, long long want)
{
    long long tol = want / 100 > 65536 ? want / 100 : 65536;
    return got - want <= tol && want - got <= tol;
}

static int fork_mode(void)
{
    preoom_stats_t base, s;
    preoom_stats(&base);
    char *volatile keep = malloc(8 * MiB);
    memset(keep, 1, 8 * MiB);
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        close(pipefd[0]);
        /* The heap is a copy: the parent's 8 MiB are ours too. Add 32 MiB of our own. */
        char *volatile mine = malloc(32 * MiB);
        memset(mine, 2, 32 * MiB);
        preoom_stats(&s);
        char line[256];
        int ok = near((long long)(s.committed - base.committed), (long long)(40 * MiB));
        int n = snprintf(line, sizeof line, "%s - fork child counts its own (+%llu MiB, expected 40)\n",
                         ok ? "ok" : "not ok",
                         (unsigned long long)((s.committed - base.committed) / MiB));
        if (write(pipefd[1], line, (size_t)n) != n)
            _exit(3);
        free(mine);
        exit(ok ? 0 : 1); /* exit, not _exit: the child's report is written at exit */
    }
    close(pipefd[1]);
    char buf[512];
    ssize_t n = read(pipefd[0], buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = '\0';
    int status;
    waitpid(pid, &status, 0);
    fputs(buf, stdout);
    preoom_stats(&s);
    int ok = near((long long)(s.committed - base.committed), (long long)(8 * MiB));
    printf("%s - fork parent's totals stay right (+%llu MiB, expected 8)\n", ok ? "ok" : "not ok",
           (unsigned long long)((s.committed - base.committed) / MiB));
    printf("%s - fork child exited 0\n", WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "ok" : "not ok");
    free(keep);
    return ok && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

static int exec_mode(int n, char **cmd)
{
    int bad = 0;
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            execvp(cmd[0], cmd);
            _exit(127);
        }
    }
    for (int i = 0; i < n; i++) {
        int status;
        if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            bad++;
    }
    printf("forker: %d children, %d failed\n", n, bad);
    return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "fork") == 0)
        return fork_mode();
    if (argc >= 4 && strcmp(argv[1], "exec") == 0)
        return exec_mode(atoi(argv[2]), argv + 3);
    fprintf(stderr, "usage: forker fork | forker exec N CMD [ARGS]\n");
    return 2;
}

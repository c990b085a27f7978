/* tests/prog/fd2reuse.c — a daemon that reuses descriptor 2 for its own journal, then forks
 * workers: what a preloaded library writes "to stderr" after that lands in the journal.
 *
 *   fd2reuse JOURNAL WORKERS
 *
 * Closes fd 2, opens JOURNAL (which gets number 2), writes "journal: start", forks WORKERS
 * children that each write "journal: worker" to fd 2 and exit after 300 ms, waits for them
 * and writes "journal: end". Every line of JOURNAL must be one of these three.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void say(const char *s) { (void)!write(2, s, strlen(s)); }

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: fd2reuse JOURNAL WORKERS\n");
        return 2;
    }
    int n = atoi(argv[2]);
    close(2);
    if (open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600) != 2)
        return 3;
    say("journal: start\n");
    for (int i = 0; i < n; i++) {
        pid_t p = fork();
        if (p == 0) {
            say("journal: worker\n");
            struct timespec ts = {0, 300 * 1000 * 1000};
            nanosleep(&ts, NULL);
            _exit(0);
        }
    }
    while (wait(NULL) > 0)
        ;
    say("journal: end\n");
    return 0;
}

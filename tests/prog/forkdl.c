/* tests/prog/forkdl.c — fork while other threads dlopen, allocate and throw through the
 * unwinder: every child must allocate, free and exit, whatever lock a parent thread held at
 * the moment of fork (the loader's, libunwind's, the allocator's).
 *
 *   forkdl LIBRARY [ROUNDS [SECONDS_PER_CHILD]]
 *
 * Two threads dlopen and dlclose LIBRARY (tests/prog/libdlalloc.so) in a loop, two churn
 * malloc and free, one walks the loaded objects with dl_iterate_phdr (as an unwinder does).
 * The main thread forks ROUNDS times; each child allocates (with PREOOM_STACKS=all each
 * allocation is unwound) and _exits. A child that has not exited after
 * SECONDS_PER_CHILD is reported as hung, killed, and the program exits 1: it never hangs
 * itself. Prints one deterministic line on success.
 */
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile int stop;
static const char *lib;

static void *opener(void *arg)
{
    (void)arg;
    while (!stop) {
        void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            fprintf(stderr, "forkdl: dlopen %s: %s\n", lib, dlerror());
            exit(2);
        }
        char *(*make)(size_t) = (char *(*)(size_t))dlsym(h, "dlalloc_make");
        if (make)
            free(make(4096));
        dlclose(h);
    }
    return NULL;
}

static void *churn(void *arg)
{
    unsigned s = (unsigned)(size_t)arg;
    void *keep[64] = {0};
    while (!stop) {
        s = s * 1103515245 + 12345;
        unsigned i = (s >> 8) % 64;
        free(keep[i]);
        keep[i] = malloc(16 + (s >> 16) % 4096);
    }
    for (int i = 0; i < 64; i++)
        free(keep[i]);
    return NULL;
}

static int count_object(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)info, (void)size;
    ++*(int *)data;
    return 0;
}

static void *walker(void *arg)
{
    (void)arg;
    while (!stop) {
        int n = 0;
        dl_iterate_phdr(count_object, &n);
    }
    return NULL;
}

/* Only allocation (unwound under PREOOM_STACKS=all) and exit: glibc itself does not reset
 * the lock of dl_iterate_phdr in a child, so a child that walked the loaded objects would
 * hang bare too. The preload must not make a plain malloc need it. */
static void child(void)
{
    char *p[16];
    for (int i = 0; i < 16; i++) {
        p[i] = malloc(32 + (size_t)i * 100);
        if (p[i])
            memset(p[i], i, 32);
    }
    char *q = realloc(p[0], 10000);
    if (q)
        p[0] = q;
    for (int i = 0; i < 16; i++)
        free(p[i]);
    _exit(0);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: forkdl LIBRARY [ROUNDS [SECONDS_PER_CHILD]]\n");
        return 2;
    }
    lib = argv[1];
    int rounds = argc > 2 ? atoi(argv[2]) : 200;
    int secs = argc > 3 ? atoi(argv[3]) : 10;
    pthread_t t[5];
    pthread_create(&t[0], NULL, opener, NULL);
    pthread_create(&t[1], NULL, opener, NULL);
    pthread_create(&t[2], NULL, churn, (void *)1);
    pthread_create(&t[3], NULL, churn, (void *)2);
    pthread_create(&t[4], NULL, walker, NULL);
    int bad = 0;
    for (int r = 0; r < rounds && !bad; r++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("forkdl: fork");
            bad = 1;
            break;
        }
        if (pid == 0)
            child();
        int status = 0;
        struct timespec tick = {0, 1000000};
        long waited_ms = 0;
        pid_t w;
        while ((w = waitpid(pid, &status, WNOHANG)) == 0 && waited_ms < secs * 1000L) {
            nanosleep(&tick, NULL);
            waited_ms++;
        }
        if (w == 0) {
            fprintf(stderr, "forkdl: round %d: child %d hung for %d s; killed\n", r, (int)pid,
                    secs);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            bad = 1;
        } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "forkdl: round %d: child ended with status 0x%x\n", r, status);
            bad = 1;
        }
    }
    stop = 1;
    for (int i = 0; i < 5; i++)
        pthread_join(t[i], NULL);
    if (!bad)
        printf("forkdl: %d children forked while threads dlopen, allocate and walk: all exited\n",
               rounds);
    return bad;
}

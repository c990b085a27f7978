/* tests/prog/sandbox.c — a program that shuts itself in after start-up, as sandboxed
 * services do: a seccomp filter (raw BPF, no library), synchronised to every thread (TSYNC),
 * that kills the whole process on open or openat. Then it allocates, maps, forks a child that
 * allocates too, and lives long enough for a preload's background thread to measure many
 * times (a measurement that opened /proc would kill it). Prints one deterministic line.
 *
 *   sandbox [MILLISECONDS]   how long to keep working after the filter (default 1500)
 *
 * Exit 0 on success; 2 when the kernel refuses the filter (the test then skips).
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SECCOMP_RET_KILL_PROCESS
#define SECCOMP_RET_KILL_PROCESS 0x80000000U
#endif
#ifndef SECCOMP_FILTER_FLAG_TSYNC
#define SECCOMP_FILTER_FLAG_TSYNC 1
#endif

static int forbid_open(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_open, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -errno;
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) != 0)
        return -errno;
    return 0;
}

static unsigned long work(long ms)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    unsigned long sum = 0, rounds = 0;
    void *keep[128] = {0};
    for (;;) {
        for (int i = 0; i < 128; i++) {
            free(keep[i]);
            keep[i] = malloc(32 + (size_t)((i * 7919 + rounds) % 20000));
            if (keep[i])
                ((char *)keep[i])[0] = (char)i, sum += (unsigned char)((char *)keep[i])[0];
        }
        char *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED) {
            memset(m, 1, 1 << 20);
            munmap(m, 1 << 20);
        }
        rounds++;
        struct timespec nap = {0, 2000000};
        nanosleep(&nap, NULL);
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >= ms)
            break;
    }
    for (int i = 0; i < 128; i++)
        free(keep[i]);
    return sum ? 1 : 0;
}

int main(int argc, char **argv)
{
    long ms = argc > 1 ? atol(argv[1]) : 1500;
    int rc = forbid_open();
    if (rc != 0) {
        fprintf(stderr, "sandbox: the kernel refuses the seccomp filter: %s\n", strerror(-rc));
        return 2;
    }
    unsigned long ok = work(ms / 2);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        _exit(work(ms / 4) ? 0 : 1);
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        perror("sandbox: fork");
        return 1;
    }
    ok &= work(ms / 2);
    printf("sandbox: open forbidden, worked %ld ms, child status %d, %s\n", ms, status,
           ok ? "ok" : "no work");
    return ok && status == 0 ? 0 : 1;
}

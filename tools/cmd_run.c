/* tools/cmd_run.c — `preoom run [OPTIONS] -- CMD ARGS...`: run CMD with libpreoom.so
 * preloaded and the PREOOM_* settings given on the command line, and return its exit status
 * the way a shell would (128 + the signal's number when a signal killed it).
 *
 * The loader ignores LD_PRELOAD, without a word, in static binaries and in binaries that gain
 * privileges at exec (set-user-ID, set-group-ID, file capabilities): run looks at CMD first
 * and says so in one line, then runs it anyway. It never changes CMD's arguments, its other
 * environment variables or its signal dispositions, and it passes on to CMD the signals that
 * someone sends to run itself.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cli.h"
#include "cmd.h"
#include "floor.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: preoom run [--registry NAME] [--interval MS] [--report PATH] "
               "[--stacks off|sample|all] [--verbose] [--version] -- CMD [ARGS...]\n");
}

/* libpreoom.so: $PREOOM_LIB, else relative to the executable: ./libpreoom.so (the build
 * tree), then LIBDIR as seen from BINDIR (built in by the Makefile: ../lib by default,
 * ../lib/x86_64-linux-gnu for a Debian multiarch LIBDIR), so a staged DESTDIR tree finds its
 * own library. The path must be absolute: CMD may change directory. */
#ifndef PREOOM_LIBDIR_FROM_BINDIR
#define PREOOM_LIBDIR_FROM_BINDIR "../lib"
#endif
static int find_lib(char *out, size_t size)
{
    const char *env = getenv("PREOOM_LIB");
    char exe[PATH_MAX], cand[PATH_MAX + 64];
    if (env && *env) {
        if (!realpath(env, exe) || access(exe, R_OK) != 0) {
            fprintf(stderr, "preoom: run: PREOOM_LIB=%s: %s\n", env, strerror(errno));
            return -1;
        }
        snprintf(out, size, "%s", exe);
        return 0;
    }
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        fprintf(stderr, "preoom: run: cannot find my own executable (%s); set PREOOM_LIB\n",
                strerror(errno));
        return -1;
    }
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    static const char *const rel[] = {"libpreoom.so", PREOOM_LIBDIR_FROM_BINDIR "/libpreoom.so"};
    for (size_t k = 0; k < sizeof rel / sizeof rel[0]; k++) {
        snprintf(cand, sizeof cand, "%s/%s", exe, rel[k]);
        char real[PATH_MAX];
        if (access(cand, R_OK) == 0 && realpath(cand, real)) {
            snprintf(out, size, "%s", real);
            return 0;
        }
    }
    fprintf(stderr, "preoom: run: no libpreoom.so in %s or %s/%s; set PREOOM_LIB\n", exe, exe,
            PREOOM_LIBDIR_FROM_BINDIR);
    return -1;
}

/* LD_PRELOAD = our library, then whatever was there. Ours goes first even when the user named
 * it later: an allocator preloaded before libpreoom.so (jemalloc, tcmalloc, mimalloc) serves
 * malloc without ever reaching our hooks, and preoom would count no malloc at all. Put first,
 * preoom forwards to that allocator and counts it. Sets *moved when it reordered. */
static int set_preload(const char *lib, int *moved)
{
    *moved = 0;
    if (strpbrk(lib, ": ")) {
        fprintf(stderr, "preoom: run: the library path %s holds ':' or ' ', which LD_PRELOAD "
                        "cannot carry\n", lib);
        return -1;
    }
    const char *old = getenv("LD_PRELOAD");
    if (!old || !*old)
        return setenv("LD_PRELOAD", lib, 1);
    size_t len = strlen(lib), need = len + 1 + strlen(old) + 1;
    char *v = malloc(need);
    if (!v)
        return -1;
    size_t n = (size_t)snprintf(v, need, "%s", lib);
    int first = 1;
    for (const char *p = old; *p;) {
        size_t w = strcspn(p, ": ");
        if (w == len && memcmp(p, lib, len) == 0) {
            if (!first)
                *moved = 1; /* ours, named after something else: dropped here, first above */
        } else if (w > 0) {
            n += (size_t)snprintf(v + n, need - n, ":%.*s", (int)w, p);
            first = 0;
        }
        p += w;
        p += strspn(p, ": ");
    }
    int rc = setenv("LD_PRELOAD", v, 1);
    free(v);
    return rc;
}

/* 1 if the ELF file's dynamic symbol table defines `name` (a program with an allocator linked
 * in statically exports malloc, and the loader binds every library's malloc to it, ahead of
 * any preload), 0 if not or not an ELF file of this machine, -1 when it cannot be read. */
static int elf_defines(int fd, const char *name)
{
    Elf64_Ehdr e;
    if (pread(fd, &e, sizeof e, 0) != (ssize_t)sizeof e || memcmp(e.e_ident, ELFMAG, SELFMAG) != 0 ||
        e.e_ident[EI_CLASS] != ELFCLASS64 || e.e_shentsize != sizeof(Elf64_Shdr) ||
        e.e_shnum == 0 || e.e_shnum > 4096)
        return 0;
    for (unsigned k = 0; k < e.e_shnum; k++) {
        Elf64_Shdr sh, strs;
        if (pread(fd, &sh, sizeof sh, (off_t)(e.e_shoff + k * sizeof sh)) != (ssize_t)sizeof sh)
            return -1;
        if (sh.sh_type != SHT_DYNSYM || sh.sh_entsize != sizeof(Elf64_Sym) || sh.sh_link >= e.e_shnum)
            continue;
        if (pread(fd, &strs, sizeof strs, (off_t)(e.e_shoff + sh.sh_link * sizeof strs)) !=
            (ssize_t)sizeof strs)
            return -1;
        size_t want = strlen(name) + 1;
        for (uint64_t i = 1; i < sh.sh_size / sizeof(Elf64_Sym) && i < (1u << 20); i++) {
            Elf64_Sym sym;
            char got[64];
            if (pread(fd, &sym, sizeof sym, (off_t)(sh.sh_offset + i * sizeof sym)) != (ssize_t)sizeof sym)
                return -1;
            if (sym.st_shndx == SHN_UNDEF || ELF64_ST_TYPE(sym.st_info) != STT_FUNC ||
                sym.st_name >= strs.sh_size || want > sizeof got)
                continue;
            if (pread(fd, got, want, (off_t)(strs.sh_offset + sym.st_name)) == (ssize_t)want &&
                memcmp(got, name, want) == 0)
                return 1;
        }
        return 0;
    }
    return 0;
}

/* CMD as execvp will find it, for the checks below. */
static int resolve(const char *cmd, char *out, size_t size)
{
    if (strchr(cmd, '/')) {
        snprintf(out, size, "%s", cmd);
        return access(out, F_OK) == 0 ? 0 : -1;
    }
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t len = strcspn(path, ":");
        snprintf(out, size, "%.*s/%s", (int)(len ? len : 1), len ? path : ".", cmd);
        struct stat st;
        if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
            return 0;
        path += len;
        if (*path == ':')
            path++;
    }
    return -1;
}

/* 1 if the ELF file has no PT_INTERP (static or static-pie), 0 if it has one or is not an
 * ELF file of this machine's byte order, -1 when it cannot be read. */
static int elf_is_static(int fd)
{
    unsigned char id[EI_NIDENT];
    if (pread(fd, id, sizeof id, 0) != (ssize_t)sizeof id)
        return -1;
    if (memcmp(id, ELFMAG, SELFMAG) != 0)
        return 0;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (id[EI_DATA] != ELFDATA2LSB)
        return 0;
#else
    if (id[EI_DATA] != ELFDATA2MSB)
        return 0;
#endif
    uint64_t phoff, phentsize, phnum;
    int is64 = id[EI_CLASS] == ELFCLASS64;
    if (is64) {
        Elf64_Ehdr e;
        if (pread(fd, &e, sizeof e, 0) != (ssize_t)sizeof e)
            return -1;
        if (e.e_type != ET_EXEC && e.e_type != ET_DYN)
            return 0;
        phoff = e.e_phoff, phentsize = e.e_phentsize, phnum = e.e_phnum;
    } else if (id[EI_CLASS] == ELFCLASS32) {
        Elf32_Ehdr e;
        if (pread(fd, &e, sizeof e, 0) != (ssize_t)sizeof e)
            return -1;
        if (e.e_type != ET_EXEC && e.e_type != ET_DYN)
            return 0;
        phoff = e.e_phoff, phentsize = e.e_phentsize, phnum = e.e_phnum;
    } else {
        return 0;
    }
    size_t want = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
    if (phentsize < want || phnum == 0 || phnum > 4096)
        return -1;
    for (uint64_t k = 0; k < phnum; k++) {
        uint32_t type;
        if (pread(fd, &type, sizeof type, (off_t)(phoff + k * phentsize)) != (ssize_t)sizeof type)
            return -1;
        if (type == PT_INTERP)
            return 0;
    }
    return 1;
}

/* Why the loader will not preload into `path`, as a phrase ("" when it will). A script is
 * judged by its interpreter, which is what the loader starts. */
static void preload_obstacles(const char *path, char *why, size_t size, int depth,
                              int *malloc_inside)
{
    why[0] = '\0';
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return;
    size_t n = 0;
    /* The kernel makes the exec "secure" (AT_SECURE) when it changes the ids. */
    if ((st.st_mode & S_ISUID) && st.st_uid != getuid())
        n += (size_t)snprintf(why + n, size - n, "%sset-user-ID (uid %u)", n ? ", " : "",
                              (unsigned)st.st_uid);
    if (n < size && (st.st_mode & S_ISGID) && (st.st_mode & S_IXGRP) && st.st_gid != getgid())
        n += (size_t)snprintf(why + n, size - n, "%sset-group-ID (gid %u)", n ? ", " : "",
                              (unsigned)st.st_gid);
    if (n < size && getxattr(path, "security.capability", NULL, 0) > 0)
        n += (size_t)snprintf(why + n, size - n, "%swith file capabilities", n ? ", " : "");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char head[256];
    ssize_t got = pread(fd, head, sizeof head - 1, 0);
    if (got > 2 && head[0] == '#' && head[1] == '!' && depth == 0) {
        head[got] = '\0';
        char *p = head + 2;
        while (*p == ' ' || *p == '\t')
            p++;
        p[strcspn(p, " \t\r\n")] = '\0';
        char inner[256];
        preload_obstacles(p, inner, sizeof inner, depth + 1, malloc_inside);
        if (inner[0] && n < size)
            snprintf(why + n, size - n, "%sa script for %.100s, which is %.120s", n ? ", " : "", p,
                     inner);
    } else if (n < size && elf_is_static(fd) == 1) {
        snprintf(why + n, size - n, "%sstatically linked", n ? ", " : "");
    }
    if (depth == 0 && !why[0] && elf_defines(fd, "malloc") == 1)
        *malloc_inside = 1;
    close(fd);
}

static volatile pid_t child_pid;

/* Pass on what someone sent to us. Signals from the terminal (si_code SI_KERNEL) reached the
 * child's process group already: forwarding them would deliver them twice. */
static void forward(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    if (child_pid > 0 && si && si->si_code <= 0)
        kill(child_pid, sig);
}

int preoom_cmd_run(const char *reg_name, int argc, char **argv)
{
    const char *interval = NULL, *report = NULL, *stacks = NULL;
    int verbose = 0, i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i], *v;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-')
            break;
        int r = 0;
        if ((r = preoom_cli_value("run", "--registry", argc, argv, &i, &v)) == 1)
            reg_name = v;
        else if (r == 0 && (r = preoom_cli_value("run", "--interval", argc, argv, &i, &v)) == 1)
            interval = v;
        else if (r == 0 && (r = preoom_cli_value("run", "--report", argc, argv, &i, &v)) == 1)
            report = v;
        else if (r == 0 && (r = preoom_cli_value("run", "--stacks", argc, argv, &i, &v)) == 1)
            stacks = v;
        if (r == 2)
            return 2;
        if (r == 1)
            continue;
        if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
            verbose++;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (preoom_cli_is_version(a)) {
            preoom_cli_print_version("run");
            return 0;
        } else {
            return preoom_cli_error("run", "unknown option '%s'", a);
        }
    }
    if (i >= argc)
        return preoom_cli_error("run", "no command given (preoom run [OPTIONS] -- CMD ARGS...)");
    /* Refuse here what the preload would only warn about and replace with a default. */
    char name[64];
    uint64_t u;
    int mode;
    if (strcmp(reg_name, "off") != 0 && preoom_parse_name(reg_name, name, sizeof name) != 0)
        return preoom_cli_error("run", "--registry wants a name of letters, digits, '.', '_' "
                                       "and '-', or off, not '%s'", reg_name);
    if (interval && preoom_parse_u64(interval, 1, 60000, &u) != 0)
        return preoom_cli_error("run", "--interval wants milliseconds from 1 to 60000, not '%s'",
                                interval);
    if (stacks && preoom_parse_stacks(stacks, &mode) != 0)
        return preoom_cli_error("run", "--stacks wants off, sample or all, not '%s'", stacks);
    if (report && !*report)
        return preoom_cli_error("run", "--report wants a path, not ''");
    char lib[PATH_MAX];
    int moved;
    if (find_lib(lib, sizeof lib) != 0 || set_preload(lib, &moved) != 0)
        return 1;
    if (moved && verbose)
        fprintf(stderr, "preoom: run: %s put first in LD_PRELOAD, so that an allocator "
                        "preloaded before it is counted\n", lib);
    char vbuf[16];
    snprintf(vbuf, sizeof vbuf, "%d", verbose > 3 ? 3 : verbose);
    if (setenv("PREOOM_REGISTRY", reg_name, 1) != 0 ||
        (interval && setenv("PREOOM_INTERVAL_MS", interval, 1) != 0) ||
        (report && setenv("PREOOM_REPORT", report, 1) != 0) ||
        (stacks && setenv("PREOOM_STACKS", stacks, 1) != 0) ||
        (verbose && setenv("PREOOM_VERBOSE", vbuf, 1) != 0)) {
        fprintf(stderr, "preoom: run: cannot set the environment: %s\n", strerror(errno));
        return 1;
    }
    char path[PATH_MAX], why[512];
    if (resolve(argv[i], path, sizeof path) == 0) {
        int malloc_inside = 0;
        preload_obstacles(path, why, sizeof why, 0, &malloc_inside);
        if (why[0])
            fprintf(stderr, "preoom: run: %s is %s: the loader ignores LD_PRELOAD there, so it "
                            "runs uncounted\n", path, why);
        else if (malloc_inside)
            fprintf(stderr, "preoom: run: %s defines malloc itself (an allocator linked in): "
                            "its malloc bytes are not counted, only mmap and brk\n", path);
    }

    static const int fwd[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
    struct sigaction sa, old[sizeof fwd / sizeof fwd[0]];
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = forward;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (size_t k = 0; k < sizeof fwd / sizeof fwd[0]; k++)
        sigaction(fwd[k], &sa, &old[k]);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "preoom: run: fork: %s\n", strerror(errno));
        return 1;
    }
    if (pid == 0) {
        for (size_t k = 0; k < sizeof fwd / sizeof fwd[0]; k++)
            sigaction(fwd[k], &old[k], NULL);
        execvp(argv[i], argv + i);
        int e = errno;
        fprintf(stderr, "preoom: run: cannot run %s: %s\n", argv[i], strerror(e));
        _exit(e == ENOENT ? 127 : 126);
    }
    child_pid = pid;
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "preoom: run: waitpid: %s\n", strerror(errno));
            return 1;
        }
    }
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

/* tools/notify.c — the --notify hook: spawn, time-limit and reap an operator's command for
 * each decision. See notify.h for the contract.
 *
 * Never: wait for a hook, allocate once running (every buffer is in the struct), or signal
 * anything but a process group this file created. posix_spawn rather than fork: glibc's
 * posix_spawn clones without copying our (mlocked) address space, so starting a hook costs
 * the same whatever our size, and the loop goes on as soon as the exec is under way.
 */
#include "notify.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

void preoom_notify_init(preoom_notify_t *n, const preoom_notify_conf_t *conf)
{
    memset(n, 0, sizeof *n);
    n->conf = *conf;
    if (!n->conf.timeout_ms)
        n->conf.timeout_ms = PREOOM_NOTIFY_DEFAULT_TIMEOUT_MS;
    if (n->conf.max_running == 0)
        n->conf.max_running = PREOOM_NOTIFY_DEFAULT_MAX;
    if (n->conf.max_running > PREOOM_NOTIFY_MAX_RUNNING)
        n->conf.max_running = PREOOM_NOTIFY_MAX_RUNNING;
    if (!n->conf.events)
        n->conf.events = PREOOM_NOTIFY_DEFAULT_EVENTS;
    n->stdin_fd = -1;
    if (!n->conf.cmd || !*n->conf.cmd)
        return;
    /* A descriptor number of our own for the hooks' stdin: each hook's pipe is put there
     * (dup3) so that one file action, made now, serves every spawn. */
    n->stdin_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (n->stdin_fd < 0)
        return;
    posix_spawn_file_actions_init(&n->fa);
    if (posix_spawn_file_actions_adddup2(&n->fa, n->stdin_fd, 0) != 0) {
        posix_spawn_file_actions_destroy(&n->fa);
        close(n->stdin_fd);
        n->stdin_fd = -1;
        return;
    }
    /* Its own process group, so a timeout kills what it started too; default signal
     * dispositions and an empty mask, not the daemon's (SIGPIPE is ignored here, and an
     * ignored signal stays ignored across exec). */
    sigset_t none, defs;
    sigemptyset(&none);
    sigemptyset(&defs);
    sigaddset(&defs, SIGPIPE);
    sigaddset(&defs, SIGHUP);
    sigaddset(&defs, SIGTERM);
    sigaddset(&defs, SIGINT);
    posix_spawnattr_init(&n->attr);
    posix_spawnattr_setpgroup(&n->attr, 0);
    posix_spawnattr_setsigmask(&n->attr, &none);
    posix_spawnattr_setsigdefault(&n->attr, &defs);
    posix_spawnattr_setflags(&n->attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                           POSIX_SPAWN_SETSIGDEF);
    n->spawn_ready = true;
}

void preoom_notify_fini(preoom_notify_t *n)
{
    if (n->spawn_ready) {
        posix_spawn_file_actions_destroy(&n->fa);
        posix_spawnattr_destroy(&n->attr);
        n->spawn_ready = false;
    }
    if (n->stdin_fd >= 0)
        close(n->stdin_fd);
    n->stdin_fd = -1;
}

int preoom_notify_parse_events(const char *list, uint32_t *mask)
{
    uint32_t m = 0;
    if (!list || !*list)
        return -EINVAL;
    const char *s = list;
    while (*s) {
        size_t k = strcspn(s, ",");
        if (k == 0)
            return -EINVAL;
        bool found = false;
        if (k == 3 && !memcmp(s, "all", 3)) {
            m |= (1u << (PREOOM_EV_LEFT + 1)) - 1;
            found = true;
        }
        for (int e = PREOOM_EV_ASK; !found && e <= PREOOM_EV_LEFT; e++) {
            const char *name = preoom_event_name((preoom_event_kind_t)e);
            if (strlen(name) == k && !memcmp(s, name, k)) {
                m |= 1u << e;
                found = true;
            }
        }
        if (!found)
            return -EINVAL;
        s += k;
        if (*s == ',' && !*++s)
            return -EINVAL; /* a trailing comma is a typo, not "nothing more" */
    }
    *mask = m;
    return 0;
}

/* One "NAME=value" entry appended to buf; the pointer goes to vars. */
static void env_put(char *buf, size_t cap, size_t *len, const char **vars, size_t *nv,
                    size_t cap_vars, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
static void env_put(char *buf, size_t cap, size_t *len, const char **vars, size_t *nv,
                    size_t cap_vars, const char *name, const char *fmt, ...)
{
    if (*nv >= cap_vars || *len >= cap)
        return;
    int a = snprintf(buf + *len, cap - *len, "%s=", name);
    if (a < 0 || (size_t)a >= cap - *len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int b = vsnprintf(buf + *len + (size_t)a, cap - *len - (size_t)a, fmt, ap);
    va_end(ap);
    if (b < 0 || (size_t)(a + b) >= cap - *len)
        return; /* a variable cut short would lie: left out instead */
    vars[(*nv)++] = buf + *len;
    *len += (size_t)(a + b) + 1;
}

size_t preoom_notify_env(const preoom_decision_t *d, size_t i, const char *domain, char *buf,
                         size_t cap, const char **vars, size_t cap_vars)
{
    const preoom_event_t *ev = &d->ev[i];
    size_t len = 0, nv = 0;
#define E(name, ...) env_put(buf, cap, &len, vars, &nv, cap_vars, name, __VA_ARGS__)
    E("PREOOM_EVENT", "%s", preoom_event_name(ev->kind));
    E("PREOOM_DOMAIN", "%s", domain && *domain ? domain : "/");
    E("PREOOM_PID", "%d", (int)ev->pid);
    E("PREOOM_UID", "%u", ev->pid ? ev->uid : 0);
    E("PREOOM_NAME", "%s", ev->name);
    E("PREOOM_CMDLINE", "%s", ev->cmdline);
    E("PREOOM_REGISTERED", "%d", ev->registered ? 1 : 0);
    E("PREOOM_BYTES", "%" PRIu64, ev->bytes);
    E("PREOOM_GRACE_MS", "%u", ev->grace_ms);
    E("PREOOM_WHY", "%s", ev->why ? ev->why : "");
    E("PREOOM_DRY_RUN", "%d", d->dry_run ? 1 : 0);
    E("PREOOM_PRESSURE", "%s", preoom_pressure_name((enum preoom_pressure)d->level));
    E("PREOOM_AVAILABLE_BYTES", "%" PRIu64, d->available_bytes);
    E("PREOOM_TOTAL_BYTES", "%" PRIu64, d->total_bytes);
    E("PREOOM_ASK_LINE_BYTES", "%" PRIu64, d->ask_bytes);
    E("PREOOM_TERM_LINE_BYTES", "%" PRIu64, d->term_bytes);
    E("PREOOM_KILL_LINE_BYTES", "%" PRIu64, d->kill_bytes);
#undef E
    return nv;
}

/* Is this entry of the daemon's environment one of the names we set? Ours win: an inherited
 * PREOOM_PID would otherwise be the first one getenv finds. */
static bool ours(const char *entry, const char **vars, size_t nv)
{
    for (size_t k = 0; k < nv; k++) {
        size_t eq = (size_t)(strchr(vars[k], '=') - vars[k]);
        if (!strncmp(entry, vars[k], eq + 1))
            return true;
    }
    return false;
}

static void say_once(preoom_notify_t *n, bool *said, const char *msg)
{
    if (*said || !n->conf.say)
        return;
    *said = true;
    n->conf.say(n->conf.say_ctx, msg);
}

int preoom_notify_event(preoom_notify_t *n, const preoom_decision_t *d, size_t i,
                        const preoom_engine_input_t *in, const preoom_badness_t *scores,
                        const char *domain, uint64_t now_ms)
{
    if (!n->conf.cmd || !*n->conf.cmd || i >= d->n_events ||
        !(n->conf.events & (1u << d->ev[i].kind)))
        return 0;
    /* Finished hooks free their places before this one is counted against the cap. */
    preoom_notify_reap(n, now_ms);
    if (n->n_running >= n->conf.max_running) {
        n->dropped++;
        say_once(n, &n->said_drop, "--notify: a hook was not run because --notify-max hooks "
                                   "are still running (said once; preoom_notify_total counts "
                                   "the dropped ones)");
        return -EBUSY;
    }
    int len = preoom_engine_format_event(d, i, in, scores, 1, n->json, sizeof n->json - 1);
    if (len < 0)
        len = 0;
    n->json[len++] = '\n';

    size_t nv = preoom_notify_env(d, i, domain, n->envbuf, sizeof n->envbuf, n->envp,
                                  PREOOM_NOTIFY_ENV_OWN);
    size_t ne = nv;
    for (char **e = environ; e && *e && ne < nv + PREOOM_NOTIFY_ENV_INHERIT; e++)
        if (!ours(*e, n->envp, nv))
            n->envp[ne++] = *e;
    n->envp[ne] = NULL;

    if (!n->spawn_ready) {
        n->spawn_failed++;
        say_once(n, &n->said_spawn, "--notify: the hook cannot be started (no descriptor for "
                                    "its stdin)");
        return -EBADF;
    }
    /* The JSON line goes into a pipe before the hook starts: it is far smaller than a pipe's
     * buffer (64 KiB), so the write cannot block even if the hook never reads. */
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        int e = errno;
        n->spawn_failed++;
        say_once(n, &n->said_spawn, "--notify: cannot make a pipe for the hook");
        return -e;
    }
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    ssize_t w = write(p[1], n->json, (size_t)len);
    close(p[1]);
    (void)w; /* a short write leaves the hook a cut line; it still has the environment */
    /* The read end onto our held number; the file action dup2s it onto the hook's 0. */
    int rc = dup3(p[0], n->stdin_fd, O_CLOEXEC) < 0 ? errno : 0;
    close(p[0]);
    char *argv[] = {(char *)"sh", (char *)"-c", (char *)n->conf.cmd, NULL};
    pid_t pid;
    if (rc == 0)
        rc = posix_spawn(&pid, "/bin/sh", &n->fa, &n->attr, argv, (char **)n->envp);
    if (rc != 0) {
        n->spawn_failed++;
        say_once(n, &n->said_spawn, "--notify: /bin/sh could not be started for the hook");
        return -rc;
    }
    n->run[n->n_running++] = (preoom_notify_run_t){pid, now_ms + n->conf.timeout_ms, false};
    n->started++;
    return 0;
}

size_t preoom_notify_reap(preoom_notify_t *n, uint64_t now_ms)
{
    size_t w = 0;
    for (size_t k = 0; k < n->n_running; k++) {
        preoom_notify_run_t *r = &n->run[k];
        int st;
        pid_t got = waitpid(r->pid, &st, WNOHANG);
        if (got == r->pid || (got < 0 && errno == ECHILD)) {
            if (got == r->pid && !r->killed && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
                n->failed++;
                say_once(n, &n->said_failed, "--notify: the hook exited with a non-zero "
                                             "status or on a signal (said once)");
            }
            continue; /* reaped: its place is free */
        }
        if (!r->killed && now_ms >= r->deadline_ms) {
            /* The group first (what the shell started), then the shell itself in case it
             * left its group. The group id is the hook's own pid, which cannot be reused
             * before we reap it: only hooks of ours are ever hit. */
            kill(-r->pid, SIGKILL);
            kill(r->pid, SIGKILL);
            r->killed = true;
            n->timed_out++;
            say_once(n, &n->said_timeout, "--notify: a hook ran past --notify-timeout and "
                                          "was killed with its process group (said once)");
        }
        n->run[w++] = *r;
    }
    n->n_running = w;
    return w;
}

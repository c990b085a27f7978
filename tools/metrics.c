/* tools/metrics.c — the Prometheus text exposition of preoomd's state.
 *
 * The HTTP side is the least that Prometheus needs: one GET per connection, answered and
 * closed, on 127.0.0.1 only. It runs in a thread of its own, off the decision loop, which
 * only copies its figures in under a mutex (preoom_metrics_publish): no client, however slow
 * or many, can hold up a decision. The server holds at most METRICS_MAX_CONN connections,
 * each for at most METRICS_DEADLINE_MS; others are closed at once. Only "GET /metrics"
 * answers 200. The textfile is written to a temporary file made with O_EXCL, never through
 * a link or into anything but a regular file, then renamed.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"

/* The output, cut at the last whole line when it does not fit. */
typedef struct {
    char *buf;
    size_t cap, n;
    bool full;
} out_t;

static void put(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out_t *o, const char *fmt, ...)
{
    if (o->full)
        return;
    va_list ap;
    va_start(ap, fmt);
    size_t room = o->cap > o->n ? o->cap - o->n : 0;
    int k = vsnprintf(o->buf + o->n, room, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= room) {
        o->full = true;
        /* Back to the end of the last whole line. */
        while (o->n > 0 && o->buf[o->n - 1] != '\n')
            o->n--;
        if (o->cap)
            o->buf[o->n < o->cap ? o->n : o->cap - 1] = '\0';
        return;
    }
    o->n += (size_t)k;
}

/* A label value as the text format wants it: backslash, double quote and newline escaped. */
static void put_label(out_t *o, const char *v)
{
    char esc[2 * PREOOM_METRICS_DOMAIN_MAX + 1];
    size_t k = 0;
    for (; *v && k + 2 < sizeof esc; v++) {
        if (*v == '\\' || *v == '"') {
            esc[k++] = '\\';
            esc[k++] = *v;
        } else if (*v == '\n') {
            esc[k++] = '\\';
            esc[k++] = 'n';
        } else {
            esc[k++] = *v;
        }
    }
    esc[k] = '\0';
    put(o, "%s", esc);
}

static void family(out_t *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{domain="D"<extra>[,name="N"]} and a space: extra is labels already safe to print. */
static void series(out_t *o, const char *name, const char *domain, const char *extra,
                   const char *name_label)
{
    put(o, "%s{domain=\"", name);
    put_label(o, domain);
    put(o, "\"%s", extra);
    if (name_label) {
        put(o, ",name=\"");
        put_label(o, name_label);
        put(o, "\"");
    }
    put(o, "} ");
}

/* A fixed-point value: v / 10^digits, with a sign. */
static void put_fixed(out_t *o, int64_t v, unsigned digits)
{
    uint64_t scale = 1;
    for (unsigned k = 0; k < digits; k++)
        scale *= 10;
    uint64_t a = v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v;
    put(o, "%s%llu.%0*llu\n", v < 0 ? "-" : "", (unsigned long long)(a / scale), (int)digits,
        (unsigned long long)(a % scale));
}

enum dom_value {
    DV_LEVEL, DV_TOTAL, DV_AVAILABLE, DV_EFFECTIVE, DV_ASK, DV_TERM, DV_KILL, DV_IN_CGROUP,
    DV_EXPOSURE, DV_COMMITTED, DV_TOUCHED, DV_REGISTERED, DV_ANSWERS, DV_RELEASED, DV_OOM,
};

static uint64_t dom_value(const preoom_metrics_domain_t *d, enum dom_value v)
{
    switch (v) {
    case DV_LEVEL: return (uint64_t)(d->level < 0 ? 0 : d->level);
    case DV_TOTAL: return d->total_bytes;
    case DV_AVAILABLE: return d->available_bytes;
    case DV_EFFECTIVE: return d->effective_bytes;
    case DV_ASK: return d->ask_bytes;
    case DV_TERM: return d->term_bytes;
    case DV_KILL: return d->kill_bytes;
    case DV_IN_CGROUP: return d->in_cgroup ? 1 : 0;
    case DV_EXPOSURE: return d->exposure_bytes;
    case DV_COMMITTED: return d->committed_bytes;
    case DV_TOUCHED: return d->touched_bytes;
    case DV_REGISTERED: return d->registered;
    case DV_ANSWERS: return d->answers;
    case DV_RELEASED: return d->released_bytes;
    case DV_OOM: return d->cgroup_oom_kills;
    }
    return 0;
}

static const struct {
    const char *name, *type, *help;
    enum dom_value v;
} dom_families[] = {
    {"preoom_pressure_level", "gauge", "0 none, 1 moderate (ask), 2 critical (SIGTERM), 3 complete (SIGKILL).", DV_LEVEL},
    {"preoom_memory_total_bytes", "gauge", "What the lines are relative to: the cgroup limit, or RAM plus swap.", DV_TOTAL},
    {"preoom_memory_available_bytes", "gauge", "What is left of it.", DV_AVAILABLE},
    {"preoom_memory_effective_bytes", "gauge", "Available less the weighted exposure.", DV_EFFECTIVE},
    {"preoom_ask_line_bytes", "gauge", "Available memory at or below which the processes that can give are asked.", DV_ASK},
    {"preoom_term_line_bytes", "gauge", "Available memory at or below which SIGTERM may be sent (while it still falls).", DV_TERM},
    {"preoom_kill_line_bytes", "gauge", "Available memory at or below which SIGKILL is sent.", DV_KILL},
    {"preoom_in_cgroup", "gauge", "1 when measured against a memory cgroup limit.", DV_IN_CGROUP},
    {"preoom_exposure_bytes", "gauge", "Committed but untouched memory of the registered processes.", DV_EXPOSURE},
    {"preoom_committed_bytes", "gauge", "Committed memory of the registered processes.", DV_COMMITTED},
    {"preoom_touched_bytes", "gauge", "Touched memory (RssAnon + VmSwap) of the registered processes.", DV_TOUCHED},
    {"preoom_registered_processes", "gauge", "Live, verified registry slots.", DV_REGISTERED},
    {"preoom_answers_total", "counter", "Release requests answered by the asked process.", DV_ANSWERS},
    {"preoom_released_bytes_total", "counter", "Bytes by which the asked processes' touched memory fell.", DV_RELEASED},
    {"preoom_cgroup_kernel_oom_kills_total", "counter", "The kernel's own OOM kills in the watched cgroup (0 for the host).", DV_OOM},
};

size_t preoom_metrics_format(const preoom_metrics_t *m, const preoom_metrics_domain_t *doms,
                             size_t n_doms, const preoom_metrics_proc_t *procs, size_t n_procs,
                             char *buf, size_t cap)
{
    out_t o = {buf, cap, 0, false};
    if (cap)
        buf[0] = '\0';
    /* The daemon's own. */
    family(&o, "preoom_build_info", "gauge", "Always 1; the version is in the label.");
    put(&o, "preoom_build_info{version=\"");
    put_label(&o, m->version);
    put(&o, "\"} 1\n");
    family(&o, "preoom_start_time_seconds", "gauge", "When preoomd started, in seconds since the Unix epoch.");
    put(&o, "preoom_start_time_seconds %llu\n", (unsigned long long)m->start_time_s);
    family(&o, "preoom_pass_seconds", "gauge", "How long the last decision pass took (reading, choosing, acting; not sleeping).");
    put(&o, "preoom_pass_seconds ");
    put_fixed(&o, (int64_t)m->pass_us, 6);
    family(&o, "preoom_poll_interval_seconds", "gauge", "Current polling interval.");
    put(&o, "preoom_poll_interval_seconds ");
    put_fixed(&o, m->poll_ms, 3);
    family(&o, "preoom_notify_hooks_total", "counter", "--notify hooks by outcome: started, dropped (too many running), timed_out (killed), failed (non-zero exit).");
    put(&o, "preoom_notify_hooks_total{result=\"started\"} %llu\n", (unsigned long long)m->notify_started);
    put(&o, "preoom_notify_hooks_total{result=\"dropped\"} %llu\n", (unsigned long long)m->notify_dropped);
    put(&o, "preoom_notify_hooks_total{result=\"timed_out\"} %llu\n", (unsigned long long)m->notify_timed_out);
    put(&o, "preoom_notify_hooks_total{result=\"failed\"} %llu\n", (unsigned long long)m->notify_failed);

    /* Per domain: each family once, one series per domain. */
    for (size_t f = 0; f < sizeof dom_families / sizeof dom_families[0]; f++) {
        family(&o, dom_families[f].name, dom_families[f].type, dom_families[f].help);
        for (size_t k = 0; k < n_doms; k++) {
            series(&o, dom_families[f].name, doms[k].domain, "", NULL);
            put(&o, "%llu\n", (unsigned long long)dom_value(&doms[k], dom_families[f].v));
        }
    }
    family(&o, "preoom_psi_some_avg10_percent", "gauge", "Memory PSI some avg10.");
    for (size_t k = 0; k < n_doms; k++) {
        series(&o, "preoom_psi_some_avg10_percent", doms[k].domain, "", NULL);
        put_fixed(&o, doms[k].psi_some_x100, 2);
    }
    family(&o, "preoom_psi_full_avg10_percent", "gauge", "Memory PSI full avg10.");
    for (size_t k = 0; k < n_doms; k++) {
        series(&o, "preoom_psi_full_avg10_percent", doms[k].domain, "", NULL);
        put_fixed(&o, doms[k].psi_full_x100, 2);
    }
    family(&o, "preoom_time_to_kill_line_seconds", "gauge", "Time until available memory reaches the kill line at its recent fall; -1 when it is not falling.");
    for (size_t k = 0; k < n_doms; k++) {
        series(&o, "preoom_time_to_kill_line_seconds", doms[k].domain, "", NULL);
        put_fixed(&o, doms[k].time_to_kill_ms < 0 ? -1000 : doms[k].time_to_kill_ms, 3);
    }
    family(&o, "preoom_actions_total", "counter", "Actions taken, by rung.");
    static const char *const actions[] = {"ask", "sigterm", "sigkill"};
    for (size_t k = 0; k < n_doms; k++) {
        uint64_t v[3] = {doms[k].asks, doms[k].terms, doms[k].kills};
        for (size_t a = 0; a < 3; a++) {
            char extra[32];
            snprintf(extra, sizeof extra, ",action=\"%s\"", actions[a]);
            series(&o, "preoom_actions_total", doms[k].domain, extra, NULL);
            put(&o, "%llu\n", (unsigned long long)v[a]);
        }
    }

    /* Per registered process, at most PREOOM_METRICS_MAX_PROCS of them. */
    static const struct { const char *name, *help; } pf[] = {
        {"preoom_process_committed_bytes", "Committed memory of a registered process (the 50 that touch the most)."},
        {"preoom_process_touched_bytes", "Touched memory (RssAnon + VmSwap) of a registered process (the 50 that touch the most)."},
        {"preoom_process_exposure_bytes", "Committed but untouched memory of a registered process (the 50 that touch the most)."},
        {"preoom_process_slack_bytes", "Freed to malloc but not to the system, of a registered process (the 50 that touch the most)."},
    };
    if (n_procs > PREOOM_METRICS_MAX_PROCS)
        n_procs = PREOOM_METRICS_MAX_PROCS;
    for (size_t f = 0; n_procs && f < sizeof pf / sizeof pf[0]; f++) {
        family(&o, pf[f].name, "gauge", pf[f].help);
        for (size_t k = 0; k < n_procs; k++) {
            const preoom_metrics_proc_t *p = &procs[k];
            const char *dom = p->domain < n_doms ? doms[p->domain].domain : "/";
            char extra[32], name[sizeof p->name + 1];
            snprintf(extra, sizeof extra, ",pid=\"%d\"", (int)p->pid);
            snprintf(name, sizeof name, "%s", p->name);
            series(&o, pf[f].name, dom, extra, name);
            uint64_t v = f == 0 ? p->committed_bytes : f == 1 ? p->touched_bytes
                       : f == 2 ? p->exposure_bytes : p->slack_bytes;
            put(&o, "%llu\n", (unsigned long long)v);
        }
    }
    return o.n;
}

void preoom_metrics_offer_proc(preoom_metrics_proc_t *top, size_t *n, size_t cap,
                               const preoom_metrics_proc_t *p)
{
    if (*n < cap) {
        top[(*n)++] = *p;
        return;
    }
    size_t min = 0;
    for (size_t k = 1; k < *n; k++)
        if (top[k].touched_bytes < top[min].touched_bytes)
            min = k;
    if (*n && p->touched_bytes > top[min].touched_bytes)
        top[min] = *p;
}

int preoom_metrics_write_file(const char *path, const char *text, size_t len)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= sizeof tmp)
        return -ENAMETOOLONG;
    /* O_EXCL: whatever someone planted at the temporary name (a FIFO, a link) is refused
     * without being opened; ours from a previous crash is removed once and made again. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
    if (fd < 0 && errno == EEXIST) {
        struct stat st;
        if (lstat(tmp, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid())
            return -EEXIST;
        unlink(tmp);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
    }
    if (fd < 0)
        return -errno;
    /* The destination too must be a regular file (or absent): rename would replace a FIFO
     * or a link, but a directory or device there means a wrong path. */
    struct stat dst;
    if (lstat(path, &dst) == 0 && !S_ISREG(dst.st_mode)) {
        close(fd);
        unlink(tmp);
        return -EINVAL;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            unlink(tmp);
            return -e;
        }
        off += (size_t)w;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return -e;
    }
    return 0;
}

int preoom_metrics_remove_file(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return -errno;
    if (!S_ISREG(st.st_mode) || st.st_uid != geteuid())
        return -EPERM;
    return unlink(path) == 0 ? 0 : -errno;
}

int preoom_metrics_listen(int port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 64) != 0) {
        int e = errno;
        close(s);
        return -e;
    }
    return s;
}

/* ---- the server thread ------------------------------------------------------------------ */

static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
/* The loop's last figures. */
static preoom_metrics_t shared;
static preoom_metrics_domain_t shared_doms[PREOOM_METRICS_MAX_DOMAINS];
static preoom_metrics_proc_t shared_procs[PREOOM_METRICS_MAX_PROCS];
static size_t shared_n_doms, shared_n_procs;

void preoom_metrics_publish(const preoom_metrics_t *m, const preoom_metrics_domain_t *doms,
                            size_t n_doms, const preoom_metrics_proc_t *procs, size_t n_procs)
{
    if (n_doms > PREOOM_METRICS_MAX_DOMAINS)
        n_doms = PREOOM_METRICS_MAX_DOMAINS;
    if (n_procs > PREOOM_METRICS_MAX_PROCS)
        n_procs = PREOOM_METRICS_MAX_PROCS;
    pthread_mutex_lock(&shared_lock);
    shared = *m;
    memcpy(shared_doms, doms, n_doms * sizeof *doms);
    memcpy(shared_procs, procs, n_procs * sizeof *procs);
    shared_n_doms = n_doms;
    shared_n_procs = n_procs;
    pthread_mutex_unlock(&shared_lock);
}

typedef struct {
    int fd;
    uint64_t deadline_ms;
    size_t have;
    char req[512];
} conn_t;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int preoom_metrics_route(const char *req, size_t len)
{
    /* "GET /metrics" followed by a space, '?' or the end of the line: Prometheus asks for
     * exactly this; everything else is not ours to answer. */
    static const char want[] = "GET /metrics";
    if (len < sizeof want - 1 || memcmp(req, want, sizeof want - 1) != 0)
        return 404;
    if (len == sizeof want - 1)
        return 200;
    char c = req[sizeof want - 1];
    return c == ' ' || c == '?' || c == '\r' || c == '\n' ? 200 : 404;
}

static void respond(conn_t *c)
{
    /* Static: only the server thread answers, one connection at a time. */
    static char text[PREOOM_METRICS_TEXT_MAX];
    char head[192];
    int code = preoom_metrics_route(c->req, c->have);
    size_t len;
    if (code == 200) {
        /* Formatted under the lock: a copy of the arrays would cost as much, on our stack. */
        pthread_mutex_lock(&shared_lock);
        len = preoom_metrics_format(&shared, shared_doms, shared_n_doms, shared_procs,
                                    shared_n_procs, text, sizeof text);
        pthread_mutex_unlock(&shared_lock);
    } else {
        len = (size_t)snprintf(text, sizeof text, "not found: only /metrics is served here\n");
    }
    int h = snprintf(head, sizeof head,
                     "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     code == 200 ? "200 OK" : "404 Not Found", len);
    /* Non-blocking: the answer (at most PREOOM_METRICS_TEXT_MAX) fits a loopback socket's
     * buffer; a client that does not read simply loses the rest. */
    if (send(c->fd, head, (size_t)h, MSG_NOSIGNAL | MSG_DONTWAIT) == h)
        (void)send(c->fd, text, len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void *serve(void *arg)
{
    int lsock = (int)(intptr_t)arg;
    conn_t conns[METRICS_MAX_CONN];
    size_t n = 0;
    struct pollfd pf[METRICS_MAX_CONN + 1];
    for (;;) {
        uint64_t now = mono_ms();
        int timeout = -1;
        pf[0] = (struct pollfd){lsock, POLLIN, 0};
        for (size_t i = 0; i < n; i++) {
            pf[i + 1] = (struct pollfd){conns[i].fd, POLLIN, 0};
            int left = conns[i].deadline_ms > now ? (int)(conns[i].deadline_ms - now) : 0;
            if (timeout < 0 || left < timeout)
                timeout = left;
        }
        if (poll(pf, (nfds_t)(n + 1), timeout) < 0 && errno != EINTR)
            continue;
        now = mono_ms();
        size_t w = 0;
        for (size_t i = 0; i < n; i++) {
            conn_t *c = &conns[i];
            int done = 0;
            if (pf[i + 1].revents) {
                ssize_t r = recv(c->fd, c->req + c->have, sizeof c->req - 1 - c->have,
                                 MSG_DONTWAIT);
                if (r <= 0) {
                    done = r == 0 || (errno != EAGAIN && errno != EINTR);
                } else {
                    c->have += (size_t)r;
                    c->req[c->have] = '\0';
                    /* The request line is all we read; a full buffer answers too. */
                    if (memchr(c->req, '\n', c->have) || c->have == sizeof c->req - 1) {
                        respond(c);
                        done = 1;
                    }
                }
            }
            if (!done && now >= c->deadline_ms)
                done = 1; /* silent or slow: dropped, unanswered */
            if (done)
                close(c->fd);
            else
                conns[w++] = *c;
        }
        n = w;
        if (pf[0].revents & POLLIN) {
            for (;;) {
                int fd = accept4(lsock, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (fd < 0)
                    break;
                if (n == METRICS_MAX_CONN) {
                    close(fd); /* over the cap: refused at once */
                    continue;
                }
                conns[n] = (conn_t){fd, now + METRICS_DEADLINE_MS, 0, {0}};
                n++;
            }
        }
    }
    return NULL;
}

int preoom_metrics_start(int port)
{
    int s = preoom_metrics_listen(port);
    if (s < 0)
        return s;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024); /* mlockall may lock all of it */
    /* The decision loop's signals (SIGTERM, SIGINT) are for the main thread only. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t th;
    int rc = pthread_create(&th, &attr, serve, (void *)(intptr_t)s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        close(s);
        return -rc;
    }
    return 0;
}

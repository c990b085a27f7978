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
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"

size_t preoom_metrics_format(const preoom_metrics_t *m, char *buf, size_t cap)
{
    size_t n = 0;
#define LINE(...)                                                                           \
    do {                                                                                    \
        int k = snprintf(buf + n, cap > n ? cap - n : 0, __VA_ARGS__);                      \
        if (k < 0 || (size_t)k >= (cap > n ? cap - n : 0))                                  \
            return n;                                                                       \
        n += (size_t)k;                                                                     \
    } while (0)
#define METRIC(name, type, help, fmt, ...)                                                  \
    LINE("# HELP " name " " help "\n# TYPE " name " " type "\n" name " " fmt "\n", __VA_ARGS__)
    METRIC("preoom_pressure_level", "gauge", "0 none, 1 moderate (ask), 2 critical (SIGTERM), 3 complete (SIGKILL).", "%d", m->level);
    METRIC("preoom_memory_total_bytes", "gauge", "What the thresholds are relative to: the cgroup limit or RAM+swap.", "%llu", (unsigned long long)m->total_bytes);
    METRIC("preoom_memory_available_bytes", "gauge", "What is left of it.", "%llu", (unsigned long long)m->available_bytes);
    METRIC("preoom_memory_effective_bytes", "gauge", "Available less weighted exposure.", "%llu", (unsigned long long)m->effective_bytes);
    METRIC("preoom_in_cgroup", "gauge", "1 when measured against a memory cgroup limit.", "%d", m->in_cgroup);
    METRIC("preoom_exposure_bytes", "gauge", "Committed but untouched memory of the registered processes.", "%llu", (unsigned long long)m->exposure_bytes);
    METRIC("preoom_committed_bytes", "gauge", "Committed memory of the registered processes.", "%llu", (unsigned long long)m->committed_bytes);
    METRIC("preoom_touched_bytes", "gauge", "Touched memory (RssAnon + VmSwap) of the registered processes.", "%llu", (unsigned long long)m->touched_bytes);
    METRIC("preoom_registered_processes", "gauge", "Live, verified registry slots.", "%llu", (unsigned long long)m->registered);
    METRIC("preoom_psi_some_avg10_percent", "gauge", "Memory PSI some avg10.", "%u.%02u", m->psi_some_x100 / 100, m->psi_some_x100 % 100);
    METRIC("preoom_psi_full_avg10_percent", "gauge", "Memory PSI full avg10.", "%u.%02u", m->psi_full_x100 / 100, m->psi_full_x100 % 100);
    METRIC("preoom_time_to_kill_line_seconds", "gauge", "Time until available memory reaches the kill line at its recent fall; -1 when it is not falling.", "%s%lld.%03lld", m->time_to_kill_ms < 0 ? "-" : "", m->time_to_kill_ms < 0 ? 1LL : (long long)(m->time_to_kill_ms / 1000), m->time_to_kill_ms < 0 ? 0LL : (long long)(m->time_to_kill_ms % 1000));
    METRIC("preoom_pass_seconds", "gauge", "How long the last decision pass took (reading, choosing, acting; not sleeping).", "%llu.%06llu", (unsigned long long)(m->pass_us / 1000000), (unsigned long long)(m->pass_us % 1000000));
    METRIC("preoom_poll_interval_seconds", "gauge", "Current polling interval.", "%u.%03u", m->poll_ms / 1000, m->poll_ms % 1000);
    LINE("# HELP preoom_actions_total Actions taken, by rung.\n# TYPE preoom_actions_total counter\n");
    LINE("preoom_actions_total{action=\"ask\"} %llu\n", (unsigned long long)m->asks);
    LINE("preoom_actions_total{action=\"sigterm\"} %llu\n", (unsigned long long)m->terms);
    LINE("preoom_actions_total{action=\"sigkill\"} %llu\n", (unsigned long long)m->kills);
    METRIC("preoom_answers_total", "counter", "Release requests answered by the asked process.", "%llu", (unsigned long long)m->answers);
    METRIC("preoom_released_bytes_total", "counter", "Bytes the asked processes said they released.", "%llu", (unsigned long long)m->released_bytes);
    METRIC("preoom_cgroup_kernel_oom_kills", "gauge", "The kernel's OOM kills in the watched cgroup.", "%llu", (unsigned long long)m->cgroup_oom_kills);
#undef METRIC
#undef LINE
    return n;
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
static preoom_metrics_t shared;     /* the loop's last figures */

void preoom_metrics_publish(const preoom_metrics_t *m)
{
    pthread_mutex_lock(&shared_lock);
    shared = *m;
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
    char text[8192], head[192];
    int code = preoom_metrics_route(c->req, c->have);
    size_t len;
    if (code == 200) {
        preoom_metrics_t m;
        pthread_mutex_lock(&shared_lock);
        m = shared;
        pthread_mutex_unlock(&shared_lock);
        len = preoom_metrics_format(&m, text, sizeof text);
    } else {
        len = (size_t)snprintf(text, sizeof text, "not found: only /metrics is served here\n");
    }
    int h = snprintf(head, sizeof head,
                     "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     code == 200 ? "200 OK" : "404 Not Found", len);
    /* Non-blocking: an answer this small fits the socket buffer; a client that does not
     * read simply loses the rest. */
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

/* tools/metrics.c — the Prometheus text exposition of preoomd's state.
 *
 * The HTTP side is the least that Prometheus needs: one GET per connection, answered and
 * closed, on 127.0.0.1 only, served from the daemon's poll loop without threads. A slow or
 * silent client gets a short receive timeout and is dropped: it must never hold up a
 * decision.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
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
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return -errno;
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
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 8) != 0) {
        int e = errno;
        close(s);
        return -e;
    }
    return s;
}

void preoom_metrics_serve(int sock, const char *text, size_t len)
{
    for (int k = 0; k < 8; k++) {
        int c = accept4(sock, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            return;
        struct timeval tv = {0, 100000};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        char req[1024];
        ssize_t r = recv(c, req, sizeof req - 1, 0);
        (void)r; /* whatever was asked, the answer is the metrics */
        char head[160];
        int h = snprintf(head, sizeof head,
                         "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                         "Content-Length: %zu\r\nConnection: close\r\n\r\n", len);
        if (send(c, head, (size_t)h, MSG_NOSIGNAL) == h)
            (void)send(c, text, len, MSG_NOSIGNAL);
        close(c);
    }
}

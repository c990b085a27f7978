/* tools/metrics.h — preoomd's figures in the Prometheus text format, for a fleet's
 * Prometheus: a textfile for node_exporter's textfile collector, and/or a loopback port. */
#ifndef PREOOM_TOOLS_METRICS_H
#define PREOOM_TOOLS_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int level;
    uint64_t total_bytes, available_bytes, effective_bytes, exposure_bytes;
    uint64_t committed_bytes, touched_bytes;
    uint64_t registered;
    uint64_t asks, terms, kills, answers, released_bytes;
    uint64_t cgroup_oom_kills;      /* the kernel's count in the watched cgroup; 0 if none */
    uint32_t poll_ms;
    uint64_t pass_us;               /* the last decision pass, sleep excluded */
    uint32_t psi_some_x100, psi_full_x100;
    int in_cgroup;
    int64_t time_to_kill_ms;        /* at the recent fall; -1 when memory is not falling */
} preoom_metrics_t;

/* Format into buf; returns the length (truncated output is cut at a line). */
size_t preoom_metrics_format(const preoom_metrics_t *m, char *buf, size_t cap);
/* Write atomically (temporary file + rename). 0 or -errno. */
int preoom_metrics_write_file(const char *path, const char *text, size_t len);
/* Listen on 127.0.0.1:port (non-blocking). Returns the socket or -errno. */
int preoom_metrics_listen(int port);
/* The HTTP server: a thread of its own on 127.0.0.1:port. 0 or -errno. */
#define METRICS_MAX_CONN 32         /* connections held at once; more are closed at once */
#define METRICS_DEADLINE_MS 2000    /* a connection's whole life */
int preoom_metrics_start(int port);
/* Hand the server the loop's latest figures (a copy under a mutex). */
void preoom_metrics_publish(const preoom_metrics_t *m);
/* 200 for a request line asking GET /metrics, else 404. Pure. */
int preoom_metrics_route(const char *req, size_t len);

#endif

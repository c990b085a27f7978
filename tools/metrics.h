/* tools/metrics.h — preoomd's figures in the Prometheus text format, for a fleet's
 * Prometheus: a textfile for node_exporter's textfile collector, and/or a loopback port. */
#ifndef PREOOM_TOOLS_METRICS_H
#define PREOOM_TOOLS_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* Daemon-wide figures: one set per preoomd, whatever the number of domains. */
typedef struct {
    char version[32];
    uint64_t start_time_s;          /* Unix time preoomd started */
    uint32_t poll_ms;
    uint64_t pass_us;               /* the last decision pass, sleep excluded */
    uint64_t notify_started, notify_dropped, notify_timed_out, notify_failed;
} preoom_metrics_t;

/* One memory domain (a cgroup with a limit, or the host): every series of it carries a
 * domain="PATH" label, the cgroup path or "/" for the host. */
#define PREOOM_METRICS_DOMAIN_MAX 1024 /* PREOOM_CGROUP_PATH_MAX */
typedef struct {
    char domain[PREOOM_METRICS_DOMAIN_MAX];
    int level;
    uint64_t total_bytes, available_bytes, effective_bytes, exposure_bytes;
    uint64_t ask_bytes, term_bytes, kill_bytes; /* the lines, in bytes of available memory */
    uint64_t committed_bytes, touched_bytes;
    uint64_t registered;
    uint64_t asks, terms, kills, answers, released_bytes;
    uint64_t cgroup_oom_kills;      /* the kernel's count in the watched cgroup; 0 if none */
    uint32_t psi_some_x100, psi_full_x100;
    int in_cgroup;
    int64_t time_to_kill_ms;        /* at the recent fall; -1 when memory is not falling */
} preoom_metrics_domain_t;

/* One registered process: series with pid, name and domain labels. Bounded: only the
 * PREOOM_METRICS_MAX_PROCS that touch the most are kept (preoom_metrics_offer_proc), so a
 * host with thousands of registered processes does not flood Prometheus. */
#define PREOOM_METRICS_MAX_PROCS 50
#define PREOOM_METRICS_MAX_DOMAINS 128 /* PREOOM_MAX_DOMAINS of domains.h */
typedef struct {
    uint32_t domain;                /* index into the domains array */
    int32_t pid;
    char name[64];
    uint64_t committed_bytes, touched_bytes, exposure_bytes, slack_bytes;
} preoom_metrics_proc_t;

/* Keep in top[] (n in use, at most cap) the processes touching the most: p replaces the
 * smallest when top[] is full and p touches more. Pure. */
void preoom_metrics_offer_proc(preoom_metrics_proc_t *top, size_t *n, size_t cap,
                               const preoom_metrics_proc_t *p);

/* The exposition (text format 0.0.4) of the daemon's figures, n_doms domains and n_procs
 * processes into buf; returns the length (output that does not fit is cut at a line). Pure. */
size_t preoom_metrics_format(const preoom_metrics_t *daemon, const preoom_metrics_domain_t *doms,
                             size_t n_doms, const preoom_metrics_proc_t *procs, size_t n_procs,
                             char *buf, size_t cap);
/* Room for a few dozen domains and the processes; more is cut at a line (valid, shorter). */
#define PREOOM_METRICS_TEXT_MAX (128 * 1024)

/* Write atomically (temporary file + rename). 0 or -errno. */
int preoom_metrics_write_file(const char *path, const char *text, size_t len);
/* When preoomd stops: remove the textfile, so its last figures are not taken for live ones;
 * only a regular file of our own user (what write_file made), never anything planted there.
 * 0 or -errno. */
int preoom_metrics_remove_file(const char *path);
/* Listen on 127.0.0.1:port (non-blocking). Returns the socket or -errno. */
int preoom_metrics_listen(int port);
/* The HTTP server: a thread of its own on 127.0.0.1:port. 0 or -errno. */
#define METRICS_MAX_CONN 32         /* connections held at once; more are closed at once */
#define METRICS_DEADLINE_MS 2000    /* a connection's whole life */
int preoom_metrics_start(int port);
/* Hand the server the loop's latest figures (a copy under a mutex; at most
 * PREOOM_METRICS_MAX_DOMAINS domains and PREOOM_METRICS_MAX_PROCS processes are kept). */
void preoom_metrics_publish(const preoom_metrics_t *daemon, const preoom_metrics_domain_t *doms,
                            size_t n_doms, const preoom_metrics_proc_t *procs, size_t n_procs);
/* 200 for a request line asking GET /metrics, else 404. Pure. */
int preoom_metrics_route(const char *req, size_t len);

#endif

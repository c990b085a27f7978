/* tools/notify.h — preoomd's --notify hook: an operator's command run for each decision
 * (an ask, a SIGTERM, a SIGKILL, and any other event asked for), with the decision in its
 * environment and the event's JSON object on its standard input.
 *
 * Never blocks the decision loop: a hook is spawned (posix_spawn, its own process group) and
 * left to run; each pass reaps finished hooks without waiting and kills, by process group,
 * the ones past their time limit. At most `max_running` hooks run at once; further events
 * are dropped and counted. Never allocates after init. Says nothing itself: what the daemon
 * should log comes back through the `say` callback.
 */
#ifndef PREOOM_TOOLS_NOTIFY_H
#define PREOOM_TOOLS_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <spawn.h>
#include <stdint.h>
#include <sys/types.h>

#include "engine.h"

#define PREOOM_NOTIFY_MAX_RUNNING 16
#define PREOOM_NOTIFY_DEFAULT_TIMEOUT_MS 10000
#define PREOOM_NOTIFY_DEFAULT_MAX 4
#define PREOOM_NOTIFY_ENV_BYTES 8192   /* our own variables */
#define PREOOM_NOTIFY_ENV_OWN 24
#define PREOOM_NOTIFY_ENV_INHERIT 256  /* entries of the daemon's environment passed on */
/* The events run by default: the three that change something. */
#define PREOOM_NOTIFY_DEFAULT_EVENTS \
    ((1u << PREOOM_EV_ASK) | (1u << PREOOM_EV_TERM) | (1u << PREOOM_EV_KILL))

typedef struct {
    const char *cmd;           /* run as /bin/sh -c CMD; NULL or "": no hook */
    uint32_t timeout_ms;       /* then SIGKILL to the hook's process group */
    unsigned max_running;      /* 1..PREOOM_NOTIFY_MAX_RUNNING */
    uint32_t events;           /* bit (1 << preoom_event_kind_t) for each event run */
    /* What the daemon should say (a warning): a drop, a timeout, a failed spawn. Each kind
     * is said once; the counts below keep going. May be NULL. */
    void (*say)(void *ctx, const char *msg);
    void *say_ctx;
} preoom_notify_conf_t;

typedef struct {
    pid_t pid;                 /* also its process group */
    uint64_t deadline_ms;
    bool killed;
} preoom_notify_run_t;

typedef struct {
    preoom_notify_conf_t conf;
    preoom_notify_run_t run[PREOOM_NOTIFY_MAX_RUNNING];
    size_t n_running;
    /* Counts since start: hooks started, dropped (too many running), killed at their time
     * limit, that could not be started, and that exited non-zero. */
    uint64_t started, dropped, timed_out, spawn_failed, failed;
    bool said_drop, said_timeout, said_spawn, said_failed;
    /* Made once by init, so the loop allocates nothing: the spawn's file action (dup2 of
     * stdin_fd, a descriptor number held for the hooks' pipes, onto 0) and attributes. */
    int stdin_fd;
    bool spawn_ready;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    /* Scratch: the JSON line and the environment. */
    char json[4096];
    char envbuf[PREOOM_NOTIFY_ENV_BYTES];
    const char *envp[PREOOM_NOTIFY_ENV_INHERIT + PREOOM_NOTIFY_ENV_OWN + 1];
} preoom_notify_t;

void preoom_notify_init(preoom_notify_t *n, const preoom_notify_conf_t *conf);
/* Undo init (hooks still running are left to run). */
void preoom_notify_fini(preoom_notify_t *n);

/* The event-name list of --notify-events ("ask,sigterm,sigkill", "all") as a bit mask.
 * 0 or -EINVAL. Pure. */
int preoom_notify_parse_events(const char *list, uint32_t *mask);

/* The hook's environment entries for event i of d, written as "NAME=value" strings into
 * `buf` with pointers in `vars` (at most cap_vars). `domain` is the cgroup path or "/".
 * Returns how many. Pure. */
size_t preoom_notify_env(const preoom_decision_t *d, size_t i, const char *domain, char *buf,
                         size_t cap, const char **vars, size_t cap_vars);

/* Run the hook for event i of d (in, scores: as given to the engine) when its kind is
 * wanted, with the event's JSON object (preoom_engine_format_event) on its stdin.
 * 0 started or not wanted, -EBUSY dropped, -errno could not be started. */
int preoom_notify_event(preoom_notify_t *n, const preoom_decision_t *d, size_t i,
                        const preoom_engine_input_t *in, const preoom_badness_t *scores,
                        const char *domain, uint64_t now_ms);

/* Each pass: reap finished hooks (never waiting) and SIGKILL the process group of any past
 * its time limit. Returns how many still run. */
size_t preoom_notify_reap(preoom_notify_t *n, uint64_t now_ms);

#endif

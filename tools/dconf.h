/* tools/dconf.h — preoomd's settings: one parser for the command line and for the copy the
 * daemon publishes beside its registry, so `preoom explain` decides with the daemon's own
 * flags, never with guesses.
 *
 * Every setting has one name (the long option without "--") and one value syntax; a bad
 * value gives one line naming the setting and what it wants. Never exits, never prints.
 */
#ifndef PREOOM_TOOLS_DCONF_H
#define PREOOM_TOOLS_DCONF_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "candidates.h"
#include "engine.h"

#define PREOOM_DCONF_RE_MAX 256

typedef struct {
    const char *registry;            /* name; borrowed */
    const char *registry_dir;        /* --registry-dir / $PREOOM_REGISTRY_DIR; borrowed */
    char cgroup[PREOOM_CGROUP_PATH_MAX];
    bool cgroup_given;
    preoom_engine_conf_t eng;
    preoom_scope_t scope;
    bool scope_given;
    char prefer[PREOOM_DCONF_RE_MAX], avoid[PREOOM_DCONF_RE_MAX];
    regex_t prefer_re, avoid_re;     /* compiled by preoom_dconf_finish */
    bool prefer_set, avoid_set;
    int32_t protect[PREOOM_MAX_PROTECT];
    size_t n_protect;
    preoom_cgroup_globs_t protect_cg, avoid_cg, prefer_cg; /* --*-cgroup GLOB, may repeat */
    bool kill_group;                 /* --kill-group: signal a group leader's whole group */
    /* --notify CMD and its limits (never published: a webhook's command may hold a token). */
    const char *notify;
    uint32_t notify_timeout_ms;
    unsigned notify_max;
    uint32_t notify_events;          /* bit (1 << preoom_event_kind_t) */
    bool allow_uid, mlock, log_json;
    int verbose;
    bool quiet;
    const char *metrics_file;
    int metrics_port;
    uint64_t slots;
    int64_t gid;
} preoom_dconf_t;

void preoom_dconf_defaults(preoom_dconf_t *d);

/* One error line into err (at most cap bytes); returns -EINVAL. For dconf's readers too. */
int preoom_dconf_fail(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Set one setting by name ("ask", "term", "policy", "avoid", "dry-run", ...). Flags take
 * "1"/"0" (or NULL for 1). 0, or -EINVAL/-ENOENT with one line in err. The string value must
 * outlive d for "registry" and "metrics" (argv does). */
int preoom_dconf_set(preoom_dconf_t *d, const char *name, const char *value, char *err,
                     size_t cap);

/* Checks across settings (thresholds in order, polls, regexes) and compiles the regexes. */
int preoom_dconf_finish(preoom_dconf_t *d, char *err, size_t cap);

/* The settings that shape decisions, as "name=value" lines that preoom_dconf_load reads back. */
size_t preoom_dconf_publish(const preoom_dconf_t *d, char *buf, size_t cap);

/* Read published lines into d (on top of its current values), then finish. */
int preoom_dconf_load(preoom_dconf_t *d, const char *text, size_t len, char *err, size_t cap);

/* The gathering options these settings imply (protect, prefer, avoid by pid, name and
 * cgroup; --allow-uid), so preoomd and `preoom explain` fill them alike. The pointers in o
 * point into d. */
void preoom_dconf_gather_opts(const preoom_dconf_t *d, preoom_gather_opts_t *o);

/* The file a daemon publishes its settings in, beside its registry file. */
void preoom_dconf_path(const char *registry_path, char *buf, size_t cap);

#endif

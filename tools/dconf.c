/* tools/dconf.c — preoomd's settings, parsed once for the command line and for the copy
 * `preoom explain` reads. See dconf.h. Never exits, never prints: errors go to err.
 */
#include "dconf.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "floor.h" /* preoom_parse_u64 */
#include "notify.h"

int preoom_dconf_fail(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -EINVAL;
}
#define fail preoom_dconf_fail

void preoom_dconf_defaults(preoom_dconf_t *d)
{
    memset(d, 0, sizeof *d);
    d->registry = "default";
    preoom_engine_conf_defaults(&d->eng);
    d->scope = PREOOM_SCOPE_REGISTERED;
    d->mlock = true;
    d->gid = -1;
    d->slots = PREOOM_REGISTRY_DEFAULT_SLOTS;
    d->notify_timeout_ms = PREOOM_NOTIFY_DEFAULT_TIMEOUT_MS;
    d->notify_max = PREOOM_NOTIFY_DEFAULT_MAX;
    d->notify_events = PREOOM_NOTIFY_DEFAULT_EVENTS;
}

static int glob_add(const char *name, const char *v, preoom_cgroup_globs_t *g, char *err,
                    size_t cap)
{
    /* A cgroup path always starts with '/'; a pattern that cannot is a mistake (a name
     * regex given to the wrong option), not a pattern that matches nothing. */
    if (!v || (v[0] != '/' && v[0] != '*'))
        return fail(err, cap, "--%s '%s' is not a cgroup path pattern (it starts with '/', "
                              "e.g. '/system.slice/mariadb.service' or '/user.slice/*')",
                    name, v ? v : "");
    if (strlen(v) >= PREOOM_CGROUP_GLOB_MAX)
        return fail(err, cap, "--%s is longer than %d characters", name, PREOOM_CGROUP_GLOB_MAX - 1);
    if (g->n == PREOOM_MAX_CGROUP_GLOBS)
        return fail(err, cap, "--%s: at most %d patterns", name, PREOOM_MAX_CGROUP_GLOBS);
    strcpy(g->glob[g->n++], v);
    return 0;
}

static int num(const char *name, const char *v, uint64_t min, uint64_t max, const char *unit,
               uint64_t *out, char *err, size_t cap)
{
    if (!v || preoom_parse_u64(v, min, max, out) != 0)
        return fail(err, cap, "--%s '%s' is not %s in %" PRIu64 "..%" PRIu64, name, v ? v : "",
                    unit, min, max);
    return 0;
}

static int ms(const char *name, const char *v, uint32_t min, uint32_t max, uint32_t *out,
              char *err, size_t cap)
{
    uint64_t x;
    int rc = num(name, v, min, max, "a number of milliseconds", &x, err, cap);
    if (rc == 0)
        *out = (uint32_t)x;
    return rc;
}

static int flag(const char *name, const char *v, bool *out, char *err, size_t cap)
{
    if (!v || !strcmp(v, "1"))
        *out = true;
    else if (!strcmp(v, "0"))
        *out = false;
    else
        return fail(err, cap, "--%s takes no value ('%s')", name, v);
    return 0;
}

static int threshold(const char *name, const char *v, preoom_threshold_t *t, char *err, size_t cap)
{
    if (!v || preoom_threshold_parse(v, t) != 0)
        return fail(err, cap, "--%s '%s' is not a threshold (a percent like 15 or 15%%, a size "
                              "like 200M, or both: 15,200M)", name, v ? v : "");
    return 0;
}

static int regex_src(const char *name, const char *v, char *dst, bool *set, char *err, size_t cap)
{
    if (!v || !*v)
        return fail(err, cap, "--%s needs a regular expression", name);
    if (strlen(v) >= PREOOM_DCONF_RE_MAX)
        return fail(err, cap, "--%s is longer than %d characters", name, PREOOM_DCONF_RE_MAX - 1);
    strcpy(dst, v);
    *set = true;
    return 0;
}

int preoom_dconf_set(preoom_dconf_t *d, const char *n, const char *v, char *err, size_t cap)
{
    uint64_t x;
    int rc;
    preoom_engine_conf_t *e = &d->eng;
    if (!strcmp(n, "registry")) {
        if (!v || !*v)
            return fail(err, cap, "--registry needs a name");
        d->registry = v;
    } else if (!strcmp(n, "registry-dir")) {
        if (!v || v[0] != '/')
            return fail(err, cap, "--registry-dir needs an absolute directory path");
        d->registry_dir = v;
    } else if (!strcmp(n, "cgroup")) {
        if (!v || !*v || strlen(v) >= sizeof d->cgroup)
            return fail(err, cap, "--cgroup needs a path shorter than %zu bytes", sizeof d->cgroup);
        strcpy(d->cgroup, v);
        d->cgroup_given = true;
    } else if (!strcmp(n, "policy")) {
        if (!v || preoom_policy_from_name(v, &e->policy) != 0)
            return fail(err, cap, "--policy '%s' is not preoom, kernel or classic", v ? v : "");
    } else if (!strcmp(n, "scope")) {
        if (!v || preoom_scope_from_name(v, &d->scope) != 0)
            return fail(err, cap, "--scope '%s' is not registered, cgroup or all", v ? v : "");
        d->scope_given = true;
    } else if (!strcmp(n, "ask")) {
        return threshold(n, v, &e->th.ask, err, cap);
    } else if (!strcmp(n, "term")) {
        return threshold(n, v, &e->th.term, err, cap);
    } else if (!strcmp(n, "kill")) {
        return threshold(n, v, &e->th.kill, err, cap);
    } else if (!strcmp(n, "exposure-weight")) {
        if ((rc = num(n, v, 0, 1000, "a weight per mille", &x, err, cap)) != 0)
            return rc;
        e->th.exposure_permille = (uint32_t)x;
    } else if (!strcmp(n, "psi-some") || !strcmp(n, "psi-full")) {
        if ((rc = num(n, v, 0, 100, "a percent", &x, err, cap)) != 0)
            return rc;
        *(n[4] == 's' ? &e->th.psi_some_x100 : &e->th.psi_full_x100) = (uint32_t)x * 100;
    } else if (!strcmp(n, "ask-grace")) {
        return ms(n, v, 0, 600000, &e->ask_grace_ms, err, cap);
    } else if (!strcmp(n, "term-grace")) {
        return ms(n, v, 0, 600000, &e->term_grace_ms, err, cap);
    } else if (!strcmp(n, "max-term-grace")) {
        return ms(n, v, 0, 3600000, &e->max_term_grace_ms, err, cap);
    } else if (!strcmp(n, "kill-grace")) {
        return ms(n, v, 0, 60000, &e->kill_grace_ms, err, cap);
    } else if (!strcmp(n, "horizon")) {
        return ms(n, v, 100, 600000, &e->horizon_ms, err, cap);
    } else if (!strcmp(n, "cooldown")) {
        /* Kept so old command lines still start: there is no cool-down timer any more
         * (after an exit preoomd measures again at once). */
        uint32_t ignored;
        return ms(n, v, 0, 600000, &ignored, err, cap);
    } else if (!strcmp(n, "min-poll")) {
        return ms(n, v, 1, 60000, &e->min_poll_ms, err, cap);
    } else if (!strcmp(n, "max-poll")) {
        return ms(n, v, 1, 60000, &e->max_poll_ms, err, cap);
    } else if (!strcmp(n, "prefer")) {
        return regex_src(n, v, d->prefer, &d->prefer_set, err, cap);
    } else if (!strcmp(n, "avoid")) {
        return regex_src(n, v, d->avoid, &d->avoid_set, err, cap);
    } else if (!strcmp(n, "protect")) {
        if (d->n_protect == PREOOM_MAX_PROTECT || !v || preoom_parse_u64(v, 1, 0x7fffffff, &x) != 0)
            return fail(err, cap, "--protect '%s' is not a pid (at most %d of them)", v ? v : "",
                        PREOOM_MAX_PROTECT);
        d->protect[d->n_protect++] = (int32_t)x;
    } else if (!strcmp(n, "protect-cgroup")) {
        return glob_add(n, v, &d->protect_cg, err, cap);
    } else if (!strcmp(n, "avoid-cgroup")) {
        return glob_add(n, v, &d->avoid_cg, err, cap);
    } else if (!strcmp(n, "prefer-cgroup")) {
        return glob_add(n, v, &d->prefer_cg, err, cap);
    } else if (!strcmp(n, "kill-group")) {
        return flag(n, v, &d->kill_group, err, cap);
    } else if (!strcmp(n, "notify")) {
        if (!v || !*v)
            return fail(err, cap, "--notify needs a command");
        d->notify = v;
    } else if (!strcmp(n, "notify-timeout")) {
        return ms(n, v, 1, 3600000, &d->notify_timeout_ms, err, cap);
    } else if (!strcmp(n, "notify-max")) {
        if ((rc = num(n, v, 1, PREOOM_NOTIFY_MAX_RUNNING, "a number of hooks", &x, err, cap)) != 0)
            return rc;
        d->notify_max = (unsigned)x;
    } else if (!strcmp(n, "notify-events")) {
        if (!v || preoom_notify_parse_events(v, &d->notify_events) != 0)
            return fail(err, cap, "--notify-events '%s' is not a comma list of ask, answer, "
                                  "no-answer, sigterm, sigkill, exited, failed, relieved, "
                                  "no-candidate, hog, left (or all)", v ? v : "");
    } else if (!strcmp(n, "allow-uid")) {
        return flag(n, v, &d->allow_uid, err, cap);
    } else if (!strcmp(n, "dry-run")) {
        return flag(n, v, &e->dry_run, err, cap);
    } else if (!strcmp(n, "no-mlock")) {
        bool nm;
        rc = flag(n, v, &nm, err, cap);
        d->mlock = !nm;
        return rc;
    } else if (!strcmp(n, "log-format")) {
        if (!v || (strcmp(v, "text") && strcmp(v, "json")))
            return fail(err, cap, "--log-format '%s' is not text or json", v ? v : "");
        d->log_json = !strcmp(v, "json");
    } else if (!strcmp(n, "metrics")) {
        if (!v || !*v)
            return fail(err, cap, "--metrics needs a file name");
        d->metrics_file = v;
    } else if (!strcmp(n, "metrics-port")) {
        if ((rc = num(n, v, 1, 65535, "a TCP port", &x, err, cap)) != 0)
            return rc;
        d->metrics_port = (int)x;
    } else if (!strcmp(n, "slots")) {
        return num(n, v, 1, PREOOM_REGISTRY_MAX_SLOTS, "a slot count", &d->slots, err, cap);
    } else if (!strcmp(n, "group")) {
        if ((rc = num(n, v, 0, 0x7fffffff, "a numeric group id", &x, err, cap)) != 0)
            return rc;
        d->gid = (int64_t)x;
    } else {
        return fail(err, cap, "unknown setting '%s'", n);
    }
    return 0;
}

int preoom_dconf_finish(preoom_dconf_t *d, char *err, size_t cap)
{
    const char *why;
    if (preoom_thresholds_check(&d->eng.th, &why) != 0)
        return fail(err, cap, "%s", why);
    if (d->eng.min_poll_ms > d->eng.max_poll_ms)
        return fail(err, cap, "--min-poll must not exceed --max-poll");
    if (d->prefer_set && regcomp(&d->prefer_re, d->prefer, REG_EXTENDED | REG_NOSUB) != 0)
        return fail(err, cap, "--prefer '%s' is not a regular expression", d->prefer);
    if (d->avoid_set && regcomp(&d->avoid_re, d->avoid, REG_EXTENDED | REG_NOSUB) != 0)
        return fail(err, cap, "--avoid '%s' is not a regular expression", d->avoid);
    /* A watched cgroup makes its unregistered processes candidates too, unless told. */
    if (!d->scope_given)
        d->scope = d->cgroup_given ? PREOOM_SCOPE_CGROUP : PREOOM_SCOPE_REGISTERED;
    return 0;
}

static void put_threshold(char *buf, size_t cap, size_t *len, const char *name,
                          const preoom_threshold_t *t)
{
    if (*len >= cap)
        return;
    int n;
    if (t->percent_x100 && t->bytes)
        n = snprintf(buf + *len, cap - *len, "%s=%u.%02u,%" PRIu64 "\n", name,
                     t->percent_x100 / 100, t->percent_x100 % 100, t->bytes);
    else if (t->bytes)
        n = snprintf(buf + *len, cap - *len, "%s=%" PRIu64 "K\n", name, t->bytes >> 10);
    else
        n = snprintf(buf + *len, cap - *len, "%s=%u.%02u\n", name, t->percent_x100 / 100,
                     t->percent_x100 % 100);
    if (n > 0)
        *len += (size_t)n < cap - *len ? (size_t)n : cap - *len - 1;
}

size_t preoom_dconf_publish(const preoom_dconf_t *d, char *buf, size_t cap)
{
    size_t len = 0;
    const preoom_engine_conf_t *e = &d->eng;
#define P(...)                                                                   \
    do {                                                                         \
        if (len < cap) {                                                         \
            int n_ = snprintf(buf + len, cap - len, __VA_ARGS__);                \
            if (n_ > 0)                                                          \
                len += (size_t)n_ < cap - len ? (size_t)n_ : cap - len - 1;      \
        }                                                                        \
    } while (0)
    P("policy=%s\nscope=%s\n", preoom_policy_name(e->policy), preoom_scope_name(d->scope));
    if (d->cgroup_given)
        P("cgroup=%s\n", d->cgroup);
    /* A size threshold is written in KiB so it reads back exactly. */
    put_threshold(buf, cap, &len, "ask", &e->th.ask);
    put_threshold(buf, cap, &len, "term", &e->th.term);
    put_threshold(buf, cap, &len, "kill", &e->th.kill);
    P("exposure-weight=%u\npsi-some=%u\npsi-full=%u\n", e->th.exposure_permille,
      e->th.psi_some_x100 / 100, e->th.psi_full_x100 / 100);
    P("ask-grace=%u\nterm-grace=%u\nmax-term-grace=%u\nkill-grace=%u\nhorizon=%u\n",
      e->ask_grace_ms, e->term_grace_ms, e->max_term_grace_ms, e->kill_grace_ms, e->horizon_ms);
    P("min-poll=%u\nmax-poll=%u\n", e->min_poll_ms, e->max_poll_ms);
    if (d->prefer_set)
        P("prefer=%s\n", d->prefer);
    if (d->avoid_set)
        P("avoid=%s\n", d->avoid);
    for (size_t i = 0; i < d->n_protect; i++)
        P("protect=%d\n", (int)d->protect[i]);
    for (size_t i = 0; i < d->protect_cg.n; i++)
        P("protect-cgroup=%s\n", d->protect_cg.glob[i]);
    for (size_t i = 0; i < d->avoid_cg.n; i++)
        P("avoid-cgroup=%s\n", d->avoid_cg.glob[i]);
    for (size_t i = 0; i < d->prefer_cg.n; i++)
        P("prefer-cgroup=%s\n", d->prefer_cg.glob[i]);
    P("allow-uid=%d\ndry-run=%d\n", d->allow_uid ? 1 : 0, e->dry_run ? 1 : 0);
#undef P
    return len;
}

int preoom_dconf_load(preoom_dconf_t *d, const char *text, size_t len, char *err, size_t cap)
{
    char line[PREOOM_CGROUP_PATH_MAX + 64];
    size_t i = 0;
    /* Values are copied into d (cgroup, regexes) except registry/metrics, never published. */
    while (i < len) {
        size_t j = i;
        while (j < len && text[j] != '\n')
            j++;
        size_t n = j - i;
        if (n >= sizeof line)
            return fail(err, cap, "published settings: a line is too long");
        memcpy(line, text + i, n);
        line[n] = '\0';
        i = j + 1;
        if (!n || line[0] == '#')
            continue;
        if (line[0] == '[')
            break; /* the config file's [domain] sections follow: conffile.c reads those */
        char *eq = strchr(line, '=');
        if (!eq)
            return fail(err, cap, "published settings: '%s' is not name=value", line);
        *eq = '\0';
        /* Never taken from a file: where the daemon's own files live, and commands. */
        if (!strcmp(line, "registry") || !strcmp(line, "registry-dir") || !strcmp(line, "metrics") ||
            !strcmp(line, "notify"))
            continue;
        int rc = preoom_dconf_set(d, line, eq + 1, err, cap);
        if (rc != 0)
            return rc;
    }
    d->scope_given = true;
    return preoom_dconf_finish(d, err, cap);
}

void preoom_dconf_gather_opts(const preoom_dconf_t *d, preoom_gather_opts_t *o)
{
    o->allow_any_uid = d->allow_uid;
    memcpy(o->protect, d->protect, sizeof d->protect);
    o->n_protect = d->n_protect;
    o->prefer = d->prefer_set ? &d->prefer_re : NULL;
    o->avoid = d->avoid_set ? &d->avoid_re : NULL;
    o->protect_cg = &d->protect_cg;
    o->avoid_cg = &d->avoid_cg;
    o->prefer_cg = &d->prefer_cg;
}

void preoom_dconf_path(const char *registry_path, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s.preoomd", registry_path);
}

/* preload/options.c — every PREOOM_* setting in one table, read once at start.
 *
 * Values come from secure_getenv, so a setuid or setgid program takes no settings from its
 * environment (jemalloc's rule). A bad value gets one line on stderr naming the setting and
 * the default used; the host runs on. The value parsers are common/parse.c (pure, shared with
 * the tools).
 * Never allocates.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

preoom_options_t preoom_opt;








enum kind { K_MS, K_BYTES, K_INT, K_BOOL, K_STACKS, K_CACHE, K_NAME, K_PATH, K_DIR, K_GID };

struct option_def {
    const char *env;
    enum kind kind;
    size_t offset;
    uint64_t min, max;
    const char *dflt;       /* as the user would write it; also parsed for the default */
    const char *meaning;    /* for PREOOM_VERBOSE's listing and the warning */
};

#define OFF(f) offsetof(preoom_options_t, f)
static const struct option_def defs[] = {
    {"PREOOM_INTERVAL_MS", K_MS, OFF(interval_ms), 1, 60000, "100", "a period in ms (1..60000)"},
    {"PREOOM_REPORT", K_PATH, OFF(report), 0, sizeof preoom_opt.report, "",
     "a path (%p becomes the pid)"},
    {"PREOOM_LOG", K_PATH, OFF(log), 0, sizeof preoom_opt.log, "", "a path"},
    {"PREOOM_VERBOSE", K_INT, OFF(verbose), 0, 3, "0", "a level 0..3"},
    {"PREOOM_REGISTRY", K_NAME, OFF(registry), 0, 0, "default",
     "a name of letters, digits, '.', '_' or '-' (or \"off\")"},
    {"PREOOM_REGISTRY_SLOTS", K_INT, OFF(registry_slots), 1, PREOOM_REGISTRY_MAX_SLOTS, "1024",
     "a slot count 1..65536"},
    {"PREOOM_REGISTRY_GROUP", K_GID, OFF(registry_gid), 0, 0x7fffffff, "",
     "a numeric group id"},
    {"PREOOM_REGISTRY_DIR", K_DIR, OFF(registry_dir), 0, sizeof preoom_opt.registry_dir, "",
     "an absolute directory without '..'"},
    {"PREOOM_STACKS", K_STACKS, OFF(stacks), 0, 0, "off", "off, sample or all"},
    {"PREOOM_SAMPLE_BYTES", K_BYTES, OFF(sample_bytes), 1, 1ULL << 40, "512KiB",
     "a size such as 512KiB (1 B .. 1 TiB)"},
    {"PREOOM_STACK_DEPTH", K_INT, OFF(stack_depth), 1, 128, "32", "a frame count 1..128"},
    {"PREOOM_STACK_CACHE", K_CACHE, OFF(stack_cache), 0, 0, "on", "off, on or verify"},
    {"PREOOM_ADJ", K_INT, OFF(adj), 0, 1000, "0", "0..1000 (only ever more willing to be chosen)"},
    {"PREOOM_TERM_GRACE_MS", K_MS, OFF(term_grace_ms), 0, 3600000, "0",
     "a time in ms (0..3600000): how long this process needs after SIGTERM (0: preoomd's default)"},
    {"PREOOM_TRIM", K_BOOL, OFF(trim), 0, 0, "1", "a boolean (1/0, yes/no, on/off)"},
    {"PREOOM_PURGE", K_BOOL, OFF(purge), 0, 0, "1", "a boolean (1/0, yes/no, on/off)"},
};

static int apply(const struct option_def *d, preoom_options_t *o, const char *v)
{
    char *field = (char *)o + d->offset;
    uint64_t u;
    int i, rc;
    switch (d->kind) {
    case K_MS:
        if ((rc = preoom_parse_u64(v, d->min, d->max, &u)) == 0)
            *(uint64_t *)(void *)field = u;
        return rc;
    case K_BYTES:
        if ((rc = preoom_parse_bytes(v, d->min, d->max, &u)) == 0)
            *(uint64_t *)(void *)field = u;
        return rc;
    case K_INT:
        if ((rc = preoom_parse_u64(v, d->min, d->max, &u)) != 0)
            return rc;
        if (d->offset == OFF(verbose))
            o->verbose = (int)u;
        else
            *(uint64_t *)(void *)field = u;
        return 0;
    case K_BOOL:
        if ((rc = preoom_parse_bool(v, &i)) == 0)
            *(int *)(void *)field = i;
        return rc;
    case K_STACKS:
        if ((rc = preoom_parse_stacks(v, &i)) == 0)
            *(int *)(void *)field = i;
        return rc;
    case K_CACHE:
        if ((rc = preoom_parse_stack_cache(v, &i)) == 0)
            *(int *)(void *)field = i;
        return rc;
    case K_NAME:
        return preoom_parse_name(v, field, sizeof o->registry);
    case K_DIR:
        if (*v && (v[0] != '/' || strstr(v, "/..")))
            return -EINVAL;
        /* fall through */
    case K_PATH: {
        size_t n = strlen(v);
        if (n + 1 > d->max)
            return -ERANGE;
        memcpy(field, v, n + 1);
        return 0;
    }
    case K_GID:
        if (!*v) {
            o->registry_gid = -1;
            return 0;
        }
        if ((rc = preoom_parse_u64(v, d->min, d->max, &u)) == 0)
            o->registry_gid = (int64_t)u;
        return rc;
    }
    return -EINVAL;
}

void preoom_options_load(preoom_options_t *o, preoom_getenv_fn getenv_fn, preoom_warn_fn warn)
{
    memset(o, 0, sizeof *o);
    for (size_t k = 0; k < sizeof defs / sizeof defs[0]; k++)
        (void)apply(&defs[k], o, defs[k].dflt);
    if (!getenv_fn)
        return;
    for (size_t k = 0; k < sizeof defs / sizeof defs[0]; k++) {
        const char *v = getenv_fn(defs[k].env);
        if (!v)
            continue;
        int rc = apply(&defs[k], o, v);
        if (rc == 0)
            continue;
        (void)apply(&defs[k], o, defs[k].dflt);
        if (warn) {
            char line[384];
            preoom_fmt(line, sizeof line, "%s='%s' is not %s; using %s%s%s", defs[k].env, v,
                       defs[k].meaning, *defs[k].dflt ? "" : "none", defs[k].dflt,
                       rc == -ERANGE ? " (out of range)" : "");
            warn(line);
        }
    }
}

static void warn_stderr(const char *line)
{
    preoom_log_error("%s", line);
}

static const char *env_lookup(const char *name)
{
    return secure_getenv(name);
}

void preoom_options_init(void)
{
    preoom_options_load(&preoom_opt, env_lookup, warn_stderr);
    /* secure_getenv returns NULL for everything in a secure-execution process: note it so
     * the report says why nothing was configured. */
    preoom_opt.secure = getenv("PREOOM_REPORT") && !secure_getenv("PREOOM_REPORT");
    preoom_log_set_verbose(preoom_opt.verbose);
    preoom_log_set_file(preoom_opt.log);
    if (preoom_opt.verbose)
        preoom_options_print(&preoom_opt);
}

void preoom_options_print(const preoom_options_t *o)
{
    preoom_log_info("settings: PREOOM_INTERVAL_MS=%llu PREOOM_REPORT=%s PREOOM_VERBOSE=%d "
                    "PREOOM_REGISTRY=%s PREOOM_REGISTRY_SLOTS=%llu PREOOM_REGISTRY_GROUP=%lld "
                    "PREOOM_REGISTRY_DIR=%s PREOOM_LOG=%s",
                    (unsigned long long)o->interval_ms, o->report[0] ? o->report : "(none)",
                    o->verbose, o->registry, (unsigned long long)o->registry_slots,
                    (long long)o->registry_gid, o->registry_dir[0] ? o->registry_dir : "/dev/shm",
                    o->log[0] ? o->log : "(stderr)");
    static const char *const cache[] = {"off", "on", "verify"};
    preoom_log_info("settings: PREOOM_STACKS=%s PREOOM_SAMPLE_BYTES=%llu PREOOM_STACK_DEPTH=%llu "
                    "PREOOM_STACK_CACHE=%s PREOOM_ADJ=%llu PREOOM_TRIM=%d PREOOM_PURGE=%d%s",
                    o->stacks == PREOOM_STACKS_ALL      ? "all"
                    : o->stacks == PREOOM_STACKS_SAMPLE ? "sample"
                                                        : "off",
                    (unsigned long long)o->sample_bytes, (unsigned long long)o->stack_depth,
                    cache[o->stack_cache >= 0 && o->stack_cache <= 2 ? o->stack_cache : 0],
                    (unsigned long long)o->adj, o->trim, o->purge,
                    o->secure ? " (secure execution: environment ignored)" : "");
}

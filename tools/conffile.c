/* tools/conffile.c — preoomd's INI configuration: sections, keys, globs, file:line errors.
 * See conffile.h for the syntax and the precedence. The values themselves are checked by
 * dconf.c's setter, the one the command line uses, so both accept exactly the same.
 */
#include "conffile.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "procfs.h" /* preoom_read_file */

#define fail preoom_dconf_fail

void preoom_conffile_init(preoom_conffile_t *cf)
{
    memset(cf, 0, sizeof *cf);
}

/* Settings that shape the decisions of one domain. The rest (registry, metrics, logging,
 * memory locking) belong to the daemon as a whole, so a [domain] section refuses them. */
static const char *const domain_keys[] = {
    "policy",     "scope",      "ask",          "term",           "kill",
    "exposure-weight", "psi-some", "psi-full",  "ask-grace",      "term-grace",
    "max-term-grace", "kill-grace", "horizon",  "min-poll",       "max-poll",
    "prefer",     "avoid",      "protect",      "dry-run",        "prefer-cgroup",
    "avoid-cgroup", "protect-cgroup", NULL};

bool preoom_conffile_domain_key(const char *key)
{
    for (size_t i = 0; domain_keys[i]; i++)
        if (!strcmp(domain_keys[i], key))
            return true;
    return false;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* A value may be written in double quotes (a glob with blanks, a regex ending in a blank). */
static int unquote(char *v, char **out)
{
    size_t n = strlen(v);
    if (n && v[0] == '"') {
        if (n < 2 || v[n - 1] != '"')
            return -1;
        v[n - 1] = '\0';
        v++;
    }
    *out = v;
    return 0;
}

int preoom_conffile_parse(preoom_conffile_t *cf, const char *text, size_t len, const char *origin,
                          char *err, size_t cap)
{
    int section = -1;
    size_t pos = 0, lineno = 0;
    char line[1024];
    while (pos < len) {
        size_t end = pos;
        while (end < len && text[end] != '\n')
            end++;
        lineno++;
        size_t n = end - pos;
        if (n >= sizeof line)
            return fail(err, cap, "%s:%zu: line longer than %zu characters", origin, lineno,
                        sizeof line - 1);
        memcpy(line, text + pos, n);
        line[n] = '\0';
        pos = end + 1;
        if (memchr(line, '\0', n))
            return fail(err, cap, "%s:%zu: a NUL byte (not a text file?)", origin, lineno);
        char *s = trim(line);
        if (!*s || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            char *close = strrchr(s, ']');
            if (!close || close[1])
                return fail(err, cap, "%s:%zu: a section header is [preoomd] or [domain PATH]",
                            origin, lineno);
            *close = '\0';
            char *h = trim(s + 1);
            if (!strcmp(h, "preoomd")) {
                section = -1;
                continue;
            }
            if (strncmp(h, "domain", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
                return fail(err, cap, "%s:%zu: unknown section [%s] (sections are [preoomd] "
                                      "and [domain PATH])", origin, lineno, h);
            char *pat;
            if (unquote(trim(h + 6), &pat) != 0 || pat[0] != '/')
                return fail(err, cap, "%s:%zu: [domain PATH] needs a cgroup path starting with "
                                      "'/' (as /proc/PID/cgroup shows it; '/' is the host)",
                            origin, lineno);
            if (strlen(pat) >= PREOOM_CONF_VALUE_MAX)
                return fail(err, cap, "%s:%zu: the path is longer than %d characters", origin,
                            lineno, PREOOM_CONF_VALUE_MAX - 1);
            if (cf->n_s == PREOOM_CONF_MAX_SECTIONS)
                return fail(err, cap, "%s:%zu: more than %d [domain] sections", origin, lineno,
                            PREOOM_CONF_MAX_SECTIONS);
            preoom_conf_section_t *sec = &cf->s[cf->n_s];
            strcpy(sec->pattern, pat);
            snprintf(sec->origin, sizeof sec->origin, "%s:%zu", origin, lineno);
            section = (int)cf->n_s++;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq)
            return fail(err, cap, "%s:%zu: '%s' is not 'setting = value'", origin, lineno, s);
        *eq = '\0';
        char *key = trim(s), *value;
        if (key[0] == '-' && key[1] == '-')
            key += 2; /* "--ask = 10" is what a command-line habit writes */
        if (unquote(trim(eq + 1), &value) != 0)
            return fail(err, cap, "%s:%zu: unbalanced quote in the value of %s", origin, lineno,
                        key);
        if (!*key || strlen(key) >= PREOOM_CONF_KEY_MAX)
            return fail(err, cap, "%s:%zu: no setting name before '='", origin, lineno);
        if (strlen(value) >= PREOOM_CONF_VALUE_MAX)
            return fail(err, cap, "%s:%zu: the value of %s is longer than %d characters", origin,
                        lineno, key, PREOOM_CONF_VALUE_MAX - 1);
        if (section >= 0 && !preoom_conffile_domain_key(key))
            return fail(err, cap, "%s:%zu: '%s' is a daemon-wide setting: it belongs in "
                                  "[preoomd], not in [domain %s]", origin, lineno, key,
                        cf->s[section].pattern);
        if (!strcmp(key, "config") || !strcmp(key, "check-config"))
            return fail(err, cap, "%s:%zu: '%s' is a command-line option only", origin, lineno,
                        key);
        if (cf->n_e == PREOOM_CONF_MAX_ENTRIES)
            return fail(err, cap, "%s:%zu: more than %d settings", origin, lineno,
                        PREOOM_CONF_MAX_ENTRIES);
        preoom_conf_entry_t *e = &cf->e[cf->n_e++];
        e->section = section;
        strcpy(e->key, key);
        strcpy(e->value, value);
        snprintf(e->origin, sizeof e->origin, "%s:%zu", origin, lineno);
    }
    cf->files++;
    return 0;
}

static int read_one(preoom_conffile_t *cf, const char *path, char *err, size_t cap)
{
    static char text[256 * 1024];
    size_t len;
    int rc = preoom_read_file(path, text, sizeof text, &len, false);
    if (rc == -EFBIG)
        return fail(err, cap, "%s: larger than %zu KiB", path, sizeof text >> 10);
    if (rc != 0)
        return fail(err, cap, "%s: %s", path, strerror(-rc));
    return preoom_conffile_parse(cf, text, len, path, err, cap);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int conf_file(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && n > 5 && !strcmp(d->d_name + n - 5, ".conf");
}

int preoom_conffile_read(preoom_conffile_t *cf, const char *path, bool required, char *err,
                         size_t cap)
{
    FILE *probe = fopen(path, "re");
    if (probe) {
        fclose(probe);
        int rc = read_one(cf, path, err, cap);
        if (rc != 0)
            return rc;
    } else if (required || errno != ENOENT) {
        return fail(err, cap, "%s: %s", path, strerror(errno));
    }
    char dir[PREOOM_CONF_ORIGIN_MAX];
    if (snprintf(dir, sizeof dir, "%s.d", path) >= (int)sizeof dir)
        return fail(err, cap, "%s: path too long", path);
    struct dirent **names;
    int n = scandir(dir, &names, conf_file, by_name);
    if (n < 0)
        return errno == ENOENT || errno == ENOTDIR ? 0 : fail(err, cap, "%s: %s", dir, strerror(errno));
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char file[PREOOM_CONF_ORIGIN_MAX + 256];
        snprintf(file, sizeof file, "%s/%s", dir, names[i]->d_name);
        if (rc == 0)
            rc = read_one(cf, file, err, cap);
        free(names[i]);
    }
    free(names);
    return rc;
}

static int apply(const preoom_conf_entry_t *e, preoom_dconf_t *d, char *err, size_t cap)
{
    char why[512];
    /* The setter keeps "registry"/"metrics" values by pointer: entries live as long as the
     * daemon (cf is never freed). */
    int rc = preoom_dconf_set(d, e->key, e->value, why, sizeof why);
    if (rc != 0)
        return fail(err, cap, "%s: %s", e->origin, why);
    return 0;
}

int preoom_conffile_apply_global(const preoom_conffile_t *cf, preoom_dconf_t *d, char *err,
                                 size_t cap)
{
    for (size_t i = 0; i < cf->n_e; i++)
        if (cf->e[i].section < 0) {
            int rc = apply(&cf->e[i], d, err, cap);
            if (rc != 0)
                return rc;
        }
    return 0;
}

bool preoom_conffile_matches(const char *pattern, const char *path)
{
    /* Trailing slashes never matter: "/a.slice/" is "/a.slice". */
    char p[PREOOM_CONF_VALUE_MAX], q[PREOOM_CGROUP_PATH_MAX];
    snprintf(p, sizeof p, "%s", pattern);
    snprintf(q, sizeof q, "%s", path && *path ? path : "/");
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        p[--n] = '\0';
    n = strlen(q);
    while (n > 1 && q[n - 1] == '/')
        q[--n] = '\0';
    return fnmatch(p, q, FNM_PATHNAME) == 0;
}

int preoom_conffile_apply_domain(const preoom_conffile_t *cf, const char *path,
                                 preoom_dconf_t *d, char *err, size_t cap)
{
    int matched = 0;
    for (size_t s = 0; s < cf->n_s; s++) {
        if (!preoom_conffile_matches(cf->s[s].pattern, path))
            continue;
        matched++;
        for (size_t i = 0; i < cf->n_e; i++)
            if (cf->e[i].section == (int)s) {
                int rc = apply(&cf->e[i], d, err, cap);
                if (rc != 0)
                    return rc;
            }
    }
    return matched;
}

size_t preoom_conffile_publish_domains(const preoom_conffile_t *cf, char *buf, size_t cap)
{
    size_t len = 0;
    for (size_t s = 0; s < cf->n_s && len < cap; s++) {
        int n = snprintf(buf + len, cap - len, "[domain %s]\n", cf->s[s].pattern);
        if (n < 0 || (size_t)n >= cap - len)
            break;
        len += (size_t)n;
        for (size_t i = 0; i < cf->n_e; i++) {
            if (cf->e[i].section != (int)s)
                continue;
            n = snprintf(buf + len, cap - len, "%s=%s\n", cf->e[i].key, cf->e[i].value);
            if (n < 0 || (size_t)n >= cap - len)
                return len;
            len += (size_t)n;
        }
    }
    return len;
}

/* tools/conffile.h — preoomd's configuration file: daemon-wide defaults and settings per
 * memory domain, in the INI shape an operator knows from systemd units and git.
 *
 *   # /etc/preoom/preoomd.conf, then /etc/preoom/preoomd.conf.d/ *.conf in name order
 *   [preoomd]                         any preoomd long option, without "--"
 *   ask = 15%
 *   [domain /system.slice/mariadb.service]   a cgroup path as /proc/PID/cgroup names it,
 *   term-grace = 300000                      or a glob (fnmatch, '*' stops at '/')
 *   avoid = ^mariadbd$
 *   [domain /]                        the host itself
 *
 * Precedence: built-in defaults, then [preoomd], then the command line (the defaults of
 * every domain), then each [domain] section that matches, in file order (the last wins).
 * Each value goes through the same setter as the command line (dconf.c), so an error names
 * the file, the line and the setting. Nothing here exits or prints.
 */
#ifndef PREOOM_TOOLS_CONFFILE_H
#define PREOOM_TOOLS_CONFFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "dconf.h"

#define PREOOM_CONF_DEFAULT "/etc/preoom/preoomd.conf"
#define PREOOM_CONF_MAX_SECTIONS 128
#define PREOOM_CONF_MAX_ENTRIES 1024
#define PREOOM_CONF_KEY_MAX 32
#define PREOOM_CONF_VALUE_MAX 320
#define PREOOM_CONF_ORIGIN_MAX 160

typedef struct {
    char pattern[PREOOM_CONF_VALUE_MAX]; /* cgroup path or glob; "/" is the host */
    char origin[PREOOM_CONF_ORIGIN_MAX]; /* file:line of the header */
} preoom_conf_section_t;

typedef struct {
    int section;                         /* -1: [preoomd] (or before any header) */
    char key[PREOOM_CONF_KEY_MAX];
    char value[PREOOM_CONF_VALUE_MAX];
    char origin[PREOOM_CONF_ORIGIN_MAX];
} preoom_conf_entry_t;

typedef struct {
    preoom_conf_section_t s[PREOOM_CONF_MAX_SECTIONS];
    size_t n_s;
    preoom_conf_entry_t e[PREOOM_CONF_MAX_ENTRIES];
    size_t n_e;
    size_t files;                        /* files read */
} preoom_conffile_t;

void preoom_conffile_init(preoom_conffile_t *cf);

/* Parse one file's text (origin names it in errors). 0 or -EINVAL with one line in err. */
int preoom_conffile_parse(preoom_conffile_t *cf, const char *text, size_t len, const char *origin,
                          char *err, size_t cap);

/* Read PATH and then every *.conf of PATH.d in name order. A missing PATH is an error only
 * when required (given with --config); a missing PATH.d never is. */
int preoom_conffile_read(preoom_conffile_t *cf, const char *path, bool required, char *err,
                         size_t cap);

/* Apply [preoomd] to d (not finished: the command line comes next). */
int preoom_conffile_apply_global(const preoom_conffile_t *cf, preoom_dconf_t *d, char *err,
                                 size_t cap);

/* Apply every [domain] section whose pattern matches `path` ("/" for the host) to d, in
 * order. Returns how many matched, or -EINVAL with one line in err. */
int preoom_conffile_apply_domain(const preoom_conffile_t *cf, const char *path,
                                 preoom_dconf_t *d, char *err, size_t cap);

/* Does a [domain] section's pattern match this cgroup path? */
bool preoom_conffile_matches(const char *pattern, const char *path);

/* Is this setting one a [domain] section may give (it shapes decisions in one domain)? */
bool preoom_conffile_domain_key(const char *key);

/* The [domain] sections back as text, for the settings file `preoom explain` reads. */
size_t preoom_conffile_publish_domains(const preoom_conffile_t *cf, char *buf, size_t cap);

#endif

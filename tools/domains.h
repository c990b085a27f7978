/* tools/domains.h — the memory domains one preoomd watches: the host, and every memory
 * cgroup with a limit on the path from a registered process up to its hierarchy's root.
 *
 * A process belongs to every domain on its path (a container inside a slice inside the
 * host); each domain has its own limit, its own readings and, in preoomd, its own engine.
 * Discovery works from the processes' own /proc/PID/cgroup (v1 memory, v2, hybrid: the
 * hierarchy that holds the memory controller, as preoom_find_memcg chooses), so fixture trees
 * under fs->proc_root and fs->cgroup_root test it without root.
 *
 * Indices are stable: a domain keeps its index while it exists (preoomd keeps one engine per
 * index); a domain that disappears is marked gone and its index reused later. Index 0 is
 * always the host. Never allocates.
 */
#ifndef PREOOM_TOOLS_DOMAINS_H
#define PREOOM_TOOLS_DOMAINS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "procfs.h"

#define PREOOM_MAX_DOMAINS 128
#define PREOOM_DOMAIN_DEPTH_MAX 16     /* limited cgroups on one path, host excluded */
#define PREOOM_DOMAIN_HOST 0

typedef struct {
    bool used;                         /* this index holds a domain */
    bool added;                        /* new in the last discovery (cleared by the next) */
    bool gone;                         /* vanished in the last discovery: used is false now */
    char dir[PREOOM_CGROUP_PATH_MAX];  /* absolute memcg directory; "" for the host */
    char path[PREOOM_CGROUP_PATH_MAX]; /* as /proc/PID/cgroup names it ("/a/b"); "/" host */
    preoom_cgroup_version_t version;   /* 0 for the host */
    uint64_t limit_bytes;              /* own limit when last discovered; NONE for the host */
    int parent;                        /* nearest enclosing domain, -1 for the host */
    int depth;                         /* 0 host, 1 outermost cgroup, ... */
} preoom_domain_t;

typedef struct {
    preoom_domain_t d[PREOOM_MAX_DOMAINS];
    size_t n;                          /* high-water mark of indices in use */
    /* --cgroup PATH (repeatable): only these cgroups (and what is inside them) are domains;
     * absolute memcg dirs or paths relative to fs->cgroup_root. None: every one found. */
    const char *const *only;
    size_t n_only;
    bool no_host;                      /* with --cgroup: the host is not watched itself
                                        * (d[0] stays the host but is not used, and a
                                        * process in no named cgroup gets innermost -1) */
    size_t dropped;                    /* limited cgroups left out of the last discovery for
                                        * want of room (said once); their processes count in
                                        * the nearest enclosing domain that has one */
    size_t limit_reads;                /* limit files the last discovery read: one per
                                        * distinct directory, not per process (its cost) */
} preoom_domains_t;

/* Empty set holding the host at index 0. */
void preoom_domains_init(preoom_domains_t *set);

/* The limited memory cgroups a process sits in, innermost first (absolute dirs, at most
 * cap). 0..cap entries, or -errno when /proc/PID/cgroup cannot be read (process gone). */
int preoom_pid_domain_chain(const preoom_procfs_t *fs, int32_t pid,
                            char (*dirs)[PREOOM_CGROUP_PATH_MAX], size_t cap,
                            preoom_cgroup_version_t *version);

/* One discovery over the processes: adds the domains on their paths (with parents set),
 * marks gone those no process sits in any more and whose directory has vanished or whose
 * limit was lifted, refreshes limits. innermost[i] (may be NULL) gets the index of the
 * innermost domain of pids[i] (0, the host, when in none; -1 when the process is gone).
 *
 * Precisely: a directory is a domain when it is below its hierarchy's root (the root is the
 * host), its limit file is there, it is inside a --cgroup subtree when there are any, and it
 * has a limit of its own or is itself named by --cgroup. A domain whose limit is lifted goes
 * even while processes sit in it (they count in the next enclosing one); one no process sits
 * in stays while it is still a domain. A gone index is reused from the next discovery on.
 * A process whose /proc/PID/cgroup does not parse, or names a path with "..", is live but
 * placed nowhere: the host (or -1 with no_host). With only, a process outside every named
 * subtree is in the host (or -1 with no_host). Parents and depths are relinked on every call,
 * so a limit set on or lifted from a middle cgroup moves its children. Returns 0, or -EINVAL
 * for bad arguments. Uses about 340 KiB of stack (the memo, measured with -fstack-usage). */
int preoom_domains_discover(const preoom_procfs_t *fs, const int32_t *pids, size_t n,
                            int *innermost, preoom_domains_t *set);

/* Is domain `inner` inside (or equal to) domain `outer`? The host holds every domain. */
bool preoom_domain_within(const preoom_domains_t *set, int inner, int outer);

/* The index of a domain by its dir or path ("/a/b", "memory/a/b", absolute; a trailing '/'
 * is ignored; "/" or "" is the host); -1. A dir wins over a path naming another domain. */
int preoom_domains_find(const preoom_domains_t *set, const preoom_procfs_t *fs,
                        const char *dir_or_path);

#endif

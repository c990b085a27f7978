/* tools/domains.c — finding the memory domains of the registered processes (domains.h): from
 * each process's /proc/PID/cgroup up its memory hierarchy to the root, every cgroup with a
 * limit of its own (or named by --cgroup) is a domain, and the host holds them all.
 *
 * Cost is the point of the shape: preoomd runs this every couple of seconds over hundreds of
 * processes that mostly share a few cgroups. One discovery reads each process's
 * /proc/PID/cgroup once and each distinct directory's limit file once, memoised in a scratch
 * table on the stack; a process whose cgroup was already seen in this call costs one file
 * read and one hash lookup.
 *
 * Never: allocate on the heap, write anything under /proc or /sys, trust a path from
 * /proc/PID/cgroup that climbs with "..", or let a directory that vanished keep its domain.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "domains.h"

/* The scratch of one discovery: distinct directories seen, each with its own limit and the
 * innermost domain at or above it. Sized for the stated load (500 processes, each possibly in
 * its own leaf scope, under a few dozen slices and services); when it fills, it is emptied
 * and refilled — slower, never wrong, because every entry is derived from the files again. */
#define DIR_CACHE_MAX 1024
#define DIR_HASH_SLOTS 2048 /* a power of two, twice the entries: short probe runs */
#define DIR_POOL_BYTES (128 * 1024)
/* --cgroup entries looked at (preoomd's own cap on the flag is lower). */
#define ONLY_MAX 64

typedef struct {
    uint32_t hash;
    uint32_t off, len;          /* the directory's string in the pool */
    uint64_t limit_bytes;       /* own limit, PREOOM_LIMIT_NONE */
    bool exists;                /* its limit file could be read */
    int domain;                 /* the domain this directory is, or -1 */
    int inner;                  /* the innermost domain at or above it, -1: none (the host) */
} dir_entry_t;

typedef struct {
    dir_entry_t e[DIR_CACHE_MAX];
    size_t n;
    int16_t slot[DIR_HASH_SLOTS]; /* index into e, -1 empty */
    char pool[DIR_POOL_BYTES];
    size_t pool_used;
} dir_cache_t;

/* Where the memory controller's hierarchies are, told once per call rather than per process. */
typedef struct {
    bool has_v2, has_v1;
    char v2root[PREOOM_CGROUP_PATH_MAX]; /* cgroup_root, or cgroup_root/unified (hybrid) */
    char v1root[PREOOM_CGROUP_PATH_MAX]; /* cgroup_root/memory */
} layout_t;

/* One discovery's context: what it reads from and what it has seen. */
typedef struct {
    const preoom_procfs_t *fs;
    preoom_domains_t *set;
    layout_t lay;
    dir_cache_t *cache;
    char only[ONLY_MAX][PREOOM_CGROUP_PATH_MAX];
    size_t n_only;
    bool seen[PREOOM_MAX_DOMAINS]; /* its directory was read in this call and still is one */
} disc_t;

/* ---- strings ------------------------------------------------------------------------------ */

static void strip_trailing_slashes(char *s)
{
    size_t n = strlen(s);
    while (n > 1 && s[n - 1] == '/')
        s[--n] = '\0';
}

/* Is `dir` equal to `top` or inside it (a path-component boundary, not a string prefix)? */
static bool dir_within(const char *dir, const char *top)
{
    size_t n = strlen(top);
    return strncmp(dir, top, n) == 0 && (dir[n] == '\0' || dir[n] == '/');
}

static uint32_t hash_str(const char *s, size_t n)
{
    /* FNV-1a: short strings sharing long prefixes spread well enough for a table this size. */
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- the files -------------------------------------------------------------------------- */

static int read_u64_file(const char *dir, const char *file, uint64_t *v)
{
    char path[PREOOM_CGROUP_PATH_MAX + 64], buf[128];
    size_t len;
    int n = snprintf(path, sizeof path, "%s/%s", dir, file);
    if (n < 0 || (size_t)n >= sizeof path)
        return -ENAMETOOLONG;
    int rc = preoom_read_file(path, buf, sizeof buf, &len, false);
    return rc ? rc : preoom_parse_cgroup_u64(buf, len, v);
}

/* A directory's own limit: v1 memory.limit_in_bytes (its "no limit" is near 2^63, so anything
 * from 2^62 up is none, as procfs.c reads it), v2 memory.max ("max" is none). -ENOENT when the
 * directory (or its limit file) is not there; a file that does not parse is read as no limit,
 * because a limit we cannot read is not one we can settle against. */
static int dir_limit(const char *dir, preoom_cgroup_version_t version, uint64_t *limit)
{
    uint64_t v;
    int rc = read_u64_file(dir, version == PREOOM_CGROUP_V1 ? "memory.limit_in_bytes"
                                                            : "memory.max", &v);
    if (rc == -ENOENT || rc == -ENOTDIR)
        return -ENOENT;
    if (rc)
        v = PREOOM_LIMIT_NONE;
    if (version == PREOOM_CGROUP_V1 && v >= (1ULL << 62))
        v = PREOOM_LIMIT_NONE;
    *limit = v;
    return 0;
}

static void find_layout(const preoom_procfs_t *fs, layout_t *lay)
{
    static const char *const v2roots[] = {"", "/unified"};
    char path[PREOOM_CGROUP_PATH_MAX + 32], buf[4096];
    size_t len;
    lay->has_v2 = lay->has_v1 = false;
    /* As preoom_find_memcg chooses: the v2 hierarchy that carries the memory controller
     * (unified at the root, or hybrid's at unified/), else v1's memory hierarchy. */
    for (size_t k = 0; k < 2 && !lay->has_v2; k++) {
        int n = snprintf(lay->v2root, sizeof lay->v2root, "%s%s", fs->cgroup_root, v2roots[k]);
        if (n < 0 || (size_t)n >= sizeof lay->v2root)
            continue;
        snprintf(path, sizeof path, "%s/cgroup.controllers", lay->v2root);
        if (preoom_read_file(path, buf, sizeof buf, &len, false) == 0 &&
            preoom_controllers_have(buf, len, "memory"))
            lay->has_v2 = true;
    }
    int n = snprintf(lay->v1root, sizeof lay->v1root, "%s/memory", fs->cgroup_root);
    lay->has_v1 = n > 0 && (size_t)n < sizeof lay->v1root && is_dir(lay->v1root);
}

/* The memory cgroup directory of a process, and the length of its hierarchy's root within it.
 * 1 found, 0 in no memory hierarchy we know (the host only), -errno (gone, or a malformed
 * /proc/PID/cgroup: -EINVAL). */
static int locate(const preoom_procfs_t *fs, const layout_t *lay, int32_t pid, char *dir,
                  size_t *rootlen, preoom_cgroup_version_t *version)
{
    preoom_pid_cgroup_t cg;
    int rc = preoom_read_pid_cgroup(fs, pid, &cg);
    if (rc)
        return rc;
    const char *root, *path;
    if (cg.has_v2 && lay->has_v2) {
        root = lay->v2root, path = cg.v2, *version = PREOOM_CGROUP_V2;
    } else if (cg.has_v1_memory && lay->has_v1) {
        root = lay->v1root, path = cg.v1_memory, *version = PREOOM_CGROUP_V1;
    } else {
        return 0;
    }
    /* The kernel never prints "..", but a fake or hostile tree could climb out of the root. */
    size_t pl = strlen(path);
    if (strstr(path, "/../") || (pl >= 3 && strcmp(path + pl - 3, "/..") == 0))
        return -EINVAL;
    int n = snprintf(dir, PREOOM_CGROUP_PATH_MAX, "%s%s", root, strcmp(path, "/") ? path : "");
    if (n < 0 || n >= PREOOM_CGROUP_PATH_MAX)
        return -ENAMETOOLONG;
    strip_trailing_slashes(dir);
    *rootlen = strlen(root);
    return 1;
}

/* The parent directory, in place; false at (or above) the hierarchy's root. */
static bool dir_up(char *dir, size_t rootlen)
{
    char *slash = strrchr(dir, '/');
    if (strlen(dir) <= rootlen || !slash || (size_t)(slash - dir) < rootlen)
        return false;
    *slash = '\0';
    return true;
}

/* ---- --cgroup ---------------------------------------------------------------------------- */

/* An --cgroup entry as an absolute directory: one under cgroup_root, or any that exists, is a
 * directory; another starting with '/' is a cgroup path in the memory hierarchy; the rest are
 * relative to cgroup_root ("memory/a", "unified/a.slice"). */
static int resolve_only(const preoom_procfs_t *fs, const layout_t *lay, const char *s, char *out)
{
    int n;
    if (s[0] == '/' && (dir_within(s, fs->cgroup_root) || is_dir(s)))
        n = snprintf(out, PREOOM_CGROUP_PATH_MAX, "%s", s);
    else if (s[0] == '/')
        n = snprintf(out, PREOOM_CGROUP_PATH_MAX, "%s%s",
                     lay->has_v2 ? lay->v2root : lay->v1root, strcmp(s, "/") ? s : "");
    else
        n = snprintf(out, PREOOM_CGROUP_PATH_MAX, "%s/%s", fs->cgroup_root, s);
    if (n < 0 || n >= PREOOM_CGROUP_PATH_MAX)
        return -ENAMETOOLONG;
    strip_trailing_slashes(out);
    return 0;
}

static bool in_scope(const disc_t *x, const char *dir)
{
    if (x->n_only == 0)
        return true;
    for (size_t k = 0; k < x->n_only; k++)
        if (dir_within(dir, x->only[k]))
            return true;
    return false;
}

static bool is_only(const disc_t *x, const char *dir)
{
    for (size_t k = 0; k < x->n_only; k++)
        if (strcmp(dir, x->only[k]) == 0)
            return true;
    return false;
}

/* ---- the set ------------------------------------------------------------------------------ */

void preoom_domains_init(preoom_domains_t *set)
{
    memset(set, 0, sizeof *set);
    preoom_domain_t *h = &set->d[PREOOM_DOMAIN_HOST];
    h->used = true;
    snprintf(h->path, sizeof h->path, "/");
    h->limit_bytes = PREOOM_LIMIT_NONE;
    h->parent = -1;
    set->n = 1;
}

static int find_by_dir(const preoom_domains_t *set, const char *dir)
{
    for (size_t i = 1; i < set->n; i++)
        if (set->d[i].used && strcmp(set->d[i].dir, dir) == 0)
            return (int)i;
    return -1;
}

/* The domain for a directory that deserves one: the existing one, or a new one in the lowest
 * free index. -1 when there is no room (counted in set->dropped). */
static int domain_for(disc_t *x, const char *dir, size_t rootlen,
                      preoom_cgroup_version_t version, uint64_t limit)
{
    preoom_domains_t *set = x->set;
    int i = find_by_dir(set, dir);
    if (i < 0) {
        /* An index that goes in this call is still used here (gone is marked after every
         * process was placed), so its goodbye is always seen before it is reused. */
        for (size_t k = 1; k < PREOOM_MAX_DOMAINS && i < 0; k++)
            if (!set->d[k].used)
                i = (int)k;
        if (i < 0) {
            set->dropped++;
            return -1;
        }
        preoom_domain_t *d = &set->d[i];
        memset(d, 0, sizeof *d);
        d->used = d->added = true;
        snprintf(d->dir, sizeof d->dir, "%s", dir);
        snprintf(d->path, sizeof d->path, "%s", dir[rootlen] ? dir + rootlen : "/");
        d->version = version;
        d->parent = PREOOM_DOMAIN_HOST;
        d->depth = 1;
        if ((size_t)i >= set->n)
            set->n = (size_t)i + 1;
    }
    set->d[i].limit_bytes = limit;
    x->seen[i] = true;
    return i;
}

/* ---- the walk, memoised ------------------------------------------------------------------- */

static void cache_clear(dir_cache_t *c)
{
    c->n = 0;
    c->pool_used = 0;
    memset(c->slot, 0xff, sizeof c->slot);
}

static dir_entry_t *cache_get(dir_cache_t *c, const char *dir, size_t len, uint32_t h)
{
    for (size_t p = h & (DIR_HASH_SLOTS - 1);; p = (p + 1) & (DIR_HASH_SLOTS - 1)) {
        int16_t k = c->slot[p];
        if (k < 0)
            return NULL;
        dir_entry_t *e = &c->e[k];
        if (e->hash == h && e->len == len && memcmp(c->pool + e->off, dir, len) == 0)
            return e;
    }
}

/* A new entry for dir, or NULL when the table is full (the caller empties it and retries). */
static dir_entry_t *cache_put(dir_cache_t *c, const char *dir, size_t len, uint32_t h)
{
    if (c->n >= DIR_CACHE_MAX || c->pool_used + len > DIR_POOL_BYTES)
        return NULL;
    size_t p = h & (DIR_HASH_SLOTS - 1);
    while (c->slot[p] >= 0)
        p = (p + 1) & (DIR_HASH_SLOTS - 1);
    dir_entry_t *e = &c->e[c->n];
    c->slot[p] = (int16_t)c->n++;
    e->hash = h;
    e->off = (uint32_t)c->pool_used;
    e->len = (uint32_t)len;
    memcpy(c->pool + c->pool_used, dir, len);
    c->pool_used += len;
    return e;
}

/* The innermost domain at or above `leaf` (-1: none but the host), reading each directory's
 * limit at most once per call. Walks up to the first directory already known, then settles
 * the unknown ones from the top down, so that each knows its enclosing domain. */
static int resolve(disc_t *x, const char *leaf, size_t rootlen, preoom_cgroup_version_t version)
{
    char dirs[PREOOM_DOMAIN_DEPTH_MAX * 4][PREOOM_CGROUP_PATH_MAX];
    for (int attempt = 0; attempt < 2; attempt++) {
        size_t n = 0;
        int above = -1;
        char cur[PREOOM_CGROUP_PATH_MAX];
        snprintf(cur, sizeof cur, "%s", leaf);
        /* Up to the first known directory, or the root (never a domain: it is the host). */
        for (;;) {
            size_t len = strlen(cur);
            if (len <= rootlen)
                break;
            dir_entry_t *e = cache_get(x->cache, cur, len, hash_str(cur, len));
            if (e) {
                above = e->inner;
                break;
            }
            if (n == sizeof dirs / sizeof dirs[0])
                break; /* deeper than any real tree: the rest is treated as the root's */
            memcpy(dirs[n++], cur, len + 1);
            if (!dir_up(cur, rootlen))
                break;
        }
        /* And down again, each directory enclosed by what is above it. */
        bool full = false;
        for (size_t k = n; k-- > 0 && !full;) {
            size_t len = strlen(dirs[k]);
            uint32_t h = hash_str(dirs[k], len);
            dir_entry_t *e = cache_put(x->cache, dirs[k], len, h);
            if (!e) {
                full = true;
                break;
            }
            e->exists = dir_limit(dirs[k], version, &e->limit_bytes) == 0;
            x->set->limit_reads++;
            e->domain = -1;
            if (e->exists && in_scope(x, dirs[k]) &&
                (e->limit_bytes != PREOOM_LIMIT_NONE || is_only(x, dirs[k])))
                e->domain = domain_for(x, dirs[k], rootlen, version, e->limit_bytes);
            e->inner = e->domain >= 0 ? e->domain : above;
            above = e->inner;
        }
        if (!full)
            return above;
        cache_clear(x->cache);
    }
    return -1; /* one path longer than the whole table: not cached, not a domain */
}

/* Where a domain's hierarchy root ends in its dir: the dir is the root followed by the path. */
static size_t domain_rootlen(const preoom_domain_t *d)
{
    size_t dl = strlen(d->dir), pl = strlen(d->path);
    return strcmp(d->path, "/") == 0 || pl > dl ? dl : dl - pl;
}

/* Nearest enclosing domain and depth of every domain, from the directories: a domain inserted
 * or gone between two others changes its children's parent. */
static void link_parents(preoom_domains_t *set)
{
    for (size_t i = 1; i < set->n; i++) {
        preoom_domain_t *d = &set->d[i];
        if (!d->used)
            continue;
        char up[PREOOM_CGROUP_PATH_MAX];
        size_t rootlen = domain_rootlen(d);
        snprintf(up, sizeof up, "%s", d->dir);
        d->parent = PREOOM_DOMAIN_HOST;
        while (dir_up(up, rootlen)) {
            int p = find_by_dir(set, up);
            if (p > 0) {
                d->parent = p;
                break;
            }
        }
    }
    for (size_t i = 1; i < set->n; i++) {
        preoom_domain_t *d = &set->d[i];
        if (!d->used)
            continue;
        int depth = 1;
        for (int p = d->parent; p > 0 && depth <= PREOOM_MAX_DOMAINS; p = set->d[p].parent)
            depth++;
        d->depth = depth;
    }
}

int preoom_domains_discover(const preoom_procfs_t *fs, const int32_t *pids, size_t n,
                            int *innermost, preoom_domains_t *set)
{
    if (!fs || !set || (n && !pids))
        return -EINVAL;
    dir_cache_t cache;
    disc_t x;
    memset(x.seen, 0, sizeof x.seen);
    x.fs = fs;
    x.set = set;
    x.cache = &cache;
    cache_clear(&cache);
    find_layout(fs, &x.lay);
    x.n_only = 0;
    for (size_t k = 0; k < set->n_only && x.n_only < ONLY_MAX; k++)
        if (set->only[k] && set->only[k][0] &&
            resolve_only(fs, &x.lay, set->only[k], x.only[x.n_only]) == 0)
            x.n_only++;

    /* The flags describe the last discovery only. */
    for (size_t i = 0; i < PREOOM_MAX_DOMAINS; i++)
        set->d[i].added = set->d[i].gone = false;
    set->dropped = 0;
    set->limit_reads = 0;
    set->d[PREOOM_DOMAIN_HOST].used = !set->no_host;
    const int none = set->no_host ? -1 : PREOOM_DOMAIN_HOST;

    for (size_t i = 0; i < n; i++) {
        char dir[PREOOM_CGROUP_PATH_MAX];
        size_t rootlen = 0;
        preoom_cgroup_version_t version = 0;
        int rc = locate(fs, &x.lay, pids[i], dir, &rootlen, &version);
        int in = none;
        if (rc == -ENOENT || rc == -ESRCH)
            in = -1; /* the process is gone */
        else if (rc == 1) {
            int d = resolve(&x, dir, rootlen, version);
            if (d >= 0)
                in = d;
        }
        /* Other errors (a malformed /proc/PID/cgroup, a path too long): a live process we
         * cannot place is left to the host, which holds every process anyway. */
        if (innermost)
            innermost[i] = in;
    }

    /* Every cgroup --cgroup names is a domain from the first discovery on, processes or
     * not: with --scope cgroup its unregistered processes are candidates, and none of them
     * registers to make it known. */
    for (size_t k = 0; k < x.n_only; k++) {
        char dir[PREOOM_CGROUP_PATH_MAX];
        snprintf(dir, sizeof dir, "%s", x.only[k]);
        if (x.lay.has_v2 && dir_within(dir, x.lay.v2root))
            (void)resolve(&x, dir, strlen(x.lay.v2root), PREOOM_CGROUP_V2);
        else if (x.lay.has_v1 && dir_within(dir, x.lay.v1root))
            (void)resolve(&x, dir, strlen(x.lay.v1root), PREOOM_CGROUP_V1);
    }

    /* Domains no process sits in now: kept while their directory is there with a limit (or
     * named by --cgroup, in scope), gone otherwise. Their limits are refreshed through the
     * same memo, so an ancestor with a new limit is found on the way. */
    for (size_t i = 1; i < set->n; i++) {
        preoom_domain_t *d = &set->d[i];
        if (!d->used || x.seen[i])
            continue;
        size_t rootlen = domain_rootlen(d);
        char dir[PREOOM_CGROUP_PATH_MAX];
        snprintf(dir, sizeof dir, "%s", d->dir);
        (void)resolve(&x, dir, rootlen, d->version);
    }
    for (size_t i = 1; i < set->n; i++) {
        preoom_domain_t *d = &set->d[i];
        if (d->used && !x.seen[i]) {
            d->used = false;
            d->gone = true;
        }
    }
    link_parents(set);
    size_t hw = 1;
    for (size_t i = 1; i < PREOOM_MAX_DOMAINS; i++)
        if (set->d[i].used || set->d[i].gone)
            hw = i + 1;
    set->n = hw;
    return 0;
}

int preoom_pid_domain_chain(const preoom_procfs_t *fs, int32_t pid,
                            char (*dirs)[PREOOM_CGROUP_PATH_MAX], size_t cap,
                            preoom_cgroup_version_t *version)
{
    layout_t lay;
    char cur[PREOOM_CGROUP_PATH_MAX];
    size_t rootlen = 0, n = 0;
    preoom_cgroup_version_t v = 0;
    find_layout(fs, &lay);
    int rc = locate(fs, &lay, pid, cur, &rootlen, &v);
    if (rc < 0)
        return rc;
    if (version)
        *version = v;
    if (rc == 0)
        return 0;
    do {
        uint64_t limit;
        if (strlen(cur) > rootlen && dir_limit(cur, v, &limit) == 0 &&
            limit != PREOOM_LIMIT_NONE) {
            if (n == cap)
                break;
            memcpy(dirs[n++], cur, strlen(cur) + 1);
        }
    } while (dir_up(cur, rootlen));
    return (int)n;
}

bool preoom_domain_within(const preoom_domains_t *set, int inner, int outer)
{
    if (inner < 0 || outer < 0 || (size_t)inner >= set->n || (size_t)outer >= set->n)
        return false;
    if (outer == PREOOM_DOMAIN_HOST)
        return true;
    /* Bounded: a parent chain can never be longer than the set. */
    for (int i = inner, steps = 0; i > 0 && steps <= PREOOM_MAX_DOMAINS; steps++) {
        if (i == outer)
            return true;
        i = set->d[i].parent;
    }
    return false;
}

int preoom_domains_find(const preoom_domains_t *set, const preoom_procfs_t *fs,
                        const char *dir_or_path)
{
    char want[PREOOM_CGROUP_PATH_MAX], rel[PREOOM_CGROUP_PATH_MAX];
    if (!dir_or_path)
        return -1;
    int n = snprintf(want, sizeof want, "%s", dir_or_path);
    if (n < 0 || n >= (int)sizeof want)
        return -1;
    strip_trailing_slashes(want);
    if (want[0] == '\0' || strcmp(want, "/") == 0)
        return PREOOM_DOMAIN_HOST;
    n = snprintf(rel, sizeof rel, "%s/%s", fs ? fs->cgroup_root : "", want);
    bool have_rel = want[0] != '/' && fs && n > 0 && n < (int)sizeof rel;
    /* A directory names one domain; a path may name one in either hierarchy, the dir wins. */
    for (size_t i = 1; i < set->n; i++)
        if (set->d[i].used && (strcmp(set->d[i].dir, want) == 0 ||
                               (have_rel && strcmp(set->d[i].dir, rel) == 0)))
            return (int)i;
    for (size_t i = 1; i < set->n; i++)
        if (set->d[i].used && strcmp(set->d[i].path, want) == 0)
            return (int)i;
    return -1;
}

/* tests/unit/test_domains.c — domain discovery (tools/domains.c) over fake /proc and
 * /sys/fs/cgroup trees built in a temporary directory: cgroup v1 (memory/), v2 (memory in the
 * root's cgroup.controllers) and hybrid (v2 at unified/ without memory, v1 memory beside it).
 * The trees change between discoveries — processes move, cgroups vanish, limits are lifted
 * and set — because that is what a discovery every two seconds meets.
 *
 * Writes only under its own mkdtemp directory, which it removes; never creates memory
 * pressure and never touches the real cgroup tree.
 */
#include "harness.h"
#include "domains.h"

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define GIB (1024ULL * 1024 * 1024)
#define V1_NONE "9223372036854771712\n" /* what v1 prints for no limit (4 KiB pages) */

static char top[512];
static char proc_root[600], cg_root[600];

/* ---- building trees ---------------------------------------------------------------------- */

static void mkdirs(const char *path)
{
    char p[2048];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0755);
            *s = '/';
        }
    mkdir(p, 0755);
}

/* Write text to top/<fmt...>, making its directories. */
static void put(const char *text, const char *fmt, ...)
{
    char rel[1024], path[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof rel, fmt, ap);
    va_end(ap);
    snprintf(path, sizeof path, "%s/%s", top, rel);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    mkdirs(path);
    *slash = '/';
    FILE *f = fopen(path, "w");
    if (!f) {
        printf("# cannot write %s\n", path);
        return;
    }
    fputs(text, f);
    fclose(f);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

static void rm_rf(const char *rel)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", top, rel);
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh tree: everything under top removed. */
static preoom_procfs_t fresh(void)
{
    rm_rf("proc");
    rm_rf("cg");
    mkdirs(proc_root);
    mkdirs(cg_root);
    preoom_procfs_t fs;
    preoom_procfs_init(&fs);
    fs.proc_root = proc_root;
    fs.cgroup_root = cg_root;
    return fs;
}

static void v1_cgroup(const char *path, uint64_t limit)
{
    char text[64];
    if (limit == PREOOM_LIMIT_NONE)
        snprintf(text, sizeof text, V1_NONE);
    else
        snprintf(text, sizeof text, "%llu\n", (unsigned long long)limit);
    put(text, "cg/memory%s/memory.limit_in_bytes", path);
    put("0\n", "cg/memory%s/memory.usage_in_bytes", path);
}

static void v2_cgroup(const char *root, const char *path, uint64_t limit)
{
    char text[64];
    if (limit == PREOOM_LIMIT_NONE)
        snprintf(text, sizeof text, "max\n");
    else
        snprintf(text, sizeof text, "%llu\n", (unsigned long long)limit);
    put("memory pids\n", "cg%s%s/cgroup.controllers", root, path);
    put(text, "cg%s%s/memory.max", root, path);
    put("0\n", "cg%s%s/memory.current", root, path);
}

static void v1_pid(int pid, const char *path)
{
    char text[2048];
    snprintf(text, sizeof text, "12:pids:/\n4:memory:%s\n1:name=systemd:%s\n0::/\n", path, path);
    put(text, "proc/%d/cgroup", pid);
}

static void v2_pid(int pid, const char *path)
{
    char text[2048];
    snprintf(text, sizeof text, "0::%s\n", path);
    put(text, "proc/%d/cgroup", pid);
}

static int idx(const preoom_domains_t *s, const preoom_procfs_t *fs, const char *path)
{
    return preoom_domains_find(s, fs, path);
}

static size_t used_count(const preoom_domains_t *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        n += s->d[i].used;
    return n;
}

/* ---- the shared shape: a slice > a service > three containers ------------------------------
 * system.slice 8 GiB > app.service 2 GiB (less than its children's 3 × 1 GiB) > c1, c2, c3;
 * app.service/leaf has no limit of its own; user.slice has none either. Pids: 101..103 in the
 * containers, 104 in the unlimited leaf, 105 at the root, 106 in user.slice. */
static const int32_t shape_pids[] = {101, 102, 103, 104, 105, 106};
#define SHAPE_N (sizeof shape_pids / sizeof shape_pids[0])

static void check_shape(const preoom_procfs_t *fs, preoom_cgroup_version_t v,
                        const char *dir_prefix)
{
    preoom_domains_t s;
    int in[SHAPE_N];
    preoom_domains_init(&s);
    CHECK_EQ_I64(preoom_domains_discover(fs, shape_pids, SHAPE_N, in, &s), 0);
    CHECK_EQ_U64(used_count(&s), 6); /* host, slice, service, three containers */
    int slice = idx(&s, fs, "/system.slice");
    int svc = idx(&s, fs, "/system.slice/app.service");
    int c1 = idx(&s, fs, "/system.slice/app.service/c1");
    int c2 = idx(&s, fs, "/system.slice/app.service/c2");
    int c3 = idx(&s, fs, "/system.slice/app.service/c3");
    CHECK(slice > 0 && svc > 0 && c1 > 0 && c2 > 0 && c3 > 0);
    if (slice <= 0 || svc <= 0 || c1 <= 0 || c2 <= 0 || c3 <= 0)
        return;
    CHECK_EQ_I64(in[0], c1);
    CHECK_EQ_I64(in[1], c2);
    CHECK_EQ_I64(in[2], c3);
    CHECK_EQ_I64(in[3], svc); /* an unlimited leaf counts in its limited parent */
    CHECK_EQ_I64(in[4], PREOOM_DOMAIN_HOST);
    CHECK_EQ_I64(in[5], PREOOM_DOMAIN_HOST);
    CHECK_EQ_I64(s.d[slice].parent, PREOOM_DOMAIN_HOST);
    CHECK_EQ_I64(s.d[svc].parent, slice);
    CHECK_EQ_I64(s.d[c1].parent, svc);
    CHECK_EQ_I64(s.d[c3].parent, svc);
    CHECK_EQ_I64(s.d[slice].depth, 1);
    CHECK_EQ_I64(s.d[svc].depth, 2);
    CHECK_EQ_I64(s.d[c2].depth, 3);
    CHECK_EQ_U64(s.d[slice].limit_bytes, 8 * GIB);
    CHECK_EQ_U64(s.d[svc].limit_bytes, 2 * GIB);
    CHECK_EQ_U64(s.d[c1].limit_bytes, 1 * GIB);
    CHECK(s.d[svc].limit_bytes < s.d[c1].limit_bytes + s.d[c2].limit_bytes + s.d[c3].limit_bytes);
    CHECK_EQ_I64(s.d[c1].version, v);
    CHECK(s.d[c1].added && !s.d[c1].gone);
    CHECK_STR(s.d[c1].path, "/system.slice/app.service/c1");
    char want[2048];
    snprintf(want, sizeof want, "%s%s%s/system.slice/app.service/c1", cg_root,
             *dir_prefix ? "/" : "", dir_prefix);
    CHECK_STR(s.d[c1].dir, want);
    CHECK(strcmp(s.d[0].dir, "") == 0 && s.d[0].parent == -1 && s.d[0].depth == 0);
    CHECK_EQ_U64(s.d[0].limit_bytes, PREOOM_LIMIT_NONE);
    /* Nesting. */
    CHECK(preoom_domain_within(&s, c1, svc));
    CHECK(preoom_domain_within(&s, c1, slice));
    CHECK(preoom_domain_within(&s, c1, PREOOM_DOMAIN_HOST));
    CHECK(preoom_domain_within(&s, c1, c1));
    CHECK(!preoom_domain_within(&s, c1, c2));
    CHECK(!preoom_domain_within(&s, svc, c1));
    CHECK(!preoom_domain_within(&s, PREOOM_DOMAIN_HOST, slice));
    CHECK(!preoom_domain_within(&s, -1, PREOOM_DOMAIN_HOST));
    /* Finding by dir, relative dir, path, trailing slash; the host by "/". */
    CHECK_EQ_I64(preoom_domains_find(&s, fs, want), c1);
    if (*dir_prefix) {
        snprintf(want, sizeof want, "%s/system.slice/app.service/c1/", dir_prefix);
        CHECK_EQ_I64(preoom_domains_find(&s, fs, want), c1);
    }
    CHECK_EQ_I64(preoom_domains_find(&s, fs, "/system.slice/app.service/c1/"), c1);
    CHECK_EQ_I64(preoom_domains_find(&s, fs, "/"), PREOOM_DOMAIN_HOST);
    CHECK_EQ_I64(preoom_domains_find(&s, fs, "/system.slice/app.service/leaf"), -1);
    CHECK_EQ_I64(preoom_domains_find(&s, fs, "/system.slice/app.service/c"), -1);
    /* A second discovery over the same tree: the same indices, nothing added. */
    int in2[SHAPE_N];
    CHECK_EQ_I64(preoom_domains_discover(fs, shape_pids, SHAPE_N, in2, &s), 0);
    CHECK(memcmp(in, in2, sizeof in) == 0);
    CHECK(!s.d[c1].added && !s.d[svc].added && s.d[c1].used);
    /* The chain of one process, innermost first, independent of the set. */
    char dirs[PREOOM_DOMAIN_DEPTH_MAX][PREOOM_CGROUP_PATH_MAX];
    preoom_cgroup_version_t got = 0;
    CHECK_EQ_I64(preoom_pid_domain_chain(fs, 104, dirs, PREOOM_DOMAIN_DEPTH_MAX, &got), 2);
    CHECK_STR(dirs[0], s.d[svc].dir);
    CHECK_STR(dirs[1], s.d[slice].dir);
    CHECK_EQ_I64(got, v);
    CHECK_EQ_I64(preoom_pid_domain_chain(fs, 101, dirs, 2, &got), 2); /* capped */
    CHECK_STR(dirs[0], s.d[c1].dir);
    CHECK_EQ_I64(preoom_pid_domain_chain(fs, 105, dirs, PREOOM_DOMAIN_DEPTH_MAX, &got), 0);
    CHECK(preoom_pid_domain_chain(fs, 999, dirs, PREOOM_DOMAIN_DEPTH_MAX, &got) < 0);
}

static void build_v1_shape(void)
{
    v1_cgroup("", PREOOM_LIMIT_NONE);
    v1_cgroup("/system.slice", 8 * GIB);
    v1_cgroup("/system.slice/app.service", 2 * GIB);
    v1_cgroup("/system.slice/app.service/c1", 1 * GIB);
    v1_cgroup("/system.slice/app.service/c2", 1 * GIB);
    v1_cgroup("/system.slice/app.service/c3", 1 * GIB);
    v1_cgroup("/system.slice/app.service/leaf", PREOOM_LIMIT_NONE);
    v1_cgroup("/user.slice", PREOOM_LIMIT_NONE);
    v1_pid(101, "/system.slice/app.service/c1");
    v1_pid(102, "/system.slice/app.service/c2");
    v1_pid(103, "/system.slice/app.service/c3");
    v1_pid(104, "/system.slice/app.service/leaf");
    v1_pid(105, "/");
    v1_pid(106, "/user.slice");
}

static void build_v2_shape(const char *root)
{
    put("cpu io memory pids\n", "cg%s/cgroup.controllers", root);
    v2_cgroup(root, "/system.slice", 8 * GIB);
    v2_cgroup(root, "/system.slice/app.service", 2 * GIB);
    v2_cgroup(root, "/system.slice/app.service/c1", 1 * GIB);
    v2_cgroup(root, "/system.slice/app.service/c2", 1 * GIB);
    v2_cgroup(root, "/system.slice/app.service/c3", 1 * GIB);
    v2_cgroup(root, "/system.slice/app.service/leaf", PREOOM_LIMIT_NONE);
    v2_cgroup(root, "/user.slice", PREOOM_LIMIT_NONE);
    v2_pid(101, "/system.slice/app.service/c1");
    v2_pid(102, "/system.slice/app.service/c2");
    v2_pid(103, "/system.slice/app.service/c3");
    v2_pid(104, "/system.slice/app.service/leaf");
    v2_pid(105, "/");
    v2_pid(106, "/user.slice");
}

static void shape_v1(void)
{
    preoom_procfs_t fs = fresh();
    build_v1_shape();
    check_shape(&fs, PREOOM_CGROUP_V1, "memory");
}

static void shape_v2(void)
{
    preoom_procfs_t fs = fresh();
    build_v2_shape("");
    check_shape(&fs, PREOOM_CGROUP_V2, "");
}

static void shape_hybrid(void)
{
    preoom_procfs_t fs = fresh();
    /* systemd's hybrid layout: v2 at unified/ for process tracking, no memory there; the
     * memory controller on v1. /proc/PID/cgroup names both: the v1 line must win. */
    put("\n", "cg/unified/cgroup.controllers");
    put("\n", "cg/unified/user.slice/cgroup.controllers");
    build_v1_shape();
    v1_pid(104, "/system.slice/app.service/leaf");
    put("12:pids:/\n4:memory:/system.slice/app.service/leaf\n"
        "0::/user.slice/session-1.scope\n", "proc/104/cgroup");
    check_shape(&fs, PREOOM_CGROUP_V1, "memory");
}

static void shape_hybrid_v2_memory(void)
{
    /* The other hybrid: memory on the unified hierarchy mounted at unified/. */
    preoom_procfs_t fs = fresh();
    mkdirs(cg_root);
    build_v2_shape("/unified");
    check_shape(&fs, PREOOM_CGROUP_V2, "unified");
}

/* ---- change between discoveries ---------------------------------------------------------- */

static void moves_and_vanishing(void)
{
    preoom_procfs_t fs = fresh();
    build_v2_shape("");
    preoom_domains_t s;
    int in[SHAPE_N];
    preoom_domains_init(&s);
    CHECK_EQ_I64(preoom_domains_discover(&fs, shape_pids, SHAPE_N, in, &s), 0);
    int svc = idx(&s, &fs, "/system.slice/app.service");
    int c1 = idx(&s, &fs, "/system.slice/app.service/c1");
    int c2 = idx(&s, &fs, "/system.slice/app.service/c2");
    int c3 = idx(&s, &fs, "/system.slice/app.service/c3");
    CHECK(svc > 0 && c1 > 0 && c2 > 0 && c3 > 0);

    /* 101 moves from c1 to c2: its innermost follows; c1, empty but still limited, stays. */
    v2_pid(101, "/system.slice/app.service/c2");
    CHECK_EQ_I64(preoom_domains_discover(&fs, shape_pids, SHAPE_N, in, &s), 0);
    CHECK_EQ_I64(in[0], c2);
    CHECK(s.d[c1].used && !s.d[c1].gone);

    /* c1 is removed: gone, once; the flag is cleared by the discovery after. */
    rm_rf("cg/system.slice/app.service/c1");
    CHECK_EQ_I64(preoom_domains_discover(&fs, shape_pids, SHAPE_N, in, &s), 0);
    CHECK(!s.d[c1].used && s.d[c1].gone);
    CHECK_EQ_I64(idx(&s, &fs, "/system.slice/app.service/c1"), -1);
    CHECK((size_t)c1 < s.n); /* still inside the loop bound, so the goodbye is seen */
    CHECK_EQ_I64(preoom_domains_discover(&fs, shape_pids, SHAPE_N, in, &s), 0);
    CHECK(!s.d[c1].used && !s.d[c1].gone);

    /* 103 moves to the unlimited leaf and c3 is removed, both within one interval: 103 now
     * counts in app.service. */
    v2_pid(103, "/system.slice/app.service/leaf");
    rm_rf("cg/system.slice/app.service/c3");
    CHECK_EQ_I64(preoom_domains_discover(&fs, shape_pids, SHAPE_N, in, &s), 0);
    CHECK_EQ_I64(in[2], svc);
    CHECK(s.d[c3].gone);

    /* A new limited cgroup takes the lowest free index (c1's, freed two discoveries ago). */
    v2_cgroup("", "/system.slice/app.service/c4", 1 * GIB);
    v2_pid(103, "/system.slice/app.service/c4");
    CHECK_EQ_I64(preoom_domains_discover(&fs, shape_pids, SHAPE_N, in, &s), 0);
    CHECK_EQ_I64(in[2], c1 < c3 ? c1 : c3);
    CHECK(s.d[in[2]].added && s.d[in[2]].used);
    CHECK_STR(s.d[in[2]].path, "/system.slice/app.service/c4");
    CHECK_EQ_I64(s.d[in[2]].parent, svc);

    /* A gone pid: -1. A malformed /proc/PID/cgroup: the process is live, left to the host. */
    rm_rf("proc/106");
    put("this is not a cgroup file\n", "proc/105/cgroup");
    CHECK_EQ_I64(preoom_domains_discover(&fs, shape_pids, SHAPE_N, in, &s), 0);
    CHECK_EQ_I64(in[5], -1);
    CHECK_EQ_I64(in[4], PREOOM_DOMAIN_HOST);
    put("0::/../../etc\n", "proc/105/cgroup");
    CHECK_EQ_I64(preoom_domains_discover(&fs, shape_pids, SHAPE_N, in, &s), 0);
    CHECK_EQ_I64(in[4], PREOOM_DOMAIN_HOST);
    put("", "proc/105/cgroup"); /* empty: in no hierarchy */
    CHECK_EQ_I64(preoom_domains_discover(&fs, shape_pids, SHAPE_N, in, &s), 0);
    CHECK_EQ_I64(in[4], PREOOM_DOMAIN_HOST);
    /* A process whose cgroup directory vanished under it: its innermost existing ancestor. */
    v2_pid(105, "/system.slice/app.service/ghost");
    CHECK_EQ_I64(preoom_domains_discover(&fs, shape_pids, SHAPE_N, in, &s), 0);
    CHECK_EQ_I64(in[4], svc);
    /* NULL innermost is allowed. */
    CHECK_EQ_I64(preoom_domains_discover(&fs, shape_pids, SHAPE_N, NULL, &s), 0);
    CHECK_EQ_I64(preoom_domains_discover(&fs, NULL, 0, NULL, &s), 0);
}

static void limits_lifted_and_set(void)
{
    preoom_procfs_t fs = fresh();
    build_v1_shape();
    preoom_domains_t s;
    int in[SHAPE_N];
    preoom_domains_init(&s);
    CHECK_EQ_I64(preoom_domains_discover(&fs, shape_pids, SHAPE_N, in, &s), 0);
    int slice = idx(&s, &fs, "/system.slice");
    int svc = idx(&s, &fs, "/system.slice/app.service");
    int c2 = idx(&s, &fs, "/system.slice/app.service/c2");
    CHECK(slice > 0 && svc > 0 && c2 > 0);

    /* c2's limit is lifted while 102 still sits in it: c2 is gone, 102 counts in app.service. */
    v1_cgroup("/system.slice/app.service/c2", PREOOM_LIMIT_NONE);
    CHECK_EQ_I64(preoom_domains_discover(&fs, shape_pids, SHAPE_N, in, &s), 0);
    CHECK(s.d[c2].gone && !s.d[c2].used);
    CHECK_EQ_I64(in[1], svc);

    /* A limit changed in place is refreshed, the index kept. */
    v1_cgroup("/system.slice/app.service", 3 * GIB);
    CHECK_EQ_I64(preoom_domains_discover(&fs, shape_pids, SHAPE_N, in, &s), 0);
    CHECK_EQ_U64(s.d[svc].limit_bytes, 3 * GIB);
    CHECK(!s.d[svc].added);

    /* app.service's limit lifted: its children now hang from the slice. */
    v1_cgroup("/system.slice/app.service", PREOOM_LIMIT_NONE);
    CHECK_EQ_I64(preoom_domains_discover(&fs, shape_pids, SHAPE_N, in, &s), 0);
    CHECK(s.d[svc].gone);
    int c1 = idx(&s, &fs, "/system.slice/app.service/c1");
    CHECK(c1 > 0);
    if (c1 > 0) {
        CHECK_EQ_I64(s.d[c1].parent, slice);
        CHECK_EQ_I64(s.d[c1].depth, 2);
    }
    CHECK_EQ_I64(in[3], slice);

    /* ... and set again: a new domain in between; the children's parent follows. */
    v1_cgroup("/system.slice/app.service", 2 * GIB);
    CHECK_EQ_I64(preoom_domains_discover(&fs, shape_pids, SHAPE_N, in, &s), 0);
    svc = idx(&s, &fs, "/system.slice/app.service");
    CHECK(svc > 0 && s.d[svc].added);
    if (c1 > 0 && svc > 0) {
        CHECK_EQ_I64(s.d[c1].parent, svc);
        CHECK_EQ_I64(s.d[c1].depth, 3);
        CHECK_EQ_I64(s.d[svc].parent, slice);
    }

    /* A domain no process sits in any more, still limited, is kept; lifted, it goes. */
    static const int32_t only_106[] = {106};
    CHECK_EQ_I64(preoom_domains_discover(&fs, only_106, 1, in, &s), 0);
    CHECK(s.d[slice].used && s.d[svc].used && !s.d[slice].gone);
    v1_cgroup("/system.slice", PREOOM_LIMIT_NONE);
    CHECK_EQ_I64(preoom_domains_discover(&fs, only_106, 1, in, &s), 0);
    CHECK(s.d[slice].gone && s.d[svc].used);
    CHECK_EQ_I64(s.d[svc].parent, PREOOM_DOMAIN_HOST);
    CHECK_EQ_I64(s.d[svc].depth, 1);
}

static void only_restriction(void)
{
    preoom_procfs_t fs = fresh();
    build_v1_shape();
    preoom_domains_t s;
    int in[SHAPE_N];
    /* Relative to the cgroup root, and an unlimited cgroup named: both domains. */
    static const char *const only[] = {"memory/system.slice/app.service/", "/user.slice"};
    preoom_domains_init(&s);
    s.only = only;
    s.n_only = 2;
    CHECK_EQ_I64(preoom_domains_discover(&fs, shape_pids, SHAPE_N, in, &s), 0);
    int svc = idx(&s, &fs, "/system.slice/app.service");
    int c1 = idx(&s, &fs, "/system.slice/app.service/c1");
    int user = idx(&s, &fs, "/user.slice");
    CHECK(svc > 0 && c1 > 0 && user > 0);
    CHECK_EQ_I64(idx(&s, &fs, "/system.slice"), -1); /* above the named subtree */
    CHECK_EQ_U64(used_count(&s), 6); /* host, service, 3 containers, user.slice */
    CHECK_EQ_I64(in[0], c1);
    CHECK_EQ_I64(in[3], svc);
    CHECK_EQ_I64(in[4], PREOOM_DOMAIN_HOST);
    CHECK_EQ_I64(in[5], user);
    if (user > 0)
        CHECK_EQ_U64(s.d[user].limit_bytes, PREOOM_LIMIT_NONE);
    if (svc > 0)
        CHECK_EQ_I64(s.d[svc].parent, PREOOM_DOMAIN_HOST);

    /* A named cgroup keeps its domain when its limit is lifted. */
    v1_cgroup("/system.slice/app.service", PREOOM_LIMIT_NONE);
    CHECK_EQ_I64(preoom_domains_discover(&fs, shape_pids, SHAPE_N, in, &s), 0);
    CHECK(s.d[svc].used && !s.d[svc].gone);

    /* Without the host: processes outside every named subtree are in no domain. */
    static const char *const only1[] = {"memory/system.slice/app.service"};
    s.only = only1;
    s.n_only = 1;
    s.no_host = true;
    CHECK_EQ_I64(preoom_domains_discover(&fs, shape_pids, SHAPE_N, in, &s), 0);
    CHECK(!s.d[PREOOM_DOMAIN_HOST].used);
    CHECK(s.d[user].gone); /* no longer named: out */
    CHECK_EQ_I64(in[4], -1);
    CHECK_EQ_I64(in[5], -1);
    CHECK_EQ_I64(in[0], c1);
    CHECK(preoom_domain_within(&s, c1, PREOOM_DOMAIN_HOST));

    /* An absolute directory works as well; so does a name of nothing (no domain, no crash). */
    char abs[1024];
    snprintf(abs, sizeof abs, "%s/memory/system.slice/app.service/c2", cg_root);
    const char *only2[] = {abs, "memory/no/such/cgroup"};
    s.only = only2;
    s.n_only = 2;
    s.no_host = false;
    CHECK_EQ_I64(preoom_domains_discover(&fs, shape_pids, SHAPE_N, in, &s), 0);
    CHECK_EQ_U64(used_count(&s), 2);
    CHECK_EQ_I64(in[1], idx(&s, &fs, abs));
    CHECK_EQ_I64(in[0], PREOOM_DOMAIN_HOST);
}

/* More limited cgroups than indices: the first ones found get them, the rest are counted. */
static void out_of_slots(void)
{
    preoom_procfs_t fs = fresh();
    put("memory\n", "cg/cgroup.controllers");
    enum { N = PREOOM_MAX_DOMAINS + 5 };
    int32_t pids[N];
    int in[N];
    for (int i = 0; i < N; i++) {
        char p[64];
        snprintf(p, sizeof p, "/box%d", i);
        v2_cgroup("", p, (uint64_t)(i + 1) * GIB);
        v2_pid(1000 + i, p);
        pids[i] = 1000 + i;
    }
    preoom_domains_t s;
    preoom_domains_init(&s);
    CHECK_EQ_I64(preoom_domains_discover(&fs, pids, N, in, &s), 0);
    CHECK_EQ_U64(used_count(&s), PREOOM_MAX_DOMAINS);
    CHECK_EQ_U64(s.n, PREOOM_MAX_DOMAINS);
    CHECK_EQ_U64(s.dropped, N - (PREOOM_MAX_DOMAINS - 1));
    CHECK_EQ_I64(in[0], 1);
    CHECK_EQ_I64(in[N - 1], PREOOM_DOMAIN_HOST);
    for (int i = 0; i < PREOOM_MAX_DOMAINS - 1; i++)
        CHECK_EQ_U64(s.d[in[i]].limit_bytes, (uint64_t)(i + 1) * GIB);
    /* Room again when some go: the next discovery after the goodbye gives it to the rest. */
    for (int i = 0; i < 10; i++) {
        char p[64];
        snprintf(p, sizeof p, "cg/box%d", i);
        rm_rf(p);
    }
    CHECK_EQ_I64(preoom_domains_discover(&fs, pids, N, in, &s), 0);
    CHECK_EQ_I64(preoom_domains_discover(&fs, pids, N, in, &s), 0);
    CHECK_EQ_U64(s.dropped, 0);
    CHECK(in[N - 1] > 0);
}

/* Cost and the memo: 600 processes, each in a scope of its own under three services, and
 * 1100 more (more directories than the memo holds): each directory read once per call, and
 * every answer still right after the memo was emptied and refilled. */
static void cost_and_memo(void)
{
    preoom_procfs_t fs = fresh();
    put("memory\n", "cg/cgroup.controllers");
    v2_cgroup("", "/s.slice", 4 * GIB);
    for (int k = 0; k < 3; k++) {
        char p[64];
        snprintf(p, sizeof p, "/s.slice/svc%d.service", k);
        v2_cgroup("", p, (uint64_t)(k + 1) * GIB);
    }
    enum { N = 600, M = 1700 };
    static int32_t pids[M];
    static int in[M];
    for (int i = 0; i < M; i++) {
        char p[96];
        snprintf(p, sizeof p, "/s.slice/svc%d.service/run-%d.scope", i % 3, i);
        v2_cgroup("", p, PREOOM_LIMIT_NONE);
        v2_pid(2000 + i, p);
        pids[i] = 2000 + i;
    }
    static preoom_domains_t s;
    preoom_domains_init(&s);
    CHECK_EQ_I64(preoom_domains_discover(&fs, pids, N, in, &s), 0);
    CHECK_EQ_U64(s.limit_reads, N + 3 + 1); /* each scope, each service, the slice: once */
    int svc[3];
    for (int k = 0; k < 3; k++) {
        char p[64];
        snprintf(p, sizeof p, "/s.slice/svc%d.service", k);
        svc[k] = idx(&s, &fs, p);
        CHECK(svc[k] > 0);
    }
    for (int i = 0; i < N; i++)
        if (in[i] != svc[i % 3]) {
            CHECK_EQ_I64(in[i], svc[i % 3]);
            break;
        }
    /* What one discovery of N costs (said, not checked: a shared machine's timing is noise). */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int r = 0; r < 10; r++)
        preoom_domains_discover(&fs, pids, N, in, &s);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("# one discovery of %d processes in %d scopes: %.0f us\n", N, N,
           ((double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3) / 10);
    CHECK_EQ_I64(preoom_domains_discover(&fs, pids, M, in, &s), 0);
    CHECK(s.limit_reads >= M + 4);
    CHECK(s.limit_reads < 2 * (M + 4)); /* emptied and refilled, never read per level */
    CHECK_EQ_U64(used_count(&s), 5);
    for (int i = 0; i < M; i++)
        if (in[i] != svc[i % 3]) {
            CHECK_EQ_I64(in[i], svc[i % 3]);
            break;
        }
}

/* A real /proc and /sys/fs/cgroup, read only: our own process is placed somewhere, and every
 * domain found has a limit. */
static void real_tree(void)
{
    preoom_procfs_t fs;
    preoom_procfs_init(&fs);
    static preoom_domains_t s;
    preoom_domains_init(&s);
    int32_t self = (int32_t)getpid();
    int in = -2;
    CHECK_EQ_I64(preoom_domains_discover(&fs, &self, 1, &in, &s), 0);
    CHECK(in >= 0 && (size_t)in < s.n);
    for (size_t i = 1; i < s.n; i++)
        if (s.d[i].used)
            CHECK(s.d[i].limit_bytes != PREOOM_LIMIT_NONE);
    printf("# this process: domain %d of %zu (%s)\n", in, s.n, in >= 0 ? s.d[in].path : "?");
}

static int cleanup_top(void)
{
    return nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(top, sizeof top, "%s/preoom-domains-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(top)) {
        printf("not ok - domains: mkdtemp %s: %s\n", top, strerror(errno));
        return 1;
    }
    snprintf(proc_root, sizeof proc_root, "%s/proc", top);
    snprintf(cg_root, sizeof cg_root, "%s/cg", top);
    TEST_CASE("domains: v1 slice > service > 3 containers, unlimited leaf", shape_v1);
    TEST_CASE("domains: v2 slice > service > 3 containers, unlimited leaf", shape_v2);
    TEST_CASE("domains: hybrid (v2 unified/ without memory, v1 memory)", shape_hybrid);
    TEST_CASE("domains: hybrid with memory on unified/", shape_hybrid_v2_memory);
    TEST_CASE("domains: processes move, cgroups vanish, indices reused", moves_and_vanishing);
    TEST_CASE("domains: limits lifted, changed and set again", limits_lifted_and_set);
    TEST_CASE("domains: --cgroup restriction, with and without the host", only_restriction);
    TEST_CASE("domains: out of domain slots", out_of_slots);
    TEST_CASE("domains: one limit read per directory per call, memo refilled", cost_and_memo);
    TEST_CASE("domains: the real tree, read only", real_tree);
    cleanup_top();
    TEST_END();
}

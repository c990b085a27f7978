/* tests/unit/test_procfs.c — the kernel-file parsers of tools/procfs.c, against hand-written
 * fixture trees (tests/fixtures/proc/…, tests/fixtures/cgroup/{v1,v2,hybrid}/…), string
 * tables of bad input, every prefix of every fixture (a truncated read must never read past
 * its length), and the real /proc/self.
 *
 * Never writes outside its own memory, and never creates memory pressure.
 */
#include "harness.h"
#include "procfs.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

static char fixtures[2048];
static const char *argv0 = "";

static const char *fx(const char *rel)
{
    static char bufs[8][4096];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", fixtures, rel);
    return b;
}

static preoom_procfs_t tree(const char *proc, const char *cgroup)
{
    preoom_procfs_t fs;
    preoom_procfs_init(&fs);
    if (proc)
        fs.proc_root = fx(proc);
    if (cgroup)
        fs.cgroup_root = fx(cgroup);
    return fs;
}

#define KB 1024ULL
#define S(lit) lit, sizeof(lit) - 1

/* ---- meminfo ---------------------------------------------------------------------------- */

static void meminfo_modern(void)
{
    preoom_procfs_t fs = tree("proc/modern", NULL);
    preoom_meminfo_t m;
    CHECK_EQ_I64(preoom_read_meminfo(&fs, &m), 0);
    CHECK_EQ_U64(m.mem_total_bytes, 16303480 * KB);
    CHECK_EQ_U64(m.mem_free_bytes, 1204332 * KB);
    CHECK_EQ_U64(m.mem_available_bytes, 9871216 * KB);
    CHECK(!m.mem_available_estimated);
    CHECK_EQ_U64(m.swap_total_bytes, 2097148 * KB);
    CHECK_EQ_U64(m.swap_free_bytes, 2000000 * KB);
    CHECK_EQ_U64(m.anon_bytes, 5123400 * KB);
    CHECK_EQ_U64(m.committed_as_bytes, 14567890 * KB);
    CHECK_EQ_U64(m.commit_limit_bytes, 10248888 * KB);
}

static void meminfo_old_kernel(void)
{
    preoom_procfs_t fs = tree("proc/old", NULL);
    preoom_meminfo_t m;
    CHECK_EQ_I64(preoom_read_meminfo(&fs, &m), 0);
    /* No MemAvailable: MemFree + Cached + Buffers - Shmem = 100000 + 300000 + 20000 - 50000. */
    CHECK(m.mem_available_estimated);
    CHECK_EQ_U64(m.mem_available_bytes, 370000 * KB);
    CHECK_EQ_U64(m.swap_total_bytes, 0);
    /* And a psi file that does not exist is just ENOENT. */
    preoom_psi_t p;
    CHECK_EQ_I64(preoom_read_psi(&fs, &p), -ENOENT);
}

static void meminfo_bad_input(void)
{
    static const struct {
        const char *name;
        const char *text;
        size_t len; /* 0: strlen */
        int rc;
    } cases[] = {
        {"empty", "", 0, -ENODATA},
        {"no MemTotal", "MemFree: 1 kB\n", 0, -ENODATA},
        {"no MemFree", "MemTotal: 1 kB\n", 0, -ENODATA},
        {"garbage value", "MemTotal: lots kB\nMemFree: 1 kB\n", 0, -EINVAL},
        {"no unit", "MemTotal: 12\nMemFree: 1 kB\n", 0, -EINVAL},
        {"wrong unit", "MemTotal: 12 MB\nMemFree: 1 kB\n", 0, -EINVAL},
        {"trailing junk", "MemTotal: 12 kB x\nMemFree: 1 kB\n", 0, -EINVAL},
        {"decimal overflow", "MemTotal: 99999999999999999999 kB\nMemFree: 1 kB\n", 0, -ERANGE},
        {"kB overflow", "MemTotal: 18014398509481984 kB\nMemFree: 1 kB\n", 0, -ERANGE},
        {"negative", "MemTotal: -5 kB\nMemFree: 1 kB\n", 0, -EINVAL},
        /* The length ends the buffer, not a NUL: "MemFree: 5" is cut before its unit. */
        {"cut by length", "MemTotal: 100 kB\nMemFree: 50 kB\n", 27, -EINVAL},
        {"garbage in other keys is ignored", "Foo: bar\nMemTotal: 2 kB\nMemFree: 1 kB", 0, 0},
        {"prefix of a key is another key", "MemTotalX: 9 kB\nMemTotal: 2 kB\nMemFree: 1 kB\n", 0, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        preoom_meminfo_t m;
        size_t len = cases[k].len ? cases[k].len : strlen(cases[k].text);
        int rc = preoom_parse_meminfo(cases[k].text, len, &m);
        if (rc != cases[k].rc)
            printf("# meminfo case \"%s\": rc %d, expected %d\n", cases[k].name, rc, cases[k].rc);
        CHECK_EQ_I64(rc, cases[k].rc);
        if (!rc)
            CHECK_EQ_U64(m.mem_total_bytes, 2 * KB);
    }
    preoom_procfs_t fs = tree("proc/broken", NULL);
    preoom_meminfo_t m;
    CHECK_EQ_I64(preoom_read_meminfo(&fs, &m), -EINVAL);

    /* Fallback with more Shmem than the rest: clamp at zero, not wrap. */
    CHECK_EQ_I64(preoom_parse_meminfo(S("MemTotal: 10 kB\nMemFree: 1 kB\nShmem: 5 kB\n"), &m), 0);
    CHECK_EQ_U64(m.mem_available_bytes, 0);
    CHECK_EQ_U64(m.swap_free_bytes, PREOOM_VALUE_MISSING);
}

/* ---- PSI, uptime ------------------------------------------------------------------------ */

static void psi_files(void)
{
    preoom_procfs_t fs = tree("proc/modern", "cgroup/v2");
    preoom_psi_t p;
    CHECK_EQ_I64(preoom_read_psi(&fs, &p), 0);
    CHECK_EQ_U64(p.some.avg10_centipct, 153);
    CHECK_EQ_U64(p.some.avg60_centipct, 87);
    CHECK_EQ_U64(p.some.avg300_centipct, 20);
    CHECK_EQ_U64(p.some.total_us, 1234567);
    CHECK(p.has_full);
    CHECK_EQ_U64(p.full.avg10_centipct, 50);
    CHECK_EQ_U64(p.full.total_us, 456789);

    CHECK_EQ_I64(preoom_read_memcg_psi(&fs, "app.slice/a.service", &p), 0);
    CHECK_EQ_U64(p.some.avg10_centipct, 1250);
    CHECK_EQ_U64(p.full.avg10_centipct, 325);
    CHECK_EQ_U64(p.full.total_us, 123456);

    fs = tree("proc/broken", NULL);
    CHECK_EQ_I64(preoom_read_psi(&fs, &p), -EINVAL);
}

static void psi_bad_input(void)
{
    static const struct {
        const char *text;
        int rc;
        uint32_t some10;
        bool full;
    } cases[] = {
        {"some avg10=1.5 avg60=0 avg300=0.00 total=1\n", 0, 150, false},
        {"some avg10=100.00 avg60=0.00 avg300=0.00 total=1", 0, 10000, false},
        {"some avg10=0.00 avg60=0.00 avg300=0.00 total=1 newkey=7\nfull avg10=0.01 avg60=0.00 avg300=0.00 total=2\n",
         0, 0, true},
        {"", -ENODATA, 0, false},
        {"full avg10=0.00 avg60=0.00 avg300=0.00 total=1\n", -ENODATA, 0, false},
        {"some avg10=0.00 avg60=0.00 avg300=0.00\n", -ENODATA, 0, false},
        {"some avg10=x avg60=0.00 avg300=0.00 total=1\n", -EINVAL, 0, false},
        {"some avg10=0. avg60=0.00 avg300=0.00 total=1\n", -EINVAL, 0, false},
        {"some avg10=0.00 avg60=0.00 avg300=0.00 total=99999999999999999999\n", -ERANGE, 0, false},
        {"some avg10=99999999.00 avg60=0.00 avg300=0.00 total=1\n", -ERANGE, 0, false},
        {"some avg10 avg60=0.00\n", -EINVAL, 0, false},
        {"what is this\n", -EINVAL, 0, false},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        preoom_psi_t p;
        int rc = preoom_parse_psi(cases[k].text, strlen(cases[k].text), &p);
        if (rc != cases[k].rc)
            printf("# psi case %zu: rc %d, expected %d\n", k, rc, cases[k].rc);
        CHECK_EQ_I64(rc, cases[k].rc);
        if (!rc) {
            CHECK_EQ_U64(p.some.avg10_centipct, cases[k].some10);
            CHECK(p.has_full == cases[k].full);
        }
    }
}

static void uptime(void)
{
    preoom_procfs_t fs = tree("proc/modern", NULL);
    uint64_t ms;
    CHECK_EQ_I64(preoom_read_uptime(&fs, &ms), 0);
    CHECK_EQ_U64(ms, 35012470);
    fs = tree("proc/broken", NULL);
    CHECK_EQ_I64(preoom_read_uptime(&fs, &ms), -EINVAL);
    CHECK_EQ_I64(preoom_parse_uptime(S("12 3\n"), &ms), 0);
    CHECK_EQ_U64(ms, 12000);
    CHECK_EQ_I64(preoom_parse_uptime(S("0.5 1"), &ms), 0);
    CHECK_EQ_U64(ms, 500);
    CHECK_EQ_I64(preoom_parse_uptime(S("1.x"), &ms), -EINVAL);
    CHECK_EQ_I64(preoom_parse_uptime(S(""), &ms), -EINVAL);
    CHECK_EQ_I64(preoom_parse_uptime(S("99999999999999999999.00 1"), &ms), -ERANGE);
}

/* ---- /proc/PID/stat --------------------------------------------------------------------- */

static void stat_fixtures(void)
{
    preoom_procfs_t fs = tree("proc/modern", NULL);
    preoom_pid_stat_t s;
    CHECK_EQ_I64(preoom_read_pid_stat(&fs, 100, &s), 0);
    CHECK_EQ_I64(s.pid, 100);
    CHECK_STR(s.comm, "myapp");
    CHECK(s.state == 'S');
    CHECK_EQ_I64(s.ppid, 1);
    CHECK(!s.kthread);
    CHECK_EQ_U64(s.utime_ticks, 250);
    CHECK_EQ_U64(s.stime_ticks, 130);
    CHECK_EQ_I64(s.nice, 5);
    CHECK_EQ_U64(s.num_threads, 4);
    CHECK_EQ_U64(s.starttime_ticks, 98765);
    CHECK_EQ_U64(s.vsize_bytes, 1073741824);
    CHECK_EQ_U64(s.rss_pages, 25600);

    /* The name "evil) Z 1 2\n(x" imitates the fields; the last ')' ends it. */
    CHECK_EQ_I64(preoom_read_pid_stat(&fs, 101, &s), 0);
    CHECK_STR(s.comm, "evil) Z 1 2?(x");
    CHECK(s.state == 'R');
    CHECK_EQ_I64(s.ppid, 100);
    CHECK_EQ_U64(s.utime_ticks, 7);
    CHECK_EQ_U64(s.stime_ticks, 3);
    CHECK_EQ_U64(s.starttime_ticks, 5000);
    CHECK_EQ_U64(s.vsize_bytes, 2097152);
    CHECK_EQ_U64(s.rss_pages, 300);

    CHECK_EQ_I64(preoom_read_pid_stat(&fs, 102, &s), -EINVAL); /* cut in field 22 */

    CHECK_EQ_I64(preoom_read_pid_stat(&fs, 2, &s), 0);
    CHECK(s.kthread);
    CHECK_EQ_I64(s.ppid, 0);
    CHECK_EQ_U64(s.vsize_bytes, 0);

    CHECK_EQ_I64(preoom_read_pid_stat(&fs, 999, &s), -ENOENT);
    CHECK_EQ_I64(preoom_read_pid_stat(&fs, -1, &s), -EINVAL);
}

static void stat_bad_input(void)
{
    static const char tail[] = " S 1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 9 4096 1";
    static const struct {
        const char *name;
        const char *text;
        int rc;
    } cases[] = {
        {"empty", "", -EINVAL},
        {"no name", "5 S 1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 9 4096 1", -EINVAL},
        {"unclosed name", "5 (abc S 1 1", -EINVAL},
        {"close before open", "5 )x( S 1", -EINVAL},
        {"no pid", "(x) S 1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 9 4096 1", -EINVAL},
        {"pid 0", "0 (x) S 1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 9 4096 1", -EINVAL},
        {"junk before name", "5 z (x) S 1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 9 4096 1", -EINVAL},
        {"nothing after name", "5 (x)", -EINVAL},
        {"no state", "5 (x) ", -EINVAL},
        {"cut after state", "5 (x) S", -EINVAL},
        {"letters in a number", "5 (x) S 1 1 1 0 -1 0 0 0 0 0 1a 2 0 0 20 0 1 0 9 4096 1", -EINVAL},
        {"negative rss", "5 (x) S 1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 9 4096 -1", -ERANGE},
        {"nice out of range", "5 (x) S 1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 40 1 0 9 4096 1", -ERANGE},
        {"overflow", "5 (x) S 1 1 1 0 -1 0 0 0 0 0 99999999999999999999 2 0 0 20 0 1 0 9 4096 1", -ERANGE},
        {"double space", "5 (x) S  1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 9 4096 1", -EINVAL},
        {"minimal", "5 (x) S 1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 9 4096 1", 0},
        {"empty name", "5 () S 1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 9 4096 1\n", 0},
        {"name of parens", "5 ()))(() S 1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 9 4096 1\n", 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        preoom_pid_stat_t s;
        int rc = preoom_parse_pid_stat(cases[k].text, strlen(cases[k].text), &s);
        if (rc != cases[k].rc)
            printf("# stat case \"%s\": rc %d, expected %d\n", cases[k].name, rc, cases[k].rc);
        CHECK_EQ_I64(rc, cases[k].rc);
        if (!rc) {
            CHECK_EQ_U64(s.starttime_ticks, 9);
            CHECK_EQ_U64(s.rss_pages, 1);
        }
    }
    /* A name longer than our buffer is cut, not overflowed. */
    char long_stat[512];
    char name[300];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    snprintf(long_stat, sizeof long_stat, "7 (%s)%s", name, tail);
    preoom_pid_stat_t s;
    CHECK_EQ_I64(preoom_parse_pid_stat(long_stat, strlen(long_stat), &s), 0);
    CHECK_EQ_U64(strlen(s.comm), PREOOM_COMM_MAX - 1);
    CHECK_EQ_U64(s.vsize_bytes, 4096);
}

/* ---- /proc/PID/status ------------------------------------------------------------------- */

static void status_fixtures(void)
{
    preoom_procfs_t fs = tree("proc/modern", NULL);
    preoom_pid_status_t st;
    CHECK_EQ_I64(preoom_read_pid_status(&fs, 100, &st), 0);
    CHECK_STR(st.name, "myapp");
    CHECK(st.has_uid);
    CHECK_EQ_U64(st.uid_real, 1000);
    CHECK_EQ_U64(st.uid_effective, 1000);
    CHECK_EQ_U64(st.vm_rss_bytes, 102400 * KB);
    CHECK_EQ_U64(st.rss_anon_bytes, 81920 * KB);
    CHECK_EQ_U64(st.rss_file_bytes, 18432 * KB);
    CHECK_EQ_U64(st.rss_shmem_bytes, 2048 * KB);
    CHECK_EQ_U64(st.vm_swap_bytes, 4096 * KB);
    CHECK_EQ_U64(st.vm_pte_bytes, 412 * KB);
    CHECK(st.has_cap_eff);
    CHECK_EQ_U64(st.cap_eff, 0);
    CHECK_EQ_I64(st.kthread, 0);

    CHECK_EQ_I64(preoom_read_pid_status(&fs, 101, &st), 0);
    CHECK_STR(st.name, "evil) Z 1 2\\n(x");
    CHECK_EQ_U64(st.uid_real, 1000);
    CHECK_EQ_U64(st.uid_effective, 0);
    CHECK_EQ_U64(st.cap_eff, 0x220000); /* CAP_SYS_ADMIN (21) and CAP_SYS_RAWIO (17) */
    CHECK_EQ_I64(st.kthread, -1);       /* no Kthread: line, as before 6.x */

    /* Cut in the middle of "VmRSS:  12…": no unit, refused. */
    CHECK_EQ_I64(preoom_read_pid_status(&fs, 102, &st), -EINVAL);

    CHECK_EQ_I64(preoom_read_pid_status(&fs, 2, &st), 0);
    CHECK_EQ_I64(st.kthread, 1);
    CHECK_EQ_U64(st.vm_rss_bytes, PREOOM_VALUE_MISSING);
    CHECK_EQ_U64(st.vm_swap_bytes, PREOOM_VALUE_MISSING);
    CHECK_EQ_U64(st.cap_eff, 0x1ffffffffffULL);
}

static void status_bad_input(void)
{
    static const struct {
        const char *name;
        const char *text;
        int rc;
    } cases[] = {
        {"empty", "", -ENODATA},
        {"no uid", "Name:\tx\nVmRSS:\t1 kB\n", -ENODATA},
        {"no name", "Uid:\t1\t1\t1\t1\n", -ENODATA},
        {"uid overflow", "Name:\tx\nUid:\t4294967296\t0\t0\t0\n", -ERANGE},
        {"uid garbage", "Name:\tx\nUid:\tme\n", -EINVAL},
        {"one uid only", "Name:\tx\nUid:\t5\n", -EINVAL},
        {"cap garbage", "Name:\tx\nUid:\t1\t1\nCapEff:\tzz\n", -EINVAL},
        {"cap too wide", "Name:\tx\nUid:\t1\t1\nCapEff:\t10000000000000000\n", -ERANGE},
        {"cap trailing junk", "Name:\tx\nUid:\t1\t1\nCapEff:\t00ff g\n", -EINVAL},
        {"kB overflow", "Name:\tx\nUid:\t1\t1\nVmRSS:\t99999999999999999999 kB\n", -ERANGE},
        {"ok without vm", "Name:\tx\nUid:\t1\t2\t3\t4", 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        preoom_pid_status_t st;
        int rc = preoom_parse_pid_status(cases[k].text, strlen(cases[k].text), &st);
        if (rc != cases[k].rc)
            printf("# status case \"%s\": rc %d, expected %d\n", cases[k].name, rc, cases[k].rc);
        CHECK_EQ_I64(rc, cases[k].rc);
        if (!rc) {
            CHECK_EQ_U64(st.uid_real, 1);
            CHECK_EQ_U64(st.uid_effective, 2);
            CHECK_EQ_U64(st.vm_rss_bytes, PREOOM_VALUE_MISSING);
            CHECK(!st.has_cap_eff);
        }
    }
}

/* ---- oom_score_adj, cmdline ------------------------------------------------------------- */

static void oom_score_adj(void)
{
    preoom_procfs_t fs = tree("proc/modern", NULL);
    int adj = 42;
    CHECK_EQ_I64(preoom_read_oom_score_adj(&fs, 100, &adj), 0);
    CHECK_EQ_I64(adj, 0);
    CHECK_EQ_I64(preoom_read_oom_score_adj(&fs, 101, &adj), 0);
    CHECK_EQ_I64(adj, -1000);
    CHECK_EQ_I64(preoom_read_oom_score_adj(&fs, 102, &adj), -EINVAL);

    static const struct {
        const char *text;
        int rc, adj;
    } cases[] = {
        {"1000\n", 0, 1000}, {"-5", 0, -5},          {"  7\n", 0, 7},
        {"+3\n", 0, 3},      {"1001\n", -ERANGE, 0}, {"-1001", -ERANGE, 0},
        {"7 8\n", -EINVAL, 0}, {"", -EINVAL, 0},     {"-", -EINVAL, 0},
        {"5\n\n", -EINVAL, 0}, {"99999999999999999999", -ERANGE, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        adj = 12345;
        int rc = preoom_parse_oom_score_adj(cases[k].text, strlen(cases[k].text), &adj);
        CHECK_EQ_I64(rc, cases[k].rc);
        if (!rc)
            CHECK_EQ_I64(adj, cases[k].adj);
    }
}

static void cmdline(void)
{
    preoom_procfs_t fs = tree("proc/modern", NULL);
    char out[256];
    CHECK_EQ_I64(preoom_read_cmdline(&fs, 100, out, sizeof out), 0);
    CHECK_STR(out, "/usr/bin/myapp --serve --port=8080");
    CHECK_EQ_I64(preoom_read_cmdline(&fs, 101, out, sizeof out), 0);
    CHECK_STR(out, "evil?[31m arg?with tab");
    CHECK_EQ_I64(preoom_read_cmdline(&fs, 2, out, sizeof out), 0);
    CHECK_STR(out, "");
    CHECK_EQ_I64(preoom_read_cmdline(&fs, 100, out, 5), 0);
    CHECK_STR(out, "/usr");
    CHECK_EQ_I64(preoom_parse_cmdline("a", 1, out, 0), -EINVAL);
    CHECK_EQ_I64(preoom_parse_cmdline(S("a\0\0\0"), out, sizeof out), 0);
    CHECK_STR(out, "a");
    CHECK_EQ_I64(preoom_parse_cmdline(S("title without NULs"), out, sizeof out), 0);
    CHECK_STR(out, "title without NULs");
}

/* ---- /proc/PID/cgroup ------------------------------------------------------------------- */

static void pid_cgroup(void)
{
    preoom_procfs_t fs = tree("proc/modern", NULL);
    preoom_pid_cgroup_t cg;
    CHECK_EQ_I64(preoom_read_pid_cgroup(&fs, 100, &cg), 0);
    CHECK(cg.has_v1_memory);
    CHECK_STR(cg.v1_memory, "/app/a");
    CHECK(cg.has_v2);
    CHECK_STR(cg.v2, "/app.slice/a.service");
    CHECK_EQ_I64(preoom_read_pid_cgroup(&fs, 101, &cg), 0);
    CHECK(!cg.has_v1_memory);
    CHECK(cg.has_v2);
    CHECK_EQ_I64(preoom_read_pid_cgroup(&fs, 102, &cg), -EINVAL);

    static const struct {
        const char *name;
        const char *text;
        int rc;
        const char *v1, *v2;
    } cases[] = {
        {"combined controllers", "4:cpu,memory,pids:/x\n", 0, "/x", NULL},
        {"memory as a prefix only", "4:memoryx:/x\n", 0, NULL, NULL},
        {"named hierarchy", "1:name=memory:/x\n", 0, NULL, NULL},
        {"colon in path", "0::/a:b\n", 0, NULL, "/a:b"},
        {"root", "0::/\n", 0, NULL, "/"},
        {"no trailing newline", "7:memory:/m\n0::/u", 0, "/m", "/u"},
        {"relative path", "0::relative\n", -EINVAL, NULL, NULL},
        {"empty path", "0::\n", -EINVAL, NULL, NULL},
        {"bad id", "x::/\n", -EINVAL, NULL, NULL},
        {"one colon", "0:/\n", -EINVAL, NULL, NULL},
        {"empty", "", 0, NULL, NULL},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int rc = preoom_parse_pid_cgroup(cases[k].text, strlen(cases[k].text), &cg);
        if (rc != cases[k].rc)
            printf("# cgroup case \"%s\": rc %d, expected %d\n", cases[k].name, rc, cases[k].rc);
        CHECK_EQ_I64(rc, cases[k].rc);
        if (rc)
            continue;
        CHECK(cg.has_v1_memory == (cases[k].v1 != NULL));
        CHECK(cg.has_v2 == (cases[k].v2 != NULL));
        if (cases[k].v1)
            CHECK_STR(cg.v1_memory, cases[k].v1);
        if (cases[k].v2)
            CHECK_STR(cg.v2, cases[k].v2);
    }
    /* A path longer than our buffer is refused, not cut. */
    char text[PREOOM_CGROUP_PATH_MAX + 16];
    memcpy(text, "0::/", 4);
    memset(text + 4, 'p', sizeof text - 5);
    text[sizeof text - 1] = '\n';
    CHECK_EQ_I64(preoom_parse_pid_cgroup(text, sizeof text, &cg), -ENAMETOOLONG);
    /* An embedded NUL cannot smuggle a shorter path past us. */
    CHECK_EQ_I64(preoom_parse_pid_cgroup(S("0::/a\0/b\n"), &cg), -EINVAL);
}

/* ---- cgroup files ----------------------------------------------------------------------- */

static void cgroup_values(void)
{
    static const struct {
        const char *text;
        int rc;
        uint64_t v;
    } cases[] = {
        {"max\n", 0, PREOOM_LIMIT_NONE},
        {"268435456\n", 0, 268435456},
        {"0", 0, 0},
        {"12abc\n", -EINVAL, 0},
        {"max1\n", -EINVAL, 0},
        {"", -EINVAL, 0},
        {"-1\n", -EINVAL, 0},
        {"18446744073709551616\n", -ERANGE, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        uint64_t v = 7;
        int rc = preoom_parse_cgroup_u64(cases[k].text, strlen(cases[k].text), &v);
        CHECK_EQ_I64(rc, cases[k].rc);
        if (!rc)
            CHECK_EQ_U64(v, cases[k].v);
    }
    const char stat[] = "anon_thp 5\nanon 7\nfile 9\nbroken x\n";
    uint64_t v;
    CHECK_EQ_I64(preoom_parse_keyed_u64(S(stat), "anon", &v), 0);
    CHECK_EQ_U64(v, 7);
    CHECK_EQ_I64(preoom_parse_keyed_u64(S(stat), "file", &v), 0);
    CHECK_EQ_U64(v, 9);
    CHECK_EQ_I64(preoom_parse_keyed_u64(S(stat), "shmem", &v), -ENOENT);
    CHECK_EQ_I64(preoom_parse_keyed_u64(S(stat), "broken", &v), -EINVAL);
    CHECK_EQ_I64(preoom_parse_keyed_u64(S("anon"), "anon", &v), -ENOENT);

    CHECK(preoom_controllers_have(S("cpuset cpu io memory hugetlb\n"), "memory"));
    CHECK(preoom_controllers_have(S("memory"), "memory"));
    CHECK(!preoom_controllers_have(S("memoryx cpu\n"), "memory"));
    CHECK(!preoom_controllers_have(S("hugetlb\n"), "memory"));
    CHECK(!preoom_controllers_have(S(""), "memory"));
}

static void memcg_v1(void)
{
    preoom_procfs_t fs = tree(NULL, "cgroup/v1");
    preoom_memcg_t m;
    CHECK_EQ_I64(preoom_read_memcg(&fs, "memory/app/a", &m), 0);
    CHECK_EQ_I64(m.version, PREOOM_CGROUP_V1);
    CHECK_EQ_U64(m.limit_bytes, 268435456);
    CHECK_EQ_U64(m.effective_limit_bytes, 268435456);
    CHECK_EQ_U64(m.usage_bytes, 104857600);
    CHECK_EQ_U64(m.anon_bytes, 83886080);  /* total_rss, not rss */
    CHECK_EQ_U64(m.file_bytes, 20971520);  /* total_cache, not cache */
    CHECK_EQ_U64(m.swap_bytes, 4194304);
    CHECK_EQ_U64(m.oom_kill, 3);

    /* The same cgroup by absolute path, with a trailing slash. */
    char abs_dir[4096];
    snprintf(abs_dir, sizeof abs_dir, "%s/memory/app/a/", fs.cgroup_root);
    CHECK_EQ_I64(preoom_read_memcg(&fs, abs_dir, &m), 0);
    CHECK_EQ_U64(m.usage_bytes, 104857600);

    /* Own limit none, parent's 512 MiB through hierarchical_memory_limit; old-kernel files. */
    CHECK_EQ_I64(preoom_read_memcg(&fs, "memory/app/b", &m), 0);
    CHECK_EQ_U64(m.limit_bytes, PREOOM_LIMIT_NONE);
    CHECK_EQ_U64(m.effective_limit_bytes, 536870912);
    CHECK_EQ_U64(m.anon_bytes, 262144);
    CHECK_EQ_U64(m.file_bytes, 524288);
    CHECK_EQ_U64(m.swap_bytes, PREOOM_VALUE_MISSING);
    CHECK_EQ_U64(m.oom_kill, PREOOM_VALUE_MISSING);

    CHECK_EQ_I64(preoom_read_memcg(&fs, "memory", &m), 0);
    CHECK_EQ_U64(m.limit_bytes, PREOOM_LIMIT_NONE);
    CHECK_EQ_U64(m.effective_limit_bytes, PREOOM_LIMIT_NONE);
    CHECK_EQ_U64(m.usage_bytes, 494997504);
    CHECK_EQ_U64(m.oom_kill, 0);

    CHECK_EQ_I64(preoom_read_memcg(&fs, "memory/nope", &m), -ENOENT);
    CHECK_EQ_I64(preoom_read_memcg(&fs, "", &m), -EINVAL);
}

static void memcg_v2(void)
{
    preoom_procfs_t fs = tree(NULL, "cgroup/v2");
    preoom_memcg_t m;
    CHECK_EQ_I64(preoom_read_memcg(&fs, "app.slice/a.service", &m), 0);
    CHECK_EQ_I64(m.version, PREOOM_CGROUP_V2);
    CHECK_EQ_U64(m.limit_bytes, PREOOM_LIMIT_NONE);       /* "max" */
    CHECK_EQ_U64(m.effective_limit_bytes, 536870912);     /* app.slice's memory.max */
    CHECK_EQ_U64(m.usage_bytes, 104857600);
    CHECK_EQ_U64(m.swap_bytes, 8388608);
    CHECK_EQ_U64(m.anon_bytes, 83886080);
    CHECK_EQ_U64(m.file_bytes, 20971520);
    CHECK_EQ_U64(m.oom_kill, 2);

    CHECK_EQ_I64(preoom_read_memcg(&fs, "app.slice", &m), 0);
    CHECK_EQ_U64(m.limit_bytes, 536870912);
    CHECK_EQ_U64(m.oom_kill, 0);
    CHECK_EQ_U64(m.swap_bytes, PREOOM_VALUE_MISSING);

    /* The root: no memory.max, no memory.current. */
    CHECK_EQ_I64(preoom_read_memcg(&fs, fs.cgroup_root, &m), 0);
    CHECK_EQ_U64(m.limit_bytes, PREOOM_LIMIT_NONE);
    CHECK_EQ_U64(m.usage_bytes, PREOOM_VALUE_MISSING);
    CHECK_EQ_U64(m.anon_bytes, 734003200);
    CHECK_EQ_U64(m.oom_kill, PREOOM_VALUE_MISSING);

    CHECK_EQ_I64(preoom_read_memcg(&fs, "bad.service", &m), -EINVAL);
    CHECK_EQ_I64(preoom_read_memcg(&fs, "no.service", &m), -ENOENT);
}

static void find_memcg(void)
{
    char dir[4096], want[4096];
    preoom_cgroup_version_t ver = 0;

    /* This machine's layout: memory on v1, a v2 at unified without memory. */
    preoom_procfs_t fs = tree("proc/modern", "cgroup/v1");
    CHECK_EQ_I64(preoom_find_memcg(&fs, 100, dir, sizeof dir, &ver), 0);
    snprintf(want, sizeof want, "%s/memory/app/a", fs.cgroup_root);
    CHECK_STR(dir, want);
    CHECK_EQ_I64(ver, PREOOM_CGROUP_V1);
    CHECK_EQ_I64(preoom_find_memcg(&fs, 101, dir, sizeof dir, &ver), -ENOENT);

    /* Unified: v2 at the root with memory. */
    fs = tree("proc/modern", "cgroup/v2");
    CHECK_EQ_I64(preoom_find_memcg(&fs, 100, dir, sizeof dir, &ver), 0);
    snprintf(want, sizeof want, "%s/app.slice/a.service", fs.cgroup_root);
    CHECK_STR(dir, want);
    CHECK_EQ_I64(ver, PREOOM_CGROUP_V2);
    preoom_memcg_t m;
    CHECK_EQ_I64(preoom_read_memcg(&fs, dir, &m), 0);
    CHECK_EQ_U64(m.usage_bytes, 104857600);
    CHECK_EQ_I64(preoom_find_memcg(&fs, 2, dir, sizeof dir, &ver), 0);
    CHECK_STR(dir, fs.cgroup_root);

    /* Hybrid: v2 at unified, holding memory. */
    fs = tree("proc/modern", "cgroup/hybrid");
    CHECK_EQ_I64(preoom_find_memcg(&fs, 100, dir, sizeof dir, &ver), 0);
    snprintf(want, sizeof want, "%s/unified/app.slice/a.service", fs.cgroup_root);
    CHECK_STR(dir, want);
    CHECK_EQ_I64(ver, PREOOM_CGROUP_V2);
    CHECK_EQ_I64(preoom_read_memcg(&fs, dir, &m), 0);
    CHECK_EQ_U64(m.limit_bytes, 268435456);

    CHECK_EQ_I64(preoom_find_memcg(&fs, 102, dir, sizeof dir, &ver), -EINVAL);
    CHECK_EQ_I64(preoom_find_memcg(&fs, 999, dir, sizeof dir, &ver), -ENOENT);
    fs = tree("proc/modern", "cgroup/v1");
    CHECK_EQ_I64(preoom_find_memcg(&fs, 100, dir, 8, &ver), -ENAMETOOLONG);
}

/* ---- files and paths -------------------------------------------------------------------- */

static void read_file_limits(void)
{
    char buf[8];
    size_t len = 0;
    CHECK_EQ_I64(preoom_read_file(fx("proc/modern/meminfo"), buf, sizeof buf, &len, false), -EFBIG);
    CHECK_EQ_I64(preoom_read_file(fx("proc/modern/meminfo"), buf, sizeof buf, &len, true), 0);
    CHECK_EQ_U64(len, sizeof buf);
    CHECK_EQ_I64(preoom_read_file(fx("proc/modern/100/oom_score_adj"), buf, 2, &len, false), 0);
    CHECK_EQ_U64(len, 2);
    CHECK_EQ_I64(preoom_read_file(fx("no/such/file"), buf, sizeof buf, &len, false), -ENOENT);

    static char root[5000];
    memset(root, 'r', sizeof root - 1);
    preoom_procfs_t fs = {root, root};
    preoom_meminfo_t m;
    preoom_pid_stat_t s;
    preoom_memcg_t cg;
    CHECK_EQ_I64(preoom_read_meminfo(&fs, &m), -ENAMETOOLONG);
    CHECK_EQ_I64(preoom_read_pid_stat(&fs, 1, &s), -ENAMETOOLONG);
    CHECK_EQ_I64(preoom_read_memcg(&fs, "x", &cg), -ENAMETOOLONG);
}

/* Every prefix of every fixture through every parser, each in a heap block of exactly that
 * size, so that AddressSanitizer sees any read past the length. Only "no crash" is asked,
 * plus: a prefix never parses to more fields than the whole. */
static void every_prefix(void)
{
    static const char *files[] = {
        "proc/modern/meminfo",      "proc/old/meminfo",         "proc/modern/pressure/memory",
        "proc/modern/uptime",       "proc/modern/100/stat",     "proc/modern/101/stat",
        "proc/modern/2/stat",       "proc/modern/100/status",   "proc/modern/101/status",
        "proc/modern/2/status",     "proc/modern/100/cmdline",  "proc/modern/101/cmdline",
        "proc/modern/100/cgroup",   "proc/modern/101/oom_score_adj",
        "cgroup/v2/app.slice/a.service/memory.stat", "cgroup/v2/app.slice/a.service/memory.max",
    };
    char whole[8192];
    int parsed = 0;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t n;
        if (preoom_read_file(fx(files[f]), whole, sizeof whole, &n, false) != 0) {
            printf("# fixture %s unreadable\n", files[f]);
            CHECK(false);
            continue;
        }
        for (size_t len = 0; len <= n; len++) {
            char *b = malloc(len ? len : 1);
            if (!b)
                abort();
            memcpy(b, whole, len);
            preoom_meminfo_t mi;
            preoom_psi_t psi;
            preoom_pid_stat_t st;
            preoom_pid_status_t ss;
            preoom_pid_cgroup_t cg;
            char out[64];
            uint64_t v;
            int adj;
            parsed += preoom_parse_meminfo(b, len, &mi) == 0;
            parsed += preoom_parse_psi(b, len, &psi) == 0;
            parsed += preoom_parse_uptime(b, len, &v) == 0;
            parsed += preoom_parse_pid_stat(b, len, &st) == 0;
            parsed += preoom_parse_pid_status(b, len, &ss) == 0;
            parsed += preoom_parse_oom_score_adj(b, len, &adj) == 0;
            parsed += preoom_parse_cmdline(b, len, out, sizeof out) == 0;
            parsed += preoom_parse_pid_cgroup(b, len, &cg) == 0;
            parsed += preoom_parse_cgroup_u64(b, len, &v) == 0;
            parsed += preoom_parse_keyed_u64(b, len, "anon", &v) == 0;
            parsed += preoom_controllers_have(b, len, "memory");
            free(b);
        }
    }
    CHECK(parsed > 0);
}

/* ---- the real thing --------------------------------------------------------------------- */

static void real_proc_self(void)
{
    preoom_procfs_t fs;
    preoom_procfs_init(&fs);
    preoom_pid_stat_t s;
    CHECK_EQ_I64(preoom_read_pid_stat(&fs, 0, &s), 0);
    CHECK_EQ_I64(s.pid, getpid());
    CHECK_EQ_I64(s.ppid, getppid());
    CHECK(s.state == 'R');
    CHECK(!s.kthread);
    CHECK(s.num_threads >= 1);
    CHECK(s.starttime_ticks > 0);
    CHECK(s.vsize_bytes > 0);
    CHECK(s.rss_pages > 0);
    /* comm is the executable's base name, cut to 15 bytes (TASK_COMM_LEN - 1). */
    const char *base = strrchr(argv0, '/') ? strrchr(argv0, '/') + 1 : argv0;
    CHECK(strncmp(s.comm, base, 15) == 0);

    preoom_pid_stat_t by_pid;
    CHECK_EQ_I64(preoom_read_pid_stat(&fs, getpid(), &by_pid), 0);
    CHECK_EQ_U64(by_pid.starttime_ticks, s.starttime_ticks);

    preoom_pid_status_t st;
    CHECK_EQ_I64(preoom_read_pid_status(&fs, 0, &st), 0);
    CHECK_EQ_U64(st.uid_real, getuid());
    CHECK_EQ_U64(st.uid_effective, geteuid());
    CHECK(st.vm_rss_bytes > 0 && st.vm_rss_bytes != PREOOM_VALUE_MISSING);
    CHECK(st.rss_anon_bytes > 0 && st.rss_anon_bytes != PREOOM_VALUE_MISSING);
    CHECK(st.vm_swap_bytes != PREOOM_VALUE_MISSING);
    CHECK(st.vm_pte_bytes != PREOOM_VALUE_MISSING);
    CHECK(st.has_cap_eff);
    CHECK(st.name[0] != '\0');

    preoom_meminfo_t m;
    CHECK_EQ_I64(preoom_read_meminfo(&fs, &m), 0);
    CHECK(m.mem_total_bytes > 0);
    CHECK(m.mem_available_bytes > 0 && m.mem_available_bytes <= m.mem_total_bytes);
    CHECK(m.mem_free_bytes <= m.mem_total_bytes);
    CHECK(m.swap_free_bytes <= m.swap_total_bytes);
    CHECK(m.committed_as_bytes != PREOOM_VALUE_MISSING);

    int adj;
    CHECK_EQ_I64(preoom_read_oom_score_adj(&fs, 0, &adj), 0);
    CHECK(adj >= -1000 && adj <= 1000);

    char cmd[256];
    CHECK_EQ_I64(preoom_read_cmdline(&fs, 0, cmd, sizeof cmd), 0);
    CHECK(strncmp(cmd, argv0, strlen(argv0)) == 0);

    uint64_t up;
    CHECK_EQ_I64(preoom_read_uptime(&fs, &up), 0);
    CHECK(up > 0);

    preoom_psi_t p;
    int rc = preoom_read_psi(&fs, &p);
    if (rc == -ENOENT || rc == -EOPNOTSUPP)
        SKIP("real /proc/pressure/memory", "no PSI on this kernel");
    else
        CHECK_EQ_I64(rc, 0);

    preoom_pid_cgroup_t cg;
    CHECK_EQ_I64(preoom_read_pid_cgroup(&fs, 0, &cg), 0);
    CHECK(cg.has_v1_memory || cg.has_v2);

    char dir[4096];
    preoom_cgroup_version_t ver;
    rc = preoom_find_memcg(&fs, 0, dir, sizeof dir, &ver);
    if (rc == -ENOENT) {
        SKIP("real memory cgroup", "no memory controller reachable here");
        return;
    }
    CHECK_EQ_I64(rc, 0);
    preoom_memcg_t mc;
    CHECK_EQ_I64(preoom_read_memcg(&fs, dir, &mc), 0);
    CHECK(mc.version == ver);
    if (mc.usage_bytes != PREOOM_VALUE_MISSING)
        CHECK(mc.usage_bytes > 0);
}

static void smaps_rollup(void)
{
    static const struct {
        const char *text;
        int rc;
        uint64_t anon, swap;
    } cases[] = {
        {"560181a32000-7ffc4580a000 ---p 00000000 00:00 0   [rollup]\nRss:    1768 kB\n"
         "Pss_Anon:     116 kB\nPrivate_Dirty:  200 kB\nSwap:    64 kB\nSwapPss:  32 kB\n",
         0, 116 << 10, 32 << 10},
        /* an old kernel: Private_Dirty and Swap */
        {"Rss: 10 kB\nPrivate_Dirty:  200 kB\nSwap:    64 kB\n", 0, 200 << 10, 64 << 10},
        /* no swap lines at all */
        {"Pss_Anon:  8 kB\n", 0, 8 << 10, 0},
        {"Rss: 10 kB\n", -ENOENT, 0, 0},
        {"Pss_Anon:  x kB\n", -EINVAL, 0, 0},
        {"Pss_Anon:  8 MB\n", -EINVAL, 0, 0},
        {"Pss_Anon:  99999999999999999999 kB\n", -ERANGE, 0, 0},
        {"", -ENOENT, 0, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        uint64_t a = 7, w = 7;
        int rc = preoom_parse_smaps_rollup(cases[k].text, strlen(cases[k].text), &a, &w);
        if (rc != cases[k].rc && !(cases[k].rc == -ERANGE && rc == -EINVAL))
            printf("# smaps_rollup case %zu: rc %d\n", k, rc);
        CHECK(rc == cases[k].rc || (cases[k].rc == -ERANGE && rc == -EINVAL));
        if (cases[k].rc == 0) {
            CHECK_EQ_U64(a, cases[k].anon);
            CHECK_EQ_U64(w, cases[k].swap);
        }
    }
    /* The real thing: this process has some anonymous memory of its own. */
    char buf[4096];
    size_t len = 0;
    if (preoom_read_file("/proc/self/smaps_rollup", buf, sizeof buf, &len, true) == 0) {
        uint64_t a = 0, w = 0;
        CHECK_EQ_I64(preoom_parse_smaps_rollup(buf, len, &a, &w), 0);
        CHECK(a > 0);
    }
}

int main(int argc, char **argv)
{
    if (argc > 0 && argv[0])
        argv0 = argv[0];
    const char *top = getenv("TOP");
    snprintf(fixtures, sizeof fixtures, "%s/tests/fixtures", top && *top ? top : ".");

    TEST_CASE("procfs: meminfo of a modern kernel", meminfo_modern);
    TEST_CASE("procfs: meminfo without MemAvailable", meminfo_old_kernel);
    TEST_CASE("procfs: meminfo bad input", meminfo_bad_input);
    TEST_CASE("procfs: psi files", psi_files);
    TEST_CASE("procfs: psi bad input", psi_bad_input);
    TEST_CASE("procfs: uptime", uptime);
    TEST_CASE("procfs: stat fixtures, hostile name, kernel thread", stat_fixtures);
    TEST_CASE("procfs: stat bad input", stat_bad_input);
    TEST_CASE("procfs: status fixtures", status_fixtures);
    TEST_CASE("procfs: status bad input", status_bad_input);
    TEST_CASE("procfs: oom_score_adj", oom_score_adj);
    TEST_CASE("procfs: cmdline", cmdline);
    TEST_CASE("procfs: pid cgroup", pid_cgroup);
    TEST_CASE("procfs: cgroup value files", cgroup_values);
    TEST_CASE("procfs: memory cgroup v1", memcg_v1);
    TEST_CASE("procfs: memory cgroup v2", memcg_v2);
    TEST_CASE("procfs: find a process's memory cgroup", find_memcg);
    TEST_CASE("procfs: file and path limits", read_file_limits);
    TEST_CASE("procfs: every prefix of every fixture", every_prefix);
    TEST_CASE("procfs: the real /proc/self", real_proc_self);
    TEST_CASE("procfs: smaps_rollup", smaps_rollup);
    TEST_END();
}

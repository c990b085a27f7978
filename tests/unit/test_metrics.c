/* tests/unit/test_metrics.c — tools/metrics.c linked directly: which request lines the HTTP
 * server answers (only GET /metrics), the text it serves checked by a strict parser of the
 * Prometheus text format of our own (itself shown to refuse broken input), the bound on
 * per-process series, and the textfile writer against a FIFO planted at its temporary path.
 * Makes files under a temporary directory it removes.
 *
 * `test_metrics --check FILE` runs only the parser on FILE (exit 0 valid, 1 not, with the
 * reason): the end-to-end tests check what preoomd really serves with it.
 */
#pragma GCC diagnostic ignored "-Wcomment"
#include "harness.h"
#include "metrics.h"
#include "metrics_fill.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void t_route(void)
{
    static const struct { const char *req; int code; } cases[] = {
        {"GET /metrics HTTP/1.0\r\n", 200}, {"GET /metrics?x=1 HTTP/1.1\r\n", 200},
        {"GET /metrics", 200},              {"GET /metrics\n", 200},
        {"GET / HTTP/1.0\r\n", 404},         {"GET /metricsX HTTP/1.0\r\n", 404},
        {"POST /metrics HTTP/1.0\r\n", 404}, {"GET /metric", 404},
        {"", 404},                           {"\x01\x02\x03", 404},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        CHECK_EQ_I64(preoom_metrics_route(cases[k].req, strlen(cases[k].req)), cases[k].code);
}

/* ---- a strict reader of the text exposition format (0.0.4) ------------------------------
 * Stricter than Prometheus where our own output should be: every sample's family has a HELP
 * and a TYPE before it, each given once; a family's samples are together; a counter's name
 * ends in _total; no series twice; no blank lines; every line ends with a newline. */
#define EX_MAX_FAMILIES 128
#define EX_MAX_SERIES 2048

typedef struct {
    char fam[EX_MAX_FAMILIES][128];
    char type[EX_MAX_FAMILIES][16];
    int help[EX_MAX_FAMILIES];
    int closed[EX_MAX_FAMILIES];
    size_t n_fam;
    char *series[EX_MAX_SERIES];
    size_t n_series;
} ex_t;

static int ex_fail(char *why, size_t cap, int line, const char *msg, const char *at)
{
    snprintf(why, cap, "line %d: %s: '%.60s'", line, msg, at);
    return -1;
}

static size_t ex_name(const char *s, bool metric)
{
    size_t k = 0;
    if (!(isalpha((unsigned char)s[0]) || s[0] == '_' || (metric && s[0] == ':')))
        return 0;
    while (isalnum((unsigned char)s[k]) || s[k] == '_' || (metric && s[k] == ':'))
        k++;
    return k;
}

static long ex_find(ex_t *x, const char *name, size_t len)
{
    for (size_t i = 0; i < x->n_fam; i++)
        if (strlen(x->fam[i]) == len && !memcmp(x->fam[i], name, len))
            return (long)i;
    return -1;
}

static int expo_check(const char *text, size_t *n_samples, char *why, size_t cap)
{
    static ex_t x;
    for (size_t i = 0; i < x.n_series; i++)
        free(x.series[i]);
    memset(&x, 0, sizeof x);
    *n_samples = 0;
    long current = -1;
    int ln = 0;
    const char *p = text;
    if (!*p)
        return ex_fail(why, cap, 0, "empty", "");
    while (*p) {
        ln++;
        const char *eol = strchr(p, '\n');
        if (!eol)
            return ex_fail(why, cap, ln, "no newline at the end", p);
        char line[1024];
        size_t len = (size_t)(eol - p);
        if (len == 0)
            return ex_fail(why, cap, ln, "blank line", p);
        if (len >= sizeof line)
            return ex_fail(why, cap, ln, "line too long", p);
        memcpy(line, p, len);
        line[len] = '\0';
        p = eol + 1;
        if (line[0] == '#') {
            bool is_help = !strncmp(line, "# HELP ", 7), is_type = !strncmp(line, "# TYPE ", 7);
            if (!is_help && !is_type)
                return ex_fail(why, cap, ln, "a comment that is neither HELP nor TYPE", line);
            const char *nm = line + 7;
            size_t k = ex_name(nm, true);
            if (!k || nm[k] != ' ' || !nm[k + 1])
                return ex_fail(why, cap, ln, "bad metric name or nothing after it", line);
            long f = ex_find(&x, nm, k);
            if (f < 0) {
                if (x.n_fam == EX_MAX_FAMILIES)
                    return ex_fail(why, cap, ln, "too many families", line);
                f = (long)x.n_fam++;
                memcpy(x.fam[f], nm, k);
                x.fam[f][k] = '\0';
            } else if (x.closed[f] || f != current) {
                return ex_fail(why, cap, ln, "HELP/TYPE of a family seen before", line);
            }
            if (current >= 0 && current != f)
                x.closed[current] = 1;
            current = f;
            if (is_help) {
                if (x.help[f] || x.type[f][0])
                    return ex_fail(why, cap, ln, "HELP twice, or after TYPE", line);
                x.help[f] = 1;
            } else {
                const char *t = nm + k + 1;
                if (x.type[f][0])
                    return ex_fail(why, cap, ln, "TYPE twice", line);
                if (strcmp(t, "counter") && strcmp(t, "gauge") && strcmp(t, "untyped") &&
                    strcmp(t, "histogram") && strcmp(t, "summary"))
                    return ex_fail(why, cap, ln, "unknown type", line);
                if (!strcmp(t, "counter") && (k < 6 || memcmp(nm + k - 6, "_total", 6)))
                    return ex_fail(why, cap, ln, "a counter whose name does not end in _total", line);
                snprintf(x.type[f], sizeof x.type[f], "%s", t);
            }
            continue;
        }
        /* A sample: name{l="v",...} value */
        size_t k = ex_name(line, true);
        if (!k)
            return ex_fail(why, cap, ln, "bad metric name", line);
        long f = ex_find(&x, line, k);
        if (f < 0 || !x.type[f][0] || !x.help[f])
            return ex_fail(why, cap, ln, "a sample without HELP and TYPE before it", line);
        if (f != current)
            return ex_fail(why, cap, ln, "a sample away from its family", line);
        size_t i = k;
        char seen[16][64];
        size_t n_seen = 0;
        if (line[i] == '{') {
            i++;
            while (line[i] != '}') {
                size_t lk = ex_name(line + i, false);
                if (!lk || lk >= 64 || line[i + lk] != '=' || line[i + lk + 1] != '"')
                    return ex_fail(why, cap, ln, "bad label", line + i);
                if (lk >= 2 && line[i] == '_' && line[i + 1] == '_')
                    return ex_fail(why, cap, ln, "reserved label name", line + i);
                for (size_t s2 = 0; s2 < n_seen; s2++)
                    if (strlen(seen[s2]) == lk && !memcmp(seen[s2], line + i, lk))
                        return ex_fail(why, cap, ln, "label twice", line + i);
                if (n_seen == 16)
                    return ex_fail(why, cap, ln, "too many labels", line);
                memcpy(seen[n_seen], line + i, lk);
                seen[n_seen++][lk] = '\0';
                i += lk + 2;
                while (line[i] != '"') {
                    if (!line[i])
                        return ex_fail(why, cap, ln, "unterminated label value", line);
                    if (line[i] == '\\') {
                        if (line[i + 1] != '\\' && line[i + 1] != '"' && line[i + 1] != 'n')
                            return ex_fail(why, cap, ln, "bad escape in a label value", line + i);
                        i++;
                    }
                    i++;
                }
                i++;
                if (line[i] == ',')
                    i++;
                else if (line[i] != '}')
                    return ex_fail(why, cap, ln, "labels not separated by ','", line + i);
            }
            i++;
        }
        if (line[i] != ' ')
            return ex_fail(why, cap, ln, "no space before the value", line);
        const char *v = line + i + 1;
        char *end;
        double dv = strtod(v, &end);
        if (end == v || (*end && *end != ' '))
            return ex_fail(why, cap, ln, "the value is not a number", line);
        if (*end == ' ') { /* an optional timestamp: an integer */
            char *e2;
            strtoll(end + 1, &e2, 10);
            if (e2 == end + 1 || *e2)
                return ex_fail(why, cap, ln, "bad timestamp", line);
        }
        if (!strcmp(x.type[f], "counter") && (dv < 0 || isnan(dv)))
            return ex_fail(why, cap, ln, "a negative counter", line);
        /* The series: everything before the value. */
        for (size_t s2 = 0; s2 < x.n_series; s2++)
            if (strlen(x.series[s2]) == i && !memcmp(x.series[s2], line, i))
                return ex_fail(why, cap, ln, "a series twice", line);
        if (x.n_series < EX_MAX_SERIES)
            x.series[x.n_series++] = strndup(line, i);
        (*n_samples)++;
    }
    return 0;
}

static void t_parser_refuses(void)
{
    static const char *const bad[] = {
        "",
        "a 1",                                                         /* no final newline */
        "# HELP a x\n# TYPE a gauge\n\na 1\n",                           /* blank line */
        "a 1\n",                                                        /* no HELP/TYPE */
        "# HELP a x\n# TYPE a gauge\na one\n",                          /* not a number */
        "# HELP a x\n# TYPE a counter\na 1\n",                          /* counter without _total */
        "# HELP a_total x\n# TYPE a_total counter\na_total -1\n",       /* negative counter */
        "# HELP a x\n# TYPE a gauge\na{l=\"1\",l=\"2\"} 1\n",           /* label twice */
        "# HELP a x\n# TYPE a gauge\na{l=\"x\\q\"} 1\n",                /* bad escape */
        "# HELP a x\n# TYPE a gauge\na{l=\"x} 1\n",                     /* unterminated */
        "# HELP a x\n# TYPE a gauge\na{l=\"1\"} 1\na{l=\"1\"} 2\n",     /* series twice */
        "# HELP a x\n# TYPE a gauge\na 1\n# HELP b x\n# TYPE b gauge\nb 1\na 2\n", /* apart */
        "# HELP a x\n# TYPE a gauge\n# TYPE a gauge\na 1\n",            /* TYPE twice */
        "# HELP a x\n# TYPE a gauges\na 1\n",                           /* unknown type */
        "# HELP 1a x\n# TYPE 1a gauge\n1a 1\n",                          /* bad name */
        "# a comment\n",                                                /* stray comment */
        "# HELP a x\n# TYPE a gauge\na{__l=\"1\"} 1\n",                  /* reserved label */
        "# HELP a x\n# TYPE a gauge\na{l=\"1\"}1\n",                     /* no space */
    };
    char why[256];
    size_t n;
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        int rc = expo_check(bad[k], &n, why, sizeof why);
        CHECK(rc != 0);
        if (rc == 0)
            printf("# the parser took bad input %zu: %s\n", k, bad[k]);
    }
    const char *good = "# HELP a x y\n# TYPE a gauge\na{l=\"q\\\"\\\\\\n\"} 1.5\na 2 1700000000\n"
                       "# HELP b_total z\n# TYPE b_total counter\nb_total 3\n";
    CHECK_EQ_I64(expo_check(good, &n, why, sizeof why), 0);
    CHECK_EQ_U64(n, 3);
}

static void fill(preoom_metrics_t *m, preoom_metrics_domain_t *d, preoom_metrics_proc_t *p)
{
    memset(m, 0, sizeof *m);
    snprintf(m->version, sizeof m->version, "0.2.0");
    m->start_time_s = 1700000000;
    m->pass_us = 1234567;
    m->poll_ms = 250;
    m->notify_started = 3;
    memset(d, 0, 2 * sizeof *d);
    snprintf(d[0].domain, sizeof d[0].domain, "/");
    d[0].total_bytes = 8ULL << 30;
    d[0].available_bytes = 6ULL << 30;
    d[0].ask_bytes = 1200ULL << 20;
    d[0].term_bytes = 800ULL << 20;
    d[0].kill_bytes = 400ULL << 20;
    d[0].time_to_kill_ms = -1;
    d[0].cgroup_oom_kills = 0;
    d[0].kills = 2;
    /* A path with the three characters the format escapes. */
    snprintf(d[1].domain, sizeof d[1].domain, "/sys/fs/cgroup/a\"b\\c\nd");
    d[1].in_cgroup = 1;
    d[1].cgroup_oom_kills = 7;
    d[1].time_to_kill_ms = 2500;
    d[1].psi_some_x100 = 1234;
    memset(p, 0, 2 * sizeof *p);
    p[0] = (preoom_metrics_proc_t){0, 42, "db\"x", 300, 200, 100, 5};
    p[1] = (preoom_metrics_proc_t){1, 43, "web", 30, 20, 10, 0};
}

static void t_format(void)
{
    preoom_metrics_t m;
    preoom_metrics_domain_t d[2];
    preoom_metrics_proc_t p[2];
    fill(&m, d, p);
    static char buf[PREOOM_METRICS_TEXT_MAX];
    size_t n = preoom_metrics_format(&m, d, 2, p, 2, buf, sizeof buf);
    CHECK(n > 0 && n < sizeof buf);
    buf[n] = '\0';
    char why[256];
    size_t samples;
    int rc = expo_check(buf, &samples, why, sizeof why);
    CHECK_EQ_I64(rc, 0);
    if (rc)
        printf("# %s\n", why);
    static const char *const want[] = {
        "\npreoom_pass_seconds 1.234567\n",
        "\npreoom_build_info{version=\"0.2.0\"} 1\n",
        "\npreoom_start_time_seconds 1700000000\n",
        "\n# TYPE preoom_cgroup_kernel_oom_kills_total counter\n",
        "\npreoom_cgroup_kernel_oom_kills_total{domain=\"/sys/fs/cgroup/a\\\"b\\\\c\\nd\"} 7\n",
        "\npreoom_term_line_bytes{domain=\"/\"} 838860800\n",
        "\npreoom_actions_total{domain=\"/\",action=\"sigkill\"} 2\n",
        "\npreoom_time_to_kill_line_seconds{domain=\"/\"} -1.000\n",
        "\npreoom_psi_some_avg10_percent{domain=\"/sys/fs/cgroup/a\\\"b\\\\c\\nd\"} 12.34\n",
        "\npreoom_process_touched_bytes{domain=\"/\",pid=\"42\",name=\"db\\\"x\"} 200\n",
        "\npreoom_process_slack_bytes{domain=\"/sys/fs/cgroup/a\\\"b\\\\c\\nd\",pid=\"43\",name=\"web\"} 0\n",
        "\npreoom_notify_hooks_total{result=\"started\"} 3\n",
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        bool found = strstr(buf, want[k]) != NULL;
        CHECK(found);
        if (!found)
            printf("# missing: %s", want[k] + 1);
    }
    /* The old gauge name is gone: a cumulative count is a counter named _total. */
    CHECK(strstr(buf, "preoom_cgroup_kernel_oom_kills{") == NULL);
    /* No process series without processes. */
    n = preoom_metrics_format(&m, d, 1, p, 0, buf, sizeof buf);
    buf[n] = '\0';
    CHECK(strstr(buf, "preoom_process_") == NULL);
    CHECK_EQ_I64(expo_check(buf, &samples, why, sizeof why), 0);
}

/* A buffer too small: the text is cut after a whole line and stays valid. */
static void t_cut(void)
{
    preoom_metrics_t m;
    preoom_metrics_domain_t d[2];
    preoom_metrics_proc_t p[2];
    fill(&m, d, p);
    char buf[1000];
    size_t n = preoom_metrics_format(&m, d, 2, p, 2, buf, sizeof buf);
    CHECK(n > 0 && n < sizeof buf);
    buf[n] = '\0';
    CHECK(buf[n - 1] == '\n');
    size_t samples;
    char why[256];
    CHECK_EQ_I64(expo_check(buf, &samples, why, sizeof why), 0);
}

/* Of 500 processes, the 50 that touch the most are kept. */
static void t_offer(void)
{
    static preoom_metrics_proc_t top[PREOOM_METRICS_MAX_PROCS];
    size_t n = 0;
    for (int k = 0; k < 500; k++) {
        /* touched in a scrambled order: 0..499 each once */
        preoom_metrics_proc_t p = {0, k + 1, "p", 0, (uint64_t)((k * 37) % 500), 0, 0};
        preoom_metrics_offer_proc(top, &n, PREOOM_METRICS_MAX_PROCS, &p);
    }
    CHECK_EQ_U64(n, PREOOM_METRICS_MAX_PROCS);
    uint64_t min = UINT64_MAX;
    for (size_t k = 0; k < n; k++)
        if (top[k].touched_bytes < min)
            min = top[k].touched_bytes;
    CHECK_EQ_U64(min, 500 - PREOOM_METRICS_MAX_PROCS);
}

static void t_write_file(void)
{
    char dir[] = "/tmp/preoom-utest-metrics.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128], tmp[160];
    snprintf(path, sizeof path, "%s/m.prom", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    CHECK_EQ_I64(preoom_metrics_write_file(path, "a 1\n", 4), 0);
    struct stat st;
    CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 4);
    /* A FIFO at the temporary name: refused without opening it (which would block). */
    CHECK(mkfifo(tmp, 0600) == 0);
    CHECK_EQ_I64(preoom_metrics_write_file(path, "a 2\n", 4), -EEXIST);
    unlink(tmp);
    /* Our own leftover regular file (a crash): replaced. */
    FILE *f = fopen(tmp, "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    CHECK_EQ_I64(preoom_metrics_write_file(path, "a 3\n", 4), 0);
    CHECK(access(tmp, F_OK) != 0);
    /* Removed at stop: our regular file, and nothing else. */
    CHECK_EQ_I64(preoom_metrics_remove_file(path), 0);
    CHECK(access(path, F_OK) != 0);
    CHECK(mkfifo(path, 0600) == 0);
    CHECK_EQ_I64(preoom_metrics_remove_file(path), -EPERM);
    CHECK(access(path, F_OK) == 0);
    unlink(path);
    CHECK_EQ_I64(preoom_metrics_remove_file(path), -ENOENT);
    /* A directory at the destination: refused. */
    unlink(path);
    CHECK(mkdir(path, 0700) == 0);
    CHECK_EQ_I64(preoom_metrics_write_file(path, "a 4\n", 4), -EINVAL);
    rmdir(path);
    rmdir(dir);
}

/* One domain's figures from what the loop holds: the decision, the engine's totals, the
 * gathered processes (only registered ones get series), the readings and the cgroup. */
static void t_fill(void)
{
    static preoom_decision_t d;
    static preoom_engine_t e;
    static preoom_proc_t procs[3];
    static preoom_engine_proc_t ep[3];
    memset(&d, 0, sizeof d);
    memset(&e, 0, sizeof e);
    memset(procs, 0, sizeof procs);
    memset(ep, 0, sizeof ep);
    d.level = 2;
    d.total_bytes = 1000;
    d.available_bytes = 90;
    d.term_bytes = 100;
    d.time_to_kill_ms = 1500;
    e.n_asked = 4;
    e.n_terms = 1;
    e.released_bytes = 77;
    preoom_gathered_t g = {procs, 3, 3, 30, 300, 200, 0, 0, 0, "", false, {{0}}, 0};
    for (int k = 0; k < 3; k++) {
        procs[k].c.pid = 100 + k;
        procs[k].registered = k != 1; /* the middle one was found in the cgroup only */
        procs[k].slot.committed = 50 + (uint64_t)k * 10;
        procs[k].c.touched_bytes = 40;
        snprintf(procs[k].name, sizeof procs[k].name, "p%d", k);
        ep[k].slack_bytes = 5;
    }
    preoom_readings_t r;
    memset(&r, 0, sizeof r);
    r.psi_some_avg10_x100 = 250;
    preoom_memcg_t cg;
    memset(&cg, 0, sizeof cg);
    cg.oom_kill = PREOOM_VALUE_MISSING;
    preoom_metrics_domain_t m;
    preoom_metrics_sums_t sums = {g.exposure_bytes, g.committed_bytes, g.touched_bytes, 2};
    preoom_metrics_fill_domain(&m, "", &d, &e, &sums, &r, &cg);
    CHECK_STR(m.domain, "/");
    CHECK_EQ_I64(m.level, 2);
    CHECK_EQ_U64(m.term_bytes, 100);
    CHECK_EQ_U64(m.available_bytes, 90);
    CHECK_EQ_U64(m.registered, 2);
    CHECK_EQ_U64(m.asks, 4);
    CHECK_EQ_U64(m.terms, 1);
    CHECK_EQ_U64(m.released_bytes, 77);
    CHECK_EQ_U64(m.exposure_bytes, 30);
    CHECK_EQ_U64(m.psi_some_x100, 250);
    CHECK_EQ_U64(m.cgroup_oom_kills, 0); /* the kernel's count missing: 0, not a huge number */
    CHECK_EQ_I64(m.time_to_kill_ms, 1500);
    cg.oom_kill = 3;
    preoom_metrics_fill_domain(&m, "/sys/fs/cgroup/db", &d, &e, &sums, &r, &cg);
    CHECK_STR(m.domain, "/sys/fs/cgroup/db");
    CHECK_EQ_U64(m.cgroup_oom_kills, 3);
    preoom_metrics_proc_t top[PREOOM_METRICS_MAX_PROCS];
    size_t n = 0;
    preoom_metrics_fill_procs(&g, ep, NULL, 7, top, &n, PREOOM_METRICS_MAX_PROCS);
    CHECK_EQ_U64(n, 2);
    CHECK_EQ_I64(top[1].pid, 102);
    CHECK_EQ_U64(top[1].domain, 7);
    /* one domain index a process; UINT32_MAX leaves one out */
    const uint32_t of[3] = {3, 9, UINT32_MAX};
    n = 0;
    preoom_metrics_fill_procs(&g, ep, of, 0, top, &n, PREOOM_METRICS_MAX_PROCS);
    CHECK_EQ_U64(n, 1);
    CHECK_EQ_I64(top[0].pid, 100);
    CHECK_EQ_U64(top[0].domain, 3);
    CHECK_STR(top[1].name, "p2");
    CHECK_EQ_U64(top[1].committed_bytes, 70);
    CHECK_EQ_U64(top[1].exposure_bytes, 30);
    CHECK_EQ_U64(top[1].slack_bytes, 5);
}

/* --check FILE: the parser alone, for the end-to-end tests. */
static int check_file(const char *path)
{
    static char text[1 << 20];
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("cannot open %s\n", path);
        return 1;
    }
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    char why[256];
    size_t samples;
    if (expo_check(text, &samples, why, sizeof why) != 0) {
        printf("%s: %s\n", path, why);
        return 1;
    }
    printf("%s: %zu samples, valid\n", path, samples);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--check"))
        return check_file(argv[2]);
    TEST_CASE("metrics: only GET /metrics answers 200", t_route);
    TEST_CASE("metrics: the strict parser refuses broken text", t_parser_refuses);
    TEST_CASE("metrics: the exposition is valid, labelled by domain, counters _total", t_format);
    TEST_CASE("metrics: a short buffer cuts at a line and stays valid", t_cut);
    TEST_CASE("metrics: per-process series are the 50 that touch the most", t_offer);
    TEST_CASE("metrics: one domain's figures from the loop's state", t_fill);
    TEST_CASE("metrics: textfile never opens a FIFO, replaces its own leftover, removes only its own", t_write_file);
    TEST_END();
}

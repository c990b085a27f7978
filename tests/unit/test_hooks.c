/* tests/unit/test_hooks.c — the operator's settings of #15 and the --notify hook, linked
 * directly: the cgroup pattern settings (good and bad values, published and read back as
 * `preoom explain` reads them; --notify never published nor taken from a file), the pattern
 * match on both cgroup hierarchies, the hook's event list and environment, and real hooks run
 * through /bin/sh: their environment and stdin, the time limit that kills a hook's whole
 * process group, and the cap on hooks running at once. Files under a temporary directory it
 * removes; every hook it starts is reaped or killed by its pid.
 */
#include "harness.h"
#include "candidates.h"
#include "dconf.h"
#include "notify.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void t_settings(void)
{
    static const struct { const char *name, *value; int ok; } cases[] = {
        {"protect-cgroup", "/system.slice/mariadb.service", 1},
        {"protect-cgroup", "*/big", 1},
        {"avoid-cgroup", "/user.slice/*", 1},
        {"prefer-cgroup", "/batch/*", 1},
        {"protect-cgroup", "mariadb", 0},      /* a name, not a path */
        {"avoid-cgroup", "", 0},
        {"prefer-cgroup", NULL, 0},
        {"kill-group", NULL, 1},
        {"kill-group", "2", 0},
        {"notify", "logger preoom", 1},
        {"notify", "", 0},
        {"notify-timeout", "0", 0},
        {"notify-timeout", "10000", 1},
        {"notify-max", "16", 1},
        {"notify-max", "17", 0},
        {"notify-events", "ask,sigterm,sigkill", 1},
        {"notify-events", "all", 1},
        {"notify-events", "ask,", 0},
        {"notify-events", "sigstop", 0},
        {"notify-events", ",ask", 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        static preoom_dconf_t d;
        preoom_dconf_defaults(&d);
        char err[256] = "";
        int rc = preoom_dconf_set(&d, cases[k].name, cases[k].value, err, sizeof err);
        CHECK_EQ_I64(rc == 0, cases[k].ok);
        if ((rc == 0) != cases[k].ok)
            printf("# --%s '%s': %s\n", cases[k].name, cases[k].value ? cases[k].value : "(null)", err);
        /* A refusal names the option. */
        if (rc != 0)
            CHECK(strstr(err, cases[k].name) != NULL);
    }
    /* At most PREOOM_MAX_CGROUP_GLOBS patterns of a kind. */
    static preoom_dconf_t d;
    preoom_dconf_defaults(&d);
    char err[256];
    for (int k = 0; k < PREOOM_MAX_CGROUP_GLOBS; k++)
        CHECK_EQ_I64(preoom_dconf_set(&d, "avoid-cgroup", "/a/*", err, sizeof err), 0);
    CHECK_EQ_I64(preoom_dconf_set(&d, "avoid-cgroup", "/a/*", err, sizeof err), -EINVAL);
}

static void t_publish(void)
{
    /* What preoomd publishes, `preoom explain` reads back: the patterns; never the hook. */
    static preoom_dconf_t d, back;
    preoom_dconf_defaults(&d);
    char err[256], text[4096];
    CHECK_EQ_I64(preoom_dconf_set(&d, "protect-cgroup", "/system.slice/mariadb.service", err, sizeof err), 0);
    CHECK_EQ_I64(preoom_dconf_set(&d, "protect-cgroup", "*/big", err, sizeof err), 0);
    CHECK_EQ_I64(preoom_dconf_set(&d, "avoid-cgroup", "/user.slice/*", err, sizeof err), 0);
    CHECK_EQ_I64(preoom_dconf_set(&d, "prefer-cgroup", "/batch/*", err, sizeof err), 0);
    CHECK_EQ_I64(preoom_dconf_set(&d, "notify", "curl -d @- https://hooks.example/TOKEN", err, sizeof err), 0);
    CHECK_EQ_I64(preoom_dconf_finish(&d, err, sizeof err), 0);
    size_t len = preoom_dconf_publish(&d, text, sizeof text);
    text[len] = '\0';
    CHECK(strstr(text, "TOKEN") == NULL);
    CHECK(strstr(text, "notify") == NULL);
    preoom_dconf_defaults(&back);
    CHECK_EQ_I64(preoom_dconf_load(&back, text, len, err, sizeof err), 0);
    CHECK_EQ_U64(back.protect_cg.n, 2);
    CHECK_STR(back.protect_cg.glob[1], "*/big");
    CHECK_EQ_U64(back.avoid_cg.n, 1);
    CHECK_STR(back.prefer_cg.glob[0], "/batch/*");
    preoom_gather_opts_t o;
    memset(&o, 0, sizeof o);
    preoom_dconf_gather_opts(&back, &o);
    CHECK(o.protect_cg == &back.protect_cg && o.avoid_cg && o.prefer_cg);
    /* A settings file that names a hook is not obeyed (explain never runs one anyway). */
    static const char forged[] = "notify=touch /tmp/pwned\n";
    preoom_dconf_defaults(&back);
    CHECK_EQ_I64(preoom_dconf_load(&back, forged, sizeof forged - 1, err, sizeof err), 0);
    CHECK(back.notify == NULL);
}

static void t_match(void)
{
    preoom_cgroup_globs_t g;
    memset(&g, 0, sizeof g);
    strcpy(g.glob[g.n++], "/system.slice/mariadb.service");
    strcpy(g.glob[g.n++], "/user.slice/*");
    static const struct { const char *v1, *v2; int want; } cases[] = {
        {"/system.slice/mariadb.service", NULL, 1},          /* v1 memory line */
        {NULL, "/system.slice/mariadb.service", 1},          /* v2 0:: line */
        {NULL, "/system.slice/mariadb.service/x", 0},        /* a pattern is the whole path */
        {NULL, "/user.slice/user-0.slice/session-1.scope", 1}, /* '*' also matches '/' */
        {"/", "/user.slice", 0},
        {"/other", "/user.slice/a", 1},                      /* either line is enough */
        {NULL, NULL, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        static preoom_pid_cgroup_t c;
        memset(&c, 0, sizeof c);
        if (cases[k].v1) {
            c.has_v1_memory = true;
            strcpy(c.v1_memory, cases[k].v1);
        }
        if (cases[k].v2) {
            c.has_v2 = true;
            strcpy(c.v2, cases[k].v2);
        }
        CHECK_EQ_I64(preoom_cgroup_globs_match(&g, &c), cases[k].want);
    }
    static preoom_pid_cgroup_t c;
    CHECK_EQ_I64(preoom_cgroup_globs_match(NULL, &c), 0);
}

static void t_events(void)
{
    uint32_t m;
    CHECK_EQ_I64(preoom_notify_parse_events("sigkill", &m), 0);
    CHECK_EQ_U64(m, 1u << PREOOM_EV_KILL);
    CHECK_EQ_I64(preoom_notify_parse_events("ask,no-answer,hog", &m), 0);
    CHECK_EQ_U64(m, (1u << PREOOM_EV_ASK) | (1u << PREOOM_EV_NO_ANSWER) | (1u << PREOOM_EV_HOG));
    CHECK_EQ_I64(preoom_notify_parse_events("all", &m), 0);
    for (int k = PREOOM_EV_ASK; k <= PREOOM_EV_LEFT; k++)
        CHECK(m & (1u << k));
    static const char *const bad[] = {"", ",", "ask,,sigterm", "Ask", "sigterm ", "kill"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        CHECK_EQ_I64(preoom_notify_parse_events(bad[k], &m), -EINVAL);
}

static void decision(preoom_decision_t *d, preoom_event_kind_t kind)
{
    memset(d, 0, sizeof *d);
    d->n_events = 1;
    d->level = 2;
    d->reason = "cgroup memory available";
    d->total_bytes = 256ULL << 20;
    d->available_bytes = 20ULL << 20;
    d->ask_bytes = 38ULL << 20;
    d->term_bytes = 25ULL << 20;
    d->kill_bytes = 12ULL << 20;
    d->time_to_kill_ms = -1;
    preoom_event_t *ev = &d->ev[0];
    ev->kind = kind;
    ev->pid = 4242;
    ev->uid = 1000;
    ev->registered = true;
    ev->bytes = 123456789;
    ev->grace_ms = 3000;
    ev->why = "below the term line and still falling";
    ev->proc = SIZE_MAX;
    snprintf(ev->name, sizeof ev->name, "mariadbd");
    snprintf(ev->cmdline, sizeof ev->cmdline, "/usr/sbin/mariadbd --user=mysql");
}

static void t_env(void)
{
    preoom_decision_t d;
    decision(&d, PREOOM_EV_TERM);
    char buf[4096];
    const char *vars[32];
    size_t n = preoom_notify_env(&d, 0, "/sys/fs/cgroup/memory/db", buf, sizeof buf, vars, 32);
    static const char *const want[] = {
        "PREOOM_EVENT=sigterm", "PREOOM_PID=4242", "PREOOM_UID=1000", "PREOOM_NAME=mariadbd",
        "PREOOM_CMDLINE=/usr/sbin/mariadbd --user=mysql", "PREOOM_BYTES=123456789",
        "PREOOM_DOMAIN=/sys/fs/cgroup/memory/db", "PREOOM_AVAILABLE_BYTES=20971520",
        "PREOOM_TOTAL_BYTES=268435456", "PREOOM_TERM_LINE_BYTES=26214400",
        "PREOOM_PRESSURE=critical", "PREOOM_GRACE_MS=3000", "PREOOM_DRY_RUN=0",
        "PREOOM_REGISTERED=1",
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        bool found = false;
        for (size_t j = 0; j < n; j++)
            found |= !strcmp(vars[j], want[k]);
        CHECK(found);
        if (!found)
            printf("# missing %s\n", want[k]);
    }
    /* The host is "/"; a buffer too small leaves variables out rather than cut them. */
    n = preoom_notify_env(&d, 0, "", buf, sizeof buf, vars, 32);
    bool host = false;
    for (size_t j = 0; j < n; j++)
        host |= !strcmp(vars[j], "PREOOM_DOMAIN=/");
    CHECK(host);
    n = preoom_notify_env(&d, 0, "/", buf, 40, vars, 32);
    CHECK(n >= 1 && n < 5);
    for (size_t j = 0; j < n; j++)
        CHECK(strchr(vars[j], '=') != NULL && (size_t)(vars[j] - buf) + strlen(vars[j]) < 40);
}

static int said;
static void count_say(void *ctx, const char *msg)
{
    (void)ctx;
    (void)msg;
    said++;
}

/* Wait (at most ms) until every hook has been reaped. */
static size_t settle(preoom_notify_t *n, uint64_t ms)
{
    uint64_t end = mono_ms() + ms;
    size_t left;
    while ((left = preoom_notify_reap(n, mono_ms())) > 0 && mono_ms() < end)
        usleep(10000);
    return left;
}

static void t_run(void)
{
    char dir[] = "/tmp/preoom-utest-hooks.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char cmd[512], path[300];
    snprintf(cmd, sizeof cmd, "env | grep '^PREOOM_' >%s/env; cat >%s/stdin", dir, dir);
    static preoom_notify_t n;
    preoom_notify_conf_t c = {cmd, 5000, 2, PREOOM_NOTIFY_DEFAULT_EVENTS, count_say, NULL};
    preoom_notify_init(&n, &c);
    preoom_decision_t d;
    preoom_engine_input_t in;
    memset(&in, 0, sizeof in);
    /* Not wanted by default: nothing runs. */
    decision(&d, PREOOM_EV_ANSWER);
    CHECK_EQ_I64(preoom_notify_event(&n, &d, 0, &in, NULL, "/", mono_ms()), 0);
    CHECK_EQ_U64(n.started, 0);
    decision(&d, PREOOM_EV_KILL);
    CHECK_EQ_I64(preoom_notify_event(&n, &d, 0, &in, NULL, "/db", mono_ms()), 0);
    CHECK_EQ_U64(n.started, 1);
    CHECK_EQ_U64(settle(&n, 5000), 0);
    CHECK_EQ_U64(n.failed, 0);
    char text[4096];
    snprintf(path, sizeof path, "%s/env", dir);
    FILE *f = fopen(path, "r");
    size_t len = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[len] = '\0';
    if (f)
        fclose(f);
    CHECK(strstr(text, "PREOOM_EVENT=sigkill\n") != NULL);
    CHECK(strstr(text, "PREOOM_DOMAIN=/db\n") != NULL);
    CHECK(strstr(text, "PREOOM_CMDLINE=/usr/sbin/mariadbd --user=mysql\n") != NULL);
    snprintf(path, sizeof path, "%s/stdin", dir);
    f = fopen(path, "r");
    len = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[len] = '\0';
    if (f)
        fclose(f);
    /* One JSON object and a newline. */
    CHECK(len > 2 && text[0] == '{' && text[len - 1] == '\n' && text[len - 2] == '}');
    CHECK(strstr(text, "\"event\":\"sigkill\",\"pid\":4242") != NULL);
    CHECK(strstr(text, "\"cmdline\":\"/usr/sbin/mariadbd --user=mysql\"") != NULL);

    /* The time limit: a hook whose child sleeps; both gone when it passes, said once. */
    snprintf(cmd, sizeof cmd, "sleep 30 & echo $! >%s/child; wait", dir);
    c = (preoom_notify_conf_t){cmd, 300, 2, PREOOM_NOTIFY_DEFAULT_EVENTS, count_say, NULL};
    preoom_notify_fini(&n);
    preoom_notify_init(&n, &c);
    said = 0;
    uint64_t t0 = mono_ms();
    CHECK_EQ_I64(preoom_notify_event(&n, &d, 0, &in, NULL, "/", t0), 0);
    /* The call returned at once: the hook runs on its own. */
    CHECK(mono_ms() - t0 < 200);
    pid_t hook = n.run[0].pid;
    /* A third hook while two run (max 2): dropped, counted, said once. */
    CHECK_EQ_I64(preoom_notify_event(&n, &d, 0, &in, NULL, "/", mono_ms()), 0);
    CHECK_EQ_I64(preoom_notify_event(&n, &d, 0, &in, NULL, "/", mono_ms()), -EBUSY);
    CHECK_EQ_I64(preoom_notify_event(&n, &d, 0, &in, NULL, "/", mono_ms()), -EBUSY);
    CHECK_EQ_U64(n.dropped, 2);
    CHECK_EQ_I64(said, 1);
    usleep(100000);
    CHECK_EQ_U64(preoom_notify_reap(&n, mono_ms()), 2); /* before the limit: still there */
    CHECK_EQ_U64(settle(&n, 3000), 0);
    CHECK_EQ_U64(n.timed_out, 2);
    CHECK(mono_ms() - t0 >= 300);
    CHECK(kill(hook, 0) != 0);
    snprintf(path, sizeof path, "%s/child", dir);
    f = fopen(path, "r");
    int child = 0;
    if (f) {
        if (fscanf(f, "%d", &child) != 1)
            child = 0;
        fclose(f);
    }
    CHECK(child > 0);
    /* The child was in the hook's group: killed too (a zombie until init reaps it). */
    if (child > 0) {
        char st[64], buf[256] = "";
        snprintf(st, sizeof st, "/proc/%d/stat", child);
        FILE *s = fopen(st, "r");
        if (s) {
            if (!fgets(buf, sizeof buf, s))
                buf[0] = '\0';
            fclose(s);
        }
        const char *rp = strrchr(buf, ')');
        CHECK(!s || (rp && rp[1] == ' ' && rp[2] == 'Z'));
        kill(child, SIGKILL); /* if the test is failing, leave nothing behind */
    }
    CHECK_EQ_I64(said, 2); /* the drop, then the timeout: each once */

    /* A hook that fails is counted and said once. */
    c = (preoom_notify_conf_t){"exit 3", 5000, 2, PREOOM_NOTIFY_DEFAULT_EVENTS, count_say, NULL};
    preoom_notify_fini(&n);
    preoom_notify_init(&n, &c);
    said = 0;
    CHECK_EQ_I64(preoom_notify_event(&n, &d, 0, &in, NULL, "/", mono_ms()), 0);
    CHECK_EQ_I64(preoom_notify_event(&n, &d, 0, &in, NULL, "/", mono_ms()), 0);
    CHECK_EQ_U64(settle(&n, 5000), 0);
    CHECK_EQ_U64(n.failed, 2);
    CHECK_EQ_I64(said, 1);
    /* No command: nothing. */
    c = (preoom_notify_conf_t){NULL, 0, 0, 0, NULL, NULL};
    preoom_notify_fini(&n);
    preoom_notify_init(&n, &c);
    CHECK_EQ_I64(preoom_notify_event(&n, &d, 0, &in, NULL, "/", mono_ms()), 0);
    CHECK_EQ_U64(n.started, 0);
    preoom_notify_fini(&n);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

/* Command lines are read once per process, in calm passes, and only looked up after. */
static void t_cmdline_cache(void)
{
    static preoom_cmdline_cache_t c;
    static preoom_proc_t procs[600];
    memset(&c, 0, sizeof c);
    memset(procs, 0, sizeof procs);
    preoom_procfs_t fs;
    preoom_procfs_init(&fs);
    preoom_pid_stat_t st;
    CHECK_EQ_I64(preoom_read_pid_stat(&fs, (int)getpid(), &st), 0);
    procs[0].c.pid = (int32_t)getpid();
    procs[0].start_time = st.starttime_ticks;
    snprintf(procs[0].name, sizeof procs[0].name, "%s", st.comm);
    preoom_gathered_t g;
    memset(&g, 0, sizeof g);
    g.procs = procs;
    g.cap = 600;
    g.n = 1;
    CHECK_EQ_U64(preoom_cmdline_cache_fill(&c, &fs, &g), 1);
    const char *got = preoom_cmdline_cache_get(&c, procs[0].c.pid, procs[0].start_time, procs[0].name);
    CHECK(got && strstr(got, "test_hooks") != NULL);
    CHECK_EQ_U64(preoom_cmdline_cache_fill(&c, &fs, &g), 0); /* known: not read again */
    /* Another start time (a reused pid) or another name (an exec) is not this entry. */
    CHECK(preoom_cmdline_cache_get(&c, procs[0].c.pid, procs[0].start_time + 1, procs[0].name) == NULL);
    CHECK(preoom_cmdline_cache_get(&c, procs[0].c.pid, procs[0].start_time, "other") == NULL);
    snprintf(procs[0].name, sizeof procs[0].name, "renamed");
    CHECK_EQ_U64(preoom_cmdline_cache_fill(&c, &fs, &g), 1);
    CHECK(preoom_cmdline_cache_get(&c, procs[0].c.pid, procs[0].start_time, "renamed") != NULL);
    /* Bounded: more processes than room replace the oldest, the count stays at the cap. */
    for (int k = 1; k < 600; k++) {
        procs[k].c.pid = 0x7ffffff0 - k; /* no such process: an empty command line */
        procs[k].start_time = 1;
        snprintf(procs[k].name, sizeof procs[k].name, "p%d", k);
    }
    g.n = 600;
    CHECK_EQ_U64(preoom_cmdline_cache_fill(&c, &fs, &g), 599);
    CHECK_EQ_U64(c.n, PREOOM_CMDLINE_CACHE);
    got = preoom_cmdline_cache_get(&c, procs[599].c.pid, 1, "p599");
    CHECK(got && got[0] == '\0');
}

int main(void)
{
    TEST_CASE("hooks: the new settings, good and bad values", t_settings);
    TEST_CASE("hooks: patterns published and read back; the hook never", t_publish);
    TEST_CASE("hooks: cgroup patterns on v1 and v2 paths", t_match);
    TEST_CASE("hooks: --notify-events lists", t_events);
    TEST_CASE("hooks: the hook's environment", t_env);
    TEST_CASE("hooks: real hooks: environment, stdin, time limit, cap, failures", t_run);
    TEST_CASE("hooks: command lines cached, read once, bounded", t_cmdline_cache);
    TEST_END();
}

/* tests/unit/test_conffile.c — preoomd's configuration file: sections, precedence, globs,
 * errors with file and line, drop-in directories, and the settings published for explain. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conffile.h"
#include "harness.h"

static preoom_conffile_t cf;
static char err[1024];

static int parse(const char *text)
{
    preoom_conffile_init(&cf);
    err[0] = '\0';
    return preoom_conffile_parse(&cf, text, strlen(text), "t.conf", err, sizeof err);
}

static void t_sections_and_precedence(void)
{
    CHECK(parse("# comment\n; another\n\nask = 20%\n[preoomd]\nterm = 8\n"
                "[domain /system.slice/mariadb.service]\nterm-grace = 300000\navoid = ^mariadbd$\n"
                "[domain \"/workers.slice/*\"]\n  ask=30  \n--kill = 4\n"
                "[domain /]\nask = 5%\n") == 0);
    CHECK_EQ_U64(cf.n_s, 3);
    preoom_dconf_t d;
    preoom_dconf_defaults(&d);
    CHECK(preoom_conffile_apply_global(&cf, &d, err, sizeof err) == 0);
    CHECK_EQ_U64(d.eng.th.ask.percent_x100, 2000);
    CHECK_EQ_U64(d.eng.th.term.percent_x100, 800);
    /* the command line comes next and wins over [preoomd] */
    CHECK(preoom_dconf_set(&d, "term", "9", err, sizeof err) == 0);
    preoom_dconf_t m = d;
    CHECK_EQ_I64(preoom_conffile_apply_domain(&cf, "/system.slice/mariadb.service", &m, err, sizeof err), 1);
    CHECK_EQ_U64(m.eng.term_grace_ms, 300000);
    CHECK(m.avoid_set && !strcmp(m.avoid, "^mariadbd$"));
    CHECK_EQ_U64(m.eng.th.term.percent_x100, 900);
    CHECK(preoom_dconf_finish(&m, err, sizeof err) == 0);
    regfree(&m.avoid_re);
    /* a glob: '*' is one path component, and a trailing slash does not matter */
    preoom_dconf_t w = d;
    CHECK_EQ_I64(preoom_conffile_apply_domain(&cf, "/workers.slice/w1.service/", &w, err, sizeof err), 1);
    CHECK_EQ_U64(w.eng.th.ask.percent_x100, 3000);
    CHECK_EQ_U64(w.eng.th.kill.percent_x100, 400);
    preoom_dconf_t deep = d;
    CHECK_EQ_I64(preoom_conffile_apply_domain(&cf, "/workers.slice/w1.service/inner", &deep, err, sizeof err), 0);
    CHECK_EQ_U64(deep.eng.th.ask.percent_x100, 2000);
    /* the host is "/" */
    preoom_dconf_t h = d;
    CHECK_EQ_I64(preoom_conffile_apply_domain(&cf, "/", &h, err, sizeof err), 1);
    CHECK_EQ_U64(h.eng.th.ask.percent_x100, 500);
    CHECK_EQ_I64(preoom_conffile_apply_domain(&cf, "", &h, err, sizeof err), 1);
}

static void t_last_section_wins(void)
{
    CHECK(parse("[domain /a/*]\nask = 30\n[domain /a/b]\nask = 40\n") == 0);
    preoom_dconf_t d;
    preoom_dconf_defaults(&d);
    CHECK_EQ_I64(preoom_conffile_apply_domain(&cf, "/a/b", &d, err, sizeof err), 2);
    CHECK_EQ_U64(d.eng.th.ask.percent_x100, 4000);
    CHECK(preoom_conffile_matches("/a/*", "/a/c"));
    CHECK(!preoom_conffile_matches("/a/*", "/a"));
    CHECK(!preoom_conffile_matches("/a/*", "/b/c"));
    CHECK(preoom_conffile_matches("/", "/"));
    CHECK(!preoom_conffile_matches("/", "/a"));
}

static void t_errors(void)
{
    static const struct { const char *text, *want; } t[] = {
        {"[domain]\n", "t.conf:1: unknown section [domain]"},
        {"[domain relative/path]\n", "t.conf:1: [domain PATH] needs a cgroup path starting with '/'"},
        {"[service /a]\n", "t.conf:1: unknown section [service /a]"},
        {"[preoomd\n", "t.conf:1: a section header is [preoomd] or [domain PATH]"},
        {"\n\nask 20\n", "t.conf:3: 'ask 20' is not 'setting = value'"},
        {"[domain /a]\nmetrics-port = 9100\n", "t.conf:2: 'metrics-port' is a daemon-wide setting"},
        {"config = /x\n", "t.conf:1: 'config' is a command-line option only"},
        {"avoid = \"^x\n", "t.conf:1: unbalanced quote"},
        {" = 3\n", "t.conf:1: no setting name before '='"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int rc = parse(t[i].text);
        CHECK_EQ_I64(rc, -EINVAL);
        if (!strstr(err, t[i].want))
            printf("# case %zu: got '%s'\n", i, err);
        CHECK(strstr(err, t[i].want) != NULL);
    }
    /* values are the command line's: the same setter, so the same message, with file:line */
    CHECK(parse("\n[domain /a]\nask = lots\n") == 0);
    preoom_dconf_t d;
    preoom_dconf_defaults(&d);
    CHECK_EQ_I64(preoom_conffile_apply_domain(&cf, "/a", &d, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "t.conf:3: --ask 'lots' is not a threshold") != NULL);
    CHECK(parse("nonsense = 1\n") == 0);
    CHECK_EQ_I64(preoom_conffile_apply_global(&cf, &d, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "t.conf:1: unknown setting 'nonsense'") != NULL);
    /* a NUL byte: not a text file */
    preoom_conffile_init(&cf);
    CHECK_EQ_I64(preoom_conffile_parse(&cf, "ask = 1\0x\n", 10, "bin", err, sizeof err), -EINVAL);
    /* too many sections is an error, not a silent drop */
    static char many[PREOOM_CONF_MAX_SECTIONS * 16 + 64];
    size_t len = 0;
    for (int i = 0; i <= PREOOM_CONF_MAX_SECTIONS; i++)
        len += (size_t)snprintf(many + len, sizeof many - len, "[domain /s%d]\n", i);
    CHECK_EQ_I64(parse(many), -EINVAL);
    CHECK(strstr(err, "more than") != NULL);
}

static void t_files_and_dropins(void)
{
    char dir[] = "/tmp/preoom-conf.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char main_f[128], dd[128], f1[160], f2[160], skip_f[160];
    snprintf(main_f, sizeof main_f, "%s/preoomd.conf", dir);
    snprintf(dd, sizeof dd, "%s/preoomd.conf.d", dir);
    snprintf(f1, sizeof f1, "%s/20-b.conf", dd);
    snprintf(f2, sizeof f2, "%s/10-a.conf", dd);
    snprintf(skip_f, sizeof skip_f, "%s/30-c.conf.disabled", dd);
    /* missing: fine unless required */
    preoom_conffile_init(&cf);
    CHECK(preoom_conffile_read(&cf, main_f, false, err, sizeof err) == 0);
    CHECK_EQ_U64(cf.files, 0);
    CHECK_EQ_I64(preoom_conffile_read(&cf, main_f, true, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "No such file") != NULL);
    FILE *f = fopen(main_f, "w");
    fputs("ask = 20\n", f);
    fclose(f);
    CHECK(mkdir(dd, 0755) == 0);
    f = fopen(f1, "w");
    fputs("ask = 25\n", f);
    fclose(f);
    f = fopen(f2, "w");
    fputs("ask = 22\n", f);
    fclose(f);
    f = fopen(skip_f, "w");
    fputs("garbage\n", f);
    fclose(f);
    preoom_conffile_init(&cf);
    CHECK(preoom_conffile_read(&cf, main_f, true, err, sizeof err) == 0);
    CHECK_EQ_U64(cf.files, 3);
    preoom_dconf_t d;
    preoom_dconf_defaults(&d);
    CHECK(preoom_conffile_apply_global(&cf, &d, err, sizeof err) == 0);
    CHECK_EQ_U64(d.eng.th.ask.percent_x100, 2500); /* main file, then 10-a, then 20-b */
    /* an error in a drop-in names that file */
    f = fopen(f2, "w");
    fputs("ask 22\n", f);
    fclose(f);
    preoom_conffile_init(&cf);
    CHECK_EQ_I64(preoom_conffile_read(&cf, main_f, true, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "10-a.conf:1:") != NULL);
    unlink(f1);
    unlink(f2);
    unlink(skip_f);
    rmdir(dd);
    unlink(main_f);
    rmdir(dir);
}

static void t_publish_round_trip(void)
{
    CHECK(parse("[domain /a]\nask = 30\navoid = ^db$\n[domain /b/*]\nterm-grace = 9000\n") == 0);
    char buf[4096];
    preoom_dconf_t d;
    preoom_dconf_defaults(&d);
    size_t len = preoom_dconf_publish(&d, buf, sizeof buf);
    len += preoom_conffile_publish_domains(&cf, buf + len, sizeof buf - len);
    CHECK(strstr(buf, "[domain /a]\nask=30\navoid=^db$\n[domain /b/*]\nterm-grace=9000\n") != NULL);
    /* explain reads the name=value part back and stops at the sections... */
    preoom_dconf_t e;
    preoom_dconf_defaults(&e);
    CHECK(preoom_dconf_load(&e, buf, len, err, sizeof err) == 0);
    CHECK_EQ_U64(e.eng.th.ask.percent_x100, d.eng.th.ask.percent_x100);
    CHECK(!e.avoid_set);
    /* ...and the sections parse again as a configuration */
    preoom_conffile_t *again = calloc(1, sizeof *again);
    CHECK(preoom_conffile_parse(again, buf, len, "published", err, sizeof err) == 0);
    CHECK_EQ_U64(again->n_s, 2);
    free(again);
}

int main(void)
{
    TEST_CASE("conffile: sections, globs and precedence", t_sections_and_precedence);
    TEST_CASE("conffile: the last matching section wins; glob edges", t_last_section_wins);
    TEST_CASE("conffile: errors name the file, the line and the setting", t_errors);
    TEST_CASE("conffile: the file, then its .d drop-ins in name order", t_files_and_dropins);
    TEST_CASE("conffile: published for explain and read back", t_publish_round_trip);
    TEST_END();
}

/* tests/unit/test_metrics.c — tools/metrics.c linked directly: which request lines the HTTP
 * server answers (only GET /metrics), the text it serves, and the textfile writer against a
 * FIFO planted at its temporary path. Makes files under a temporary directory it removes.
 */
#pragma GCC diagnostic ignored "-Wcomment"
#include "harness.h"
#include "metrics.h"

#include <errno.h>
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

static void t_format(void)
{
    preoom_metrics_t m;
    memset(&m, 0, sizeof m);
    m.pass_us = 1234567;
    char buf[8192];
    size_t n = preoom_metrics_format(&m, buf, sizeof buf);
    CHECK(n > 0 && n < sizeof buf);
    buf[n] = '\0';
    CHECK(strstr(buf, "\npreoom_pass_seconds 1.234567\n") != NULL);
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
    /* A directory at the destination: refused. */
    unlink(path);
    CHECK(mkdir(path, 0700) == 0);
    CHECK_EQ_I64(preoom_metrics_write_file(path, "a 4\n", 4), -EINVAL);
    rmdir(path);
    rmdir(dir);
}

int main(void)
{
    TEST_CASE("metrics: only GET /metrics answers 200", t_route);
    TEST_CASE("metrics: the pass time is exported", t_format);
    TEST_CASE("metrics: textfile never opens a FIFO, replaces its own leftover", t_write_file);
    TEST_END();
}

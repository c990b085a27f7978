/* tests/unit/test_options.c — the PREOOM_* settings: every parser table-driven, bad input
 * included, and the loader's one-line warnings with the default used. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"

static void t_u64(void)
{
    static const struct { const char *s; uint64_t min, max; int rc; uint64_t v; } t[] = {
        {"0", 0, 10, 0, 0}, {"10", 0, 10, 0, 10}, {"11", 0, 10, -ERANGE, 0},
        {"", 0, 10, -EINVAL, 0}, {"-1", 0, 10, -EINVAL, 0}, {"1x", 0, 10, -EINVAL, 0},
        {" 1", 0, 10, -EINVAL, 0}, {"18446744073709551615", 0, UINT64_MAX, 0, UINT64_MAX},
        {"18446744073709551616", 0, UINT64_MAX, -ERANGE, 0}, {"0", 1, 10, -ERANGE, 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        uint64_t v = 12345;
        int rc = preoom_parse_u64(t[i].s, t[i].min, t[i].max, &v);
        CHECK_EQ_I64(rc, t[i].rc);
        CHECK_EQ_U64(v, rc == 0 ? t[i].v : 12345);
    }
    uint64_t v;
    CHECK(preoom_parse_u64(NULL, 0, 1, &v) == -EINVAL);
}

static void t_bytes(void)
{
    static const struct { const char *s; int rc; uint64_t v; } t[] = {
        {"512KiB", 0, 512 << 10}, {"512k", 0, 512 << 10}, {"512KB", 0, 512 << 10},
        {"1M", 0, 1 << 20}, {"1mib", 0, 1 << 20}, {"2G", 0, 2ULL << 30}, {"4096", 0, 4096},
        {"1T", 0, 1ULL << 40}, {"7B", 0, 7}, {"", -EINVAL, 0}, {"KiB", -EINVAL, 0},
        {"12XB", -EINVAL, 0}, {"1Kx", -EINVAL, 0}, {"1.5M", -EINVAL, 0},
        {"99999999999999999999", -ERANGE, 0}, {"17179869184G", -ERANGE, 0}, {"0", -ERANGE, 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        uint64_t v = 77;
        int rc = preoom_parse_bytes(t[i].s, 1, 1ULL << 42, &v);
        if (rc != t[i].rc)
            printf("# case %s\n", t[i].s);
        CHECK_EQ_I64(rc, t[i].rc);
        CHECK_EQ_U64(v, rc == 0 ? t[i].v : 77);
    }
}

static void t_bool_stacks_name(void)
{
    int b = -1;
    CHECK(preoom_parse_bool("yes", &b) == 0 && b == 1);
    CHECK(preoom_parse_bool("OFF", &b) == 0 && b == 0);
    CHECK(preoom_parse_bool("True", &b) == 0 && b == 1);
    CHECK(preoom_parse_bool("2", &b) == -EINVAL);
    CHECK(preoom_parse_stacks("sample", &b) == 0 && b == PREOOM_STACKS_SAMPLE);
    CHECK(preoom_parse_stacks("ALL", &b) == 0 && b == PREOOM_STACKS_ALL);
    CHECK(preoom_parse_stacks("off", &b) == 0 && b == PREOOM_STACKS_OFF);
    CHECK(preoom_parse_stack_cache("verify", &b) == 0 && b == PREOOM_CACHE_VERIFY);
    CHECK(preoom_parse_stack_cache("ON", &b) == 0 && b == PREOOM_CACHE_ON);
    CHECK(preoom_parse_stack_cache("0", &b) == 0 && b == PREOOM_CACHE_OFF);
    b = 7;
    CHECK(preoom_parse_stack_cache("sometimes", &b) == -EINVAL && b == 7);
    CHECK(preoom_parse_stacks("some", &b) == -EINVAL);
    char n[64];
    CHECK(preoom_parse_name("default", n, sizeof n) == 0 && strcmp(n, "default") == 0);
    CHECK(preoom_parse_name("my-app_1.x", n, sizeof n) == 0);
    CHECK(preoom_parse_name("../x", n, sizeof n) == -EINVAL);
    CHECK(preoom_parse_name("a/b", n, sizeof n) == -EINVAL);
    CHECK(preoom_parse_name(".hidden", n, sizeof n) == -EINVAL);
    CHECK(preoom_parse_name("", n, sizeof n) == -EINVAL);
    CHECK(preoom_parse_name("sp ace", n, sizeof n) == -EINVAL);
    CHECK(preoom_parse_name("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", n, sizeof n) ==
          -ERANGE);
}

/* A fake environment for the loader. */
static const char *const *fake_env;
static const char *fake_getenv(const char *name)
{
    for (const char *const *e = fake_env; *e; e += 2)
        if (strcmp(e[0], name) == 0)
            return e[1];
    return NULL;
}
static char warnings[4096];
static int nwarn;
static void collect(const char *line)
{
    strncat(warnings, line, sizeof warnings - strlen(warnings) - 2);
    strcat(warnings, "\n");
    nwarn++;
}

static void t_load_defaults(void)
{
    preoom_options_t o;
    static const char *const env[] = {NULL};
    fake_env = env;
    nwarn = 0;
    preoom_options_load(&o, fake_getenv, collect);
    CHECK_EQ_U64(o.interval_ms, 100);
    CHECK_STR(o.report, "");
    CHECK_STR(o.registry, "default");
    CHECK_EQ_U64(o.registry_slots, 1024);
    CHECK_EQ_I64(o.registry_gid, -1);
    CHECK_EQ_I64(o.stacks, PREOOM_STACKS_OFF);
    CHECK_EQ_U64(o.sample_bytes, 512 * 1024);
    CHECK_EQ_U64(o.stack_depth, 32);
    CHECK_EQ_I64(o.stack_cache, PREOOM_CACHE_ON);
    CHECK_EQ_U64(o.adj, 0);
    CHECK_EQ_I64(o.trim, 1);
    CHECK_EQ_I64(o.purge, 1);
    CHECK_EQ_I64(nwarn, 0);
}

static void t_load_values_and_bad(void)
{
    preoom_options_t o;
    static const char *const env[] = {
        "PREOOM_INTERVAL_MS", "250",   "PREOOM_REPORT", "/tmp/r.%p.json",
        "PREOOM_VERBOSE", "7",         "PREOOM_REGISTRY", "app1",
        "PREOOM_STACKS", "sample",     "PREOOM_SAMPLE_BYTES", "1MiB",
        "PREOOM_STACK_DEPTH", "0",     "PREOOM_ADJ", "-5",
        "PREOOM_TRIM", "no",           "PREOOM_REGISTRY_SLOTS", "99999999",
        "PREOOM_STACK_CACHE", "maybe", "PREOOM_PURGE", "off",
        NULL};
    fake_env = env;
    nwarn = 0;
    warnings[0] = '\0';
    preoom_options_load(&o, fake_getenv, collect);
    CHECK_EQ_U64(o.interval_ms, 250);
    CHECK_STR(o.report, "/tmp/r.%p.json");
    CHECK_STR(o.registry, "app1");
    CHECK_EQ_I64(o.stacks, PREOOM_STACKS_SAMPLE);
    CHECK_EQ_U64(o.sample_bytes, 1 << 20);
    CHECK_EQ_I64(o.trim, 0);
    CHECK_EQ_I64(o.purge, 0);
    /* the bad ones fell back to their defaults, one warning line each */
    CHECK_EQ_I64(o.verbose, 0);
    CHECK_EQ_U64(o.stack_depth, 32);
    CHECK_EQ_U64(o.adj, 0);
    CHECK_EQ_U64(o.registry_slots, 1024);
    CHECK_EQ_I64(o.stack_cache, PREOOM_CACHE_ON);
    CHECK_EQ_I64(nwarn, 5);
    CHECK(strstr(warnings, "PREOOM_STACK_CACHE='maybe' is not off, on or verify") != NULL);
    CHECK(strstr(warnings, "PREOOM_VERBOSE='7' is not a level 0..3; using 0 (out of range)") != NULL);
    CHECK(strstr(warnings, "PREOOM_STACK_DEPTH='0'") != NULL);
    CHECK(strstr(warnings, "PREOOM_ADJ='-5'") != NULL);
    CHECK(strstr(warnings, "PREOOM_REGISTRY_SLOTS='99999999'") != NULL);
}

int main(void)
{
    TEST_CASE("options: unsigned numbers", t_u64);
    TEST_CASE("options: sizes with units", t_bytes);
    TEST_CASE("options: booleans, stacks modes, registry names", t_bool_stacks_name);
    TEST_CASE("options: defaults", t_load_defaults);
    TEST_CASE("options: values, and bad ones fall back with one warning each", t_load_values_and_bad);
    TEST_END();
}

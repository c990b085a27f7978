/* tools/preoom.c — the `preoom` command: dispatch to its subcommands (tools/cmd_*.c).
 *
 *   preoom [--registry NAME] ls|top|run|explain|report ...
 *
 * Global options come before the subcommand, and every subcommand takes --registry and
 * --version too; the registry name defaults to $PREOOM_REGISTRY, then "default". A subcommand not linked into this build says so instead of failing to link.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "floor.h"

/* Weak so that each subcommand lives in its own file and the command still builds while one
 * is missing. */
#pragma weak preoom_cmd_ls
#pragma weak preoom_cmd_top
#pragma weak preoom_cmd_run
#pragma weak preoom_cmd_explain
#pragma weak preoom_cmd_report

typedef int (*cmd_fn)(const char *, int, char **);

static void usage(FILE *f)
{
    fprintf(f,
            "usage: preoom [--registry NAME] [--registry-dir DIR] COMMAND [ARGS]\n"
            "       preoom --version\n"
            "\n"
            "commands:\n"
            "  ls [--json]               the registered processes and their memory\n"
            "  top [--sort COL] [-n N]   the same, refreshed live\n"
            "  run [OPTIONS] -- CMD ...  run CMD with libpreoom.so preloaded\n"
            "  explain [--policy P]      who the arbiter would choose now, term by term\n"
            "  report FILE|PID [OPTIONS] call sites: leaks, peaks, flame graphs\n"
            "\n"
            "The registry is DIR/preoom.NAME (default: $PREOOM_REGISTRY or \"default\"; DIR\n"
            "$PREOOM_REGISTRY_DIR or /dev/shm).\n"
            "Every command takes --registry NAME, --help and --version (-V). See preoom(1).\n");
}

/* explain and report parse their own options without --registry (and --version): the
 * dispatcher takes those out of their arguments, before any "--", so that every command
 * takes them as preoom(1) says. 0, or 2 after an error line. */
static int take_common(const char *cmd, int *argc, char **argv, const char **reg, int *version)
{
    int k = 1;
    for (int i = 1; i < *argc; i++) {
        const char *v;
        if (strcmp(argv[i], "--") == 0) {
            while (i < *argc)
                argv[k++] = argv[i++];
            break;
        }
        int r = preoom_cli_value(cmd, "--registry", *argc, argv, &i, &v);
        if (r == 2)
            return 2;
        if (r == 1) {
            *reg = v;
            continue;
        }
        if (preoom_cli_is_version(argv[i])) {
            *version = 1;
            continue;
        }
        argv[k++] = argv[i];
    }
    *argc = k;
    argv[k] = NULL;
    return 0;
}

int main(int argc, char **argv)
{
    const char *reg = getenv("PREOOM_REGISTRY");
    if (!reg || !*reg)
        reg = "default";
    const char *dir = getenv("PREOOM_REGISTRY_DIR");
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *v;
        int r = preoom_cli_value(NULL, "--registry", argc, argv, &i, &v);
        if (r == 2)
            return 2;
        int rd = r == 1 ? 0 : preoom_cli_value(NULL, "--registry-dir", argc, argv, &i, &v);
        if (rd == 2)
            return 2;
        if (rd == 1) {
            dir = v;
        } else if (r == 1) {
            reg = v;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (preoom_cli_is_version(argv[i])) {
            preoom_cli_print_version(NULL);
            return 0;
        } else {
            return preoom_cli_error(NULL, "unknown option '%s'", argv[i]);
        }
    }
    if (dir && *dir && preoom_reg_set_dir(dir) != 0) {
        fprintf(stderr, "preoom: registry directory '%s' is not an absolute path without '..'\n",
                dir);
        return 2;
    }
    /* Every subcommand that reads a registry reads it under the floor's SIGBUS guard. */
    preoom_bus_install();
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    static const char *const names[] = {"ls", "top", "run", "explain", "report"};
    cmd_fn fns[] = {preoom_cmd_ls, preoom_cmd_top, preoom_cmd_run, preoom_cmd_explain,
                    preoom_cmd_report};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        if (strcmp(argv[i], names[k]) != 0)
            continue;
        if (!fns[k]) {
            fprintf(stderr, "preoom: '%s' is not available in this build\n", names[k]);
            return 1;
        }
        int sub_argc = argc - i;
        if (k >= 3) { /* explain, report */
            int version = 0;
            if (take_common(names[k], &sub_argc, argv + i, &reg, &version) != 0)
                return 2;
            if (version) {
                preoom_cli_print_version(names[k]);
                return 0;
            }
        }
        return fns[k](reg, sub_argc, argv + i);
    }
    return preoom_cli_error(NULL, "unknown command '%s'", argv[i]);
}

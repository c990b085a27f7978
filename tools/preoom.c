/* tools/preoom.c — the `preoom` command: dispatch to its subcommands (tools/cmd_*.c).
 *
 *   preoom [--registry NAME] ls|top|run|explain|report ...
 *
 * Global options come before the subcommand; the registry name defaults to $PREOOM_REGISTRY,
 * then "default". A subcommand not linked into this build says so instead of failing to link.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
            "See preoom(1).\n");
}

int main(int argc, char **argv)
{
    const char *reg = getenv("PREOOM_REGISTRY");
    if (!reg || !*reg)
        reg = "default";
    const char *dir = getenv("PREOOM_REGISTRY_DIR");
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--registry-dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--registry") == 0 && i + 1 < argc) {
            reg = argv[++i];
        } else if (strncmp(argv[i], "--registry=", 11) == 0) {
            reg = argv[i] + 11;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "preoom: unknown option %s (see preoom --help)\n", argv[i]);
            return 2;
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
        return fns[k](reg, argc - i, argv + i);
    }
    fprintf(stderr, "preoom: unknown command '%s' (see preoom --help)\n", argv[i]);
    return 2;
}

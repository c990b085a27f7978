/* tools/cli.c — the shared command-line conventions of `preoom` (see cli.h): one error
 * style, option values refused when they look like options, --version.
 * Never exits, never allocates.
 */
#include <stdarg.h>
#include <string.h>

#include "cli.h"

int preoom_cli_error(const char *cmd, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (cmd)
        fprintf(stderr, "preoom: %s: %s (see preoom %s --help)\n", cmd, msg, cmd);
    else
        fprintf(stderr, "preoom: %s (see preoom --help)\n", msg);
    return 2;
}

int preoom_cli_value(const char *cmd, const char *name, int argc, char **argv, int *i,
                     const char **val)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    const char *v;
    if (a[n] == '=') {
        v = a + n + 1;
    } else if (a[n] == '\0') {
        if (*i + 1 >= argc) {
            preoom_cli_error(cmd, "%s wants a value", name);
            return 2;
        }
        v = argv[*i + 1];
        /* A missing value swallowing the next option would go unnoticed: "--registry -v"
         * would make a registry called "-v". None of our values starts with '-'. */
        if (v[0] == '-') {
            preoom_cli_error(cmd, "%s wants a value, not the option-like '%s'", name, v);
            return 2;
        }
        ++*i; /* the caller's loop then steps past the value */
    } else {
        return 0; /* a longer option that starts the same */
    }
    if (v[0] == '\0' || v[0] == '-') {
        preoom_cli_error(cmd, "%s wants a value, not '%s'", name, v);
        return 2;
    }
    *val = v;
    return 1;
}

int preoom_cli_is_version(const char *arg)
{
    return strcmp(arg, "--version") == 0 || strcmp(arg, "-V") == 0;
}

void preoom_cli_print_version(const char *cmd)
{
    if (cmd)
        printf("preoom %s %s\n", cmd, PREOOM_VERSION);
    else
        printf("preoom %s\n", PREOOM_VERSION);
}

/* tools/cli.h — the command-line conventions every `preoom` subcommand shares: one error
 * style, option values taken one way, --version the same everywhere.
 *
 * An error is one line on stderr, "preoom: CMD: WHAT (see preoom CMD --help)", and exit
 * status 2. A value that looks like an option ("--registry -v") is refused, never taken:
 * it is almost always a forgotten value. Never exits and never allocates: callers decide.
 */
#ifndef PREOOM_TOOLS_CLI_H
#define PREOOM_TOOLS_CLI_H

#include <stdio.h>

#define PREOOM_VERSION "0.1.0"

/* "preoom: CMD: " + the message + " (see preoom CMD --help)", on stderr. Returns 2, the
 * exit status of a usage error, so `return preoom_cli_error(...)` reads naturally. */
int preoom_cli_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Is argv[*i] the option `name` ("--registry"), written "--registry VALUE" or
 * "--registry=VALUE"? 0: not this option. 1: *val set, *i on the value
 * taken (the caller's loop steps past it). 2: this
 * option but no value, or one starting with '-' (the error line is printed). */
int preoom_cli_value(const char *cmd, const char *name, int argc, char **argv, int *i,
                     const char **val);

/* --version or -V: prints "preoom VERSION" (with the subcommand when there is one). */
int preoom_cli_is_version(const char *arg);
void preoom_cli_print_version(const char *cmd);

#endif

/* tools/cmd.h — the subcommands of `preoom`, one file each (tools/cmd_<name>.c).
 *
 * Each takes the arguments after its name (argv[0] is the subcommand) and returns the exit
 * status: 0 success, 1 a runtime failure (said in one line on stderr), 2 a usage error.
 * The registry name comes through `reg_name` (from --registry, PREOOM_REGISTRY or
 * "default").
 */
#ifndef PREOOM_TOOLS_CMD_H
#define PREOOM_TOOLS_CMD_H

#include <stdio.h>

int preoom_cmd_ls(const char *reg_name, int argc, char **argv);
int preoom_cmd_top(const char *reg_name, int argc, char **argv);
int preoom_cmd_run(const char *reg_name, int argc, char **argv);
int preoom_cmd_explain(const char *reg_name, int argc, char **argv);
int preoom_cmd_report(const char *reg_name, int argc, char **argv);

/* Shared by ls and top (cmd_ls.c). */
int preoom_ls_sort_key(const char *name);
/* The schema of `preoom ls --json`, its "schema" key (documented in preoom(1)). */
#define PREOOM_LS_JSON_SCHEMA 1
/* The table (or JSON) of the registry's live processes into `out`: at most max_rows rows
 * (< 0: all), and only the columns that fit in `width` characters, every line cut there
 * (< 0: all columns, no cut). 0, or 1 with one line on `err`. */
int preoom_ls_show(const char *reg_name, int sort_key, int json, int max_rows, int width,
                   FILE *out, FILE *err);
/* The same, processes grouped under their memory domains (as preoom_ls_show does too), with
 * each domain's time to its limit told from the growth `trend` saw over earlier calls (NULL:
 * not told). top keeps one trend for its frames. */
typedef struct preoom_ls_trend preoom_ls_trend_t;
preoom_ls_trend_t *preoom_ls_trend_new(void); /* NULL when out of memory; free() it */
int preoom_ls_show_trend(const char *reg_name, int sort_key, int json, int max_rows, int width,
                         preoom_ls_trend_t *trend, FILE *out, FILE *err);
/* The arguments ls and top both take: --sort COL, --registry NAME, -h/--help, -V/--version;
 * anything else is refused. Called for argv[*i] once the command's own options did not match
 * it; moves *i onto a value taken. 0: taken; 1: help or version printed (exit 0); 2: a line
 * on stderr (exit 2). *sort_name (when not NULL) is set to the column asked for. */
int preoom_ls_common_arg(const char *cmd, int argc, char **argv, int *i, const char **reg_name,
                         int *sort, const char **sort_name, void (*print_usage)(FILE *));

#endif

/* tools/cmd.h — the subcommands of `preoom`, one file each (tools/cmd_<name>.c).
 *
 * Each takes the arguments after its name (argv[0] is the subcommand) and returns the exit
 * status: 0 success, 1 a runtime failure (said in one line on stderr), 2 a usage error.
 * The registry name comes through `reg_name` (from --registry, PREOOM_REGISTRY or
 * "default").
 */
#ifndef PREOOM_TOOLS_CMD_H
#define PREOOM_TOOLS_CMD_H

int preoom_cmd_ls(const char *reg_name, int argc, char **argv);
int preoom_cmd_top(const char *reg_name, int argc, char **argv);
int preoom_cmd_run(const char *reg_name, int argc, char **argv);
int preoom_cmd_explain(const char *reg_name, int argc, char **argv);
int preoom_cmd_report(const char *reg_name, int argc, char **argv);

#endif

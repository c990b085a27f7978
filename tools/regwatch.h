/* tools/regwatch.h — preoomd's registry: its directory, its owner, and following its path
 * (deleted, replaced, truncated: reopened and said). See regwatch.c. */
#ifndef PREOOM_TOOLS_REGWATCH_H
#define PREOOM_TOOLS_REGWATCH_H

#include <stddef.h>
#include <stdint.h>

#include "floor.h"

/* Put /dev/null on whichever of descriptors 0, 1, 2 are closed. */
void preoom_std_fds(void);
/* Use `dir` for the registries: created 0755 if missing; refused (-errno, one line in msg)
 * unless it is a real directory owned by root or us that others cannot write into. */
int preoom_regwatch_dir(const char *dir, char *msg, size_t cap);
/* Open or create the registry (replacing our own stale file, and as root a squatter's).
 * 0 (msg non-empty if something was replaced) or -errno with the reason in msg. */
int preoom_regwatch_open(const char *name, uint64_t slots, int64_t gid, preoom_reg_t *reg,
                         char *msg, size_t cap);
/* Does the path still name our registry, whole? 0 yes; 1 it did not and was reopened (or the
 * registry was closed and is open again); -errno it could not be reopened (reg closed: the
 * registry functions then do nothing). msg holds the line to log for 1 and -errno. */
int preoom_regwatch_follow(const char *name, uint64_t slots, int64_t gid, preoom_reg_t *reg,
                           char *msg, size_t cap);

#endif

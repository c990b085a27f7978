/* tools/act.h — the arbiter's hands: a release request written into a slot, and signals
 * sent through a pidfd that was checked against pid and start time after it was opened.
 *
 * Every action re-checks what it is about to touch: the slot must still belong to the same
 * process, the process must still be the one that started at that time, must map this
 * registry, must not be pid 1, the arbiter, or oom_score_adj -1000. None of these functions
 * allocates, so the kill path works when memory is gone.
 */
#ifndef PREOOM_TOOLS_ACT_H
#define PREOOM_TOOLS_ACT_H

#include <stdint.h>
#include <sys/types.h>

#include "floor.h"
#include "procfs.h"

/* Ask the process in slot `idx` (which must still be pid/start) to release `bytes` at
 * `level`; wakes its agent through the futex. *serial gets the request's serial.
 * 0, -ESTALE (the slot changed hands), -EINVAL. */
int preoom_act_ask(preoom_reg_t *reg, uint64_t idx, int32_t pid, uint64_t start_time,
                   int level, uint64_t bytes, uint32_t *serial);

/* Has the request been answered? 1 with *released set, 0 not yet, -ESTALE slot changed. */
int preoom_act_answered(const preoom_reg_t *reg, uint64_t idx, int32_t pid, uint32_t serial,
                        uint64_t *released, uint64_t *callback_bytes, uint64_t *trim_bytes);

/* Open a pidfd for pid and prove it names the process that started at start_time and maps
 * the registry (dev, ino; ino 0 skips that check, for a process of the watched cgroup that
 * has no slot). Returns the fd, or -ESRCH (gone), -ESTALE (pid reused), -EACCES
 * (does not map this registry), -EPERM (pid 1, self or oom_score_adj -1000), -errno. */
int preoom_act_open(const preoom_procfs_t *fs, int32_t pid, uint64_t start_time, dev_t dev,
                    ino_t ino);

/* Signal through the pidfd. 0 or -errno. */
int preoom_act_signal(int pidfd, int sig);

/* --kill-group: signal the process behind the pidfd (pid) and, when it leads its own process
 * group (pgid == pid), that whole group. Returns 1 the group was signalled, 0 only the
 * process (not a group leader, or the group is ours), -errno. */
int preoom_act_signal_group(int pidfd, int32_t pid, int sig);

/* Has the process behind the pidfd exited? 1 yes, 0 no. */
int preoom_act_exited(int pidfd);

/* Ask the kernel to reap a killed process's memory now (Linux 5.15+). 0 or -errno. */
int preoom_act_mrelease(int pidfd);

#endif

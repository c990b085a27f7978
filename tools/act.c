/* tools/act.c — release requests and signals, each verified at the moment it is sent.
 *
 * A pid is only a number: between choosing a victim and signalling it, the process may
 * exit and its pid go to someone else. So signals go through a pidfd, and the pidfd is
 * checked after it was opened: if /proc/PID/stat then shows the start time we chose, the
 * pidfd names our process (had it exited first, the pidfd would name the newcomer and the
 * start time would differ). The same moment re-checks the exclusions. Never allocates.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "act.h"
#include "candidates.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_process_mrelease
#define SYS_process_mrelease 448
#endif

/* Both go through the registry's one request writer and one answer reader (registry.c):
 * compare-and-swap serials shared with `preoom report`, release answers in fields of their
 * own, and a SIGBUS guard in case the file was truncated under us (then -ESTALE: the slot is
 * gone as far as we can tell). */
int preoom_act_ask(preoom_reg_t *reg, uint64_t idx, int32_t pid, uint64_t start_time,
                   int level, uint64_t bytes, uint32_t *serial)
{
    if (level < PREOOM_PRESSURE_MODERATE || level > PREOOM_PRESSURE_COMPLETE)
        return -EINVAL;
    int rc = preoom_reg_request(reg, idx, pid, start_time, (unsigned)level, bytes, serial);
    return rc == -EFAULT ? -ESTALE : rc;
}

int preoom_act_answered(const preoom_reg_t *reg, uint64_t idx, int32_t pid, uint32_t serial,
                        uint64_t *released, uint64_t *callback_bytes, uint64_t *trim_bytes)
{
    preoom_answer_t a;
    int rc = preoom_reg_answered(reg, idx, pid, serial, PREOOM_PRESSURE_MODERATE, &a);
    if (rc == -EFAULT)
        return -ESTALE;
    if (rc != 1)
        return rc;
    *released = a.bytes;
    *callback_bytes = a.callback_bytes;
    *trim_bytes = a.trim_bytes;
    return 1;
}

int preoom_act_open(const preoom_procfs_t *fs, int32_t pid, uint64_t start_time, dev_t dev,
                    ino_t ino)
{
    if (pid <= 1 || pid == getpid())
        return -EPERM;
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0)
        return errno == ESRCH ? -ESRCH : -errno;
    /* From here on the fd names one process; prove it is the one we chose. */
    preoom_pid_stat_t st;
    int rc = preoom_read_pid_stat(fs, pid, &st);
    if (rc != 0) {
        close(fd);
        return -ESRCH;
    }
    if (st.starttime_ticks != start_time) {
        close(fd);
        return -ESTALE;
    }
    int adj = 0;
    if (preoom_read_oom_score_adj(fs, pid, &adj) == 0 && adj == -1000) {
        close(fd);
        return -EPERM;
    }
    /* ino 0: a process found in the watched cgroup, not through a slot (--scope). */
    if (ino != 0 && preoom_maps_registry(fs, pid, dev, ino) != 1) {
        close(fd);
        return -EACCES;
    }
    return fd;
}

int preoom_act_signal(int pidfd, int sig)
{
    if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) != 0)
        return -errno;
    return 0;
}

int preoom_act_signal_group(int pidfd, int32_t pid, int sig)
{
    /* Only a group leader's group. A process that does not lead its group shares it with
     * whoever does: its parent shell's job, a service manager's whole unit, an interactive
     * session. That group is not the victim's work to end, so only the victim is signalled.
     * A leader's group is what it started itself (a server and its workers, a build and its
     * compilers): the work that dies with it anyway. Never our own group. */
    pid_t pgid = getpgid(pid);
    if (pgid != pid || pgid == getpgid(0) || pid <= 1)
        return preoom_act_signal(pidfd, sig);
    /* getpgid went by number: the pidfd must show the process still alive after it, or the
     * pid may have been reused by a new leader. While the leader lives its group id cannot
     * be taken by anyone else, so the group is signalled before the leader itself. */
    if (preoom_act_exited(pidfd) == 1)
        return preoom_act_signal(pidfd, sig);
    if (kill(-pgid, sig) != 0 && errno != ESRCH)
        return -errno;
    int rc = preoom_act_signal(pidfd, sig);
    /* The group's signal already reached the leader: it may be gone by now. */
    return rc == 0 || rc == -ESRCH ? 1 : rc;
}

int preoom_act_exited(int pidfd)
{
    struct pollfd p = {pidfd, POLLIN, 0};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP)) ? 1 : 0;
}

int preoom_act_mrelease(int pidfd)
{
    if (syscall(SYS_process_mrelease, pidfd, 0) != 0)
        return -errno;
    return 0;
}

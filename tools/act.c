/* tools/act.c — release requests and signals, each verified at the moment it is sent.
 *
 * A pid is only a number: between choosing a victim and signalling it, the process may
 * exit and its pid go to someone else. So signals go through a pidfd, and the pidfd is
 * checked after it was opened: if /proc/PID/stat then shows the start time we chose, the
 * pidfd names our process (had it exited first, the pidfd would name the newcomer and the
 * start time would differ). The same moment re-checks the exclusions. Never allocates.
 */
#include <errno.h>
#include <linux/futex.h>
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

/* The slot still names the same process (state word pid) and start time. */
static int slot_still(const preoom_reg_t *reg, uint64_t idx, int32_t pid, uint64_t start_time)
{
    if (idx >= reg->slot_count)
        return 0;
    struct preoom_slot *s = preoom_reg_slot(reg, idx);
    uint64_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
    return PREOOM_STATE_KIND(st) == PREOOM_SLOT_LIVE && PREOOM_STATE_PID(st) == pid &&
           __atomic_load_n(&s->start_time, __ATOMIC_RELAXED) == start_time;
}

int preoom_act_ask(preoom_reg_t *reg, uint64_t idx, int32_t pid, uint64_t start_time,
                   int level, uint64_t bytes, uint32_t *serial)
{
    if (level < PREOOM_PRESSURE_MODERATE || level > PREOOM_PRESSURE_COMPLETE)
        return -EINVAL;
    if (!slot_still(reg, idx, pid, start_time))
        return -ESTALE;
    struct preoom_slot *s = preoom_reg_slot(reg, idx);
    uint64_t old = __atomic_load_n(&s->request, __ATOMIC_RELAXED);
    uint32_t next = (PREOOM_REQ_SERIAL(old) + 1) & 0xffffffu;
    if (next == 0)
        next = 1; /* 0 means "no request" to the agent */
    __atomic_store_n(&s->request_bytes, bytes, __ATOMIC_RELAXED);
    __atomic_store_n(&s->request, PREOOM_REQ_MAKE(next, level), __ATOMIC_RELEASE);
    /* A shared futex (no FUTEX_PRIVATE_FLAG): the waiter is another process. */
    syscall(SYS_futex, preoom_slot_futex_word(s), FUTEX_WAKE, 1 << 30, NULL, NULL, 0);
    *serial = next;
    return 0;
}

int preoom_act_answered(const preoom_reg_t *reg, uint64_t idx, int32_t pid, uint32_t serial,
                        uint64_t *released, uint64_t *callback_bytes, uint64_t *trim_bytes)
{
    if (idx >= reg->slot_count)
        return -ESTALE;
    struct preoom_slot *s = preoom_reg_slot(reg, idx);
    uint64_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
    if (PREOOM_STATE_KIND(st) != PREOOM_SLOT_LIVE || PREOOM_STATE_PID(st) != pid)
        return -ESTALE;
    if (__atomic_load_n(&s->answer_serial, __ATOMIC_ACQUIRE) != serial)
        return 0;
    *released = __atomic_load_n(&s->answer_bytes, __ATOMIC_RELAXED);
    *callback_bytes = __atomic_load_n(&s->answer_callback_bytes, __ATOMIC_RELAXED);
    *trim_bytes = __atomic_load_n(&s->answer_trim_bytes, __ATOMIC_RELAXED);
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

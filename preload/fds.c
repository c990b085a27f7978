/* preload/fds.c — where preoom's own file descriptors live.
 *
 * Programs open lowest-first and some run with very few descriptors (RLIMIT_NOFILE=5 left a
 * `cat FILE` with none: libunwind's pipe had taken the two free ones). So what preoom keeps
 * open (the /proc files the agent reads, libunwind's pipe) is moved to the top of the table,
 * just under the soft limit or under 1024, whichever is lower (select(2) cannot see above
 * 1024), where a program's opens reach last. Under a limit too small to spare any
 * (PREOOM_FD_MIN_LIMIT), preoom keeps none: it opens what it reads for each read and closes
 * it, and refuses libunwind its pipe (libunwind then treats unchecked addresses as unreadable
 * and a rare stack ends early).
 * Never: go through our own hooks (raw system calls), or take a number the program holds.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

/* The highest number preoom may use plus one, or 0 when the limit leaves no room. */
static int fd_top(void)
{
    struct rlimit rl;
    if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &rl) != 0)
        return 0;
    if (rl.rlim_cur < PREOOM_FD_MIN_LIMIT)
        return 0;
    return rl.rlim_cur < 1024 ? (int)rl.rlim_cur : 1024;
}

int preoom_fd_room(void)
{
    return fd_top() > 0;
}

int preoom_fd_park(int fd)
{
    int top = fd_top();
    if (fd < 0 || top == 0 || fd >= top - PREOOM_FD_KEEP)
        return fd;
    long hi = syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, top - PREOOM_FD_KEEP);
    if (hi < 0)
        return fd; /* no room up there: stay where it is rather than lose it */
    syscall(SYS_close, fd);
    return (int)hi;
}

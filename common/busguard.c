/* common/busguard.c — a registry that shrinks under us becomes an error, never a crash.
 *
 * A shared file mapping raises SIGBUS on any access beyond the file's current end: anyone
 * who may write the registry file (its owner, its group) can truncate it while hosts and the
 * arbiter have it mapped. Every access registry.c makes to a mapping runs inside a guard: a
 * per-thread chain of armed ranges. Our SIGBUS handler acts only on a fault (si_code > 0)
 * whose address lies in an armed range of the faulting thread: it jumps back to the guard,
 * whose registry call then returns -EFAULT. Every other SIGBUS goes to the action that was
 * there before ours (the host's handler, or the default: a core dump), as if we were absent.
 *
 * Never allocates, never locks; the handler is async-signal-safe. SA_NODEFER lets the jump
 * (sigsetjmp without saving the mask: no system call per guard) leave the mask as it was.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "floor.h"

__thread preoom_bus_guard_t *preoom_bus_top;
static struct sigaction prev;        /* the action ours replaced */

static void to_default_and_return(int sig, const siginfo_t *si)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, NULL);
    /* A fault is raised again when the instruction re-executes; a sent signal is not. */
    if (!si || si->si_code <= 0)
        raise(sig);
}

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    if (si && si->si_code > 0) {
        const char *a = si->si_addr;
        for (preoom_bus_guard_t *g = preoom_bus_top; g; g = g->prev)
            if (a >= g->lo && a < g->hi) {
                preoom_bus_top = g->prev;
                siglongjmp(g->env, 1);
            }
    }
    struct sigaction p = prev;
    if (p.sa_flags & SA_SIGINFO) {
        if (p.sa_sigaction)
            p.sa_sigaction(sig, si, uc);
        return;
    }
    if (p.sa_handler == SIG_DFL || (p.sa_handler == SIG_IGN && si && si->si_code > 0)) {
        to_default_and_return(sig, si);
        return;
    }
    if (p.sa_handler != SIG_IGN)
        p.sa_handler(sig);
}

void preoom_bus_install(void)
{
    struct sigaction cur;
    if (sigaction(SIGBUS, NULL, &cur) != 0)
        return;
    if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_sigbus)
        return;
    /* First time, or the host installed its own since: ours goes in front, theirs behind. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    prev = cur;
    sigaction(SIGBUS, &sa, NULL);
}

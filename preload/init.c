/* preload/init.c — start-up, fork and exit of libpreoom.so.
 *
 * The constructor reads the settings, makes sure the real symbols are known, and starts the
 * agent. Allocation can happen before it runs (the loader, other preloaded libraries'
 * constructors): the hooks work without it, resolving lazily and counting into zeroed state.
 * Fork handlers hold no lock across fork and give the child a slot and an agent of its own.
 * The destructor writes the report and releases the slot. Nothing here may abort the host.
 */
#include <pthread.h>
#include <unistd.h>

#include "internal.h"

static void atfork_prepare(void)
{
    /* First, holding none of our locks: it walks the loaded objects. */
    if (preoom_opt.stacks != PREOOM_STACKS_OFF) {
        preoom_dlsnap_take();
        preoom_unwind_atfork_prepare();
    }
    preoom_procself_atfork_prepare();
    preoom_agent_atfork_prepare();
    preoom_maps_atfork_prepare();
    preoom_stacks_atfork_prepare();
}

static void atfork_parent(void)
{
    preoom_stacks_atfork_parent();
    preoom_maps_atfork_parent();
    preoom_agent_atfork_parent();
    if (preoom_opt.stacks != PREOOM_STACKS_OFF)
        preoom_unwind_atfork_parent();
}

static void atfork_child(void)
{
    preoom_dlsnap_atfork_child();
    preoom_stacks_atfork_child();
    preoom_maps_atfork_child();
    preoom_thread_atfork_child();
    preoom_account_atfork_child();
    preoom_procself_atfork_child();
    preoom_tls.sample_countdown = preoom_stacks_next_countdown();
    preoom_agent_atfork_child();
}

__attribute__((constructor(102))) static void preoom_init(void)
{
    preoom_log_init();
    preoom_options_init();
    preoom_hooks_init();
    preoom_account_init();
    preoom_stacks_init();
    preoom_procself_open();
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    preoom_agent_start();
}

__attribute__((destructor(102))) static void preoom_fini(void)
{
    preoom_agent_shutdown();
}

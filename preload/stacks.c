/* preload/stacks.c — call-site sampling (PREOOM_STACKS): not built yet.
 *
 * Until the call-site tables exist (issue 6), any mode but "off" is refused with one line and
 * the process runs on counting totals only. The hooks call these functions only when the
 * mode is not "off".
 */
#include <stdint.h>

#include "internal.h"

void preoom_stacks_init(void)
{
    if (preoom_opt.stacks != PREOOM_STACKS_OFF) {
        preoom_log_error("PREOOM_STACKS: call-site recording is not available in this build; "
                         "using off");
        preoom_opt.stacks = PREOOM_STACKS_OFF;
    }
}

int64_t preoom_stacks_next_countdown(void)
{
    return INT64_MAX;
}

void preoom_stacks_alloc(void *p, size_t bytes)
{
    (void)p;
    (void)bytes;
}

void preoom_stacks_free(void *p)
{
    (void)p;
}

void preoom_stacks_write_report(int fd)
{
    (void)fd;
}

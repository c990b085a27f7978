/* tools/candidates.c — from registry slots to verified, scored-ready candidates.
 *
 * Every slot is untrusted: its pid and start time are checked against /proc/PID/stat, the
 * process's memory figures for scoring come from /proc (the kernel's word), and only the
 * figures the kernel cannot give (committed, exposure, the process's own adj hint) come from
 * the slot. Bounded: the caller's array, no allocation while gathering.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "candidates.h"

void preoom_rank_ctx(preoom_badness_ctx_t *ctx, preoom_policy_t policy, int32_t arbiter_pid,
                     uint64_t total_bytes)
{
    long tck = sysconf(_SC_CLK_TCK);
    preoom_badness_defaults(ctx);
    ctx->policy = policy;
    ctx->self_pid = arbiter_pid;
    ctx->page_bytes = 4096;
    ctx->total_pages = total_bytes / 4096;
    ctx->clk_tck = tck > 0 ? (uint64_t)tck : 100;
}

int preoom_gather_opts_for(const preoom_reg_t *reg, const char *name, preoom_gather_opts_t *o,
                           char *path_buf, size_t path_cap)
{
    struct stat st;
    if (fstat(reg->fd, &st) != 0)
        return -errno;
    (void)name;
    snprintf(path_buf, path_cap, "%s", reg->path);
    o->registry_path = path_buf;
    o->registry_dev = st.st_dev;
    o->registry_ino = st.st_ino;
    o->registry_uid = st.st_uid;
    return 0;
}

/* /proc/PID/maps lines: "start-end perms offset major:minor inode   path". A line names our
 * registry when the inode and device match: the path alone could be a look-alike. */
int preoom_maps_registry(const preoom_procfs_t *fs, int32_t pid, dev_t dev, ino_t ino)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%d/maps", fs->proc_root, (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char buf[16384];
    size_t have = 0;
    int found = 0;
    for (;;) {
        ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            return -e;
        }
        have += (size_t)r;
        buf[have] = '\0';
        char *line = buf, *nl;
        while ((nl = memchr(line, '\n', (size_t)(buf + have - line))) != NULL) {
            *nl = '\0';
            unsigned long long ino_l;
            unsigned maj, min;
            /* Only shared mappings of /dev/shm files are interesting: cheap filter first. */
            if (strstr(line, "/preoom.") &&
                sscanf(line, "%*s %*s %*s %x:%x %llu", &maj, &min, &ino_l) == 3 &&
                ino_l == (unsigned long long)ino && makedev(maj, min) == dev) {
                found = 1;
                break;
            }
            line = nl + 1;
        }
        if (found || r == 0)
            break;
        /* Keep a partial last line for the next read. */
        size_t rest = (size_t)(buf + have - line);
        if (rest >= sizeof buf - 1)
            rest = 0; /* a line longer than the buffer cannot be ours */
        memmove(buf, line, rest);
        have = rest;
    }
    close(fd);
    return found;
}

int preoom_slot_proven(const preoom_procfs_t *fs, int32_t pid, uint64_t tid, uint64_t idx,
                       uint64_t *adj)
{
    if (tid == 0 || tid > 0x7fffffff)
        return 0;
    /* /proc/PID/task/TID exists only for a thread of PID: a forged tid proves nothing. */
    char path[128], buf[32];
    size_t len = 0;
    snprintf(path, sizeof path, "%s/%d/task/%d/comm", fs->proc_root, (int)pid, (int)tid);
    uint64_t i, a;
    if (preoom_read_file(path, buf, sizeof buf, &len, true) != 0 ||
        preoom_reg_proof_parse(buf, len, &i, &a) != 0 || i != idx)
        return 0;
    *adj = a;
    return 1;
}

static bool in_protect(const preoom_gather_opts_t *o, int32_t pid)
{
    for (size_t i = 0; i < o->n_protect; i++)
        if (o->protect[i] == pid)
            return true;
    return false;
}

static preoom_history_entry_t *history_of(preoom_history_t *h, int32_t pid, uint64_t start,
                                          uint64_t now_ms, uint64_t touched)
{
    preoom_history_entry_t *e = NULL;
    for (size_t i = 0; i < h->n; i++)
        if (h->e[i].pid == pid && h->e[i].start_time == start) {
            e = &h->e[i];
            break;
        }
    if (!e) {
        /* Forget processes not seen for a minute to make room. */
        if (h->n == PREOOM_HISTORY_MAX) {
            size_t w = 0;
            for (size_t i = 0; i < h->n; i++)
                if (now_ms - h->e[i].seen_ms < 60000)
                    h->e[w++] = h->e[i];
            h->n = w;
        }
        if (h->n == PREOOM_HISTORY_MAX)
            return NULL;
        e = &h->e[h->n++];
        *e = (preoom_history_entry_t){pid, start, now_ms, touched, now_ms, touched, now_ms, -1};
    }
    return e;
}

static int64_t growth(preoom_history_entry_t *e, uint64_t now_ms, uint64_t window_ms,
                      uint64_t touched)
{
    if (!e)
        return 0;
    e->seen_ms = now_ms;
    /* Slide the window: the newest sample becomes the oldest once it is a window old. */
    if (now_ms - e->t0_ms > window_ms && e->t1_ms > e->t0_ms) {
        e->t0_ms = e->t1_ms;
        e->touched0 = e->touched1;
    }
    e->t1_ms = now_ms;
    e->touched1 = touched;
    uint64_t dt = now_ms - e->t0_ms;
    if (dt < 50)
        return 0;
    return ((int64_t)touched - (int64_t)e->touched0) * 1000 / (int64_t)dt;
}

/* total_vm of the children of `pid` that have their own mm (the classic policy's term). */
static size_t children_vm(const preoom_procfs_t *fs, int32_t pid, uint64_t *out, size_t cap)
{
    char path[128];
    /* /proc/PID/task/PID/children lists the children of the main thread (since 3.5). */
    snprintf(path, sizeof path, "%s/%d/task/%d/children", fs->proc_root, (int)pid, (int)pid);
    char buf[4096];
    size_t len = 0;
    if (preoom_read_file(path, buf, sizeof buf, &len, true) != 0)
        return 0;
    size_t n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, " \n", &save); tok && n < cap; tok = strtok_r(NULL, " \n", &save)) {
        preoom_pid_stat_t st;
        if (preoom_read_pid_stat(fs, (int)strtol(tok, NULL, 10), &st) == 0 && !st.kthread &&
            st.vsize_bytes > 0)
            out[n++] = st.vsize_bytes;
    }
    return n;
}

int preoom_gather(const preoom_procfs_t *fs, const preoom_reg_t *reg,
                  const preoom_gather_opts_t *o, preoom_history_t *h, uint64_t now_ms,
                  preoom_gathered_t *out)
{
    out->n = 0;
    out->exposure_bytes = out->committed_bytes = out->touched_bytes = 0;
    out->skipped = 0;
    uint64_t uptime_ms = 0;
    preoom_read_uptime(fs, &uptime_ms);
    long tck = sysconf(_SC_CLK_TCK);
    if (tck <= 0)
        tck = 100;
    for (uint64_t i = 0; i < reg->slot_count && out->n < out->cap; i++) {
        preoom_proc_t *p = &out->procs[out->n];
        if (preoom_reg_snapshot(reg, i, &p->slot) != 0)
            continue;
        int32_t pid = (int32_t)p->slot.pid;
        preoom_pid_stat_t st;
        if (pid <= 0 || preoom_read_pid_stat(fs, pid, &st) != 0 ||
            st.starttime_ticks != p->slot.start_time) {
            out->skipped++; /* gone or recycled: never a candidate; the slot is reaped */
            continue;
        }
        preoom_pid_status_t ss;
        if (preoom_read_pid_status(fs, pid, &ss) != 0) {
            out->skipped++;
            continue;
        }
        memset(&p->c, 0, sizeof p->c);
        p->rejected_now = false;
        p->slot_index = i;
        p->start_time = st.starttime_ticks;
        snprintf(p->name, sizeof p->name, "%s", st.comm);
        preoom_candidate_t *c = &p->c;
        c->pid = pid;
        c->kthread = st.kthread;
        int adj = 0;
        preoom_read_oom_score_adj(fs, pid, &adj);
        c->oom_score_adj = adj;
        uint64_t M = PREOOM_VALUE_MISSING;
        c->rss_bytes = ss.vm_rss_bytes == M ? 0 : ss.vm_rss_bytes;
        c->swap_bytes = ss.vm_swap_bytes == M ? 0 : ss.vm_swap_bytes;
        c->pgtables_bytes = ss.vm_pte_bytes == M ? 0 : ss.vm_pte_bytes;
        c->vm_bytes = st.vsize_bytes;
        c->cpu_ticks = st.utime_ticks + st.stime_ticks;
        uint64_t start_ms = st.starttime_ticks * 1000 / (uint64_t)tck;
        c->run_ticks = uptime_ms > start_ms ? (uptime_ms - start_ms) * (uint64_t)tck / 1000 : 0;
        c->nice = st.nice;
        c->uid = ss.has_uid ? ss.uid_real : 0;
        c->euid = ss.has_uid ? ss.uid_effective : 0;
        c->cap_eff = ss.has_cap_eff ? ss.cap_eff : 0;
        /* touched from the kernel; committed from the slot, because only the process knows
         * it, but never more than the address space the kernel says it has mapped. */
        uint64_t anon = ss.rss_anon_bytes == M ? 0 : ss.rss_anon_bytes;
        c->touched_bytes = anon + c->swap_bytes;
        c->committed_bytes = p->slot.committed < st.vsize_bytes ? p->slot.committed : st.vsize_bytes;
        preoom_history_entry_t *e = h ? history_of(h, pid, p->start_time, now_ms, c->touched_bytes) : NULL;
        /* The hint makes its process more killable: believed only from the process itself
         * (its agent's thread name), never from the slot, which the registry's every writer
         * can forge, for its own slot or another's. */
        c->slot_adj = 0;
        p->hint_unproven_now = false;
        if (p->slot.adj > 0) {
            uint64_t proven_adj = 0;
            if (preoom_slot_proven(fs, pid, p->slot.agent_tid, i, &proven_adj) == 1) {
                c->slot_adj = proven_adj;
            } else if (!e || !e->hint_said) {
                p->hint_unproven_now = true;
                if (e)
                    e->hint_said = 1;
            }
        }
        c->touched_growth_bytes_per_s = growth(e, now_ms, h ? h->window_ms : 0, c->touched_bytes);
        c->uid_matches = o->allow_any_uid || (ss.has_uid && ss.uid_effective == o->registry_uid);
        c->protected_by_flag = in_protect(o, pid);
        /* A process maps the registry once, at start: one read of its maps per lifetime. */
        if (e && !o->check_maps && e->maps_registry >= 0) {
            c->maps_registry = e->maps_registry == 1;
        } else {
            c->maps_registry = preoom_maps_registry(fs, pid, o->registry_dev, o->registry_ino) == 1;
            if (e)
                e->maps_registry = c->maps_registry ? 1 : 0;
            p->rejected_now = !c->maps_registry;
        }
        c->preference = PREOOM_PREFER_NONE;
        if (o->avoid && regexec(o->avoid, p->name, 0, NULL, 0) == 0)
            c->preference = PREOOM_AVOID;
        else if (o->prefer && regexec(o->prefer, p->name, 0, NULL, 0) == 0)
            c->preference = PREOOM_PREFER;
        if (o->want_children) {
            c->n_children = children_vm(fs, pid, p->child_vm, PREOOM_MAX_CHILDREN);
            c->child_vm_bytes = p->child_vm;
        }
        if (c->maps_registry && c->uid_matches) {
            uint64_t exposure = c->committed_bytes > c->touched_bytes
                                    ? c->committed_bytes - c->touched_bytes : 0;
            out->exposure_bytes += exposure;
            out->committed_bytes += c->committed_bytes;
            out->touched_bytes += c->touched_bytes;
        }
        out->n++;
    }
    return 0;
}

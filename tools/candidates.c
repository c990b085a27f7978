/* tools/candidates.c — from registry slots to verified, scored-ready candidates.
 *
 * Every slot is untrusted: its pid and start time are checked against /proc/PID/stat, the
 * process's memory figures for scoring come from /proc (the kernel's word), and only the
 * figures the kernel cannot give (committed, exposure, the process's own adj hint) come from
 * the slot. Bounded: the caller's array, no allocation while gathering.
 */
#include <errno.h>
#include <fnmatch.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "candidates.h"
#include "engine.h"

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

int preoom_proc_cmdline(const preoom_procfs_t *fs, int32_t pid, uint64_t start_time, char *buf,
                        size_t cap)
{
    if (!cap)
        return -EINVAL;
    buf[0] = '\0';
    preoom_pid_stat_t st;
    int rc = preoom_read_pid_stat(fs, pid, &st);
    if (rc != 0)
        return rc;
    if (st.starttime_ticks != start_time)
        return -ESTALE;
    rc = preoom_read_cmdline(fs, pid, buf, cap);
    /* The stat again: a process that exited and whose pid was taken while we read would
     * give another program's command line. */
    if (rc == 0 && (preoom_read_pid_stat(fs, pid, &st) != 0 || st.starttime_ticks != start_time))
        rc = -ESTALE;
    if (rc != 0)
        buf[0] = '\0';
    return rc;
}

static preoom_cmdline_entry_t *cache_find(preoom_cmdline_cache_t *c, int32_t pid,
                                          uint64_t start_time)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->e[i].pid == pid && c->e[i].start_time == start_time)
            return &c->e[i];
    return NULL;
}

const char *preoom_cmdline_cache_get(const preoom_cmdline_cache_t *c, int32_t pid,
                                     uint64_t start_time, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->e[i].pid == pid && c->e[i].start_time == start_time &&
            !strncmp(c->e[i].name, name, sizeof c->e[i].name - 1))
            return c->e[i].cmdline;
    return NULL;
}

size_t preoom_cmdline_cache_fill(preoom_cmdline_cache_t *c, const preoom_procfs_t *fs,
                                 const preoom_gathered_t *g)
{
    size_t read = 0;
    for (size_t i = 0; i < g->n; i++) {
        const preoom_proc_t *p = &g->procs[i];
        preoom_cmdline_entry_t *e = cache_find(c, p->c.pid, p->start_time);
        if (e && !strncmp(e->name, p->name, sizeof e->name - 1))
            continue;
        if (!e) {
            if (c->n < PREOOM_CMDLINE_CACHE) {
                e = &c->e[c->n++];
            } else {
                e = &c->e[c->next];
                c->next = (c->next + 1) % PREOOM_CMDLINE_CACHE;
            }
        }
        e->pid = p->c.pid;
        e->start_time = p->start_time;
        snprintf(e->name, sizeof e->name, "%.15s", p->name);
        preoom_proc_cmdline(fs, p->c.pid, p->start_time, e->cmdline, sizeof e->cmdline);
        read++;
    }
    return read;
}

bool preoom_cgroup_globs_match(const preoom_cgroup_globs_t *g, const preoom_pid_cgroup_t *c)
{
    if (!g)
        return false;
    for (size_t i = 0; i < g->n; i++)
        if ((c->has_v1_memory && fnmatch(g->glob[i], c->v1_memory, 0) == 0) ||
            (c->has_v2 && fnmatch(g->glob[i], c->v2, 0) == 0))
            return true;
    return false;
}

static bool any_globs(const preoom_gather_opts_t *o)
{
    return (o->protect_cg && o->protect_cg->n) || (o->avoid_cg && o->avoid_cg->n) ||
           (o->prefer_cg && o->prefer_cg->n);
}

static bool in_protect(const preoom_gather_opts_t *o, int32_t pid)
{
    for (size_t i = 0; i < o->n_protect; i++)
        if (o->protect[i] == pid)
            return true;
    return false;
}

void preoom_candidate_prefs(const preoom_procfs_t *fs, const preoom_gather_opts_t *o,
                            const char *name, preoom_candidate_t *c)
{
    /* The cgroup patterns need /proc/PID/cgroup: read only when one is set. A process whose
     * file cannot be read matches none (it is going away; its status was just read). */
    preoom_pid_cgroup_t cg;
    bool have_cg = any_globs(o) && preoom_read_pid_cgroup(fs, c->pid, &cg) == 0;
    c->protected_by_flag = in_protect(o, c->pid) ||
                           (have_cg && preoom_cgroup_globs_match(o->protect_cg, &cg));
    c->preference = PREOOM_PREFER_NONE;
    /* As for names: avoid wins over prefer. */
    if ((o->avoid && regexec(o->avoid, name, 0, NULL, 0) == 0) ||
        (have_cg && preoom_cgroup_globs_match(o->avoid_cg, &cg)))
        c->preference = PREOOM_AVOID;
    else if ((o->prefer && regexec(o->prefer, name, 0, NULL, 0) == 0) ||
             (have_cg && preoom_cgroup_globs_match(o->prefer_cg, &cg)))
        c->preference = PREOOM_PREFER;
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
        *e = (preoom_history_entry_t){.pid = pid, .start_time = start, .t1_ms = now_ms,
                                      .touched1 = touched, .seen_ms = now_ms,
                                      .maps_registry = -1};
    }
    return e;
}

/* Touched memory's rate of growth now: over the last quarter to half second of samples
 * (a ring of PREOOM_GROWTH_RING samples at least GROWTH_STEP_MS apart), so a cache that
 * filled a second ago and holds still is not taken for one that grows; 0 until two samples
 * GROWTH_MIN_MS apart exist. No sample for a whole window (the daemon looks seldom far from
 * the lines) forgets the ring: what happened meanwhile is no rate of now. */
#define GROWTH_STEP_MS 125
#define GROWTH_SPAN_MS 250
#define GROWTH_MIN_MS 50
static int64_t growth(preoom_history_entry_t *e, uint64_t now_ms, uint64_t window_ms,
                      uint64_t touched)
{
    if (!e)
        return 0;
    e->seen_ms = now_ms;
    if (now_ms - e->t1_ms > window_ms)
        e->rn = 0;
    e->t1_ms = now_ms;
    e->touched1 = touched;
    const unsigned R = PREOOM_GROWTH_RING;
    unsigned last = (e->rhead + R - 1) % R;
    if (e->rn == 0 || now_ms - e->rt_ms[last] >= GROWTH_STEP_MS) {
        e->rt_ms[e->rhead] = now_ms;
        e->rtouched[e->rhead] = touched;
        e->rhead = (uint8_t)((e->rhead + 1) % R);
        if (e->rn < R)
            e->rn++;
    }
    /* The newest sample at least GROWTH_SPAN_MS old, else the oldest at least GROWTH_MIN_MS. */
    int ref = -1;
    for (unsigned k = 0; k < e->rn; k++) {
        unsigned idx = (e->rhead + R - 1 - k) % R;
        if (now_ms - e->rt_ms[idx] >= GROWTH_SPAN_MS) {
            ref = (int)idx;
            break;
        }
    }
    if (ref < 0 && e->rn) {
        unsigned idx = (e->rhead + R - e->rn) % R;
        if (now_ms - e->rt_ms[idx] >= GROWTH_MIN_MS)
            ref = (int)idx;
    }
    if (ref < 0)
        return 0;
    return ((int64_t)touched - (int64_t)e->rtouched[ref]) * 1000 /
           (int64_t)(now_ms - e->rt_ms[ref]);
}

/* How long touched has stayed within max(4 MiB, 5%) of a reference: the badness policy's
 * "steady service" term. */
static uint64_t flat_for(preoom_history_entry_t *e, uint64_t now_ms, uint64_t touched)
{
    if (!e)
        return 0;
    uint64_t band = e->flat_ref / 20 > (4ULL << 20) ? e->flat_ref / 20 : 4ULL << 20;
    if (e->flat_since_ms == 0 || touched > e->flat_ref + band || touched + band < e->flat_ref) {
        e->flat_ref = touched;
        e->flat_since_ms = now_ms;
    }
    return now_ms - e->flat_since_ms;
}

int preoom_read_private(const preoom_procfs_t *fs, int32_t pid, uint64_t *bytes)
{
    char path[128], buf[4096];
    size_t len = 0;
    snprintf(path, sizeof path, "%s/%d/smaps_rollup", fs->proc_root, (int)pid);
    int rc = preoom_read_file(path, buf, sizeof buf, &len, true);
    if (rc != 0)
        return rc;
    uint64_t anon, swap;
    if ((rc = preoom_parse_smaps_rollup(buf, len, &anon, &swap)) != 0)
        return rc;
    *bytes = anon + swap;
    return 0;
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

/* Fill p->c (and name, start time) from /proc for pid, whose stat is st. Returns 0, or
 * -ESRCH when its status cannot be read. */
static int fill_proc(const preoom_procfs_t *fs, const preoom_gather_opts_t *o,
                     preoom_history_t *h, uint64_t now_ms, uint64_t uptime_ms, long tck,
                     int32_t pid, const preoom_pid_stat_t *st, preoom_proc_t *p,
                     preoom_history_entry_t **he)
{
    preoom_pid_status_t ss;
    if (preoom_read_pid_status(fs, pid, &ss) != 0)
        return -ESRCH;
    memset(&p->c, 0, sizeof p->c);
    p->rejected_now = false;
    p->start_time = st->starttime_ticks;
    snprintf(p->name, sizeof p->name, "%s", st->comm);
    preoom_candidate_t *c = &p->c;
    c->pid = pid;
    c->kthread = st->kthread;
    uint64_t M = PREOOM_VALUE_MISSING;
    c->rss_bytes = ss.vm_rss_bytes == M ? 0 : ss.vm_rss_bytes;
    c->swap_bytes = ss.vm_swap_bytes == M ? 0 : ss.vm_swap_bytes;
    c->pgtables_bytes = ss.vm_pte_bytes == M ? 0 : ss.vm_pte_bytes;
    c->vm_bytes = st->vsize_bytes;
    c->cpu_ticks = st->utime_ticks + st->stime_ticks;
    uint64_t start_ms = st->starttime_ticks * 1000 / (uint64_t)tck;
    c->run_ticks = uptime_ms > start_ms ? (uptime_ms - start_ms) * (uint64_t)tck / 1000 : 0;
    c->nice = st->nice;
    c->uid = ss.has_uid ? ss.uid_real : 0;
    c->euid = ss.has_uid ? ss.uid_effective : 0;
    c->cap_eff = ss.has_cap_eff ? ss.cap_eff : 0;
    uint64_t anon = ss.rss_anon_bytes == M ? 0 : ss.rss_anon_bytes;
    c->touched_bytes = anon + c->swap_bytes;
    preoom_history_entry_t *e = h ? history_of(h, pid, p->start_time, now_ms, c->touched_bytes) : NULL;
    c->touched_growth_bytes_per_s = growth(e, now_ms, h ? h->window_ms : 0, c->touched_bytes);
    c->flat_ms = flat_for(e, now_ms, c->touched_bytes);
    /* oom_score_adj changes rarely (a unit's setting, an operator's echo): read again after
     * a second, not on every pass near the lines where every open counts. */
    if (e && e->adj_at_ms && now_ms - e->adj_at_ms < 1000) {
        c->oom_score_adj = e->adj;
    } else {
        int adj = 0;
        preoom_read_oom_score_adj(fs, pid, &adj);
        c->oom_score_adj = adj;
        if (e) {
            e->adj = (int16_t)adj;
            e->adj_at_ms = now_ms ? now_ms : 1;
        }
    }
    if (o->want_private) {
        if (e && e->private_at_ms && now_ms - e->private_at_ms < 1000) {
            c->private_bytes = e->private_bytes;
        } else if (preoom_read_private(fs, pid, &c->private_bytes) == 0 && e) {
            e->private_bytes = c->private_bytes;
            e->private_at_ms = now_ms;
        }
    }
    preoom_candidate_prefs(fs, o, p->name, c);
    if (o->want_children) {
        c->n_children = children_vm(fs, pid, p->child_vm, PREOOM_MAX_CHILDREN);
        c->child_vm_bytes = p->child_vm;
    }
    *he = e;
    return 0;
}

void preoom_note_biggest(preoom_gathered_t *out, const preoom_proc_t *p)
{
    uint64_t size = p->c.rss_bytes + p->c.swap_bytes;
    if (size <= out->biggest_bytes)
        return;
    out->biggest_bytes = size;
    out->biggest_pid = p->c.pid;
    snprintf(out->biggest_name, sizeof out->biggest_name, "%s", p->name);
    out->biggest_in_scope = p->c.maps_registry && p->c.uid_matches && !p->c.protected_by_flag &&
                            p->c.oom_score_adj > PREOOM_OOM_SCORE_ADJ_MIN;
}

/* The sums that stand for pressure count only processes proven to be the registry's own. */
static void tally(preoom_gathered_t *out, const preoom_candidate_t *c)
{
    if (c->maps_registry && c->uid_matches) {
        uint64_t exposure = c->committed_bytes > c->touched_bytes
                                ? c->committed_bytes - c->touched_bytes : 0;
        out->exposure_bytes += exposure;
        out->committed_bytes += c->committed_bytes;
        out->touched_bytes += c->touched_bytes;
    }
}

int preoom_gather(const preoom_procfs_t *fs, const preoom_reg_t *reg,
                  const preoom_gather_opts_t *o, preoom_history_t *h, uint64_t now_ms,
                  preoom_gathered_t *out)
{
    out->n = 0;
    out->exposure_bytes = out->committed_bytes = out->touched_bytes = 0;
    out->skipped = 0;
    out->biggest_pid = 0;
    out->biggest_bytes = 0;
    out->biggest_name[0] = '\0';
    out->biggest_in_scope = false;
    out->n_dups = 0;
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
        /* Two slots naming one process: one is forged. The one its process's agent proves
         * (its thread name) is believed, else the first; the other is left out (its numbers
         * would count twice) and its hint, if any, said once. */
        long dup = -1;
        for (size_t j = 0; j < out->n; j++)
            if (out->procs[j].c.pid == pid && out->procs[j].registered)
                dup = (long)j;
        if (dup >= 0) {
            uint64_t pa;
            bool new_proven = preoom_slot_proven(fs, pid, p->slot.agent_tid, i, &pa) == 1;
            preoom_proc_t *old = &out->procs[dup];
            const struct preoom_slot *loser = &p->slot;
            uint64_t loser_idx = i;
            if (new_proven) {
                /* The real one came second: it takes the first one's place. */
                struct preoom_slot keep = old->slot;
                old->slot = p->slot;
                p->slot = keep;
                uint64_t oi = old->slot_index;
                old->slot_index = i;
                loser_idx = oi;
                old->c.slot_adj = pa;
                old->c.committed_bytes = old->slot.committed < st.vsize_bytes ? old->slot.committed
                                                                                : st.vsize_bytes;
                loser = &p->slot;
            }
            preoom_history_entry_t *de = h ? history_of(h, pid, st.starttime_ticks, now_ms, 0) : NULL;
            if (loser->adj > 0 && out->n_dups < PREOOM_MAX_DUPS && (!de || !de->hint_said)) {
                preoom_dup_t *dd = &out->dups[out->n_dups++];
                *dd = (preoom_dup_t){loser_idx, pid, loser->adj, ""};
                snprintf(dd->name, sizeof dd->name, "%s", st.comm);
                if (de)
                    de->hint_said = 1;
            }
            out->skipped++;
            continue;
        }
        preoom_history_entry_t *e;
        if (fill_proc(fs, o, h, now_ms, uptime_ms, tck, pid, &st, p, &e) != 0) {
            out->skipped++;
            continue;
        }
        preoom_candidate_t *c = &p->c;
        p->slot_index = i;
        p->registered = true;
        /* committed from the slot, because only the process knows it, but never more than
         * the address space the kernel says it has mapped. */
        c->committed_bytes = p->slot.committed < st.vsize_bytes ? p->slot.committed : st.vsize_bytes;
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
        c->uid_matches = o->allow_any_uid || c->euid == o->registry_uid;
        /* A process maps the registry once, at start: one read of its maps per lifetime
         * when it does. A "no" is looked at again each second (a read that failed, a
         * registry followed to a new file) and said only the first time. */
        if (e && !o->check_maps && e->maps_registry >= 0 &&
            (e->maps_registry == 1 || now_ms - e->maps_at_ms < 1000)) {
            c->maps_registry = e->maps_registry == 1;
        } else {
            bool first = !e || e->maps_registry < 0;
            c->maps_registry = preoom_maps_registry(fs, pid, o->registry_dev, o->registry_ino) == 1;
            if (e) {
                e->maps_registry = c->maps_registry ? 1 : 0;
                e->maps_at_ms = now_ms;
            }
            p->rejected_now = !c->maps_registry && first;
        }
        tally(out, c);
        if (c->maps_registry)
            preoom_note_biggest(out, p); /* a forged slot's process is not of this domain */
        out->n++;
    }
    return 0;
}

/* Every pid of a cgroup directory tree (cgroup.procs of it and its children), or of /proc
 * when dir is NULL, handed to fn. getdents64 on stack buffers: nothing is allocated. */
typedef void (*pid_fn)(void *ctx, int32_t pid);

static void each_pid_in_file(const char *path, pid_fn fn, void *ctx)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char buf[8192];
    size_t have = 0;
    for (;;) {
        ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
        if (r <= 0)
            break;
        have += (size_t)r;
        buf[have] = '\0';
        char *line = buf, *nl;
        while ((nl = strchr(line, '\n')) != NULL) {
            long v = strtol(line, NULL, 10);
            if (v > 0 && v <= 0x7fffffff)
                fn(ctx, (int32_t)v);
            line = nl + 1;
        }
        have = (size_t)(buf + have - line);
        memmove(buf, line, have);
    }
    close(fd);
}

struct linux_dirent64_ {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

static void each_pid(const char *dir, int depth, pid_fn fn, void *ctx)
{
    char path[PREOOM_CGROUP_PATH_MAX + 64];
    if (dir) {
        snprintf(path, sizeof path, "%s/cgroup.procs", dir);
        each_pid_in_file(path, fn, ctx);
        if (depth >= 8)
            return;
    }
    int fd = open(dir ? dir : "/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    char buf[8192] __attribute__((aligned(8)));
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (long off = 0; off < n;) {
            struct linux_dirent64_ *d = (struct linux_dirent64_ *)(buf + off);
            off += d->d_reclen;
            if (d->d_name[0] == '.')
                continue;
            if (!dir) {
                char *end;
                long v = strtol(d->d_name, &end, 10);
                if (*end == '\0' && v > 0 && v <= 0x7fffffff)
                    fn(ctx, (int32_t)v);
            } else if (d->d_type == DT_DIR) {
                snprintf(path, sizeof path, "%s/%s", dir, d->d_name);
                each_pid(path, depth + 1, fn, ctx);
            }
        }
    }
    close(fd);
}

struct unreg_ctx {
    const preoom_procfs_t *fs;
    const preoom_gather_opts_t *o;
    preoom_history_t *h;
    uint64_t now_ms, uptime_ms;
    long tck;
    size_t n_registered;
    preoom_gathered_t *out;
};

static void add_unregistered(void *vctx, int32_t pid)
{
    struct unreg_ctx *u = vctx;
    preoom_gathered_t *out = u->out;
    for (size_t j = 0; j < u->n_registered; j++)
        if (out->procs[j].c.pid == pid)
            return;
    if (out->n >= out->cap)
        return;
    preoom_pid_stat_t st;
    if (preoom_read_pid_stat(u->fs, pid, &st) != 0 || st.kthread || st.state == 'Z')
        return;
    preoom_proc_t *p = &out->procs[out->n];
    preoom_history_entry_t *e;
    memset(&p->slot, 0, sizeof p->slot);
    if (fill_proc(u->fs, u->o, u->h, u->now_ms, u->uptime_ms, u->tck, pid, &st, p, &e) != 0)
        return;
    if (p->c.rss_bytes == 0)
        return; /* no memory of its own (a zombie's last moments, a thread of a kthread) */
    p->registered = false;
    p->slot_index = UINT64_MAX;
    /* In scope, the operator handed this cgroup (or host) to preoomd: any process in it may
     * be signalled, as the kernel's OOM killer would. Out of scope it is only looked at. */
    bool in_scope = !u->o->look_only &&
                    (u->o->scope == PREOOM_SCOPE_ALL ||
                     (u->o->scope == PREOOM_SCOPE_CGROUP && u->o->cgroup_dir && *u->o->cgroup_dir));
    p->c.maps_registry = in_scope;
    p->c.uid_matches = in_scope;
    preoom_note_biggest(out, p);
    if (in_scope)
        out->n++;
}

int preoom_gather_unregistered(const preoom_procfs_t *fs, const preoom_gather_opts_t *o,
                               preoom_history_t *h, uint64_t now_ms, preoom_gathered_t *out)
{
    struct unreg_ctx u = {fs, o, h, now_ms, 0, sysconf(_SC_CLK_TCK), out->n, out};
    if (u.tck <= 0)
        u.tck = 100;
    preoom_read_uptime(fs, &u.uptime_ms);
    if (o->cgroup_dir && *o->cgroup_dir) {
        char dir[PREOOM_CGROUP_PATH_MAX + 64];
        if (o->cgroup_dir[0] == '/')
            snprintf(dir, sizeof dir, "%s", o->cgroup_dir);
        else
            snprintf(dir, sizeof dir, "%s/%s", fs->cgroup_root, o->cgroup_dir);
        each_pid(dir, 0, add_unregistered, &u);
    }
    else if (o->scope == PREOOM_SCOPE_ALL || o->look_only)
        each_pid(NULL, 0, add_unregistered, &u);
    return 0;
}

void preoom_gathered_keep(preoom_gathered_t *g, const bool *keep)
{
    size_t k = 0;
    g->exposure_bytes = g->committed_bytes = g->touched_bytes = 0;
    g->biggest_pid = 0;
    g->biggest_bytes = 0;
    g->biggest_name[0] = '\0';
    g->biggest_in_scope = false;
    for (size_t i = 0; i < g->n; i++) {
        if (!keep[i])
            continue;
        if (k != i)
            g->procs[k] = g->procs[i];
        const preoom_proc_t *p = &g->procs[k++];
        if (p->registered)
            tally(g, &p->c);
        if (p->c.maps_registry)
            preoom_note_biggest(g, p);
    }
    g->n = k;
}

void preoom_gathered_to_engine(const preoom_gathered_t *g, preoom_engine_proc_t *out)
{
    for (size_t i = 0; i < g->n; i++) {
        const preoom_proc_t *p = &g->procs[i];
        preoom_engine_proc_t *e = &out[i];
        memset(e, 0, sizeof *e);
        e->pid = p->c.pid;
        e->start_time = p->start_time;
        e->uid = p->c.uid;
        snprintf(e->name, sizeof e->name, "%s", p->name);
        e->registered = p->registered;
        e->slot_index = p->slot_index;
        if (p->registered) {
            /* The slot's words are the process's own claims: held to what the kernel says
             * it holds, so a forged figure cannot steer the asks. */
            e->callbacks = p->slot.callbacks > 64 ? 64 : (uint32_t)p->slot.callbacks;
            e->reclaimable_bytes = p->slot.reclaimable < p->c.touched_bytes ? p->slot.reclaimable
                                                                              : p->c.touched_bytes;
            /* What malloc_trim could give: touched beyond the live malloc bytes and the
             * program's own mappings (the slot's "slack" counts those mappings too). */
            uint64_t held = p->slot.malloc_bytes + p->slot.mmap_bytes;
            e->slack_bytes = p->c.touched_bytes > held ? p->c.touched_bytes - held : 0;
            if (e->slack_bytes > p->slot.slack)
                e->slack_bytes = p->slot.slack;
            e->term_grace_ms = p->slot.term_grace_ms > 3600000 ? 3600000 : (uint32_t)p->slot.term_grace_ms;
            e->answer_serial = p->slot.answer_serial;
            e->answer_bytes = p->slot.answer_bytes;
            e->answer_callback_bytes = p->slot.answer_callback_bytes;
            e->answer_trim_bytes = p->slot.answer_trim_bytes;
        }
        e->c = p->c;
    }
}

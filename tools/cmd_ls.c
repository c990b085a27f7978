/* tools/cmd_ls.c — `preoom ls [--json] [--sort COL]`: the processes registered in
 * /dev/shm/preoom.NAME and their memory, as a table or as JSON. Also the table code that
 * `preoom top` redraws (preoom_ls_show_trend).
 *
 * Processes are grouped by memory domain (domains.c: the host, and every memory cgroup with
 * a limit on a registered process's path), each group under a line with the domain's limit,
 * usage and what is available before its limit or an enclosing one's; top, which looks
 * again every interval, adds the time to the limit at the recent growth. A host with no
 * limited cgroup has one domain and the table is the plain one, without domain lines.
 *
 * The registry is untrusted input: a bad file is one line on stderr and exit 1; a slot is
 * shown only when its pid and start time still name a live process in /proc; a file truncated
 * while we read it (SIGBUS) is reported like any other bad file. It opens the registry
 * read-write when it may, only to free the slots of dead processes (preoom_reg_reap); it never
 * writes anything else there, and never signals a process (kill(pid, 0) only probes).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "candidates.h" /* preoom_read_private */
#include "cli.h"
#include "cmd.h"
#include "domains.h"
#include "floor.h"

enum { SORT_COMMITTED, SORT_TOUCHED, SORT_EXPOSURE, SORT_SLACK, SORT_PEAK, SORT_PID, SORT_NAME };

typedef struct ls_row {
    uint64_t slot, pid, start_time, registered_ns;
    uint64_t committed, touched, exposure, slack, peak_committed, peak_touched;
    uint64_t malloc_bytes, mmap_bytes, brk_bytes, rss_anon, swap, adj;
    uint64_t pss;      /* Pss_Anon + SwapPss: its share of pages it shares (0: unknown) */
    char name[16];
    int domain;        /* its innermost memory domain (index in ls_table_t.dom) */
    int dorder;        /* that domain's place in the printed order */
} ls_row_t;

/* What a domain's header line says. */
typedef struct {
    uint64_t limit, usage, available; /* MISSING when it could not be read */
    int64_t ttl_ms;    /* time to the limit: >= 0, TTL_NOT_GROWING, or TTL_UNKNOWN (ls) */
    size_t procs;      /* registered processes whose innermost domain it is */
    int order;         /* its place in the printed order (a parent before its children) */
} ls_dom_t;
#define TTL_UNKNOWN (-2)
#define TTL_NOT_GROWING (-1)

typedef struct ls_table {
    ls_row_t *rows;
    size_t n;
    uint64_t slot_count, in_use, pressure;
    /* The arbiter's last measurement (0 total: none published). */
    uint64_t total, available, ask, term, kill, ttk_ms;
    long reaped;
    int writable;
    preoom_domains_t *dom; /* NULL: not placed (the table is the plain one) */
    ls_dom_t dinfo[PREOOM_MAX_DOMAINS];
    int by_order[PREOOM_MAX_DOMAINS]; /* domain indices in printed order */
    size_t n_order;
    int grouped;           /* some limited cgroup holds a process: domain lines are shown */
} ls_table_t;

/* What top keeps between frames: each domain's last usage and growth rate, by directory
 * ("" the host), so a domain's index changing between frames does not mix two domains. */
struct preoom_ls_trend {
    struct {
        char dir[PREOOM_CGROUP_PATH_MAX];
        uint64_t at_ms, usage;
        double rate;   /* bytes per ms, smoothed */
        int have_rate;
    } e[PREOOM_MAX_DOMAINS];
    size_t n;
};

static const char *const sort_names[] = {"committed", "touched", "exposure", "slack",
                                         "peak",      "pid",     "name"};

int preoom_ls_sort_key(const char *name)
{
    for (size_t k = 0; k < sizeof sort_names / sizeof sort_names[0]; k++)
        if (strcmp(name, sort_names[k]) == 0)
            return (int)k;
    return -1;
}

/* ---- reading the registry, safe against a file truncated under us ------------------------ */

/* A registry someone truncates after we mapped it raises SIGBUS on the next access beyond the
 * new end: every registry call below runs under registry.c's guard and returns -EFAULT then,
 * which the walk reports as a bad file. */
static preoom_reg_t walk_reg = {.fd = -1};

/* Saturating: forged slots may hold any value, and totals must not wrap into small ones. */
static uint64_t sat_add(uint64_t a, uint64_t b) { return a + b < a ? UINT64_MAX : a + b; }

static void copy_row(ls_row_t *r, uint64_t i, const struct preoom_slot *s)
{
    r->slot = i;
    r->pid = s->pid;
    r->start_time = s->start_time;
    r->registered_ns = s->registered_ns;
    r->committed = s->committed;
    r->touched = s->touched;
    r->exposure = s->exposure;
    r->slack = s->slack;
    r->peak_committed = s->peak_committed;
    r->peak_touched = s->peak_touched;
    r->malloc_bytes = s->malloc_bytes;
    r->mmap_bytes = s->mmap_bytes;
    r->brk_bytes = s->brk_bytes;
    r->rss_anon = s->rss_anon;
    r->swap = s->swap;
    r->adj = s->adj;
    memcpy(r->name, s->name, sizeof r->name);
    r->name[sizeof r->name - 1] = '\0';
}

/* Open, reap, copy every live slot. Returns 0 or -errno with *why set. */
static int walk(const char *reg_name, ls_table_t *t, const char **why)
{
    memset(t, 0, sizeof *t);
    t->dom = NULL;
    preoom_bus_install();
    /* Read-write first, only to reap; a file we may not write is still readable. */
    int rc = preoom_reg_open(reg_name, 0, 0, -1, 1, &walk_reg, why);
    t->writable = rc == 0;
    if (rc == -EPERM || rc == -EACCES || rc == -EROFS)
        rc = preoom_reg_open(reg_name, 0, 0, -1, 0, &walk_reg, why);
    if (rc != 0)
        return rc;
    t->slot_count = walk_reg.slot_count;
    t->rows = calloc((size_t)t->slot_count, sizeof *t->rows);
    if (!t->rows) {
        preoom_reg_close(&walk_reg);
        *why = "out of memory";
        return -ENOMEM;
    }
    struct preoom_slot s;
    uint64_t at_ns;
    if (t->writable && (t->reaped = preoom_reg_reap(&walk_reg)) < 0)
        goto shrank;
    if (preoom_reg_pressure(&walk_reg, &t->pressure, &at_ns, NULL) != 0)
        goto shrank;
    preoom_reg_measured_t ms;
    uint64_t arb = 0, lvl2, at2;
    if (preoom_reg_measured(&walk_reg, &ms) != 0 || preoom_reg_pressure(&walk_reg, &lvl2, &at2, &arb) != 0)
        goto shrank;
    t->total = ms.total_bytes;
    t->available = ms.available_bytes;
    t->ask = ms.ask_bytes;
    t->term = ms.term_bytes;
    t->kill = ms.kill_bytes;
    t->ttk_ms = ms.time_to_kill_ms;
    /* Only a live arbiter's figures mean anything. */
    if (!arb || arb > 0x7fffffff || (kill((pid_t)arb, 0) != 0 && errno == ESRCH))
        t->total = 0;
    for (uint64_t i = 0; i < t->slot_count; i++) {
        uint64_t state;
        if (preoom_reg_state(&walk_reg, i, &state) != 0)
            goto shrank;
        if (PREOOM_STATE_KIND(state) != PREOOM_SLOT_FREE)
            t->in_use++;
        rc = preoom_reg_snapshot(&walk_reg, i, &s);
        if (rc == -EFAULT)
            goto shrank;
        if (rc != 0)
            continue;
        /* The state word names the owner too; a slot whose two pids disagree is forged. */
        if ((uint64_t)(uint32_t)PREOOM_STATE_PID(s.state) != s.pid)
            continue;
        copy_row(&t->rows[t->n++], i, &s);
    }
    preoom_reg_close(&walk_reg);
    return 0;
shrank:
    preoom_reg_close(&walk_reg);
    free(t->rows);
    t->rows = NULL;
    t->n = 0;
    *why = "registry file shrank while being read (SIGBUS; truncated under us)";
    return -EPROTO;
}

/* Keep only the rows whose pid and start time still name a live process. */
static void verify(ls_table_t *t)
{
    size_t k = 0;
    for (size_t i = 0; i < t->n; i++) {
        ls_row_t *r = &t->rows[i];
        if (r->pid == 0 || r->pid > 0x7fffffff)
            continue;
        if (!preoom_reg_pid_matches((pid_t)r->pid, r->start_time))
            continue;
        /* A prefork server's workers share its heap copy-on-write: each one's touched
         * counts all of it. Proportional shares add up to what the memory really holds. */
        static preoom_procfs_t fs;
        if (!fs.proc_root)
            preoom_procfs_init(&fs);
        if (preoom_read_private(&fs, (int32_t)r->pid, &r->pss) != 0)
            r->pss = 0;
        t->rows[k++] = *r;
    }
    t->n = k;
}

/* ---- memory domains ----------------------------------------------------------------------- */

preoom_ls_trend_t *preoom_ls_trend_new(void)
{
    return calloc(1, sizeof(preoom_ls_trend_t));
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Time to the limit at the recent growth of usage, from what the last frames saw. Frames
 * closer than 200 ms (a key pressed) are not a measurement. */
static int64_t trend_ttl(preoom_ls_trend_t *tr, const char *dir, uint64_t usage,
                         uint64_t available, uint64_t now)
{
    size_t k = 0;
    while (k < tr->n && strcmp(tr->e[k].dir, dir) != 0)
        k++;
    if (k == tr->n) {
        if (tr->n == PREOOM_MAX_DOMAINS)
            return TTL_UNKNOWN;
        tr->n++;
        snprintf(tr->e[k].dir, sizeof tr->e[k].dir, "%s", dir);
        tr->e[k].at_ms = now;
        tr->e[k].usage = usage;
        tr->e[k].have_rate = 0;
        return TTL_UNKNOWN;
    }
    if (now - tr->e[k].at_ms >= 200) {
        double r = ((double)usage - (double)tr->e[k].usage) / (double)(now - tr->e[k].at_ms);
        /* Half the last interval, half the history: one frame's noise does not swing it. */
        tr->e[k].rate = tr->e[k].have_rate ? (tr->e[k].rate + r) / 2 : r;
        tr->e[k].have_rate = 1;
        tr->e[k].at_ms = now;
        tr->e[k].usage = usage;
    }
    if (!tr->e[k].have_rate)
        return TTL_UNKNOWN;
    if (tr->e[k].rate <= 0)
        return TTL_NOT_GROWING;
    double ms = (double)available / tr->e[k].rate;
    return ms > 1e15 ? TTL_NOT_GROWING : (int64_t)ms;
}

/* The printed order: a domain, then its inner ones by path, depth first. */
static void order_domains(ls_table_t *t, int at)
{
    const preoom_domains_t *set = t->dom;
    t->dinfo[at].order = (int)t->n_order;
    t->by_order[t->n_order++] = at;
    for (;;) {
        int next = -1;
        for (size_t i = 1; i < set->n; i++)
            if (set->d[i].used && set->d[i].parent == at && t->dinfo[i].order < 0 &&
                (next < 0 || strcmp(set->d[i].path, set->d[next].path) < 0))
                next = (int)i;
        if (next < 0)
            return;
        order_domains(t, next);
    }
}

/* Place each row in its innermost domain and read each domain's figures. Best effort: a
 * machine whose cgroups cannot be read has the host only, and the table is the plain one. */
static void place(ls_table_t *t, preoom_ls_trend_t *trend)
{
    static preoom_procfs_t fs;
    if (!fs.proc_root)
        preoom_procfs_init(&fs);
    t->dom = calloc(1, sizeof *t->dom);
    int32_t *pids = calloc(t->n + 1, sizeof *pids);
    int *in = calloc(t->n + 1, sizeof *in);
    if (!t->dom || !pids || !in) {
        free(t->dom);
        t->dom = NULL;
        free(pids);
        free(in);
        return;
    }
    preoom_domains_t *set = t->dom;
    preoom_domains_init(set);
    for (size_t i = 0; i < t->n; i++)
        pids[i] = (int32_t)t->rows[i].pid;
    if (preoom_domains_discover(&fs, pids, t->n, in, set) != 0)
        for (size_t i = 0; i < t->n; i++)
            in[i] = PREOOM_DOMAIN_HOST;
    for (size_t i = 0; i < PREOOM_MAX_DOMAINS; i++) {
        t->dinfo[i] = (ls_dom_t){PREOOM_VALUE_MISSING, PREOOM_VALUE_MISSING,
                                 PREOOM_VALUE_MISSING, TTL_UNKNOWN, 0, -1};
    }
    for (size_t i = 0; i < t->n; i++) {
        /* -1: gone since it was verified; it still shows, under the host. */
        int d = in[i] >= 0 && set->d[in[i]].used ? in[i] : PREOOM_DOMAIN_HOST;
        t->rows[i].domain = d;
        t->dinfo[d].procs++;
        if (d != PREOOM_DOMAIN_HOST)
            t->grouped = 1;
    }
    free(pids);
    free(in);
    t->n_order = 0;
    order_domains(t, PREOOM_DOMAIN_HOST);
    for (size_t i = 0; i < t->n; i++)
        t->rows[i].dorder = t->dinfo[t->rows[i].domain].order;

    /* The host against RAM; a cgroup against its own limit and, for what is available, its
     * enclosing cgroups' too (parents come first in the order, so theirs is known). */
    uint64_t now = mono_ms();
    for (size_t k = 0; k < t->n_order; k++) {
        int i = t->by_order[k];
        ls_dom_t *di = &t->dinfo[i];
        const preoom_domain_t *d = &set->d[i];
        if (i == PREOOM_DOMAIN_HOST) {
            preoom_meminfo_t mi;
            if (preoom_read_meminfo(&fs, &mi) == 0) {
                di->limit = mi.mem_total_bytes;
                di->available = mi.mem_available_bytes < mi.mem_total_bytes
                                    ? mi.mem_available_bytes : mi.mem_total_bytes;
                di->usage = di->limit - di->available;
            }
        } else {
            preoom_memcg_t m;
            if (preoom_read_memcg(&fs, d->dir, &m) == 0) {
                /* A cgroup named by --cgroup may have no limit of its own. */
                di->limit = d->limit_bytes != PREOOM_LIMIT_NONE ? d->limit_bytes
                                                                : m.effective_limit_bytes;
                di->usage = m.usage_bytes;
                if (di->limit != PREOOM_LIMIT_NONE && di->usage != PREOOM_VALUE_MISSING)
                    di->available = di->usage < di->limit ? di->limit - di->usage : 0;
                int p = d->parent;
                if (p > 0 && t->dinfo[p].available < di->available)
                    di->available = t->dinfo[p].available;
            }
        }
        if (trend && di->usage != PREOOM_VALUE_MISSING && di->available != PREOOM_VALUE_MISSING)
            di->ttl_ms = trend_ttl(trend, d->dir, di->usage, di->available, now);
    }
}

/* ---- sorting and printing --------------------------------------------------------------- */

static int sort_key_now;

static int cmp_u64_desc(uint64_t a, uint64_t b) { return a < b ? 1 : a > b ? -1 : 0; }

static int cmp_rows(const void *pa, const void *pb)
{
    const ls_row_t *a = pa, *b = pb;
    /* Grouped by domain first (all 0 on a host without limited cgroups). */
    int c = a->dorder < b->dorder ? -1 : a->dorder > b->dorder;
    if (c)
        return c;
    switch (sort_key_now) {
    case SORT_COMMITTED: c = cmp_u64_desc(a->committed, b->committed); break;
    case SORT_TOUCHED: c = cmp_u64_desc(a->touched, b->touched); break;
    case SORT_EXPOSURE: c = cmp_u64_desc(a->exposure, b->exposure); break;
    case SORT_SLACK: c = cmp_u64_desc(a->slack, b->slack); break;
    case SORT_PEAK:
        c = cmp_u64_desc(a->peak_touched, b->peak_touched);
        if (!c)
            c = cmp_u64_desc(a->peak_committed, b->peak_committed);
        break;
    case SORT_NAME: c = strcmp(a->name, b->name); break;
    default: break;
    }
    if (!c)
        c = a->pid < b->pid ? -1 : a->pid > b->pid;
    return c;
}

static const char *human(uint64_t b, char *buf, size_t size)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (b < 1024) {
        snprintf(buf, size, "%llu B", (unsigned long long)b);
        return buf;
    }
    double v = (double)b / 1024.0;
    int u = 0;
    while (v >= 1024.0 && u < 5) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, size, "%.1f %s", v, units[u]);
    return buf;
}

static uint64_t age_s(const ls_row_t *r, uint64_t now_ns)
{
    return r->registered_ns && r->registered_ns <= now_ns ? (now_ns - r->registered_ns) / 1000000000ULL
                                                           : 0;
}

static const char *human_age(uint64_t s, char *buf, size_t size)
{
    if (s < 60)
        snprintf(buf, size, "%llus", (unsigned long long)s);
    else if (s < 3600)
        snprintf(buf, size, "%llum%02llus", (unsigned long long)(s / 60),
                 (unsigned long long)(s % 60));
    else if (s < 86400)
        snprintf(buf, size, "%lluh%02llum", (unsigned long long)(s / 3600),
                 (unsigned long long)(s % 3600 / 60));
    else
        snprintf(buf, size, "%llud%02lluh", (unsigned long long)(s / 86400),
                 (unsigned long long)(s % 86400 / 3600));
    return buf;
}

static const char *pressure_name(uint64_t p)
{
    static const char *const names[] = {"none", "moderate", "critical", "complete"};
    return p <= PREOOM_PRESSURE_COMPLETE ? names[p] : "invalid";
}

/* The process chose its name: never let it put escapes on a terminal. */
static void printable(const char *in, char *out, size_t size)
{
    size_t k = 0;
    for (; *in && k + 1 < size; in++)
        out[k++] = (unsigned char)*in < 0x20 || (unsigned char)*in >= 0x7f ? '?' : *in;
    out[k] = '\0';
}

/* Names and the registry name are short (at most 64 bytes): the floor's one escaper. */
static void json_string(FILE *out, const char *s)
{
    char esc[512];
    preoom_json_escape(esc, sizeof esc, s);
    fprintf(out, "\"%s\"", esc);
}

/* A figure, or null when it could not be read. */
static void json_u64(FILE *out, const char *key, uint64_t v)
{
    if (v == PREOOM_VALUE_MISSING)
        fprintf(out, ", \"%s\": null", key);
    else
        fprintf(out, ", \"%s\": %llu", key, (unsigned long long)v);
}

/* "domains": the host first, each domain before the ones inside it; one a line. */
static void print_json_domains(const ls_table_t *t, FILE *out)
{
    fprintf(out, ", \"domains\": [");
    for (size_t k = 0; t->dom && k < t->n_order; k++) {
        int i = t->by_order[k];
        const preoom_domain_t *d = &t->dom->d[i];
        const ls_dom_t *di = &t->dinfo[i];
        fprintf(out, "%s\n  {\"domain\": %d, \"path\": ", k ? "," : "", i);
        json_string(out, d->path); /* "/" for the host, as domains.h names it */
        fprintf(out, ", \"dir\": ");
        json_string(out, d->dir);
        fprintf(out, ", \"cgroup\": %d, \"parent\": %d, \"depth\": %d", (int)d->version,
                d->parent, d->depth);
        json_u64(out, "limit", di->limit);
        json_u64(out, "usage", di->usage);
        json_u64(out, "available", di->available);
        fprintf(out, ", \"time_to_limit_ms\": %lld, \"processes\": %zu}",
                di->ttl_ms >= 0 ? (long long)di->ttl_ms : -1LL, di->procs);
    }
    fprintf(out, "%s]", t->dom && t->n_order ? "\n" : "");
}

static void print_json(const char *reg_name, const ls_table_t *t, FILE *out)
{
    uint64_t now = preoom_now_ns(CLOCK_REALTIME);
    uint64_t sum_c = 0, sum_t = 0, sum_e = 0, sum_s = 0, sum_p = 0;
    /* schema: bumped whenever a key changes meaning or type; keys are only ever added
     * within one schema. preoom(1) lists them. */
    fprintf(out, "{\"schema\": %d, \"registry\": ", PREOOM_LS_JSON_SCHEMA);
    json_string(out, reg_name);
    fprintf(out, ", \"slot_count\": %llu, \"slots_in_use\": %llu, \"reaped\": %ld, "
                 "\"pressure\": \"%s\", \"processes\": [",
            (unsigned long long)t->slot_count, (unsigned long long)t->in_use, t->reaped,
            pressure_name(t->pressure));
    for (size_t i = 0; i < t->n; i++) {
        const ls_row_t *r = &t->rows[i];
        /* One process a line: shell tests can grep it. */
        fprintf(out, "%s\n  {\"slot\": %llu, \"pid\": %llu, \"name\": ", i ? "," : "",
                (unsigned long long)r->slot, (unsigned long long)r->pid);
        json_string(out, r->name);
        fprintf(out,
                ", \"committed\": %llu, \"touched\": %llu, \"exposure\": %llu, \"slack\": %llu, "
                "\"peak_committed\": %llu, \"peak_touched\": %llu, \"malloc\": %llu, "
                "\"mmap\": %llu, \"brk\": %llu, \"rss_anon\": %llu, \"swap\": %llu, "
                "\"adj\": %llu, \"pss\": %llu, \"age_s\": %llu, \"domain\": %d}",
                (unsigned long long)r->committed, (unsigned long long)r->touched,
                (unsigned long long)r->exposure, (unsigned long long)r->slack,
                (unsigned long long)r->peak_committed, (unsigned long long)r->peak_touched,
                (unsigned long long)r->malloc_bytes, (unsigned long long)r->mmap_bytes,
                (unsigned long long)r->brk_bytes, (unsigned long long)r->rss_anon,
                (unsigned long long)r->swap, (unsigned long long)r->adj,
                (unsigned long long)r->pss, (unsigned long long)age_s(r, now), r->domain);
        sum_p = sat_add(sum_p, r->pss ? r->pss : r->touched);
        sum_c = sat_add(sum_c, r->committed);
        sum_t = sat_add(sum_t, r->touched);
        sum_e = sat_add(sum_e, r->exposure);
        sum_s = sat_add(sum_s, r->slack);
    }
    fprintf(out, "%s], \"totals\": {\"processes\": %zu, \"committed\": %llu, \"touched\": %llu, "
                 "\"touched_pss\": %llu, \"exposure\": %llu, \"slack\": %llu}",
            t->n ? "\n" : "", t->n, (unsigned long long)sum_c, (unsigned long long)sum_t,
            (unsigned long long)sum_p, (unsigned long long)sum_e, (unsigned long long)sum_s);
    print_json_domains(t, out);
    fprintf(out, ", \"arbiter\": ");
    if (!t->total)
        fprintf(out, "null}\n");
    else
        fprintf(out, "{\"total\": %llu, \"available\": %llu, \"ask_line\": %llu, "
                     "\"term_line\": %llu, \"kill_line\": %llu, \"time_to_kill_ms\": %lld}}\n",
                (unsigned long long)t->total, (unsigned long long)t->available,
                (unsigned long long)t->ask, (unsigned long long)t->term,
                (unsigned long long)t->kill,
                t->ttk_ms == UINT64_MAX ? -1LL : (long long)t->ttk_ms);
}

/* The table's columns, in the order they are shown, and how much each is worth when the
 * terminal is too narrow for all: the pid names the process, the sort column says why it is
 * where it is, touched and committed are what preoom is for, the rest follows. */
enum { C_PID, C_NAME, C_COMMITTED, C_TOUCHED, C_EXPOSURE, C_SLACK, C_PEAKC, C_PEAKT, C_AGE,
       C_N };
static const struct {
    const char *title;
    int width, rank, sort; /* rank: 0 is kept first */
} cols[C_N] = {
    [C_PID] = {"PID", 8, 0, SORT_PID},
    [C_NAME] = {"NAME", 15, 4, SORT_NAME},
    [C_COMMITTED] = {"COMMITTED", 11, 2, SORT_COMMITTED},
    [C_TOUCHED] = {"TOUCHED", 11, 1, SORT_TOUCHED},
    [C_EXPOSURE] = {"EXPOSURE", 11, 3, SORT_EXPOSURE},
    [C_SLACK] = {"SLACK", 11, 5, SORT_SLACK},
    [C_PEAKC] = {"PEAK-COMM", 11, 7, -1},
    [C_PEAKT] = {"PEAK-TOUCH", 11, 6, SORT_PEAK},
    [C_AGE] = {"AGE", 8, 8, -1},
};

/* Which columns fit in `width` (< 0: all): by rank, the sort column right after the pid,
 * each with the space before it. */
static void choose_columns(int width, int sort_key, int show[C_N])
{
    for (int c = 0; c < C_N; c++)
        show[c] = width < 0;
    if (width < 0)
        return;
    int used = cols[C_PID].width;
    show[C_PID] = 1;
    for (int pass = 0; pass < 2; pass++)
        for (int rank = 1; rank < C_N; rank++)
            for (int c = 0; c < C_N; c++) {
                if (cols[c].rank != rank || show[c] || (pass == 0 && cols[c].sort != sort_key))
                    continue;
                if (used + 1 + cols[c].width <= width) {
                    show[c] = 1;
                    used += 1 + cols[c].width;
                }
            }
}

/* One line, cut at `width` (< 0: not cut): a row never wraps on a terminal. */
static void put_line(FILE *out, const char *line, int width)
{
    size_t n = strlen(line);
    if (width >= 0 && n > (size_t)width)
        n = (size_t)width;
    fwrite(line, 1, n, out);
    fputc('\n', out);
}

static void add_cell(char *line, size_t size, size_t *len, int first, int w, int left,
                     const char *text)
{
    if (*len >= size)
        return;
    int n = snprintf(line + *len, size - *len, "%s%*s", first ? "" : " ", left ? -w : w, text);
    if (n > 0)
        *len += (size_t)n < size - *len ? (size_t)n : size - *len - 1;
}

/* "domain PATH: limit L, usage U, available A, T to the limit", indented by depth. */
static void domain_line(const ls_table_t *t, int i, char *line, size_t size)
{
    const preoom_domain_t *d = &t->dom->d[i];
    const ls_dom_t *di = &t->dinfo[i];
    char lim[32] = "?", use[32] = "?", av[32] = "?", ttl[48] = "", path[160];
    if (di->limit != PREOOM_VALUE_MISSING)
        human(di->limit, lim, sizeof lim);
    if (di->usage != PREOOM_VALUE_MISSING)
        human(di->usage, use, sizeof use);
    if (di->available != PREOOM_VALUE_MISSING)
        human(di->available, av, sizeof av);
    if (di->ttl_ms >= 0)
        snprintf(ttl, sizeof ttl, ", %.1f s to the limit", (double)di->ttl_ms / 1000.0);
    else if (di->ttl_ms == TTL_NOT_GROWING)
        snprintf(ttl, sizeof ttl, ", not growing");
    printable(i == PREOOM_DOMAIN_HOST ? "host" : d->path, path, sizeof path);
    snprintf(line, size, "%*sdomain %s: %s %s, usage %s, available %s%s", 2 * d->depth, "", path,
             i == PREOOM_DOMAIN_HOST ? "RAM" : "limit", lim, use, av, ttl);
}

static void print_table(const ls_table_t *t, int max_rows, int width, int sort_key, FILE *out)
{
    uint64_t now = preoom_now_ns(CLOCK_REALTIME);
    uint64_t sum_c = 0, sum_t = 0, sum_e = 0, sum_s = 0, sum_p = 0;
    int show[C_N];
    choose_columns(width, sort_key, show);
    char line[256], cell[32], nm[16];
    size_t len = 0;
    for (int c = 0; c < C_N; c++)
        if (show[c])
            add_cell(line, sizeof line, &len, c == C_PID, cols[c].width, c == C_NAME,
                     cols[c].title);
    put_line(out, line, width);
    /* Grouped: each domain's line, then its own processes (rows are sorted by domain first).
     * The domain lines take rows of a screen too. */
    size_t groups = t->grouped ? t->n_order : 1, shown = 0, i = 0;
    long cap = max_rows;
    if (cap >= 0 && t->grouped)
        cap = cap > (long)groups ? cap - (long)groups : 0;
    for (size_t k = 0; k < groups; k++) {
        if (t->grouped && (cap < 0 || shown < (size_t)cap)) {
            domain_line(t, t->by_order[k], line, sizeof line);
            put_line(out, line, width);
        }
        for (; i < t->n && (!t->grouped || t->rows[i].dorder == (int)k); i++) {
            const ls_row_t *r = &t->rows[i];
            sum_c = sat_add(sum_c, r->committed);
            sum_t = sat_add(sum_t, r->touched);
            sum_p = sat_add(sum_p, r->pss ? r->pss : r->touched);
            sum_e = sat_add(sum_e, r->exposure);
            sum_s = sat_add(sum_s, r->slack);
            if (cap >= 0 && shown >= (size_t)cap)
                continue;
            shown++;
            len = 0;
            for (int c = 0; c < C_N; c++) {
                if (!show[c])
                    continue;
                const char *v = cell;
                switch (c) {
                case C_PID: snprintf(cell, sizeof cell, "%llu", (unsigned long long)r->pid); break;
                case C_NAME: printable(r->name, nm, sizeof nm); v = nm; break;
                case C_COMMITTED: human(r->committed, cell, sizeof cell); break;
                case C_TOUCHED: human(r->touched, cell, sizeof cell); break;
                case C_EXPOSURE: human(r->exposure, cell, sizeof cell); break;
                case C_SLACK: human(r->slack, cell, sizeof cell); break;
                case C_PEAKC: human(r->peak_committed, cell, sizeof cell); break;
                case C_PEAKT: human(r->peak_touched, cell, sizeof cell); break;
                case C_AGE: human_age(age_s(r, now), cell, sizeof cell); break;
                }
                add_cell(line, sizeof line, &len, c == C_PID, cols[c].width, c == C_NAME, v);
            }
            put_line(out, line, width);
        }
    }
    if (cap >= 0 && t->n > shown) {
        snprintf(line, sizeof line, "%8s (%zu more)", "...", t->n - shown);
        put_line(out, line, width);
    }
    /* The sums under their columns, then what the registry says of itself. */
    len = 0;
    for (int c = 0; c < C_N; c++) {
        if (!show[c])
            continue;
        const char *v = "";
        switch (c) {
        case C_PID: v = "total"; break;
        case C_COMMITTED: v = human(sum_c, cell, sizeof cell); break;
        case C_TOUCHED: v = human(sum_t, cell, sizeof cell); break;
        case C_EXPOSURE: v = human(sum_e, cell, sizeof cell); break;
        case C_SLACK: v = human(sum_s, cell, sizeof cell); break;
        }
        add_cell(line, sizeof line, &len, c == C_PID, cols[c].width, c == C_NAME, v);
    }
    while (len > 0 && line[len - 1] == ' ')
        line[--len] = '\0';
    put_line(out, line, width);
    char pss[32];
    snprintf(line, sizeof line, "%zu process%s, slots %llu/%llu, pressure %s, touched %s with "
             "shared pages counted once", t->n, t->n == 1 ? "" : "es",
             (unsigned long long)t->in_use, (unsigned long long)t->slot_count,
             pressure_name(t->pressure), human(sum_p, pss, sizeof pss));
    put_line(out, line, width);
    if (t->total) {
        char a[32], tot[32], la[32], lt[32], lk[32];
        char ttk[48] = "not falling";
        if (t->ttk_ms != UINT64_MAX)
            snprintf(ttk, sizeof ttk, "%.1f s to the kill line", (double)t->ttk_ms / 1000.0);
        snprintf(line, sizeof line, "preoomd: %s available of %s, lines ask/term/kill %s/%s/%s, %s",
                 human(t->available, a, sizeof a), human(t->total, tot, sizeof tot),
                 human(t->ask, la, sizeof la), human(t->term, lt, sizeof lt),
                 human(t->kill, lk, sizeof lk), ttk);
        put_line(out, line, width);
    }
}

int preoom_ls_show(const char *reg_name, int sort_key, int json, int max_rows, int width,
                   FILE *out, FILE *err)
{
    return preoom_ls_show_trend(reg_name, sort_key, json, max_rows, width, NULL, out, err);
}

int preoom_ls_show_trend(const char *reg_name, int sort_key, int json, int max_rows, int width,
                         preoom_ls_trend_t *trend, FILE *out, FILE *err)
{
    ls_table_t t;
    const char *why = "";
    int rc = walk(reg_name, &t, &why);
    if (rc != 0) {
        /* EPROTO only says "bad contents", which `why` already says better. */
        if (rc == -EPROTO)
            fprintf(err, "preoom: registry /dev/shm/preoom.%s: %s\n", reg_name, why);
        else
            fprintf(err, "preoom: registry /dev/shm/preoom.%s: %s (%s)\n", reg_name, why,
                    strerror(-rc));
        free(t.rows);
        return 1;
    }
    verify(&t);
    place(&t, trend);
    sort_key_now = sort_key;
    if (t.n > 1)
        qsort(t.rows, t.n, sizeof *t.rows, cmp_rows);
    if (json)
        print_json(reg_name, &t, out);
    else
        print_table(&t, max_rows, width, sort_key, out);
    free(t.rows);
    free(t.dom);
    if (fflush(out) != 0 || ferror(out)) {
        fprintf(err, "preoom: cannot write the output: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: preoom ls [--registry NAME] [--json] "
               "[--sort committed|touched|exposure|slack|peak|pid|name] [--version]\n");
}

int preoom_ls_common_arg(const char *cmd, int argc, char **argv, int *i, const char **reg_name,
                         int *sort, const char **sort_name, void (*print_usage)(FILE *))
{
    const char *a = argv[*i], *v;
    int r;
    if ((r = preoom_cli_value(cmd, "--sort", argc, argv, i, &v)) != 0) {
        if (r == 2)
            return 2;
        if ((*sort = preoom_ls_sort_key(v)) < 0)
            return preoom_cli_error(cmd, "--sort wants a column (committed, touched, exposure, "
                                         "slack, peak, pid or name), not '%s'", v);
        if (sort_name)
            *sort_name = v;
    } else if ((r = preoom_cli_value(cmd, "--registry", argc, argv, i, &v)) != 0) {
        if (r == 2)
            return 2;
        *reg_name = v;
    } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
        print_usage(stdout);
        return 1;
    } else if (preoom_cli_is_version(a)) {
        preoom_cli_print_version(cmd);
        return 1;
    } else {
        return preoom_cli_error(cmd, "unknown option '%s'", a);
    }
    return 0;
}

int preoom_cmd_ls(const char *reg_name, int argc, char **argv)
{
    int json = 0, sort = SORT_PID;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
            continue;
        }
        int r = preoom_ls_common_arg("ls", argc, argv, &i, &reg_name, &sort, NULL, usage);
        if (r)
            return r == 1 ? 0 : 2;
    }
    return preoom_ls_show(reg_name, sort, json, -1, -1, stdout, stderr);
}

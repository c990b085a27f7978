/* tools/cmd_explain.c — `preoom explain`: who preoomd would choose right now, and why.
 *
 * Reads the registry (read-only) and /proc exactly as the daemon does (candidates.c,
 * readings.c, pressure.c, badness.c), then prints the pressure assessment and the ranking,
 * each process's score broken into its terms, ineligible ones with the reason. Changes
 * nothing.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "badness.h"
#include "candidates.h"
#include "cmd.h"
#include "pressure.h"
#include "readings.h"

static preoom_gathered_t g;
static preoom_badness_t *scores;
static size_t *order;

static int cmp_rank(const void *pa, const void *pb)
{
    size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
    return preoom_badness_compare(&g.procs[a].c, &scores[a], &g.procs[b].c, &scores[b]);
}

/* The floor's one escaper: bytes outside printable ASCII (a process's own name may hold
 * any) become \u00XX, never raw bytes that are not UTF-8. */
static void json_str(const char *s)
{
    /* A cgroup path (up to PREOOM_CGROUP_PATH_MAX) of bytes that each take six. */
    static char esc[6 * PREOOM_CGROUP_PATH_MAX + 8];
    preoom_json_escape(esc, sizeof esc, s);
    printf("\"%s\"", esc);
}

int preoom_cmd_explain(const char *reg_name, int argc, char **argv)
{
    static const struct option lo[] = {{"policy", 1, 0, 'p'}, {"cgroup", 1, 0, 'c'},
                                       {"json", 0, 0, 'j'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    preoom_policy_t policy = PREOOM_POLICY_PREOOM;
    const char *cgroup = NULL;
    int json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (preoom_policy_from_name(optarg, &policy) != 0) {
                fprintf(stderr, "preoom: --policy '%s' is not preoom, kernel or classic\n", optarg);
                return 2;
            }
            break;
        case 'c': cgroup = optarg; break;
        case 'j': json = 1; break;
        case 'h':
            printf("usage: preoom explain [--policy preoom|kernel|classic] [--cgroup PATH] [--json]\n");
            return 0;
        default: return 2;
        }
    }
    preoom_procfs_t fs;
    preoom_procfs_init(&fs);
    preoom_reg_t reg;
    const char *why = "";
    preoom_bus_install();
    int rc = preoom_reg_open(reg_name, 0, 0, -1, 0, &reg, &why);
    if (rc != 0) {
        fprintf(stderr, "preoom: registry /dev/shm/preoom.%s: %s\n", reg_name, why);
        return 1;
    }
    preoom_gather_opts_t o;
    memset(&o, 0, sizeof o);
    char path[128];
    preoom_gather_opts_for(&reg, reg_name, &o, path, sizeof path);
    o.check_maps = true;
    o.want_children = policy == PREOOM_POLICY_CLASSIC;
    g.cap = reg.slot_count;
    g.procs = calloc(g.cap, sizeof *g.procs);
    scores = calloc(g.cap, sizeof *scores);
    order = calloc(g.cap, sizeof *order);
    preoom_candidate_t *cands = calloc(g.cap, sizeof *cands);
    if (!g.procs || !scores || !order || !cands) {
        fprintf(stderr, "preoom: out of memory\n");
        return 1;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    preoom_gather(&fs, &reg, &o, NULL, (uint64_t)ts.tv_sec * 1000, &g);
    char cgdir[PREOOM_CGROUP_PATH_MAX] = "";
    if (cgroup)
        snprintf(cgdir, sizeof cgdir, "%s", cgroup);
    else
        preoom_detect_cgroup(&fs, &g, cgdir, sizeof cgdir);
    preoom_readings_t r;
    if (preoom_read_readings(&fs, cgdir, g.exposure_bytes, &r, NULL) == -ENOENT && cgroup) {
        fprintf(stderr, "preoom: --cgroup %s: not a memory cgroup this machine has\n", cgroup);
        return 1;
    }
    preoom_thresholds_t th;
    preoom_thresholds_defaults(&th);
    preoom_assessment_t a;
    preoom_pressure_assess(&th, &r, &a);
    preoom_badness_ctx_t ctx;
    /* Rank as the daemon would: it is the one process never chosen. */
    uint64_t lvl = 0, at_ns = 0, arb = 0;
    preoom_reg_pressure(&reg, &lvl, &at_ns, &arb);
    int32_t arbiter = (int32_t)arb;
    preoom_rank_ctx(&ctx, policy, arbiter > 0 ? arbiter : getpid(), a.total_bytes);
    for (size_t i = 0; i < g.n; i++)
        cands[i] = g.procs[i].c;
    long victim = preoom_badness_select(&ctx, cands, g.n, scores);
    for (size_t i = 0; i < g.n; i++)
        order[i] = i;
    if (g.n > 1)
        qsort(order, g.n, sizeof *order, cmp_rank);

    if (json) {
        printf("{\"registry\": ");
        json_str(reg_name);
        printf(", \"policy\": \"%s\", \"pressure\": \"%s\", \"reason\": ",
               preoom_policy_name(policy), preoom_pressure_name(a.level));
        json_str(a.reason);
        printf(", \"total\": %llu, \"available\": %llu, \"exposure\": %llu, \"cgroup\": ",
               (unsigned long long)a.total_bytes, (unsigned long long)a.available_bytes,
               (unsigned long long)g.exposure_bytes);
        json_str(a.in_cgroup ? cgdir : "");
        printf(", \"victim\": %d, \"ranking\": [", victim >= 0 ? (int)g.procs[victim].c.pid : 0);
        for (size_t k = 0; k < g.n; k++) {
            size_t i = order[k];
            const preoom_badness_t *s = &scores[i];
            printf("%s{\"rank\": %zu, \"pid\": %d, \"name\": ", k ? ", " : "", k + 1,
                   (int)g.procs[i].c.pid);
            json_str(g.procs[i].name);
            printf(", \"eligible\": %s, \"why\": \"%s\", \"score\": %lld, \"touched\": %llu, "
                   "\"committed\": %llu, \"terms\": [",
                   s->why == PREOOM_ELIGIBLE ? "true" : "false", preoom_ineligible_name(s->why),
                   s->why == PREOOM_ELIGIBLE ? (long long)s->score : -1LL,
                   (unsigned long long)g.procs[i].c.touched_bytes,
                   (unsigned long long)g.procs[i].c.committed_bytes);
            for (size_t t = 0; t < s->n_terms; t++)
                printf("%s{\"term\": \"%s\", \"op\": \"%c\", \"value\": %lld, \"total\": %lld}",
                       t ? ", " : "", s->terms[t].name, s->terms[t].op,
                       (long long)s->terms[t].value, (long long)s->terms[t].total);
            printf("]}");
        }
        printf("]}\n");
        preoom_reg_close(&reg);
        return 0;
    }
    printf("pressure: %s (%s): %.1f MiB available of %.1f MiB (%.1f%%)%s%s, exposure %.1f MiB\n",
           preoom_pressure_name(a.level), a.reason, (double)a.available_bytes / 1048576.0,
           (double)a.total_bytes / 1048576.0,
           a.total_bytes ? 100.0 * (double)a.available_bytes / (double)a.total_bytes : 0.0,
           a.in_cgroup ? " in cgroup " : "", a.in_cgroup ? cgdir : "",
           (double)g.exposure_bytes / 1048576.0);
    printf("policy: %s; %zu registered process%s%s\n\n", preoom_policy_name(policy), g.n,
           g.n == 1 ? "" : "es", g.skipped ? " (and stale slots, reaped by the daemon)" : "");
    printf("%4s %7s %-16s %12s %10s %10s  %s\n", "rank", "pid", "name", "score", "touched",
           "committed", "terms / why not");
    for (size_t k = 0; k < g.n; k++) {
        size_t i = order[k];
        const preoom_badness_t *s = &scores[i];
        char terms[1024];
        if (s->why == PREOOM_ELIGIBLE)
            preoom_badness_format(s, terms, sizeof terms);
        else
            snprintf(terms, sizeof terms, "never chosen: %s", preoom_ineligible_name(s->why));
        char sc[24];
        if (s->why == PREOOM_ELIGIBLE)
            snprintf(sc, sizeof sc, "%lld", (long long)s->score);
        else
            snprintf(sc, sizeof sc, "-");
        printf("%4zu %7d %-16.16s %12s %9.1fM %9.1fM  %s%s\n", k + 1, (int)g.procs[i].c.pid,
               g.procs[i].name, sc, (double)g.procs[i].c.touched_bytes / 1048576.0,
               (double)g.procs[i].c.committed_bytes / 1048576.0, terms,
               (long)i == victim ? "  <- would be chosen" : "");
    }
    if (g.n == 0)
        printf("(no registered process)\n");
    preoom_reg_close(&reg);
    return 0;
}

/* tools/cmd_explain.c — `preoom explain`: who preoomd would choose right now, and why.
 *
 * Decides as the daemon does: with the settings the running preoomd published beside its
 * registry (dconf.c; the defaults when none runs, and --policy overrides), from the same
 * gathering (candidates.c, readings.c) and through the same engine (engine.c) with no hands.
 * Prints the pressure against the three lines, the forecast, the asks the engine would send
 * and the ranking, each process's score broken into its terms, ineligible ones with the
 * reason. With --domain PATH, the decision of one memory domain (domains.c): only the
 * processes inside it, against its limit, as preoomd decides for each domain. Changes nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "badness.h"
#include "candidates.h"
#include "cli.h"
#include "cmd.h"
#include "dconf.h"
#include "conffile.h"
#include "domains.h"
#include "engine.h"
#include "pressure.h"
#include "readings.h"

static preoom_gathered_t g;
static preoom_domains_t doms;

/* Keep the gathered processes inside the domain `want` names ("host" or "/" for the host):
 * the domains are found from the registered processes' own cgroups, as preoomd finds them.
 * Its index, or -1 with the reason said on stderr. `dir` gets the domain's memory cgroup
 * ("" for the host). */
static int keep_domain(const preoom_procfs_t *fs, const char *want, char *dir, size_t cap)
{
    int32_t *pids = calloc(g.n + 1, sizeof *pids);
    int *in = calloc(g.n + 1, sizeof *in);
    bool *keep = calloc(g.n + 1, sizeof *keep);
    int at = -1;
    if (!pids || !in || !keep) {
        fprintf(stderr, "preoom: out of memory\n");
        goto out;
    }
    size_t n = 0;
    for (size_t i = 0; i < g.n; i++)
        if (g.procs[i].registered)
            pids[n++] = g.procs[i].c.pid;
    preoom_domains_init(&doms);
    preoom_domains_discover(fs, pids, n, in, &doms);
    at = strcmp(want, "host") == 0 ? PREOOM_DOMAIN_HOST : preoom_domains_find(&doms, fs, want);
    if (at < 0) {
        fprintf(stderr, "preoom: explain: --domain %s: no registered process is in that memory "
                        "domain; the domains are: host", want);
        for (size_t i = 1; i < doms.n; i++)
            if (doms.d[i].used)
                fprintf(stderr, ", %s", doms.d[i].path);
        fprintf(stderr, "\n");
        goto out;
    }
    /* Registered processes by their innermost domain; the unregistered ones the gathering
     * added were found in the domain's own cgroup, or on the host for the host. */
    for (size_t i = 0, k = 0; i < g.n; i++)
        keep[i] = g.procs[i].registered ? preoom_domain_within(&doms, in[k++], at) : true;
    preoom_gathered_keep(&g, keep);
    snprintf(dir, cap, "%s", doms.d[at].dir);
out:
    free(pids);
    free(in);
    free(keep);
    return at;
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

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The running daemon's settings, when a live preoomd of the registry's owner published
 * them: 1 loaded, 0 none, -1 a bad file (said on stderr). */
/* The published settings' text, kept for the [domain] sections preoomd wrote after them. */
static char pub_text[64 * 1024];
static size_t pub_len;

static int load_published(const preoom_reg_t *reg, const char *reg_path, preoom_dconf_t *d,
                          char *from, size_t cap)
{
    uint64_t lvl, at, arb = 0;
    if (preoom_reg_pressure(reg, &lvl, &at, &arb) != 0)
        return 0;
    int32_t arbiter = arb > 0x7fffffff ? 0 : (int32_t)arb;
    if (arbiter <= 0 || (kill(arbiter, 0) != 0 && errno == ESRCH))
        return 0;
    preoom_dconf_path(reg_path, from, cap);
    int fd = open(from, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct stat st, rst;
    char *text = pub_text;
    ssize_t n = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && fstat(reg->fd, &rst) == 0 &&
        (st.st_uid == rst.st_uid || st.st_uid == 0))
        n = read(fd, text, sizeof pub_text - 1);
    close(fd);
    if (n < 0) {
        fprintf(stderr, "preoom: %s is not preoomd's (not a regular file of the registry's "
                        "owner): ignored\n", from);
        return -1;
    }
    char err[512];
    if (preoom_dconf_load(d, text, (size_t)n, err, sizeof err) != 0) {
        fprintf(stderr, "preoom: %s: %s: ignored\n", from, err);
        return -1;
    }
    pub_len = (size_t)n;
    return 1;
}

/* The daemon's settings for one domain: its defaults, then the [domain] sections it
 * published that match the domain's cgroup path ("/" for the host), as preoomd applies
 * them. 1 when sections matched (d replaced), 0 when none did, -1 on a bad text. */
static int domain_settings(const char *path, preoom_dconf_t *d, const char *from)
{
    if (!pub_len)
        return 0;
    static preoom_conffile_t cf;
    char err[768];
    preoom_conffile_init(&cf);
    if (preoom_conffile_parse(&cf, pub_text, pub_len, from, err, sizeof err) != 0) {
        fprintf(stderr, "preoom: %s\n", err);
        return -1;
    }
    static preoom_dconf_t nd;
    preoom_dconf_defaults(&nd);
    if (preoom_conffile_apply_global(&cf, &nd, err, sizeof err) != 0) {
        fprintf(stderr, "preoom: %s\n", err);
        return -1;
    }
    int m = preoom_conffile_apply_domain(&cf, path, &nd, err, sizeof err);
    if (m <= 0) {
        if (m < 0)
            fprintf(stderr, "preoom: %s\n", err);
        return m < 0 ? -1 : 0;
    }
    nd.scope_given = true;
    if (preoom_dconf_finish(&nd, err, sizeof err) != 0) {
        fprintf(stderr, "preoom: %s: [domain] sections for %s: %s\n", from, path, err);
        return -1;
    }
    *d = nd;
    return 1;
}

int preoom_cmd_explain(const char *reg_name, int argc, char **argv)
{
    static const struct option lo[] = {{"policy", 1, 0, 'p'}, {"cgroup", 1, 0, 'c'},
                                       {"domain", 1, 0, 'D'}, {"json", 0, 0, 'j'},
                                       {"defaults", 0, 0, 'd'}, {"help", 0, 0, 'h'},
                                       {0, 0, 0, 0}};
    const char *policy_name = NULL, *cgroup = NULL, *domain = NULL;
    int json = 0, defaults = 0, c;
    optind = 1;
    opterr = 0; /* the shared one-line style below, not getopt's own message */
    int prev;
    while (prev = optind, (c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        /* A value that looks like an option is a forgotten value ("--cgroup --json"). */
        if ((c == 'p' || c == 'c') && optarg[0] == '-')
            return preoom_cli_error("explain", "%s wants a value, not the option-like '%s'",
                                    argv[prev], optarg);
        switch (c) {
        case 'p': policy_name = optarg; break;
        case 'c': cgroup = optarg; break;
        case 'D': domain = optarg; break;
        case 'j': json = 1; break;
        case 'd': defaults = 1; break;
        case 'h':
            printf("usage: preoom explain [--policy preoom|kernel|classic] [--cgroup PATH | "
                   "--domain PATH] [--defaults] [--json]\n"
                   "  decides with the settings the running preoomd published (--defaults: "
                   "preoomd's defaults);\n"
                   "  --domain: one memory domain's decision (host, or a limited cgroup's "
                   "path as `preoom ls` shows it)\n");
            return 0;
        case ':':
            return preoom_cli_error("explain", "%s wants a value", argv[optind - 1]);
        default:
            return preoom_cli_error("explain", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (cgroup && domain) {
        fprintf(stderr, "preoom: explain: --cgroup and --domain both name what to decide for; "
                        "give one (see preoom explain --help)\n");
        return 2;
    }
    /* A bad value is a usage error, whether or not a registry is there to explain. */
    preoom_policy_t policy_check;
    if (policy_name && preoom_policy_from_name(policy_name, &policy_check) != 0)
        return preoom_cli_error("explain", "--policy wants preoom, kernel or classic, not '%s'",
                                policy_name);
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
    char path[128], from[200] = "";
    preoom_gather_opts_for(&reg, reg_name, &o, path, sizeof path);
    static preoom_dconf_t d;
    preoom_dconf_defaults(&d);
    int published = defaults ? 0 : load_published(&reg, path, &d, from, sizeof from);
    if (published <= 0) {
        char err[256];
        preoom_dconf_finish(&d, err, sizeof err);
    }
    if (policy_name) {
        char err[256];
        if (preoom_dconf_set(&d, "policy", policy_name, err, sizeof err) != 0) {
            fprintf(stderr, "preoom: %s\n", err);
            return 2;
        }
    }
    if (cgroup)
        snprintf(d.cgroup, sizeof d.cgroup, "%s", cgroup);
    o.check_maps = true;
    o.want_children = d.eng.policy == PREOOM_POLICY_CLASSIC;
    o.want_private = d.eng.policy == PREOOM_POLICY_PREOOM;
    preoom_dconf_gather_opts(&d, &o);
    g.cap = reg.slot_count + 4096;
    g.procs = calloc(g.cap, sizeof *g.procs);
    preoom_badness_t *scores = calloc(g.cap, sizeof *scores);
    size_t *order = calloc(g.cap, sizeof *order);
    preoom_engine_proc_t *ep = calloc(g.cap, sizeof *ep);
    preoom_history_t *h = calloc(1, sizeof *h);
    if (!g.procs || !scores || !order || !ep || !h) {
        fprintf(stderr, "preoom: out of memory\n");
        return 1;
    }
    h->window_ms = 2000;
    char cgdir[PREOOM_CGROUP_PATH_MAX] = "", dom_path[PREOOM_CGROUP_PATH_MAX] = "";
    int dom_at = -1;
    bool domain_sections = false;
    /* Two looks 300 ms apart, so growth and the forecast have something to go on (the daemon
     * looks back 30 s; explain can only see what happens while it runs). */
    preoom_engine_t e;
    preoom_engine_init(&e, &d.eng, scores, g.cap);
    preoom_engine_input_t in;
    preoom_decision_t dec;
    for (int look = 0; look < 2; look++) {
        if (look)
            usleep(300000);
        uint64_t now = mono_ms();
        preoom_gather(&fs, &reg, &o, h, now, &g);
        if (domain) {
            /* Looked for again on the second look: a process may have moved meanwhile. */
            if ((dom_at = keep_domain(&fs, domain, cgdir, sizeof cgdir)) < 0)
                return 1;
            snprintf(dom_path, sizeof dom_path, "%s",
                     dom_at == PREOOM_DOMAIN_HOST ? "host" : doms.d[dom_at].path);
        } else if (!cgdir[0]) {
            if (d.cgroup[0])
                snprintf(cgdir, sizeof cgdir, "%s", d.cgroup);
            else
                preoom_detect_cgroup(&fs, &g, cgdir, sizeof cgdir);
        }
        if (look == 0 && published > 0 && (dom_path[0] || cgdir[0])) {
            /* The published [domain] sections that match this domain, as the daemon has them. */
            char cpath[PREOOM_CGROUP_PATH_MAX];
            const char *p = dom_path[0] ? (strcmp(dom_path, "host") ? dom_path : "/") : cgdir;
            if (!dom_path[0]) {
                /* A cgroup directory: its path as /proc/PID/cgroup names it. */
                size_t rl = strlen(fs.cgroup_root);
                p = strncmp(cgdir, fs.cgroup_root, rl) == 0 ? cgdir + rl : cgdir;
                if (!strncmp(p, "/memory/", 8) || !strncmp(p, "/unified/", 9))
                    p = strchr(p + 1, '/');
            }
            snprintf(cpath, sizeof cpath, "%s", p && *p ? p : "/");
            if (domain_settings(cpath, &d, from) > 0) {
                if (policy_name) {
                    char err[256];
                    preoom_dconf_set(&d, "policy", policy_name, err, sizeof err);
                }
                memcpy(o.protect, d.protect, sizeof d.protect);
                o.n_protect = d.n_protect;
                o.prefer = d.prefer_set ? &d.prefer_re : NULL;
                o.avoid = d.avoid_set ? &d.avoid_re : NULL;
                preoom_engine_init(&e, &d.eng, scores, g.cap);
                domain_sections = true;
            }
        }
        o.cgroup_dir = cgdir;
        o.scope = (int)d.scope;
        if (cgdir[0] || o.scope == PREOOM_SCOPE_ALL)
            preoom_gather_unregistered(&fs, &o, h, now, &g);
        preoom_readings_t r;
        if (preoom_read_readings(&fs, cgdir, g.exposure_bytes, &r, NULL) == -ENOENT && cgroup) {
            fprintf(stderr, "preoom: --cgroup %s: not a memory cgroup this machine has\n", cgroup);
            return 1;
        }
        /* A cgroup's decision is the cgroup's alone, as preoomd's engine for it decides. */
        r.cgroup_only = cgdir[0] != '\0';
        preoom_gathered_to_engine(&g, ep);
        memset(&in, 0, sizeof in);
        in.now_ms = now;
        in.r = r;
        in.procs = ep;
        in.n = g.n;
        uint64_t lvl, at, arb = 0;
        preoom_reg_pressure(&reg, &lvl, &at, &arb);
        in.self_pid = arb > 0 && arb <= 0x7fffffff ? (int32_t)arb : getpid();
        in.biggest_pid = g.biggest_pid;
        in.biggest_bytes = g.biggest_bytes;
        snprintf(in.biggest_name, sizeof in.biggest_name, "%s", g.biggest_name);
        in.biggest_is_candidate = g.biggest_in_scope;
        preoom_engine_step(&e, &in, NULL, &dec);
    }
    size_t eligible = preoom_engine_rank(&e, &in, dec.shortfall_bytes, order);
    long victim = eligible ? (long)order[0] : -1;
    const char *lvl = preoom_pressure_name((enum preoom_pressure)dec.level);

    if (json) {
        printf("{\"schema\": 2, \"registry\": ");
        json_str(reg_name);
        printf(", \"settings\": ");
        json_str(published > 0 ? from : "defaults");
        printf(", \"policy\": \"%s\", \"scope\": \"%s\", \"pressure\": \"%s\", \"reason\": ",
               preoom_policy_name(d.eng.policy), preoom_scope_name(d.scope), lvl);
        json_str(dec.reason ? dec.reason : "");
        printf(", \"total\": %llu, \"available\": %llu, \"effective\": %llu, \"exposure\": %llu, "
               "\"ask_line\": %llu, \"term_line\": %llu, \"kill_line\": %llu, "
               "\"fall_bytes_per_s\": %lld, \"time_to_kill_ms\": %lld, \"shortfall\": %llu, "
               "\"cgroup\": ",
               (unsigned long long)dec.total_bytes, (unsigned long long)dec.available_bytes,
               (unsigned long long)dec.effective_bytes, (unsigned long long)g.exposure_bytes,
               (unsigned long long)dec.ask_bytes, (unsigned long long)dec.term_bytes,
               (unsigned long long)dec.kill_bytes, (long long)dec.fall_bytes_per_s,
               (long long)dec.time_to_kill_ms, (unsigned long long)dec.shortfall_bytes);
        json_str(dec.in_cgroup ? cgdir : "");
        printf(", \"domain\": ");
        json_str(dom_path);
        printf(", \"would_ask\": [");
        int first = 1;
        for (size_t i = 0; i < dec.n_events; i++)
            if (dec.ev[i].kind == PREOOM_EV_ASK) {
                printf("%s{\"pid\": %d, \"bytes\": %llu}", first ? "" : ", ", (int)dec.ev[i].pid,
                       (unsigned long long)dec.ev[i].bytes);
                first = 0;
            }
        printf("], \"victim\": %d, \"ranking\": [", victim >= 0 ? (int)ep[victim].pid : 0);
        for (size_t k = 0; k < in.n; k++) {
            size_t i = order[k];
            const preoom_badness_t *s = &scores[i];
            printf("%s{\"rank\": %zu, \"pid\": %d, \"name\": ", k ? ", " : "", k + 1,
                   (int)ep[i].pid);
            json_str(ep[i].name);
            printf(", \"registered\": %s, \"eligible\": %s, \"why\": \"%s\", \"score\": %lld, "
                   "\"touched\": %llu, \"committed\": %llu, \"private\": %llu, \"callbacks\": %u, "
                   "\"terms\": [",
                   ep[i].registered ? "true" : "false",
                   s->why == PREOOM_ELIGIBLE ? "true" : "false", preoom_ineligible_name(s->why),
                   s->why == PREOOM_ELIGIBLE ? (long long)s->score : -1LL,
                   (unsigned long long)ep[i].c.touched_bytes,
                   (unsigned long long)ep[i].c.committed_bytes,
                   (unsigned long long)ep[i].c.private_bytes, ep[i].callbacks);
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
    printf("settings: %s%s\n", published > 0 ? from : "preoomd's defaults (no running preoomd "
                                                      "published its own)",
           domain_sections ? ", with the [domain] sections that match this domain" : "");
    if (dom_at >= 0)
        printf("domain: %s (%s): the processes inside it only\n", dom_path,
               dom_at == PREOOM_DOMAIN_HOST ? "the whole machine" : doms.d[dom_at].dir);
    printf("pressure: %s (%s): %.1f MiB available of %.1f MiB (%.1f%%)%s%s, exposure %.1f MiB\n",
           lvl, dec.reason, (double)dec.available_bytes / 1048576.0,
           (double)dec.total_bytes / 1048576.0,
           dec.total_bytes ? 100.0 * (double)dec.available_bytes / (double)dec.total_bytes : 0.0,
           dec.in_cgroup ? " in cgroup " : "", dec.in_cgroup ? cgdir : "",
           (double)g.exposure_bytes / 1048576.0);
    printf("lines: ask %.1f MiB, SIGTERM %.1f MiB (and still falling), SIGKILL %.1f MiB\n",
           (double)dec.ask_bytes / 1048576.0, (double)dec.term_bytes / 1048576.0,
           (double)dec.kill_bytes / 1048576.0);
    if (dec.fall_bytes_per_s > 0)
        printf("forecast: falling %.1f MiB/s, kill line in %.1f s\n",
               (double)dec.fall_bytes_per_s / 1048576.0, (double)dec.time_to_kill_ms / 1000.0);
    else
        printf("forecast: not falling (time to the limit: none)\n");
    for (size_t i = 0; i < dec.n_events; i++)
        if (dec.ev[i].kind == PREOOM_EV_ASK)
            printf("would ask pid %d (%s) for %.1f MiB\n", (int)dec.ev[i].pid, dec.ev[i].name,
                   (double)dec.ev[i].bytes / 1048576.0);
    printf("policy: %s, scope %s; %zu process%s%s\n\n", preoom_policy_name(d.eng.policy),
           preoom_scope_name(d.scope), in.n, in.n == 1 ? "" : "es",
           g.skipped ? " (and stale slots, reaped by the daemon)" : "");
    printf("%4s %7s %-16s %12s %10s %10s  %s\n", "rank", "pid", "name", "score", "touched",
           "committed", "terms / why not");
    for (size_t k = 0; k < in.n; k++) {
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
        printf("%4zu %7d %-16.16s %12s %9.1fM %9.1fM  %s%s%s\n", k + 1, (int)ep[i].pid,
               ep[i].name, sc, (double)ep[i].c.touched_bytes / 1048576.0,
               (double)ep[i].c.committed_bytes / 1048576.0, ep[i].registered ? "" : "(unregistered) ",
               terms, (long)i == victim ? "  <- would be chosen" : "");
    }
    if (in.n == 0)
        printf("(no registered process)\n");
    preoom_reg_close(&reg);
    return 0;
}

/* tools/preoomd.c — the arbiter: sees memory pressure coming and settles it before the
 * kernel's OOM killer does, in every memory domain of the host at once.
 *
 * A domain is the host, or a memory cgroup with a limit that holds registered processes
 * (domains.c finds them from the processes' own cgroups; --cgroup restricts them). Each has
 * its own settings (the command line, then the config file's [domain] sections: conffile.c),
 * readings and decision engine (engine.c, where every rule lives). This file is the body and
 * hands: each pass it reads each due domain's pressure (readings.c), gathers the candidates
 * once for all (candidates.c), hands each domain its own snapshot, innermost domains first,
 * and carries out what each decides: asks through the registry (act.c), signals through a
 * pidfd checked against pid and start time, process_mrelease after SIGKILL. A process on its
 * way out for one domain is chosen by no other meanwhile, and a domain holding it waits for
 * it. Every decision is one log line (text, or one JSON object with --log-format json). It
 * publishes its effective settings beside the registry so `preoom explain` decides with the
 * same flags. It protects itself (mlockall, a lowered oom_score_adj) and allocates nothing
 * in the loop except when a new domain appears.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "act.h"
#include "badness.h"
#include "candidates.h"
#include "conffile.h"
#include "dconf.h"
#include "domains.h"
#include "engine.h"
#include "floor.h"
#include "metrics.h"
#include "metrics_fill.h"
#include "notify.h"
#include "pressure.h"
#include "procfs.h"
#include "readings.h"
#include "regwatch.h"

#define PREOOMD_VERSION "0.3.0"
#define REAP_EVERY_MS 1000
#define FAR_GATHER_MS 5000      /* at least; 60 ms more a registered process, to 30 s */
#define METRICS_EVERY_MS 1000
#define METRICS_FAR_MS 5000
#define DISCOVER_NEAR_MS 2000   /* processes moving between cgroups are seen this soon */
#define DISCOVER_FAR_MS 60000   /* new processes are placed at once (registry_news); this
                                 * only catches moves between cgroups, which are rare */
#define MAX_ONLY 32

static volatile sig_atomic_t stop_signal;
static preoom_dconf_t opt;      /* daemon-wide settings, and every domain's defaults */
static preoom_dconf_t opt_raw;  /* the same before its regexes were compiled: a domain's
                                 * settings start from a copy of it */
static preoom_conffile_t *cf;
static const char *conf_file = PREOOM_CONF_DEFAULT;
static bool conf_required, check_config;
static const char *only[MAX_ONLY];
static size_t n_only;
static preoom_procfs_t fs;
static preoom_reg_t reg = {.fd = -1};
static preoom_gather_opts_t gopt;
static char reg_path[128], conf_path[160];
static preoom_gathered_t g;
static size_t n_reg;            /* g.procs[0..n_reg) are the registry's; the rest, a domain's
                                 * unregistered processes, gathered for it and dropped after */
static preoom_engine_proc_t *eall, *edom;
static preoom_badness_t *scores;
static preoom_history_t *history;
static preoom_metrics_t met;
static preoom_domains_t *doms;

/* One domain's life in the daemon, at the same index as in doms. */
typedef struct {
    bool live;
    bool own_prefs;             /* its section set prefer/avoid/protect */
    int sections;               /* [domain] sections that matched it */
    preoom_dconf_t conf;
    preoom_engine_t engine;
    preoom_gather_opts_t gopt;
    int psifd, evfd;
    uint64_t ev_limit;
    int usage_fd;               /* memory.usage_in_bytes or memory.current, kept open */
    uint64_t full_read_ms;      /* the last time every file was read */
    bool far;                   /* far from every line, nothing in flight: cheap passes */
    uint64_t gather_seq;        /* the gathering its processes were last taken from */
    int vfd;                    /* pidfd of its victim in flight */
    int32_t vfd_pid;
    uint64_t vfd_start;
    int v_dom;                  /* the victim's innermost domain */
    bool near, due_now, read_now;
    uint64_t due_ms, last_hostscan;
    int last_level;
    preoom_readings_t r;
    preoom_memcg_t cg;
    int read_rc;
    preoom_decision_t d;
    bool stepped;
    uint64_t exposure, committed, touched;
    uint32_t registered;
} dom_rt_t;
static dom_rt_t *rt;

/* Registered processes' innermost domains, sorted by pid (from the last discovery). */
typedef struct {
    int32_t pid;
    uint64_t start;
    int dom;
} pid_dom_t;
static pid_dom_t *pcache;
static size_t n_pcache;
static int *pdom;               /* innermost domain of g.procs[i], -1 none */
static uint32_t *mdom_of;       /* its place among the metrics' domains */
static uint64_t gather_seq;     /* counts the gatherings */
static uint64_t *slot_seen;     /* per slot: its process (pid and start) when last looked */
static int32_t *scratch_pids;
static int *scratch_dom;
static uint64_t *scratch_starts;
static preoom_notify_t notify;
static preoom_cmdline_cache_t cmdlines;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Under journald (JOURNAL_STREAM set) each line starts with <N>, the sd-daemon priority. */
static int journal;

enum sev { SEV_ERR = 3, SEV_WARNING = 4, SEV_NOTICE = 5, SEV_INFO = 6 };

static void vlog(enum sev sev, const char *fmt, va_list ap)
{
    char buf[4096];
    vsnprintf(buf, sizeof buf, fmt, ap);
    if (opt.log_json) {
        /* Decisions are JSON objects already; other lines become {"msg":...}. */
        if (buf[0] == '{') {
            fprintf(stderr, "%s\n", buf);
        } else {
            fputs("{\"event\":\"message\",\"msg\":\"", stderr);
            for (const char *s = buf; *s; s++) {
                unsigned char c = (unsigned char)*s;
                if (c == '"' || c == '\\')
                    fprintf(stderr, "\\%c", c);
                else if (c < 0x20 || c >= 0x7f)
                    fprintf(stderr, "\\u%04x", c);
                else
                    fputc(c, stderr);
            }
            fputs("\"}\n", stderr);
        }
        return;
    }
    /* ISO-8601 with milliseconds: log lines are read against other logs. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    char when[48];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    static const char *names[] = {"", "", "", "error", "warning", "notice", "info"};
    if (journal)
        fprintf(stderr, "<%d>%s\n", (int)sev, buf);
    else
        fprintf(stderr, "preoomd %s.%03ld %s: %s\n", when, ts.tv_nsec / 1000000, names[sev], buf);
}

static void logline(enum sev sev, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logline(enum sev sev, const char *fmt, ...)
{
    /* -q hides decisions, never warnings. */
    if (opt.quiet && sev > SEV_WARNING)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(sev, fmt, ap);
    va_end(ap);
}

static void fatal(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void fatal(int code, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "preoomd: %s\n", buf);
    if (conf_path[0])
        unlink(conf_path);
    exit(code);
}


static void usage(FILE *f)
{
    fprintf(f,
            "usage: preoomd [OPTIONS]\n"
            "  --registry NAME        registry DIR/preoom.NAME ($PREOOM_REGISTRY or default)\n"
            "  --registry-dir DIR     where registries live (default /dev/shm; e.g. /run/preoom)\n"
            "  --config FILE          settings file (default " PREOOM_CONF_DEFAULT ", then FILE.d/*.conf)\n"
            "  --check-config         read the settings (file and flags), say what each domain\n"
            "                         section gives, and exit: 0 when all are good\n"
            "  --cgroup PATH          watch only this memory cgroup and the limited ones inside it\n"
            "                         (may repeat; default: the host and every limited memory\n"
            "                         cgroup that holds a registered process)\n"
            "  --scope S              registered, cgroup (default with --cgroup) or all: who may be\n"
            "                         signalled; only registered processes can be asked\n"
            "  --policy P             preoom (default), kernel or classic\n"
            "  --ask T --term T --kill T  lines of available memory: 15, 15%%, 200M or 15,200M\n"
            "                         (defaults 15%%, 10%%, 5%%): ask below the first, SIGTERM only\n"
            "                         below the second (and still falling), SIGKILL below the third\n"
            "  --exposure-weight PM   weight of untouched promises, per mille (default 500)\n"
            "  --psi-some PCT --psi-full PCT  PSI marks for asking (defaults 20 and 40; 0 ignores)\n"
            "  --ask-grace MS         how long asks are given (default 1000)\n"
            "  --term-grace MS        SIGTERM to SIGKILL, unless the process names its own (3000)\n"
            "  --max-term-grace MS    cap on a process's own shutdown time (60000)\n"
            "  --kill-grace MS        SIGTERM to SIGKILL below the kill line (250)\n"
            "  --horizon MS           signal only when the kill line is this near in time (5000)\n"
            "  --min-poll MS --max-poll MS  polling bounds (defaults 5 and 1000)\n"
            "  --prefer REGEX --avoid REGEX --protect PID  (--protect may repeat)\n"
            "  --prefer-cgroup GLOB --avoid-cgroup GLOB --protect-cgroup GLOB  the same by\n"
            "                         cgroup path, as /proc/PID/cgroup names it (may repeat)\n"
            "  --kill-group           signal a victim's process group when it leads one\n"
            "  --notify CMD           run CMD (sh -c) on each ask, SIGTERM and SIGKILL: the\n"
            "                         decision in PREOOM_* variables, its JSON on stdin\n"
            "  --notify-timeout MS --notify-max N --notify-events LIST  (10000, 4, ask,sigterm,sigkill)\n"
            "  --allow-uid            act on processes of other users than the registry's\n"
            "  --dry-run              decide and log, send nothing\n"
            "  --log-format F         text (default) or json: one object per decision\n"
            "  --metrics FILE         Prometheus textfile, rewritten every second\n"
            "  --metrics-port PORT    serve the metrics on 127.0.0.1:PORT\n"
            "  --slots N --group GID  when creating the registry\n"
            "  --no-mlock  -v/--verbose  -q/--quiet  -h/--help  --version\n"
            "See preoomd(8).\n");
}

static void parse_options(int argc, char **argv)
{
    /* Every long option is a dconf setting of the same name, but for the few that steer the
     * reading of the settings themselves. */
    static const struct option lo[] = {
        {"registry", 1, 0, 0}, {"registry-dir", 1, 0, 0}, {"cgroup", 1, 0, 0}, {"policy", 1, 0, 0}, {"scope", 1, 0, 0},
        {"ask", 1, 0, 0}, {"term", 1, 0, 0}, {"kill", 1, 0, 0},
        {"exposure-weight", 1, 0, 0}, {"psi-some", 1, 0, 0}, {"psi-full", 1, 0, 0},
        {"ask-grace", 1, 0, 0}, {"term-grace", 1, 0, 0}, {"max-term-grace", 1, 0, 0},
        {"kill-grace", 1, 0, 0}, {"horizon", 1, 0, 0}, {"cooldown", 1, 0, 0},
        {"min-poll", 1, 0, 0}, {"max-poll", 1, 0, 0}, {"prefer", 1, 0, 0}, {"avoid", 1, 0, 0},
        {"protect", 1, 0, 0}, {"allow-uid", 0, 0, 0}, {"dry-run", 0, 0, 0},
        {"prefer-cgroup", 1, 0, 0}, {"avoid-cgroup", 1, 0, 0}, {"protect-cgroup", 1, 0, 0},
        {"kill-group", 0, 0, 0}, {"notify", 1, 0, 0}, {"notify-timeout", 1, 0, 0},
        {"notify-max", 1, 0, 0}, {"notify-events", 1, 0, 0},
        {"log-format", 1, 0, 0}, {"metrics", 1, 0, 0}, {"metrics-port", 1, 0, 0},
        {"slots", 1, 0, 0}, {"group", 1, 0, 0}, {"no-mlock", 0, 0, 0},
        {"config", 1, 0, 'C'}, {"check-config", 0, 0, 'K'},
        {"verbose", 0, 0, 'v'}, {"quiet", 0, 0, 'q'}, {"help", 0, 0, 'h'},
        {"version", 0, 0, 'V'}, {0, 0, 0, 0}};
    char err[768];
    int c, idx;
    opterr = 0; /* our own one-line message below, not getopt's plus the usage */
    /* First pass: where the settings file is (it comes before the flags it gives defaults
     * for), --help and --version. */
    while ((c = getopt_long(argc, argv, "vqhV", lo, &idx)) != -1) {
        if (c == 'C') {
            conf_file = optarg;
            conf_required = true;
        } else if (c == 'K') {
            check_config = true;
        } else if (c == 'h') {
            usage(stdout);
            exit(0);
        } else if (c == 'V') {
            printf("preoomd %s\n", PREOOMD_VERSION);
            exit(0);
        }
    }
    preoom_dconf_defaults(&opt);
    const char *env = getenv("PREOOM_REGISTRY");
    if (env && *env)
        opt.registry = env;
    opt.registry_dir = getenv("PREOOM_REGISTRY_DIR");
    cf = calloc(1, sizeof *cf);
    if (!cf)
        fatal(2, "out of memory");
    preoom_conffile_init(cf);
    if (conf_file && *conf_file &&
        (preoom_conffile_read(cf, conf_file, conf_required, err, sizeof err) != 0 ||
         preoom_conffile_apply_global(cf, &opt, err, sizeof err) != 0))
        fatal(2, "%s", err);
    optind = 0;
    while ((c = getopt_long(argc, argv, "vqhV", lo, &idx)) != -1) {
        switch (c) {
        case 0:
            if (optarg && optarg[0] == '-' && optarg[1] && !(optarg[1] >= '0' && optarg[1] <= '9'))
                fatal(2, "--%s needs a value, not the option '%s'", lo[idx].name, optarg);
            if (!strcmp(lo[idx].name, "cgroup")) {
                if (n_only == MAX_ONLY)
                    fatal(2, "--cgroup may be given at most %d times", MAX_ONLY);
                only[n_only++] = optarg;
            }
            if (preoom_dconf_set(&opt, lo[idx].name, optarg, err, sizeof err) != 0)
                fatal(2, "%s", err);
            break;
        case 'C': case 'K': break;
        case 'v': opt.verbose++; break;
        case 'q': opt.quiet = true; break;
        default:
            fatal(2, "unknown option, or one missing its value: '%s' (see preoomd --help)",
                      argv[optind - 1]);
        }
    }
    if (optind < argc)
        fatal(2, "unexpected argument '%s'", argv[optind]);
    opt_raw = opt;
    if (preoom_dconf_finish(&opt, err, sizeof err) != 0)
        fatal(2, "%s", err);
    /* Every [domain] section must give good settings on top of these, now, not when its
     * cgroup first appears under pressure. */
    for (size_t s = 0; s < cf->n_s; s++) {
        preoom_dconf_t d = opt_raw;
        int rc = preoom_conffile_apply_domain(cf, cf->s[s].pattern, &d, err, sizeof err);
        if (rc >= 0 && preoom_dconf_finish(&d, err, sizeof err) != 0)
            rc = -EINVAL;
        if (rc < 0) {
            if (strncmp(err, cf->s[s].origin, strlen(cf->s[s].origin)) != 0) {
                char tmp[1600];
                snprintf(tmp, sizeof tmp, "%s: [domain %s]: %s", cf->s[s].origin,
                         cf->s[s].pattern, err);
                strcpy(err, tmp);
            }
            fatal(2, "%s", err);
        }
        if (check_config) {
            const preoom_thresholds_t *t = &d.eng.th;
            printf("[domain %s] (%s): policy %s, scope %s, ask %u.%02u%%/%" PRIu64
                   " MiB, term %u.%02u%%/%" PRIu64 " MiB, kill %u.%02u%%/%" PRIu64
                   " MiB, term-grace %u ms%s%s\n",
                   cf->s[s].pattern, cf->s[s].origin, preoom_policy_name(d.eng.policy),
                   preoom_scope_name(d.scope), t->ask.percent_x100 / 100,
                   t->ask.percent_x100 % 100, t->ask.bytes >> 20, t->term.percent_x100 / 100,
                   t->term.percent_x100 % 100, t->term.bytes >> 20, t->kill.percent_x100 / 100,
                   t->kill.percent_x100 % 100, t->kill.bytes >> 20, d.eng.term_grace_ms,
                   d.avoid_set ? ", avoid " : "", d.avoid_set ? d.avoid : "");
        }
        if (d.prefer_set)
            regfree(&d.prefer_re);
        if (d.avoid_set)
            regfree(&d.avoid_re);
    }
    if (check_config) {
        printf("preoomd: settings good (%zu file%s, %zu [domain] section%s)\n", cf->files,
               cf->files == 1 ? "" : "s", cf->n_s, cf->n_s == 1 ? "" : "s");
        exit(0);
    }
}

static void on_signal(int sig)
{
    stop_signal = sig;
}

/* Keep our own pages in RAM and make us a late choice for the kernel, not an immune one: a
 * leaking preoomd must still be killable (earlyoom's reasoning for -100, not -1000). */
static void protect_self(void)
{
    if (opt.mlock && mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0 &&
        mlockall(MCL_CURRENT | MCL_FUTURE) != 0)
        logline(SEV_WARNING, "mlockall failed (%s); running unlocked", strerror(errno));
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "-100", 4) != 4)
        logline(SEV_WARNING, "cannot lower our oom_score_adj (%s)", strerror(errno));
    if (fd >= 0)
        close(fd);
}

/* ---- the hands ------------------------------------------------------------------------ */

static int hand_ask(void *ctx, const preoom_engine_proc_t *p, int level, uint64_t bytes,
                    uint32_t *serial)
{
    (void)ctx;
    return preoom_act_ask(&reg, p->slot_index, p->pid, p->start_time, level, bytes, serial);
}

static void victim_close(dom_rt_t *x)
{
    if (x->vfd >= 0)
        close(x->vfd);
    x->vfd = -1;
    x->vfd_pid = 0;
}

static int hand_signal(void *ctx, const preoom_engine_proc_t *p, int sig)
{
    dom_rt_t *x = ctx;
    if (x->vfd < 0 || x->vfd_pid != p->pid || x->vfd_start != p->start_time) {
        victim_close(x);
        /* A registered process must still map this registry; one found in the watched
         * cgroup (--scope) is proven by pid and start time alone. */
        int fd = preoom_act_open(&fs, p->pid, p->start_time, p->registered ? gopt.registry_dev : 0,
                                 p->registered ? gopt.registry_ino : 0);
        if (fd < 0)
            return fd;
        x->vfd = fd;
        x->vfd_pid = p->pid;
        x->vfd_start = p->start_time;
    }
    int rc = opt.kill_group ? preoom_act_signal_group(x->vfd, p->pid, sig)
                            : preoom_act_signal(x->vfd, sig);
    if (rc > 0)
        rc = 0;
    if (rc == 0 && sig == SIGKILL) {
        /* Give the victim's memory back now rather than when its exit gets round to it. */
        int mr = preoom_act_mrelease(x->vfd);
        static int said;
        if (mr != 0 && mr != -EINVAL && !said) {
            logline(SEV_WARNING, "process_mrelease failed (%s): memory comes back when "
                                 "the victim's exit frees it (a seccomp filter without it?)",
                    strerror(-mr));
            said = 1;
        }
    }
    return rc;
}

static void hand_cmdline(void *ctx, const preoom_engine_proc_t *p, char *buf, size_t cap)
{
    (void)ctx;
    /* Looked up, never read here: see preoom_cmdline_cache_t. */
    const char *c = preoom_cmdline_cache_get(&cmdlines, p->pid, p->start_time, p->name);
    snprintf(buf, cap, "%s", c ? c : "");
}

static void notify_say(void *ctx, const char *msg)
{
    (void)ctx;
    logline(SEV_WARNING, "%s", msg);
}

/* ---- domains -------------------------------------------------------------------------- */

/* What a log line calls a domain. */
static const char *dom_name(int i)
{
    return i == PREOOM_DOMAIN_HOST ? "host" : doms->d[i].path;
}

/* A PSI trigger: the kernel wakes us when memory stalls pass 100 ms in any second. Only a
 * PSI file that describes the domain: a v2 cgroup's own, or the host's for the host. */
static int psi_trigger(int i, bool *local)
{
    const preoom_domain_t *dm = &doms->d[i];
    char path[PREOOM_CGROUP_PATH_MAX + 32];
    *local = i == PREOOM_DOMAIN_HOST;
    int fd;
    if (i == PREOOM_DOMAIN_HOST) {
        fd = open("/proc/pressure/memory", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    } else {
        snprintf(path, sizeof path, "%s/memory.pressure", dm->dir);
        fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0)
            *local = true;
    }
    if (fd < 0)
        return -1;
    static const char trig[] = "some 100000 1000000";
    if (write(fd, trig, sizeof trig) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* cgroup v1: the kernel signals an eventfd when usage crosses a threshold, so a burst
 * between two slow polls wakes us at the ask and term lines. -1 where not available. */
static int v1_thresholds(const char *dir, uint64_t limit, uint64_t ask_b, uint64_t term_b)
{
    if (!dir[0] || limit == PREOOM_LIMIT_NONE || limit <= ask_b)
        return -1;
    char path[PREOOM_CGROUP_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/memory.usage_in_bytes", dir);
    int ufd = open(path, O_RDONLY | O_CLOEXEC);
    if (ufd < 0)
        return -1;
    snprintf(path, sizeof path, "%s/cgroup.event_control", dir);
    int cfd = open(path, O_WRONLY | O_CLOEXEC);
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int ok = cfd >= 0 && efd >= 0;
    uint64_t lines[2] = {limit - ask_b, limit > term_b ? limit - term_b : 0};
    for (int i = 0; ok && i < 2; i++) {
        char w[96];
        int n = snprintf(w, sizeof w, "%d %d %" PRIu64, efd, ufd, lines[i]);
        ok = lines[i] && write(cfd, w, (size_t)n) == n;
    }
    if (cfd >= 0)
        close(cfd);
    close(ufd); /* the registration holds its own reference */
    if (!ok) {
        if (efd >= 0)
            close(efd);
        return -1;
    }
    return efd;
}

static void say_threshold(const preoom_threshold_t *t, char *out, size_t cap)
{
    if (t->bytes && t->percent_x100)
        snprintf(out, cap, "%u.%02u%% or %" PRIu64 " MiB", t->percent_x100 / 100,
                 t->percent_x100 % 100, t->bytes >> 20);
    else if (t->bytes)
        snprintf(out, cap, "%" PRIu64 " MiB", t->bytes >> 20);
    else
        snprintf(out, cap, "%u.%02u%%", t->percent_x100 / 100, t->percent_x100 % 100);
}

static void say_domain(int i)
{
    const dom_rt_t *x = &rt[i];
    const preoom_domain_t *dm = &doms->d[i];
    char ask[64], term[64], kill[64], limit[48] = "";
    const preoom_thresholds_t *t = &x->conf.eng.th;
    say_threshold(&t->ask, ask, sizeof ask);
    say_threshold(&t->term, term, sizeof term);
    say_threshold(&t->kill, kill, sizeof kill);
    if (i != PREOOM_DOMAIN_HOST && dm->limit_bytes != PREOOM_LIMIT_NONE)
        snprintf(limit, sizeof limit, " (limit %" PRIu64 " MiB)", dm->limit_bytes >> 20);
    else if (i != PREOOM_DOMAIN_HOST)
        snprintf(limit, sizeof limit, " (no limit of its own)");
    char sect[48] = "";
    if (x->sections)
        snprintf(sect, sizeof sect, ", %d config section%s", x->sections,
                 x->sections == 1 ? "" : "s");
    logline(SEV_NOTICE,
            "watching %s%s%s with %s (%llu slots), scope %s, policy %s%s: asking processes "
            "that can give when available memory <= %s; SIGTERM when <= %s and still falling; "
            "SIGKILL when <= %s%s",
            i == PREOOM_DOMAIN_HOST ? "the host" : "memory cgroup ",
            i == PREOOM_DOMAIN_HOST ? "" : dm->path, limit, reg_path,
            (unsigned long long)reg.slot_count, preoom_scope_name(x->conf.scope),
            preoom_policy_name(x->conf.eng.policy), sect, ask, term, kill,
            x->conf.eng.dry_run ? " (DRY RUN: nothing is sent)" : "");
}

static void dom_close(int i)
{
    dom_rt_t *x = &rt[i];
    if (!x->live)
        return;
    if (x->psifd >= 0)
        close(x->psifd);
    if (x->evfd >= 0)
        close(x->evfd);
    if (x->usage_fd >= 0)
        close(x->usage_fd);
    victim_close(x);
    if (x->conf.prefer_set)
        regfree(&x->conf.prefer_re);
    if (x->conf.avoid_set)
        regfree(&x->conf.avoid_re);
    x->live = false;
}

static void dom_open(int i, uint64_t now)
{
    dom_rt_t *x = &rt[i];
    const preoom_domain_t *dm = &doms->d[i];
    memset(x, 0, sizeof *x);
    x->psifd = x->evfd = x->vfd = x->usage_fd = -1;
    x->v_dom = -1;
    x->last_level = -1;
    char err[768];
    x->conf = opt_raw;
    int m = preoom_conffile_apply_domain(cf, dm->path[0] ? dm->path : "/", &x->conf, err, sizeof err);
    if (m < 0 || preoom_dconf_finish(&x->conf, err, sizeof err) != 0) {
        /* Checked at start for every section alone; two sections together can still
         * disagree (an ask line below another's term line). */
        logline(SEV_WARNING, "%s: %s; the command line's settings are used there", dom_name(i), err);
        x->conf = opt_raw;
        preoom_dconf_finish(&x->conf, err, sizeof err);
        m = 0;
    }
    x->sections = m;
    /* Its own --avoid, --prefer or --protect (names, pids or cgroups): applied again to its
     * processes at each step, over the daemon-wide ones the gathering applied. */
    x->own_prefs = false;
    for (size_t e = 0; m > 0 && e < cf->n_e; e++)
        if (cf->e[e].section >= 0 &&
            preoom_conffile_matches(cf->s[cf->e[e].section].pattern, dm->path[0] ? dm->path : "/") &&
            (!strncmp(cf->e[e].key, "prefer", 6) || !strncmp(cf->e[e].key, "avoid", 5) ||
             !strncmp(cf->e[e].key, "protect", 7)))
            x->own_prefs = true;
    x->gopt = gopt;
    preoom_dconf_gather_opts(&x->conf, &x->gopt);
    x->gopt.scope = (int)x->conf.scope;
    x->gopt.cgroup_dir = dm->dir;
    bool local;
    x->psifd = psi_trigger(i, &local);
    x->conf.eng.psi_local = local;
    preoom_engine_init(&x->engine, &x->conf.eng, scores, g.cap);
    x->live = true;
    x->near = true;
    x->due_now = true;
    x->due_ms = now;
    say_domain(i);
}

/* The innermost domain of a registered process, from the last discovery; -2 unknown. */
static int cached_dom(int32_t pid, uint64_t start)
{
    size_t lo = 0, hi = n_pcache;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (pcache[mid].pid < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < n_pcache && pcache[lo].pid == pid; lo++)
        if (pcache[lo].start == start)
            return pcache[lo].dom;
    return -2;
}

static int by_pid(const void *a, const void *b)
{
    const pid_dom_t *x = a, *y = b;
    return (x->pid > y->pid) - (x->pid < y->pid);
}

/* Find the domains of the registered processes: all of them every DISCOVER_*_MS (moves,
 * cgroups that vanished), else only those not seen before. */
static void place(uint64_t now, size_t n, bool full);

static void discover(uint64_t now, bool full)
{
    size_t n = 0;
    for (size_t i = 0; i < n_reg; i++) {
        const preoom_proc_t *p = &g.procs[i];
        if (!p->c.maps_registry)
            continue;
        if (full || cached_dom(p->c.pid, p->start_time) == -2) {
            scratch_starts[n] = p->start_time;
            scratch_pids[n++] = p->c.pid;
        }
    }
    if (!full && n == 0)
        return;
    place(now, n, full);
}

/* Place scratch_pids[0..n) (with scratch_starts) in their domains, opening the new ones. */
static void place(uint64_t now, size_t n, bool full)
{
    preoom_domains_discover(&fs, scratch_pids, n, scratch_dom, doms);
    /* Rebuild the cache: what was found now, plus (when only new ones were looked at) what
     * was known. */
    size_t m = full ? 0 : n_pcache;
    for (size_t k = 0; k < n && m < g.cap; k++)
        pcache[m++] = (pid_dom_t){scratch_pids[k], scratch_starts[k], scratch_dom[k]};
    n_pcache = m;
    qsort(pcache, n_pcache, sizeof *pcache, by_pid);
    for (size_t i = 0; i < doms->n; i++) {
        if (doms->d[i].gone && rt[i].live) {
            logline(SEV_NOTICE, "memory cgroup %s is gone (or has no limit any more): not "
                                "watched", dom_name((int)i));
            dom_close((int)i);
        }
        if (doms->d[i].used && !rt[i].live)
            dom_open((int)i, now);
    }
    if (doms->dropped) {
        static size_t said;
        if (said != doms->dropped)
            logline(SEV_WARNING, "more than %d memory domains: %zu not watched",
                    PREOOM_MAX_DOMAINS, doms->dropped);
        said = doms->dropped;
    }
}


/* Processes registered since the last look: placed in their domains at once (one read of
 * /proc/PID/cgroup each), so a domain nobody watched yet is watched from now on, not from
 * the next far gather (a job that fills its cgroup in two seconds would be gone by then).
 * Only a slot whose pid has the start time it claims; one snapshot a slot, about 30 us for
 * a thousand. */
static bool registry_news(uint64_t now)
{
    size_t n = 0;
    uint64_t slots = reg.slot_count < g.cap ? reg.slot_count : g.cap;
    for (uint64_t i = 0; i < slots; i++) {
        struct preoom_slot sl;
        uint64_t sig = 0;
        if (preoom_reg_snapshot(&reg, i, &sl) == 0 && sl.pid > 0 && sl.pid <= 0x7fffffff)
            sig = (uint64_t)sl.pid ^ (sl.start_time << 22);
        if (sig && sig != slot_seen[i] && n < g.cap &&
            cached_dom((int32_t)sl.pid, sl.start_time) == -2 &&
            preoom_reg_pid_matches((pid_t)sl.pid, sl.start_time) == 1) {
            scratch_pids[n] = (int32_t)sl.pid;
            scratch_starts[n++] = sl.start_time;
        }
        slot_seen[i] = sig;
    }
    if (n)
        place(now, n, false);
    return n > 0;
}

/* ---- one domain's pass ---------------------------------------------------------------- */

/* Is a process (by its innermost domain) inside domain i? */
static bool inside(int proc_dom_idx, int i)
{
    return proc_dom_idx >= 0 && preoom_domain_within(doms, proc_dom_idx, i);
}

/* Another domain's victim on its way out, a process of domain i. */
static bool held(int i)
{
    for (size_t j = 0; j < doms->n; j++) {
        if ((int)j == i || !rt[j].live || !preoom_engine_victim_pid(&rt[j].engine, NULL))
            continue;
        if (rt[j].v_dom >= 0 ? inside(rt[j].v_dom, i) : preoom_domain_within(doms, (int)j, i))
            return true;
    }
    return false;
}

/* The victims in flight, taken before each domain's step (usually none: then no process
 * costs a look). */
static struct {
    int32_t pid;
    uint64_t start;
    int dom;
} flight[PREOOM_MAX_DOMAINS];
static size_t n_flight;

static void collect_flight(void)
{
    n_flight = 0;
    for (size_t j = 0; j < doms->n; j++) {
        uint64_t vs;
        int32_t vp = rt[j].live ? preoom_engine_victim_pid(&rt[j].engine, &vs) : 0;
        if (vp)
            flight[n_flight++] = (typeof(flight[0])){vp, vs, (int)j};
    }
}

/* Is this process the victim in flight of a domain other than i? */
static bool in_flight_elsewhere(int i, int32_t pid, uint64_t start)
{
    for (size_t k = 0; k < n_flight; k++)
        if (flight[k].dom != i && flight[k].pid == pid && flight[k].start == start)
            return true;
    return false;
}

/* The innermost domain of a victim, registered or not. */
static int victim_dom(int32_t pid, uint64_t start)
{
    int d = cached_dom(pid, start);
    if (d != -2)
        return d;
    char dirs[PREOOM_DOMAIN_DEPTH_MAX][PREOOM_CGROUP_PATH_MAX];
    preoom_cgroup_version_t v;
    int n = preoom_pid_domain_chain(&fs, pid, dirs, PREOOM_DOMAIN_DEPTH_MAX, &v);
    for (int k = 0; k < n; k++) {
        int idx = preoom_domains_find(doms, &fs, dirs[k]);
        if (idx >= 0)
            return idx;
    }
    return doms->no_host ? -1 : PREOOM_DOMAIN_HOST;
}

static void log_events(int i, const preoom_decision_t *d, const preoom_engine_input_t *in)
{
    dom_rt_t *x = &rt[i];
    for (size_t k = 0; k < d->n_events; k++) {
        char line[3072], out[3072 + 2 * PREOOM_CGROUP_PATH_MAX + 64];
        preoom_engine_format_event(d, k, in, scores, opt.log_json, line, sizeof line);
        /* Which domain spoke: in JSON a field of its own, in text a prefix (none for the
         * host, so a host-only daemon says what it always said). */
        if (opt.log_json && line[0] == '{') {
            char esc[PREOOM_CGROUP_PATH_MAX * 2];
            size_t e = 0;
            for (const char *s = i == PREOOM_DOMAIN_HOST ? "/" : doms->d[i].path; *s && e + 2 < sizeof esc; s++) {
                if (*s == '"' || *s == '\\')
                    esc[e++] = '\\';
                esc[e++] = (unsigned char)*s < 0x20 ? '?' : *s;
            }
            esc[e] = '\0';
            /* After "event", which stays first for whoever matches on it. */
            const char *comma = strchr(line, ',');
            size_t head = comma ? (size_t)(comma - line) : 0;
            if (head)
                snprintf(out, sizeof out, "%.*s,\"domain\":\"%s\"%s", (int)head, line, esc,
                         line + head);
            else
                snprintf(out, sizeof out, "%s", line);
        }
        preoom_event_kind_t kind = d->ev[k].kind;
        bool would = x->conf.eng.dry_run &&
                     (kind == PREOOM_EV_ASK || kind == PREOOM_EV_TERM || kind == PREOOM_EV_KILL);
        if (!opt.log_json || line[0] != '{')
            snprintf(out, sizeof out, "%s%s%s%s%s", i != PREOOM_DOMAIN_HOST ? "[" : "",
                     i != PREOOM_DOMAIN_HOST ? doms->d[i].path : "",
                     i != PREOOM_DOMAIN_HOST ? "] " : "", would ? "dry-run: would " : "", line);
        enum sev sev = kind == PREOOM_EV_TERM || kind == PREOOM_EV_KILL || kind == PREOOM_EV_HOG ||
                               kind == PREOOM_EV_FAILED || kind == PREOOM_EV_NO_CANDIDATE
                           ? SEV_WARNING : SEV_NOTICE;
        logline(sev, "%s", out);
        preoom_notify_event(&notify, d, k, in, scores,
                            i == PREOOM_DOMAIN_HOST ? "/" : doms->d[i].path, now_ms());
    }
}

/* Read domain i's memory (every pass it is due). */
#define FULL_READ_MS 20000
/* A far domain whose cgroup wakes us at its ask and term lines (v1 thresholds) polls as if
 * memory could fall at this rate unseen, not 256 MiB/s: a small cgroup five times a second
 * is what made fifty of them cost a hundredth of a core; the forecast's quarter second of
 * lead before the ask line is what a ramp from far away loses. */
#define EVENT_FLOOR_FALL (32ULL << 20)
#define NEWS_EVERY_MS 250       /* far from every line, new registrations are looked for so often */
#define NEWS_GATHER_MS 2000     /* and their processes looked at within this */

/* Far from every line, a cgroup domain's pass reads its usage only (one pread of a file
 * kept open): with fifty domains, their memory.stat, meminfo and PSI read five times a
 * second each cost a fortieth of a core. The limit, file pages and PSI are read in full
 * every FULL_READ_MS, and whenever the domain is near. 1 when the cheap read did. */
static int dom_read_usage(int i, uint64_t now)
{
    dom_rt_t *x = &rt[i];
    if (!x->far || x->usage_fd < 0 || now - x->full_read_ms >= FULL_READ_MS || !x->r.cgroup_valid)
        return 0;
    char buf[32];
    ssize_t n = pread(x->usage_fd, buf, sizeof buf - 1, 0);
    uint64_t v;
    if (n <= 0 || preoom_parse_cgroup_u64(buf, (size_t)n, &v) != 0 || v == PREOOM_LIMIT_NONE)
        return 0;
    x->r.cg_usage_bytes = v;
    x->r.exposure_bytes = x->exposure;
    x->read_rc = 0;
    x->read_now = true;
    return 1;
}

static void dom_read(int i, uint64_t now)
{
    dom_rt_t *x = &rt[i];
    const preoom_domain_t *dm = &doms->d[i];
    if (dom_read_usage(i, now))
        return;
    const dom_rt_t *h = &rt[PREOOM_DOMAIN_HOST];
    bool host_fresh = i != PREOOM_DOMAIN_HOST && h->live && h->read_rc == 0 && h->full_read_ms &&
                      now - h->full_read_ms < 1000;
    x->read_rc = preoom_read_readings_with(&fs, dm->dir, x->exposure, host_fresh ? &h->r : NULL,
                                           &x->r, &x->cg);
    x->read_now = true;
    x->full_read_ms = now;
    x->r.cgroup_only = i != PREOOM_DOMAIN_HOST;
    if (i != PREOOM_DOMAIN_HOST && x->usage_fd < 0 && x->read_rc == 0) {
        char path[PREOOM_CGROUP_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/%s", dm->dir,
                 x->cg.version == PREOOM_CGROUP_V1 ? "memory.usage_in_bytes" : "memory.current");
        x->usage_fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (x->r.cgroup_valid && x->cg.version == PREOOM_CGROUP_V1 && x->r.cg_limit_bytes != x->ev_limit) {
        if (x->evfd >= 0)
            close(x->evfd);
        x->evfd = v1_thresholds(dm->dir, x->r.cg_limit_bytes,
                                preoom_threshold_bytes(&x->conf.eng.th.ask, x->r.cg_limit_bytes),
                                preoom_threshold_bytes(&x->conf.eng.th.term, x->r.cg_limit_bytes));
        x->ev_limit = x->r.cg_limit_bytes;
        x->engine.conf.floor_fall_bytes_per_s = x->evfd >= 0 ? EVENT_FLOOR_FALL : 0;
    }
}

/* Is domain i near its lines (so its processes must be looked at this pass)? */
static bool dom_close_now(int i)
{
    dom_rt_t *x = &rt[i];
    preoom_assessment_t q;
    preoom_pressure_assess(&x->conf.eng.th, &x->r, &q);
    return x->near || x->engine.rung != PREOOM_RUNG_NONE || q.level >= PREOOM_PRESSURE_MODERATE ||
           q.available_bytes / 2 <= preoom_threshold_bytes(&x->conf.eng.th.ask, q.total_bytes);
}

static void dom_step(int i, uint64_t now, bool gathered)
{
    dom_rt_t *x = &rt[i];
    const preoom_domain_t *dm = &doms->d[i];
    collect_flight();
    /* Its processes: the registered ones inside it, then (a cgroup, or --scope all on the
     * host) the others, gathered for it now and dropped after. */
    size_t n = 0;
    g.n = n_reg;
    g.biggest_pid = 0;
    g.biggest_bytes = 0;
    g.biggest_name[0] = '\0';
    g.biggest_in_scope = false;
    /* Far, with the same processes as last time: the engine only keeps its forecast (it
     * asks or signals nobody this far from the lines; should its forecast start an episode,
     * the next pass, at min-poll, looks at the processes). */
    bool light = !gathered && x->far && x->gather_seq == gather_seq;
    x->gather_seq = gather_seq;
    if (!light) {
        x->exposure = x->committed = x->touched = 0;
        x->registered = 0;
    }
    for (size_t k = 0; k < n_reg && !light; k++) {
        const preoom_proc_t *p = &g.procs[k];
        if (!inside(pdom[k], i) || in_flight_elsewhere(i, p->c.pid, p->start_time))
            continue;
        edom[n] = eall[k];
        if (x->own_prefs)
            preoom_candidate_prefs(&fs, &x->gopt, p->name, &edom[n].c);
        n++;
        const preoom_candidate_t *c = &p->c;
        if (c->maps_registry && c->uid_matches) {
            x->exposure += c->committed_bytes > c->touched_bytes ? c->committed_bytes - c->touched_bytes : 0;
            x->committed += c->committed_bytes;
            x->touched += c->touched_bytes;
            x->registered++;
        }
        if (c->maps_registry)
            preoom_note_biggest(&g, p);
    }
    x->r.exposure_bytes = x->exposure;
    bool cgroup_dom = i != PREOOM_DOMAIN_HOST;
    if (gathered && (cgroup_dom || x->conf.scope == PREOOM_SCOPE_ALL)) {
        preoom_gather_unregistered(&fs, &x->gopt, history, now, &g);
    } else if (gathered && x->engine.episode && !x->engine.hog_said && now - x->last_hostscan >= 1000) {
        /* The host watched for its registered processes only: once a second in an
         * episode, a look at every process, so a hog out of reach is named. */
        x->gopt.look_only = true;
        preoom_gather_unregistered(&fs, &x->gopt, history, now, &g);
        x->gopt.look_only = false;
        x->last_hostscan = now;
    }
    if (g.n > n_reg) {
        preoom_gathered_t tail = g;
        tail.procs = g.procs + n_reg;
        tail.n = 0;
        for (size_t k = n_reg; k < g.n; k++) {
            const preoom_proc_t *p = &g.procs[k];
            if (in_flight_elsewhere(i, p->c.pid, p->start_time))
                continue;
            g.procs[n_reg + tail.n++] = *p;
        }
        preoom_gathered_to_engine(&tail, edom + n);
        n += tail.n;
    }
    g.n = n_reg;

    preoom_engine_input_t in;
    memset(&in, 0, sizeof in);
    in.now_ms = now;
    in.r = x->r;
    in.procs = edom;
    in.n = n;
    in.self_pid = getpid();
    in.biggest_pid = g.biggest_pid;
    in.biggest_bytes = g.biggest_bytes;
    snprintf(in.biggest_name, sizeof in.biggest_name, "%s", g.biggest_name);
    in.biggest_is_candidate = g.biggest_in_scope;
    in.hold_signals = held(i);
    uint64_t vstart;
    int32_t vpid = preoom_engine_victim_pid(&x->engine, &vstart);
    if (vpid && x->vfd >= 0 && x->vfd_pid == vpid && x->vfd_start == vstart)
        in.victim_gone = preoom_act_exited(x->vfd) == 1;
    preoom_engine_hands_t hands = {x, hand_ask, hand_signal, hand_cmdline};
    preoom_engine_step(&x->engine, &in, &hands, &x->d);
    x->stepped = true;
    int32_t nv = preoom_engine_victim_pid(&x->engine, &vstart);
    if (!nv)
        victim_close(x);
    if (nv && nv != vpid)
        x->v_dom = victim_dom(nv, vstart);
    log_events(i, &x->d, &in);
    const preoom_decision_t *d = &x->d;
    if (opt.verbose && d->level != x->last_level)
        logline(SEV_INFO, "%s%s%spressure %s (%s): available %.1fMiB of %.1fMiB, lines "
                          "%.1f/%.1f/%.1fMiB",
                cgroup_dom ? "[" : "", cgroup_dom ? dm->path : "", cgroup_dom ? "] " : "",
                preoom_pressure_name((enum preoom_pressure)d->level), d->reason,
                (double)d->available_bytes / 1048576.0, (double)d->total_bytes / 1048576.0,
                (double)d->ask_bytes / 1048576.0, (double)d->term_bytes / 1048576.0,
                (double)d->kill_bytes / 1048576.0);
    x->last_level = d->level;
    x->near = x->engine.episode || d->level > 0 || x->engine.rung != PREOOM_RUNG_NONE;
    x->far = !x->near && d->available_bytes / 2 > d->ask_bytes;
    /* Slow polls fall on a common 100 ms grid, so one pass serves many far domains (the
     * registry's news and path are looked at once a pass, not once a domain). */
    x->due_ms = now + d->next_poll_ms;
    if (d->next_poll_ms >= 100)
        x->due_ms += (100 - x->due_ms % 100) % 100;
    x->due_now = d->next_poll_ms == 0;
}

/* The settings `preoom explain` reads: the daemon's defaults as name=value lines, then the
 * config file's [domain] sections. */
static void publish_settings(void)
{
    static char text[64 * 1024];
    char tmp[200];
    size_t len = preoom_dconf_publish(&opt, text, sizeof text);
    len += preoom_conffile_publish_domains(cf, text + len, sizeof text - len);
    preoom_dconf_path(reg_path, conf_path, sizeof conf_path);
    snprintf(tmp, sizeof tmp, "%s.%d", conf_path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
    if (fd < 0) {
        logline(SEV_WARNING, "cannot publish the settings in %s (%s): preoom explain "
                             "will not know them", conf_path, strerror(errno));
        conf_path[0] = '\0';
        return;
    }
    int ok = write(fd, text, len) == (ssize_t)len;
    close(fd);
    if (!ok || rename(tmp, conf_path) != 0) {
        unlink(tmp);
        conf_path[0] = '\0';
    }
}

/* The domain whose state the registry's header and the single-domain metrics show: the
 * one under the most pressure (the innermost of equals), else the host. */
static int worst_domain(void)
{
    int best = -1;
    for (size_t i = 0; i < doms->n; i++) {
        if (!rt[i].live || !rt[i].stepped)
            continue;
        if (best < 0 || rt[i].d.level > rt[best].d.level ||
            (rt[i].d.level == rt[best].d.level && doms->d[i].depth > doms->d[best].depth &&
             rt[i].d.level > 0))
            best = (int)i;
    }
    return best;
}

static int by_depth_desc(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return doms->d[y].depth - doms->d[x].depth;
}

int main(int argc, char **argv)
{
    preoom_std_fds();
    parse_options(argc, argv);
    journal = getenv("JOURNAL_STREAM") != NULL;
    preoom_procfs_init(&fs);
    doms = calloc(1, sizeof *doms);
    rt = calloc(PREOOM_MAX_DOMAINS, sizeof *rt);
    if (!doms || !rt)
        fatal(1, "out of memory at start-up");
    preoom_domains_init(doms);
    /* --cgroup is checked before anything is created: a failed start leaves nothing. */
    for (size_t k = 0; k < n_only; k++) {
        preoom_memcg_t m;
        if (preoom_read_memcg(&fs, only[k], &m) != 0)
            fatal(1, "--cgroup %s: not a memory cgroup this machine has (no memory.limit_in_bytes "
                     "or memory.max there)", only[k]);
    }
    doms->only = only;
    doms->n_only = n_only;
    doms->no_host = n_only > 0;
    /* Everything that can refuse to start is tried before the registry is created, so a
     * failed start (a busy port) leaves nothing behind. */
    int msock = -1;
    if (opt.metrics_port) {
        msock = preoom_metrics_start(opt.metrics_port);
        if (msock < 0)
            fatal(1, "--metrics-port %d: %s", opt.metrics_port, strerror(-msock));
    }
    preoom_bus_install();
    char rmsg[768];
    if (opt.registry_dir && *opt.registry_dir &&
        preoom_regwatch_dir(opt.registry_dir, rmsg, sizeof rmsg) != 0)
        fatal(1, "%s", rmsg);
    if (preoom_regwatch_open(opt.registry, opt.slots, opt.gid, &reg, rmsg, sizeof rmsg) != 0)
        fatal(1, "%s", rmsg);
    if (rmsg[0])
        logline(SEV_NOTICE, "%s", rmsg);
    memset(&gopt, 0, sizeof gopt);
    if (preoom_gather_opts_for(&reg, opt.registry, &gopt, reg_path, sizeof reg_path) != 0)
        fatal(1, "cannot stat the registry file");
    preoom_dconf_gather_opts(&opt, &gopt);
    gopt.want_children = opt.eng.policy == PREOOM_POLICY_CLASSIC;
    gopt.scope = (int)opt.scope;
    gopt.cgroup_dir = "";
    /* Everything the loop needs is allocated now, before mlockall and before any pressure.
     * With --scope, a cgroup's other processes need room beside the registry's. */
    g.cap = reg.slot_count + 4096;
    g.procs = calloc(g.cap, sizeof *g.procs);
    eall = calloc(g.cap, sizeof *eall);
    edom = calloc(g.cap, sizeof *edom);
    scores = calloc(g.cap, sizeof *scores);
    history = calloc(1, sizeof *history);
    pcache = calloc(g.cap, sizeof *pcache);
    pdom = calloc(g.cap, sizeof *pdom);
    scratch_pids = calloc(g.cap, sizeof *scratch_pids);
    scratch_dom = calloc(g.cap, sizeof *scratch_dom);
    scratch_starts = calloc(g.cap, sizeof *scratch_starts);
    slot_seen = calloc(g.cap, sizeof *slot_seen);
    mdom_of = calloc(g.cap, sizeof *mdom_of);
    if (!slot_seen || !mdom_of || !g.procs || !eall || !edom || !scores || !history || !pcache || !pdom || !scratch_pids ||
        !scratch_dom || !scratch_starts)
        fatal(1, "out of memory at start-up");
    history->window_ms = 2000;
    static char mtext[PREOOM_METRICS_TEXT_MAX];
    static preoom_metrics_domain_t mdoms[PREOOM_METRICS_MAX_DOMAINS];
    static preoom_metrics_proc_t mprocs[PREOOM_METRICS_MAX_PROCS];
    snprintf(met.version, sizeof met.version, "%s", PREOOMD_VERSION);
    met.start_time_s = (uint64_t)time(NULL);
    preoom_notify_conf_t nconf = {opt.notify, opt.notify_timeout_ms, opt.notify_max,
                                  opt.notify_events, notify_say, NULL};
    preoom_notify_init(&notify, &nconf);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    protect_self();
    publish_settings();
    uint64_t now = now_ms();
    /* The domains --cgroup names are there from the start, and the host unless they are. */
    discover(now, true);
    if (!doms->no_host && !rt[PREOOM_DOMAIN_HOST].live)
        dom_open(PREOOM_DOMAIN_HOST, now);

    uint64_t last_reap = 0, last_metrics = 0, last_gather = 0, last_discover = now, last_news = 0;
    bool news_pending = false;
    uint32_t met_registered = UINT32_MAX;
    bool met_dirty = false;
    int follow_rc = 0;
    int order[PREOOM_MAX_DOMAINS];
    while (!stop_signal) {
        now = now_ms();
        uint64_t pass_ns = preoom_now_ns(CLOCK_MONOTONIC);
        /* The registry at its path may have been deleted, replaced or truncated: follow it. */
        int frc = preoom_regwatch_follow(opt.registry, opt.slots, opt.gid, &reg, rmsg, sizeof rmsg);
        if (frc != 0 && frc != follow_rc)
            logline(SEV_WARNING, "%s", rmsg);
        follow_rc = frc < 0 ? frc : 0;
        if (frc == 1) {
            preoom_gather_opts_for(&reg, opt.registry, &gopt, reg_path, sizeof reg_path);
            for (size_t i = 0; i < doms->n; i++)
                if (rt[i].live) {
                    rt[i].gopt.registry_dev = gopt.registry_dev;
                    rt[i].gopt.registry_ino = gopt.registry_ino;
                    rt[i].gopt.registry_path = gopt.registry_path;
                }
            publish_settings();
            /* A new file: who maps it is to be looked at again. */
            for (size_t i = 0; i < history->n; i++)
                history->e[i].maps_registry = -1;
        }

        /* Memory first, for each domain whose time has come: a domain near a line looks at
         * the processes at once, so no decision is taken on a list from seconds ago. Far
         * from every line they are looked at seldom (for exposure and steadiness): each
         * look opens three files a process, and five hundred processes every five seconds
         * cost more than everything else together. */
        size_t n_due = 0;
        uint64_t far_gather = FAR_GATHER_MS + (uint64_t)n_reg * 60;
        if (far_gather > 30000)
            far_gather = 30000;
        bool gather_now = now - last_gather >= far_gather, any_near = false, any_close = false;
        if (news_pending && now - last_gather >= NEWS_GATHER_MS)
            gather_now = true;
        if (now - last_news >= NEWS_EVERY_MS) {
            last_news = now;
            /* A newcomer is looked at (gathered) within NEWS_GATHER_MS, not at the next far
             * gather: at most that often, so a host forever starting registered processes
             * does not have all of them read again and again. */
            if (registry_news(now))
                news_pending = true;
        }
        for (size_t i = 0; i < doms->n; i++) {
            dom_rt_t *x = &rt[i];
            x->read_now = false;
            if (!x->live)
                continue;
            any_near |= x->near;
            if (!x->due_now && now < x->due_ms)
                continue;
            dom_read((int)i, now);
            if (x->read_rc == -ENOENT && i != PREOOM_DOMAIN_HOST) {
                /* Its cgroup went away: a discovery this pass closes the domain. Until then
                 * it is not read again at once (a loop with nothing to wait for spins). */
                last_discover = 0;
                gather_now = true;
                x->due_now = false;
                x->due_ms = now + 1000;
                continue;
            }
            order[n_due++] = (int)i;
            if (dom_close_now((int)i)) {
                gather_now = any_close = true;
                if (x->far) {
                    x->far = false; /* near now: every file, not only the usage */
                    dom_read((int)i, now);
                }
            }
        }
        bool gathered = false;
        if (gather_now) {
            gopt.want_private = opt.eng.policy == PREOOM_POLICY_PREOOM;
            bool episode = false;
            for (size_t i = 0; i < doms->n; i++)
                episode |= rt[i].live && rt[i].engine.episode;
            gopt.want_private &= episode;
            preoom_gather(&fs, &reg, &gopt, history, now, &g);
            n_reg = g.n;
            gather_seq++;
            news_pending = false;
            /* Slots naming dead processes are freed: near the lines every second; far from
             * them only when this look found some (a reap reads every slot's process). */
            if (g.skipped && now - last_reap >= REAP_EVERY_MS) {
                preoom_reg_reap(&reg);
                last_reap = now;
            }
            last_gather = now;
            gathered = true;
            for (size_t i = 0; i < n_reg; i++)
                if (g.procs[i].rejected_now)
                    logline(SEV_WARNING, "slot %llu names pid %d (%s), which does not map %s: "
                                         "ignored (forged or stale)",
                            (unsigned long long)g.procs[i].slot_index, (int)g.procs[i].c.pid,
                            g.procs[i].name, reg_path);
                else if (g.procs[i].hint_unproven_now)
                    logline(SEV_WARNING, "slot %llu names pid %d (%s) with hint %llu but is not "
                                         "its own slot (forged or duplicate): hint ignored",
                            (unsigned long long)g.procs[i].slot_index, (int)g.procs[i].c.pid,
                            g.procs[i].name, (unsigned long long)g.procs[i].slot.adj);
            for (size_t i = 0; i < g.n_dups; i++)
                logline(SEV_WARNING, "slot %llu names pid %d (%s) with hint %llu but is not its "
                                     "own slot (forged or duplicate): hint ignored",
                        (unsigned long long)g.dups[i].slot_index, (int)g.dups[i].pid,
                        g.dups[i].name, (unsigned long long)g.dups[i].adj);
            bool full = now - last_discover >= (any_near ? DISCOVER_NEAR_MS : DISCOVER_FAR_MS);
            discover(now, full);
            if (full)
                last_discover = now;
            for (size_t i = 0; i < n_reg; i++) {
                int d = cached_dom(g.procs[i].c.pid, g.procs[i].start_time);
                pdom[i] = d == -2 ? (doms->no_host ? -1 : PREOOM_DOMAIN_HOST) : d;
            }
            preoom_gathered_to_engine(&g, eall);
            /* Command lines are read far from every line only: reading one takes the
             * process's mmap lock, which a process under pressure may hold for long. */
            if (!any_close && !any_near)
                preoom_cmdline_cache_fill(&cmdlines, &fs, &g);
            /* Domains found just now are read and stepped this pass. */
            for (size_t i = 0; i < doms->n; i++) {
                dom_rt_t *x = &rt[i];
                if (!x->live || x->read_now || (!x->due_now && now < x->due_ms))
                    continue;
                dom_read((int)i, now);
                if (x->read_rc == -ENOENT && i != PREOOM_DOMAIN_HOST)
                    continue;
                order[n_due++] = (int)i;
            }
        }
        /* Innermost first: what a container settles inside itself its slice need not. */
        qsort(order, n_due, sizeof order[0], by_depth_desc);
        for (size_t k = 0; k < n_due; k++)
            if (rt[order[k]].live)
                dom_step(order[k], now, gathered);
        preoom_notify_reap(&notify, now);

        int w = worst_domain();
        if (w >= 0) {
            const preoom_decision_t *d = &rt[w].d;
            preoom_reg_set_pressure(&reg, (uint64_t)(d->level > 3 ? 3 : d->level), (uint64_t)getpid());
            preoom_reg_measured_t ms = {d->total_bytes, d->available_bytes, d->ask_bytes,
                                        d->term_bytes, d->kill_bytes,
                                        d->time_to_kill_ms < 0 ? UINT64_MAX : (uint64_t)d->time_to_kill_ms};
            preoom_reg_set_measured(&reg, &ms);
        }

        /* The textfile is rewritten every second near a line, every METRICS_FAR_MS far from
         * all of them (node_exporter reads it every 15 s or so; formatting and renaming it
         * every second was a third of an idle daemon's cost). */
        uint64_t metrics_every = any_near || (w >= 0 && rt[w].near) ? METRICS_EVERY_MS : METRICS_FAR_MS;
        uint32_t reg_now = 0;
        for (size_t i = 0; i < n_reg; i++)
            reg_now += g.procs[i].registered && g.procs[i].c.maps_registry;
        /* A process came or went: said as soon as the domain shown has counted it. */
        if (reg_now != met_registered)
            met_dirty = true;
        met_registered = reg_now;
        if (met_dirty && w >= 0 && rt[w].gather_seq == gather_seq) {
            metrics_every = 0;
            met_dirty = false;
        }
        if (w >= 0 && (now - last_metrics >= metrics_every || msock >= 0)) {
            /* The HTTP server has its own thread: it gets each pass's figures published. */
            /* Every live domain, its own series under its domain label; the registered
             * processes that touch the most, each under its innermost domain. */
            size_t n_mdoms = 0, n_mprocs = 0;
            int mindex[PREOOM_MAX_DOMAINS];
            for (size_t i = 0; i < doms->n && n_mdoms < PREOOM_METRICS_MAX_DOMAINS; i++) {
                const dom_rt_t *x = &rt[i];
                mindex[i] = -1;
                if (!x->live || !x->stepped)
                    continue;
                preoom_metrics_sums_t sums = {x->exposure, x->committed, x->touched, x->registered};
                preoom_metrics_fill_domain(&mdoms[n_mdoms], i == PREOOM_DOMAIN_HOST ? "/" : doms->d[i].path,
                                           &x->d, &x->engine, &sums, &x->r,
                                           i == PREOOM_DOMAIN_HOST ? NULL : &x->cg);
                mindex[i] = (int)n_mdoms++;
            }
            for (size_t k = 0; k < n_reg; k++)
                mdom_of[k] = pdom[k] >= 0 && (size_t)pdom[k] < doms->n && mindex[pdom[k]] >= 0
                                 ? (uint32_t)mindex[pdom[k]] : UINT32_MAX;
            preoom_gathered_t regs = g;
            regs.n = n_reg;
            preoom_metrics_fill_procs(&regs, eall, mdom_of, 0, mprocs, &n_mprocs,
                                      PREOOM_METRICS_MAX_PROCS);
            met.poll_ms = rt[w].d.next_poll_ms;
            met.pass_us = (preoom_now_ns(CLOCK_MONOTONIC) - pass_ns) / 1000;
            met.notify_started = notify.started;
            met.notify_dropped = notify.dropped;
            met.notify_timed_out = notify.timed_out;
            met.notify_failed = notify.failed;
            if (opt.metrics_port)
                preoom_metrics_publish(&met, mdoms, n_mdoms, mprocs, n_mprocs);
            if (now - last_metrics >= metrics_every) {
                size_t len = preoom_metrics_format(&met, mdoms, n_mdoms, mprocs, n_mprocs, mtext,
                                                   sizeof mtext);
                if (opt.metrics_file) {
                    int mrc = preoom_metrics_write_file(opt.metrics_file, mtext, len);
                    if (mrc != 0) {
                        static uint64_t said;
                        if (!said || now - said > 60000) {
                            logline(SEV_WARNING, "cannot write %s: %s", opt.metrics_file,
                                    strerror(-mrc));
                            said = now;
                        }
                    }
                }
                last_metrics = now;
            }
        }

        /* Sleep until the next domain is due, or a PSI trigger or a v1 threshold of one
         * wakes us. */
        uint64_t wake = now + 1000;
        bool at_once = false;
        struct pollfd pf[2 * PREOOM_MAX_DOMAINS];
        int owner[2 * PREOOM_MAX_DOMAINS];
        int npf = 0;
        for (size_t i = 0; i < doms->n; i++) {
            dom_rt_t *x = &rt[i];
            if (!x->live)
                continue;
            if (x->due_now)
                at_once = true;
            if (x->due_ms < wake)
                wake = x->due_ms;
            if (x->psifd >= 0) {
                owner[npf] = (int)i;
                pf[npf++] = (struct pollfd){x->psifd, POLLPRI, 0};
            }
            if (x->evfd >= 0) {
                owner[npf] = (int)i;
                pf[npf++] = (struct pollfd){x->evfd, POLLIN, 0};
            }
        }
        if (at_once)
            continue; /* a victim just left: measure again at once */
        now = now_ms();
        int timeout = wake > now ? (int)(wake - now) : 0;
        if (timeout == 0)
            continue;
        int pr = poll(pf, (nfds_t)npf, timeout);
        for (int k = 0; pr > 0 && k < npf; k++) {
            if (!pf[k].revents)
                continue;
            dom_rt_t *x = &rt[owner[k]];
            if (pf[k].fd == x->evfd) {
                uint64_t v;
                if (read(x->evfd, &v, sizeof v) < 0) {
                    /* nothing to do: the count only wakes us */
                }
            }
            x->near = true;
            x->due_now = true;
        }
    }
    logline(SEV_NOTICE, "stopping on signal %d", (int)stop_signal);
    preoom_reg_set_pressure(&reg, PREOOM_PRESSURE_NONE, 0);
    if (conf_path[0])
        unlink(conf_path);
    for (size_t i = 0; i < doms->n; i++)
        dom_close((int)i);
    preoom_notify_fini(&notify);
    /* A textfile left behind would go on saying the last figures as if preoomd still ran:
     * removed, so node_exporter drops the series and absent() alerts can fire. */
    if (opt.metrics_file)
        preoom_metrics_remove_file(opt.metrics_file);
    return 0;
}

/* tools/preoomd.c — the arbiter: sees memory pressure coming and settles it before the
 * kernel's OOM killer does.
 *
 * This file is the daemon's body and hands, not its judgement: each pass it reads the
 * pressure (readings.c), gathers the candidates (candidates.c: the registry's processes and,
 * with --scope cgroup or all, the others too), hands one snapshot to the engine (engine.c,
 * where every rule lives) and carries out what it decides: asks through the registry
 * (act.c), signals through a pidfd checked against pid and start time, process_mrelease
 * after SIGKILL. Every decision is one log line (text, or one JSON object with
 * --log-format json). It publishes its effective settings beside the registry so `preoom
 * explain` decides with the same flags. It protects itself (mlockall, a lowered
 * oom_score_adj) and allocates nothing once the loop runs.
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
#include "dconf.h"
#include "engine.h"
#include "floor.h"
#include "metrics.h"
#include "metrics_fill.h"
#include "notify.h"
#include "pressure.h"
#include "procfs.h"
#include "readings.h"
#include "regwatch.h"

#define PREOOMD_VERSION "0.2.0"
#define REAP_EVERY_MS 1000
#define FAR_GATHER_MS 5000
#define METRICS_EVERY_MS 1000

static volatile sig_atomic_t stop_signal;
static preoom_dconf_t opt;
static preoom_procfs_t fs;
static preoom_reg_t reg = {.fd = -1};
static preoom_gather_opts_t gopt;
static char reg_path[128], conf_path[160];
static preoom_gathered_t g;
static preoom_engine_proc_t *eprocs;
static preoom_badness_t *scores;
static preoom_history_t *history;
static preoom_engine_t engine;
static preoom_metrics_t met;
static preoom_notify_t notify;
static preoom_cmdline_cache_t cmdlines;
static int vfd = -1;          /* pidfd of the victim in flight */
static int32_t vfd_pid;
static uint64_t vfd_start;

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
            "  --cgroup PATH          memory cgroup to watch (default: found from the processes)\n"
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
    /* Every long option is a dconf setting of the same name. */
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
        {"verbose", 0, 0, 'v'}, {"quiet", 0, 0, 'q'}, {"help", 0, 0, 'h'},
        {"version", 0, 0, 'V'}, {0, 0, 0, 0}};
    preoom_dconf_defaults(&opt);
    const char *env = getenv("PREOOM_REGISTRY");
    if (env && *env)
        opt.registry = env;
    opt.registry_dir = getenv("PREOOM_REGISTRY_DIR");
    int c, idx;
    char err[512];
    opterr = 0; /* our own one-line message below, not getopt's plus the usage */
    while ((c = getopt_long(argc, argv, "vqhV", lo, &idx)) != -1) {
        switch (c) {
        case 0:
            if (optarg && optarg[0] == '-' && optarg[1] && !(optarg[1] >= '0' && optarg[1] <= '9')) {
                fprintf(stderr, "preoomd: --%s needs a value, not the option '%s'\n",
                        lo[idx].name, optarg);
                exit(2);
            }
            if (preoom_dconf_set(&opt, lo[idx].name, optarg, err, sizeof err) != 0) {
                fprintf(stderr, "preoomd: %s\n", err);
                exit(2);
            }
            break;
        case 'v': opt.verbose++; break;
        case 'q': opt.quiet = true; break;
        case 'h': usage(stdout); exit(0);
        case 'V': printf("preoomd %s\n", PREOOMD_VERSION); exit(0);
        default:
            fprintf(stderr, "preoomd: unknown option, or one missing its value: '%s' (see "
                            "preoomd --help)\n", argv[optind - 1]);
            exit(2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "preoomd: unexpected argument '%s'\n", argv[optind]);
        exit(2);
    }
    if (preoom_dconf_finish(&opt, err, sizeof err) != 0) {
        fprintf(stderr, "preoomd: %s\n", err);
        exit(2);
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

static void victim_close(void)
{
    if (vfd >= 0)
        close(vfd);
    vfd = -1;
    vfd_pid = 0;
}

static int hand_signal(void *ctx, const preoom_engine_proc_t *p, int sig)
{
    (void)ctx;
    if (vfd < 0 || vfd_pid != p->pid || vfd_start != p->start_time) {
        victim_close();
        /* A registered process must still map this registry; one found in the watched
         * cgroup (--scope) is proven by pid and start time alone. */
        int fd = preoom_act_open(&fs, p->pid, p->start_time, p->registered ? gopt.registry_dev : 0,
                                 p->registered ? gopt.registry_ino : 0);
        if (fd < 0)
            return fd;
        vfd = fd;
        vfd_pid = p->pid;
        vfd_start = p->start_time;
    }
    int rc = opt.kill_group ? preoom_act_signal_group(vfd, p->pid, sig) : preoom_act_signal(vfd, sig);
    if (rc > 0)
        rc = 0;
    if (rc == 0 && sig == SIGKILL) {
        /* Give the victim's memory back now rather than when its exit gets round to it. */
        int mr = preoom_act_mrelease(vfd);
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

/* ---- one snapshot --------------------------------------------------------------------- */

/* A PSI trigger: the kernel wakes us when memory stalls pass 100 ms in any second. Only a
 * PSI file that describes the watched domain: a v2 cgroup's own, or the host's when the
 * host is watched. */
static int psi_trigger(bool *local)
{
    char path[PREOOM_CGROUP_PATH_MAX + 32];
    int fd = -1;
    *local = !opt.cgroup[0];
    if (opt.cgroup[0]) {
        if (opt.cgroup[0] == '/')
            snprintf(path, sizeof path, "%s/memory.pressure", opt.cgroup);
        else
            snprintf(path, sizeof path, "%s/%s/memory.pressure", fs.cgroup_root, opt.cgroup);
        fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0)
            *local = true;
    }
    if (fd < 0 && !opt.cgroup[0])
        fd = open("/proc/pressure/memory", O_RDWR | O_NONBLOCK | O_CLOEXEC);
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
static int v1_thresholds(uint64_t limit, uint64_t ask_b, uint64_t term_b)
{
    if (!opt.cgroup[0] || limit == PREOOM_LIMIT_NONE || limit <= ask_b)
        return -1;
    char dir[PREOOM_CGROUP_PATH_MAX + 32], path[PREOOM_CGROUP_PATH_MAX + 64];
    if (opt.cgroup[0] == '/')
        snprintf(dir, sizeof dir, "%s", opt.cgroup);
    else
        snprintf(dir, sizeof dir, "%s/%s", fs.cgroup_root, opt.cgroup);
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

static void publish_settings(void)
{
    char text[4096], tmp[200];
    size_t len = preoom_dconf_publish(&opt, text, sizeof text);
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

static void say_settings(void)
{
    char ask[64], term[64], kill[64];
    const preoom_thresholds_t *t = &opt.eng.th;
    const preoom_threshold_t *ts[3] = {&t->ask, &t->term, &t->kill};
    char *out[3] = {ask, term, kill};
    for (int i = 0; i < 3; i++) {
        if (ts[i]->bytes && ts[i]->percent_x100)
            snprintf(out[i], 64, "%u.%02u%% or %" PRIu64 " MiB", ts[i]->percent_x100 / 100,
                     ts[i]->percent_x100 % 100, ts[i]->bytes >> 20);
        else if (ts[i]->bytes)
            snprintf(out[i], 64, "%" PRIu64 " MiB", ts[i]->bytes >> 20);
        else
            snprintf(out[i], 64, "%u.%02u%%", ts[i]->percent_x100 / 100, ts[i]->percent_x100 % 100);
    }
    logline(SEV_NOTICE,
            "watching %s (%llu slots)%s%s, scope %s, policy %s: asking processes that can give "
            "when available memory <= %s; SIGTERM when <= %s and still falling; SIGKILL when "
            "<= %s%s",
            reg_path, (unsigned long long)reg.slot_count, opt.cgroup_given ? ", cgroup " : "",
            opt.cgroup_given ? opt.cgroup : "", preoom_scope_name(opt.scope),
            preoom_policy_name(opt.eng.policy), ask, term, kill,
            opt.eng.dry_run ? " (DRY RUN: nothing is sent)" : "");
}

int main(int argc, char **argv)
{
    preoom_std_fds();
    parse_options(argc, argv);
    journal = getenv("JOURNAL_STREAM") != NULL;
    preoom_procfs_init(&fs);
    if (opt.cgroup_given) {
        preoom_memcg_t m;
        if (preoom_read_memcg(&fs, opt.cgroup, &m) != 0)
            fatal(1, "--cgroup %s: not a memory cgroup this machine has (no memory.limit_in_bytes "
                     "or memory.max there)", opt.cgroup);
    }
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
    gopt.cgroup_dir = opt.cgroup;
    /* Everything the loop needs is allocated now, before mlockall and before any pressure.
     * With --scope, a cgroup's other processes need room beside the registry's. */
    g.cap = reg.slot_count + (opt.scope != PREOOM_SCOPE_REGISTERED ? 4096 : 256);
    g.procs = calloc(g.cap, sizeof *g.procs);
    eprocs = calloc(g.cap, sizeof *eprocs);
    scores = calloc(g.cap, sizeof *scores);
    history = calloc(1, sizeof *history);
    if (!g.procs || !eprocs || !scores || !history)
        fatal(1, "out of memory at start-up");
    history->window_ms = 2000;
    opt.eng.psi_local = true;
    preoom_engine_init(&engine, &opt.eng, scores, g.cap);
    static char mtext[PREOOM_METRICS_TEXT_MAX];
    static preoom_metrics_domain_t mdom;
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
    bool psi_local;
    int psifd = psi_trigger(&psi_local);
    engine.conf.psi_local = psi_local;
    int evfd = -1;
    uint64_t ev_limit = 0;
    publish_settings();
    say_settings();

    uint64_t last_reap = 0, last_metrics = 0, last_detect = 0, last_gather = 0, last_hostscan = 0;
    uint32_t poll_ms = 0;
    int last_level = -1;
    bool near = true;
    int follow_rc = 0;
    while (!stop_signal) {
        uint64_t now = now_ms(), pass_ns = preoom_now_ns(CLOCK_MONOTONIC);
        /* The registry at its path may have been deleted, replaced or truncated: follow it. */
        int frc = preoom_regwatch_follow(opt.registry, opt.slots, opt.gid, &reg, rmsg, sizeof rmsg);
        if (frc != 0 && frc != follow_rc)
            logline(SEV_WARNING, "%s", rmsg);
        follow_rc = frc < 0 ? frc : 0;
        if (frc == 1) {
            preoom_gather_opts_for(&reg, opt.registry, &gopt, reg_path, sizeof reg_path);
            publish_settings();
            /* A new file: who maps it is to be looked at again. */
            for (size_t i = 0; i < history->n; i++)
                history->e[i].maps_registry = -1;
        }
        if (!opt.cgroup_given && now - last_detect >= 5000) {
            char d[PREOOM_CGROUP_PATH_MAX];
            if (preoom_detect_cgroup(&fs, &g, d, sizeof d) == 0 && strcmp(d, opt.cgroup) != 0) {
                logline(SEV_NOTICE, "watching memory cgroup %s (found from the registered "
                                    "processes)", d);
                strcpy(opt.cgroup, d);
                if (evfd >= 0)
                    close(evfd);
                evfd = -1;
                ev_limit = 0;
            }
            last_detect = now;
        }
        preoom_readings_t r;
        preoom_memcg_t cg;
        memset(&cg, 0, sizeof cg);
        if (preoom_read_readings(&fs, opt.cgroup, g.exposure_bytes, &r, &cg) == -ENOENT &&
            opt.cgroup[0]) {
            logline(SEV_WARNING, "memory cgroup %s cannot be read any more; watching the whole "
                                 "machine", opt.cgroup);
            opt.cgroup[0] = '\0';
            opt.cgroup_given = false;
        }
        if (r.cgroup_valid && cg.version == PREOOM_CGROUP_V1 && r.cg_limit_bytes != ev_limit) {
            if (evfd >= 0)
                close(evfd);
            evfd = v1_thresholds(r.cg_limit_bytes,
                                 preoom_threshold_bytes(&opt.eng.th.ask, r.cg_limit_bytes),
                                 preoom_threshold_bytes(&opt.eng.th.term, r.cg_limit_bytes));
            ev_limit = r.cg_limit_bytes;
        }

        /* Far from every line, the processes are looked at every FAR_GATHER_MS only (for the
         * blame window and exposure); memory is read every pass, and the PSI trigger and the
         * cgroup's thresholds wake us at once. Near, everything is looked at every pass. */
        /* Memory was read first: a pass whose reading is near a line looks at the processes
         * at once, so no decision is ever taken on a list from seconds ago. */
        preoom_assessment_t quick;
        preoom_pressure_assess(&opt.eng.th, &r, &quick);
        bool close_now = quick.level >= PREOOM_PRESSURE_MODERATE ||
                         quick.available_bytes / 2 <= preoom_threshold_bytes(&opt.eng.th.ask, quick.total_bytes);
        bool gather_now = near || close_now || engine.rung != PREOOM_RUNG_NONE ||
                          now - last_gather >= FAR_GATHER_MS;
        if (gather_now && now - last_reap >= (near ? REAP_EVERY_MS : FAR_GATHER_MS)) {
            preoom_reg_reap(&reg);
            last_reap = now;
        }
        if (gather_now) {
            gopt.want_private = engine.episode && opt.eng.policy == PREOOM_POLICY_PREOOM;
            gopt.cgroup_dir = opt.cgroup;
            preoom_gather(&fs, &reg, &gopt, history, now, &g);
            if (opt.cgroup[0] || opt.scope == PREOOM_SCOPE_ALL) {
                preoom_gather_unregistered(&fs, &gopt, history, now, &g);
            } else if (engine.episode && !engine.hog_said && now - last_hostscan >= 1000) {
                /* The host watched for its registered processes only: once a second in an
                 * episode, a look at every process, so a hog out of reach is named. */
                gopt.look_only = true;
                preoom_gather_unregistered(&fs, &gopt, history, now, &g);
                gopt.look_only = false;
                last_hostscan = now;
            }
            last_gather = now;
            for (size_t i = 0; i < g.n; i++)
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
            preoom_gathered_to_engine(&g, eprocs);
            if (!close_now)
                preoom_cmdline_cache_fill(&cmdlines, &fs, &g);
        }
        preoom_engine_input_t in;
        memset(&in, 0, sizeof in);
        in.now_ms = now;
        in.r = r;
        in.procs = eprocs;
        in.n = g.n;
        in.self_pid = getpid();
        in.biggest_pid = g.biggest_pid;
        in.biggest_bytes = g.biggest_bytes;
        snprintf(in.biggest_name, sizeof in.biggest_name, "%s", g.biggest_name);
        in.biggest_is_candidate = g.biggest_in_scope;
        uint64_t vstart;
        int32_t vpid = preoom_engine_victim_pid(&engine, &vstart);
        if (vpid && vfd >= 0 && vfd_pid == vpid && vfd_start == vstart)
            in.victim_gone = preoom_act_exited(vfd) == 1;
        static preoom_decision_t d;
        preoom_engine_hands_t hands = {NULL, hand_ask, hand_signal, hand_cmdline};
        preoom_engine_step(&engine, &in, &hands, &d);
        if (!preoom_engine_victim_pid(&engine, NULL))
            victim_close();
        for (size_t i = 0; i < d.n_events; i++) {
            char line[3072];
            preoom_engine_format_event(&d, i, &in, scores, opt.log_json, line, sizeof line);
            preoom_event_kind_t k = d.ev[i].kind;
            enum sev sev = k == PREOOM_EV_TERM || k == PREOOM_EV_KILL || k == PREOOM_EV_HOG ||
                                   k == PREOOM_EV_FAILED || k == PREOOM_EV_NO_CANDIDATE
                               ? SEV_WARNING : SEV_NOTICE;
            if (opt.eng.dry_run && (k == PREOOM_EV_ASK || k == PREOOM_EV_TERM || k == PREOOM_EV_KILL))
                logline(sev, opt.log_json ? "%s" : "dry-run: would %s", line);
            else
                logline(sev, "%s", line);
            preoom_notify_event(&notify, &d, i, &in, scores, opt.cgroup[0] ? opt.cgroup : "/", now);
        }
        preoom_notify_reap(&notify, now);
        preoom_reg_set_pressure(&reg, (uint64_t)(d.level > 3 ? 3 : d.level), (uint64_t)getpid());
        preoom_reg_measured_t ms = {d.total_bytes, d.available_bytes, d.ask_bytes, d.term_bytes,
                                    d.kill_bytes,
                                    d.time_to_kill_ms < 0 ? UINT64_MAX : (uint64_t)d.time_to_kill_ms};
        preoom_reg_set_measured(&reg, &ms);
        if (opt.verbose && d.level != last_level)
            logline(SEV_INFO, "pressure %s (%s): available %.1fMiB of %.1fMiB, lines "
                              "%.1f/%.1f/%.1fMiB",
                    preoom_pressure_name((enum preoom_pressure)d.level), d.reason,
                    (double)d.available_bytes / 1048576.0, (double)d.total_bytes / 1048576.0,
                    (double)d.ask_bytes / 1048576.0, (double)d.term_bytes / 1048576.0,
                    (double)d.kill_bytes / 1048576.0);
        last_level = d.level;
        poll_ms = d.next_poll_ms;
        near = engine.episode || d.level > 0 || engine.rung != PREOOM_RUNG_NONE;

        if (now - last_metrics >= METRICS_EVERY_MS || msock >= 0) {
            /* The HTTP server has its own thread: it gets each pass's figures published. */
            /* One domain for now: the watched cgroup, or "/" for the host. */
            preoom_metrics_fill_domain(&mdom, opt.cgroup, &d, &engine, &g, &r, &cg);
            size_t n_mprocs = 0;
            preoom_metrics_fill_procs(&g, eprocs, 0, mprocs, &n_mprocs, PREOOM_METRICS_MAX_PROCS);
            met.poll_ms = poll_ms;
            met.pass_us = (preoom_now_ns(CLOCK_MONOTONIC) - pass_ns) / 1000;
            met.notify_started = notify.started;
            met.notify_dropped = notify.dropped;
            met.notify_timed_out = notify.timed_out;
            met.notify_failed = notify.failed;
            if (opt.metrics_port)
                preoom_metrics_publish(&met, &mdom, 1, mprocs, n_mprocs);
            if (now - last_metrics >= METRICS_EVERY_MS) {
                size_t len = preoom_metrics_format(&met, &mdom, 1, mprocs, n_mprocs, mtext,
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
        if (poll_ms == 0)
            continue; /* a victim just left: measure again at once */
        struct pollfd pf[2];
        int npf = 0, ei = -1;
        if (psifd >= 0)
            pf[npf++] = (struct pollfd){psifd, POLLPRI, 0};
        if (evfd >= 0) {
            ei = npf;
            pf[npf++] = (struct pollfd){evfd, POLLIN, 0};
        }
        int pr = poll(pf, (nfds_t)npf, (int)poll_ms);
        if (pr > 0 && ei >= 0 && (pf[ei].revents & POLLIN)) {
            uint64_t v;
            if (read(evfd, &v, sizeof v) < 0) {
                /* nothing to do: the count only wakes us */
            }
            near = true;
        }
    }
    logline(SEV_NOTICE, "stopping on signal %d", (int)stop_signal);
    preoom_reg_set_pressure(&reg, PREOOM_PRESSURE_NONE, 0);
    if (conf_path[0])
        unlink(conf_path);
    /* A textfile left behind would go on saying the last figures as if preoomd still ran:
     * removed, so node_exporter drops the series and absent() alerts can fire. */
    if (opt.metrics_file)
        preoom_metrics_remove_file(opt.metrics_file);
    victim_close();
    return 0;
}

/* tools/preoomd.c — the arbiter: sees memory pressure coming and settles it before the
 * kernel's OOM killer does.
 *
 * One loop: read the pressure (pressure.c over readings.c), gather the registered processes
 * (candidates.c), and walk the action ladder with one victim in flight at a time:
 *   1. ask   — a release request in the victim's slot; its agent runs the app's callbacks and
 *              malloc_trim and answers with the bytes released;
 *   2. SIGTERM, if pressure holds after the ask grace;
 *   3. SIGKILL, if it holds after the term grace; then a cool-down.
 * Memory is re-measured before every step, and the victim re-chosen by the policy whenever
 * none is in flight. The loop sleeps long when far from the thresholds and a few ms near
 * them, and wakes at once on a PSI trigger. It protects itself (mlockall, a lowered
 * oom_score_adj) and allocates nothing after start-up. Every decision is one log line with
 * the score broken into terms and the pressure that triggered it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "act.h"
#include "badness.h"
#include "candidates.h"
#include "floor.h"
#include "metrics.h"
#include "pressure.h"
#include "procfs.h"
#include "readings.h"
#include "regwatch.h"

#define PREOOMD_VERSION "0.1.0"
/* A process asked this recently and still first in line goes straight to SIGTERM. */
#define ASK_MEMORY_MS 10000
#define REAP_EVERY_MS 1000
#define FAR_GATHER_MS 5000
#define METRICS_EVERY_MS 1000
#define KILL_WAIT_MS 5000

typedef struct {
    const char *registry;
    const char *registry_dir;
    char cgroup[PREOOM_CGROUP_PATH_MAX];
    int cgroup_given;
    preoom_policy_t policy;
    preoom_thresholds_t th;
    uint32_t ask_grace_ms, term_grace_ms, cooldown_ms, min_poll_ms, max_poll_ms;
    const char *prefer, *avoid;
    int32_t protect[PREOOM_MAX_PROTECT];
    size_t n_protect;
    int allow_uid, dry_run, mlock, verbose, quiet;
    const char *metrics_file;
    int metrics_port;
    uint64_t slots;
    int64_t gid;
} options_t;

enum rung { RUNG_NONE, RUNG_ASKED, RUNG_TERMED, RUNG_KILLED };

typedef struct {
    enum rung rung;
    int32_t pid;
    uint64_t start_time, slot_index;
    char name[PREOOM_COMM_MAX];
    uint64_t since_ms;           /* when the current rung was taken */
    uint32_t serial;
    int answered;
    int pidfd;
} victim_t;

typedef struct {
    int32_t pid;
    uint64_t start_time, at_ms;
    uint64_t slot_index;
    uint32_t serial;
    uint64_t wanted, released;  /* what we asked for, and the fall of its touched memory */
    int answered;
} asked_t;

static volatile sig_atomic_t stop_signal;
static options_t opt;
static preoom_procfs_t fs;
static preoom_reg_t reg = {.fd = -1};
static preoom_gather_opts_t gopt;
static char reg_path[128];
static preoom_gathered_t g;
static preoom_badness_t *scores;
static preoom_candidate_t *cands;
static preoom_history_t *history;
static victim_t victim = {.pidfd = -1};
static asked_t asked[64];
static preoom_metrics_t met;
static regex_t prefer_re, avoid_re;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void logline(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logline(const char *fmt, ...)
{
    if (opt.quiet)
        return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    /* Wall-clock time to the millisecond: log lines are read against other logs. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    fprintf(stderr, "preoomd %02d:%02d:%02d.%03ld: %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
            ts.tv_nsec / 1000000, buf);
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
    exit(code);
}

static const char *mib(uint64_t b, char *buf, size_t cap)
{
    snprintf(buf, cap, "%.1fMiB", (double)b / 1048576.0);
    return buf;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: preoomd [OPTIONS]\n"
            "  --registry NAME        registry DIR/preoom.NAME ($PREOOM_REGISTRY or default)\n"
            "  --registry-dir DIR     where registries live (default /dev/shm; e.g. /run/preoom)\n"
            "  --cgroup PATH          memory cgroup to watch (default: found from the processes)\n"
            "  --policy P             preoom (default), kernel or classic\n"
            "  --ask T --term T --kill T  thresholds of available memory: 15, 15%%, 200M or 15,200M\n"
            "                         (defaults 15%%, 10%%, 5%%)\n"
            "  --exposure-weight PM   weight of untouched promises, per mille (default 500)\n"
            "  --psi-some PCT --psi-full PCT  PSI marks (defaults 20 and 40; 0 ignores PSI)\n"
            "  --ask-grace MS --term-grace MS --cooldown MS  (defaults 1000, 3000, 1000)\n"
            "  --min-poll MS --max-poll MS  polling bounds (defaults 5 and 1000)\n"
            "  --prefer REGEX --avoid REGEX --protect PID  (--protect may repeat)\n"
            "  --allow-uid            act on processes of other users than the registry's\n"
            "  --dry-run              decide and log, send nothing\n"
            "  --metrics FILE         Prometheus textfile, rewritten every second\n"
            "  --metrics-port PORT    serve the metrics on 127.0.0.1:PORT\n"
            "  --slots N --group GID  when creating the registry\n"
            "  --no-mlock  -v/--verbose  -q/--quiet  -h/--help  --version\n"
            "See preoomd(8).\n");
}

static uint32_t parse_ms(const char *name, const char *s, uint32_t min, uint32_t max)
{
    uint64_t v;
    if (preoom_parse_u64(s, min, max, &v) != 0) {
        fprintf(stderr, "preoomd: %s '%s' is not a number of milliseconds in %u..%u\n", name, s,
                min, max);
        exit(2);
    }
    return (uint32_t)v;
}

static void parse_threshold(const char *name, const char *s, preoom_threshold_t *t)
{
    if (preoom_threshold_parse(s, t) != 0) {
        fprintf(stderr, "preoomd: %s '%s' is not a threshold (a percent like 15 or 15%%, a size "
                        "like 200M, or both: 15,200M)\n", name, s);
        exit(2);
    }
}

static void parse_options(int argc, char **argv)
{
    enum { O_REG = 256, O_CG, O_POL, O_ASK, O_TERM, O_KILL, O_EXP, O_PSIS, O_PSIF, O_AG, O_TG,
           O_CD, O_MINP, O_MAXP, O_PREF, O_AVOID, O_PROT, O_ALLOW, O_DRY, O_MET, O_MPORT,
           O_SLOTS, O_GROUP, O_NOMLOCK, O_VERSION, O_REGDIR };
    static const struct option lo[] = {
        {"registry", 1, 0, O_REG}, {"registry-dir", 1, 0, O_REGDIR}, {"cgroup", 1, 0, O_CG}, {"policy", 1, 0, O_POL},
        {"ask", 1, 0, O_ASK}, {"term", 1, 0, O_TERM}, {"kill", 1, 0, O_KILL},
        {"exposure-weight", 1, 0, O_EXP}, {"psi-some", 1, 0, O_PSIS}, {"psi-full", 1, 0, O_PSIF},
        {"ask-grace", 1, 0, O_AG}, {"term-grace", 1, 0, O_TG}, {"cooldown", 1, 0, O_CD},
        {"min-poll", 1, 0, O_MINP}, {"max-poll", 1, 0, O_MAXP}, {"prefer", 1, 0, O_PREF},
        {"avoid", 1, 0, O_AVOID}, {"protect", 1, 0, O_PROT}, {"allow-uid", 0, 0, O_ALLOW},
        {"dry-run", 0, 0, O_DRY}, {"metrics", 1, 0, O_MET}, {"metrics-port", 1, 0, O_MPORT},
        {"slots", 1, 0, O_SLOTS}, {"group", 1, 0, O_GROUP}, {"no-mlock", 0, 0, O_NOMLOCK},
        {"verbose", 0, 0, 'v'}, {"quiet", 0, 0, 'q'}, {"help", 0, 0, 'h'},
        {"version", 0, 0, O_VERSION}, {0, 0, 0, 0}};
    memset(&opt, 0, sizeof opt);
    opt.registry = getenv("PREOOM_REGISTRY");
    if (!opt.registry || !*opt.registry)
        opt.registry = "default";
    opt.registry_dir = getenv("PREOOM_REGISTRY_DIR");
    opt.policy = PREOOM_POLICY_PREOOM;
    preoom_thresholds_defaults(&opt.th);
    opt.ask_grace_ms = 1000;
    opt.term_grace_ms = 3000;
    opt.cooldown_ms = 1000;
    opt.min_poll_ms = 5;
    opt.max_poll_ms = 1000;
    opt.mlock = 1;
    opt.gid = -1;
    opt.slots = PREOOM_REGISTRY_DEFAULT_SLOTS;
    int c;
    uint64_t v;
    opterr = 0; /* our own one-line message below, not getopt's plus the usage */
    while ((c = getopt_long(argc, argv, "vqh", lo, NULL)) != -1) {
        switch (c) {
        case O_REG: opt.registry = optarg; break;
        case O_REGDIR: opt.registry_dir = optarg; break;
        case O_CG:
            if (strlen(optarg) >= sizeof opt.cgroup) {
                fprintf(stderr, "preoomd: --cgroup path too long\n");
                exit(2);
            }
            strcpy(opt.cgroup, optarg);
            opt.cgroup_given = 1;
            break;
        case O_POL:
            if (preoom_policy_from_name(optarg, &opt.policy) != 0) {
                fprintf(stderr, "preoomd: --policy '%s' is not preoom, kernel or classic\n", optarg);
                exit(2);
            }
            break;
        case O_ASK: parse_threshold("--ask", optarg, &opt.th.ask); break;
        case O_TERM: parse_threshold("--term", optarg, &opt.th.term); break;
        case O_KILL: parse_threshold("--kill", optarg, &opt.th.kill); break;
        case O_EXP: opt.th.exposure_permille = parse_ms("--exposure-weight", optarg, 0, 1000); break;
        case O_PSIS: opt.th.psi_some_x100 = 100 * parse_ms("--psi-some", optarg, 0, 100); break;
        case O_PSIF: opt.th.psi_full_x100 = 100 * parse_ms("--psi-full", optarg, 0, 100); break;
        case O_AG: opt.ask_grace_ms = parse_ms("--ask-grace", optarg, 0, 600000); break;
        case O_TG: opt.term_grace_ms = parse_ms("--term-grace", optarg, 0, 600000); break;
        case O_CD: opt.cooldown_ms = parse_ms("--cooldown", optarg, 0, 600000); break;
        case O_MINP: opt.min_poll_ms = parse_ms("--min-poll", optarg, 1, 60000); break;
        case O_MAXP: opt.max_poll_ms = parse_ms("--max-poll", optarg, 1, 60000); break;
        case O_PREF: opt.prefer = optarg; break;
        case O_AVOID: opt.avoid = optarg; break;
        case O_PROT:
            if (opt.n_protect == PREOOM_MAX_PROTECT ||
                preoom_parse_u64(optarg, 1, 0x7fffffff, &v) != 0) {
                fprintf(stderr, "preoomd: --protect '%s' is not a pid (at most %d of them)\n",
                        optarg, PREOOM_MAX_PROTECT);
                exit(2);
            }
            opt.protect[opt.n_protect++] = (int32_t)v;
            break;
        case O_ALLOW: opt.allow_uid = 1; break;
        case O_DRY: opt.dry_run = 1; break;
        case O_MET: opt.metrics_file = optarg; break;
        case O_MPORT: opt.metrics_port = (int)parse_ms("--metrics-port", optarg, 1, 65535); break;
        case O_SLOTS:
            if (preoom_parse_u64(optarg, 1, PREOOM_REGISTRY_MAX_SLOTS, &opt.slots) != 0) {
                fprintf(stderr, "preoomd: --slots '%s' is not 1..%d\n", optarg, PREOOM_REGISTRY_MAX_SLOTS);
                exit(2);
            }
            break;
        case O_GROUP:
            if (preoom_parse_u64(optarg, 0, 0x7fffffff, &v) != 0) {
                fprintf(stderr, "preoomd: --group '%s' is not a numeric group id\n", optarg);
                exit(2);
            }
            opt.gid = (int64_t)v;
            break;
        case O_NOMLOCK: opt.mlock = 0; break;
        case 'v': opt.verbose++; break;
        case 'q': opt.quiet = 1; break;
        case 'h': usage(stdout); exit(0);
        case O_VERSION: printf("preoomd %s\n", PREOOMD_VERSION); exit(0);
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
    const char *why;
    if (preoom_thresholds_check(&opt.th, &why) != 0) {
        fprintf(stderr, "preoomd: %s\n", why);
        exit(2);
    }
    if (opt.min_poll_ms > opt.max_poll_ms) {
        fprintf(stderr, "preoomd: --min-poll must not exceed --max-poll\n");
        exit(2);
    }
    if (opt.prefer && regcomp(&prefer_re, opt.prefer, REG_EXTENDED | REG_NOSUB) != 0) {
        fprintf(stderr, "preoomd: --prefer '%s' is not a regular expression\n", opt.prefer);
        exit(2);
    }
    if (opt.avoid && regcomp(&avoid_re, opt.avoid, REG_EXTENDED | REG_NOSUB) != 0) {
        fprintf(stderr, "preoomd: --avoid '%s' is not a regular expression\n", opt.avoid);
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
        logline("warning: mlockall failed (%s); running unlocked", strerror(errno));
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "-100", 4) != 4)
        logline("warning: cannot lower our oom_score_adj (%s)", strerror(errno));
    if (fd >= 0)
        close(fd);
}

/* The last ask of this process within ASK_MEMORY_MS, or NULL. */
static asked_t *recent_ask(int32_t pid, uint64_t start, uint64_t now)
{
    for (size_t i = 0; i < sizeof asked / sizeof asked[0]; i++)
        if (asked[i].pid == pid && asked[i].start_time == start && now - asked[i].at_ms < ASK_MEMORY_MS)
            return &asked[i];
    return NULL;
}

static asked_t *remember_ask(int32_t pid, uint64_t start, uint64_t now, uint64_t slot_index,
                             uint32_t serial, uint64_t wanted)
{
    size_t oldest = 0;
    for (size_t i = 0; i < sizeof asked / sizeof asked[0]; i++) {
        if (asked[i].pid == pid && asked[i].start_time == start) {
            oldest = i;
            break;
        }
        if (asked[i].at_ms < asked[oldest].at_ms)
            oldest = i;
    }
    asked[oldest] = (asked_t){pid, start, now, slot_index, serial, wanted, 0, 0};
    return &asked[oldest];
}

/* Asked again, or signalled? A process whose last answer gave back at least half of what
 * was asked is cooperating: it is asked again (a cache shrinks step by step). One that did
 * not answer, or gave back less, has nothing more to give: the ladder goes on to SIGTERM. */
static int deserves_another_ask(asked_t *a)
{
    if (!a->answered) {
        /* The answer may have come after we stopped watching (pressure fell first). */
        uint64_t rel, cb, tr;
        if (preoom_act_answered(&reg, a->slot_index, a->pid, a->serial, &rel, &cb, &tr) == 1) {
            a->answered = 1;
            a->released = rel;
        }
    }
    return a->answered && a->released * 2 >= a->wanted && a->released > 0;
}

static void pressure_text(const preoom_assessment_t *a, const preoom_readings_t *r, char *buf,
                          size_t cap)
{
    char b1[32], b2[32], b3[32];
    snprintf(buf, cap, "%s: available %s of %s (%.1f%%)%s, exposure %s, psi some %u.%02u full %u.%02u",
             a->reason, mib(a->available_bytes, b1, sizeof b1), mib(a->total_bytes, b2, sizeof b2),
             a->total_bytes ? 100.0 * (double)a->available_bytes / (double)a->total_bytes : 0.0,
             a->in_cgroup ? " in cgroup" : "", mib(r->exposure_bytes, b3, sizeof b3),
             r->psi_some_avg10_x100 / 100, r->psi_some_avg10_x100 % 100,
             r->psi_full_avg10_x100 / 100, r->psi_full_avg10_x100 % 100);
}

/* Graces shrink as pressure grows: near the kill threshold there is no second to spare. */
static uint32_t ask_grace(int level)
{
    if (level >= PREOOM_PRESSURE_COMPLETE)
        return opt.ask_grace_ms < 20 ? opt.ask_grace_ms : 20;
    if (level >= PREOOM_PRESSURE_CRITICAL)
        return opt.ask_grace_ms < 250 ? opt.ask_grace_ms : 250;
    return opt.ask_grace_ms;
}

static uint32_t term_grace(int level)
{
    if (level >= PREOOM_PRESSURE_COMPLETE)
        return opt.term_grace_ms < 500 ? opt.term_grace_ms : 500;
    return opt.term_grace_ms;
}

static void victim_clear(void)
{
    if (victim.pidfd >= 0)
        close(victim.pidfd);
    memset(&victim, 0, sizeof victim);
    victim.pidfd = -1;
}

/* Signal the victim; opens (and verifies) its pidfd first if needed. */
static int signal_victim(int sig)
{
    if (victim.pidfd < 0) {
        int fd = preoom_act_open(&fs, victim.pid, victim.start_time, gopt.registry_dev,
                                 gopt.registry_ino);
        if (fd < 0)
            return fd;
        victim.pidfd = fd;
    }
    return preoom_act_signal(victim.pidfd, sig);
}

static const char *act_error(int rc)
{
    switch (rc) {
    case -ESRCH: return "it is gone";
    case -ESTALE: return "its pid now names another process";
    case -EACCES: return "it does not map this registry";
    case -EPERM: return "it is excluded (pid 1, ourselves or oom_score_adj -1000) or not ours to signal";
    default: return strerror(-rc);
    }
}

/* Choose the victim among the gathered processes; verifies the one chosen maps the registry
 * (the costly check), re-choosing without it when not. Returns its index or -1. */
static long choose(const preoom_badness_ctx_t *ctx)
{
    /* badness_select takes a contiguous candidate array: built from the gathered procs, in
     * an array allocated at start-up (nothing is allocated once the daemon runs). */
    for (size_t i = 0; i < g.n; i++)
        cands[i] = g.procs[i].c;
    for (size_t tries = 0; tries <= g.n; tries++) {
        long k = preoom_badness_select(ctx, cands, g.n, scores);
        if (k < 0)
            return -1;
        if (preoom_maps_registry(&fs, cands[k].pid, gopt.registry_dev, gopt.registry_ino) == 1) {
            g.procs[k].c.maps_registry = true;
            return k;
        }
        /* It stopped mapping the registry since it was first checked (exec of a binary
         * without the preload, or munmap): no longer ours to act on. */
        logline("pid %d (%s) no longer maps %s: ignored", (int)cands[k].pid, g.procs[k].name,
                reg_path);
        cands[k].maps_registry = false;
        g.procs[k].c.maps_registry = false;
    }
    return -1;
}

static void step(const preoom_assessment_t *a, const preoom_readings_t *r, uint64_t now,
                 uint64_t *cooldown_until)
{
    int level = a->level;
    char ptext[512];

    /* 1. A victim in flight: follow it. */
    if (victim.rung != RUNG_NONE) {
        int gone = 0;
        if (victim.pidfd >= 0)
            gone = preoom_act_exited(victim.pidfd);
        else {
            preoom_pid_stat_t st;
            gone = preoom_read_pid_stat(&fs, victim.pid, &st) != 0 ||
                   st.starttime_ticks != victim.start_time || st.state == 'Z';
        }
        if (gone) {
            logline("pid %d (%s) is gone after %s; cooling down %ums", (int)victim.pid, victim.name,
                    victim.rung == RUNG_ASKED ? "the ask" : victim.rung == RUNG_TERMED ? "SIGTERM" : "SIGKILL",
                    opt.cooldown_ms);
            victim_clear();
            *cooldown_until = now + opt.cooldown_ms;
            return;
        }
        if (victim.rung == RUNG_ASKED) {
            uint64_t rel = 0, cb = 0, tr = 0;
            int ans = opt.dry_run ? 0
                                  : preoom_act_answered(&reg, victim.slot_index, victim.pid,
                                                        victim.serial, &rel, &cb, &tr);
            if (ans == 1 && !victim.answered) {
                char b1[32], b2[32], b3[32];
                victim.answered = 1;
                met.answers++;
                met.released_bytes += rel;
                asked_t *ak = recent_ask(victim.pid, victim.start_time, now);
                if (ak) {
                    ak->answered = 1;
                    ak->released = rel;
                }
                logline("pid %d (%s) answered in %llums: touched memory fell %s (its callbacks "
                        "reported %s freed, malloc_trim gave back %s)",
                        (int)victim.pid, victim.name, (unsigned long long)(now - victim.since_ms),
                        mib(rel, b1, sizeof b1), mib(cb, b2, sizeof b2), mib(tr, b3, sizeof b3));
            }
            if (level == PREOOM_PRESSURE_NONE) {
                /* Relief can come before the answer (the memory is freed, then measured and
                 * answered): wait for the answer within the grace, so it is counted. */
                if (!victim.answered && now - victim.since_ms < ask_grace(level))
                    return;
                pressure_text(a, r, ptext, sizeof ptext);
                logline("pressure relieved after asking pid %d (%s) | %s", (int)victim.pid,
                        victim.name, ptext);
                victim_clear();
                return;
            }
            if (!victim.answered && now - victim.since_ms < ask_grace(level))
                return; /* still within its grace */
            if (!victim.answered)
                logline("pid %d (%s) did not answer within %ums", (int)victim.pid, victim.name,
                        ask_grace(level));
            /* Pressure holds: choose again below (the asked one goes to SIGTERM if first). */
            victim_clear();
        } else if (victim.rung == RUNG_TERMED) {
            if (now - victim.since_ms < term_grace(level))
                return;
            if (level == PREOOM_PRESSURE_NONE) {
                logline("pressure gone; pid %d (%s) left to finish its SIGTERM", (int)victim.pid,
                        victim.name);
                victim_clear();
                return;
            }
            pressure_text(a, r, ptext, sizeof ptext);
            int rc = opt.dry_run ? 0 : signal_victim(SIGKILL);
            if (rc == 0) {
                met.kills++;
                logline("%sSIGKILL pid %d (%s): still alive %ums after SIGTERM | %s",
                        opt.dry_run ? "dry-run: would send " : "", (int)victim.pid, victim.name,
                        term_grace(level), ptext);
                if (!opt.dry_run && victim.pidfd >= 0)
                    preoom_act_mrelease(victim.pidfd);
                victim.rung = RUNG_KILLED;
                victim.since_ms = now;
                if (opt.dry_run)
                    victim_clear();
            } else {
                logline("not sending SIGKILL to pid %d (%s): %s", (int)victim.pid, victim.name,
                        act_error(rc));
                victim_clear();
            }
            return;
        } else if (victim.rung == RUNG_KILLED) {
            if (now - victim.since_ms > KILL_WAIT_MS) {
                logline("pid %d (%s) has not exited %ums after SIGKILL (stuck in the kernel?); "
                        "moving on", (int)victim.pid, victim.name, KILL_WAIT_MS);
                victim_clear();
            }
            return;
        }
    }

    /* 2. Nobody in flight. */
    if (now < *cooldown_until || level == PREOOM_PRESSURE_NONE)
        return;
    preoom_badness_ctx_t ctx;
    preoom_rank_ctx(&ctx, opt.policy, getpid(), a->total_bytes);
    long k = choose(&ctx);
    pressure_text(a, r, ptext, sizeof ptext);
    if (k < 0) {
        static uint64_t last_said;
        if (now - last_said > 10000) {
            logline("pressure %s but no eligible process among %zu registered | %s",
                    preoom_pressure_name((enum preoom_pressure)level), g.n, ptext);
            last_said = now;
        }
        return;
    }
    preoom_proc_t *p = &g.procs[k];
    char terms[1024];
    preoom_badness_format(&scores[k], terms, sizeof terms);
    victim_clear();
    victim.pid = p->c.pid;
    victim.start_time = p->start_time;
    victim.slot_index = p->slot_index;
    snprintf(victim.name, sizeof victim.name, "%s", p->name);
    victim.since_ms = now;

    asked_t *prev = recent_ask(p->c.pid, p->start_time, now);
    if (!prev || deserves_another_ask(prev)) {
        /* Rung 1: ask for what it takes to get back above the ask threshold, plus 5% of the
         * total so the next allocation does not cross it again at once. */
        uint64_t ask_at = preoom_threshold_bytes(&opt.th.ask, a->total_bytes);
        uint64_t want = (ask_at > a->effective_bytes ? ask_at - a->effective_bytes : 0) +
                        a->total_bytes / 20;
        char b1[32];
        int rc = opt.dry_run ? 0
                             : preoom_act_ask(&reg, p->slot_index, p->c.pid, p->start_time,
                                              level, want, &victim.serial);
        remember_ask(p->c.pid, p->start_time, now, p->slot_index, victim.serial, want);
        if (rc != 0) {
            logline("cannot ask pid %d (%s): %s", (int)p->c.pid, p->name, act_error(rc));
            victim_clear();
            return;
        }
        met.asks++;
        victim.rung = opt.dry_run ? RUNG_NONE : RUNG_ASKED;
        logline("%sask pid %d (%s) to release %s at level %s, grace %ums | %s | policy %s %s",
                opt.dry_run ? "dry-run: would " : "", (int)p->c.pid, p->name,
                mib(want, b1, sizeof b1), preoom_pressure_name((enum preoom_pressure)level),
                ask_grace(level), ptext, preoom_policy_name(opt.policy), terms);
        if (opt.dry_run) {
            victim_clear();
            *cooldown_until = now + opt.ask_grace_ms;
        }
        return;
    }
    /* Rung 2: it was asked and is still the one to go. */
    int rc = opt.dry_run ? 0 : signal_victim(SIGTERM);
    if (rc != 0) {
        logline("not sending SIGTERM to pid %d (%s): %s", (int)p->c.pid, p->name, act_error(rc));
        victim_clear();
        return;
    }
    met.terms++;
    victim.rung = opt.dry_run ? RUNG_NONE : RUNG_TERMED;
    char b1[32], b2[32];
    logline("%sSIGTERM pid %d (%s): asked for %s, %s %s; pressure %s holds, grace %ums | %s | "
            "policy %s %s",
            opt.dry_run ? "dry-run: would send " : "", (int)p->c.pid, p->name,
            mib(prev->wanted, b1, sizeof b1), prev->answered ? "gave back" : "no answer",
            prev->answered ? mib(prev->released, b2, sizeof b2) : "",
            preoom_pressure_name((enum preoom_pressure)level), term_grace(level), ptext,
            preoom_policy_name(opt.policy), terms);
    if (opt.dry_run) {
        victim_clear();
        *cooldown_until = now + opt.term_grace_ms;
    }
}

/* A PSI trigger: the kernel wakes us when memory stalls pass 100 ms in any second. */
static int psi_trigger(void)
{
    char path[PREOOM_CGROUP_PATH_MAX + 32];
    if (opt.cgroup[0] && opt.cgroup[0] == '/')
        snprintf(path, sizeof path, "%s/memory.pressure", opt.cgroup);
    else
        snprintf(path, sizeof path, "/proc/pressure/memory");
    int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && strcmp(path, "/proc/pressure/memory") != 0)
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

int main(int argc, char **argv)
{
    preoom_std_fds();
    parse_options(argc, argv);
    preoom_procfs_init(&fs);
    preoom_bus_install();
    char rmsg[768];
    if (opt.registry_dir && *opt.registry_dir &&
        preoom_regwatch_dir(opt.registry_dir, rmsg, sizeof rmsg) != 0)
        fatal(1, "%s", rmsg);
    if (preoom_regwatch_open(opt.registry, opt.slots, opt.gid, &reg, rmsg, sizeof rmsg) != 0)
        fatal(1, "%s", rmsg);
    if (rmsg[0])
        logline("%s", rmsg);
    memset(&gopt, 0, sizeof gopt);
    if (preoom_gather_opts_for(&reg, opt.registry, &gopt, reg_path, sizeof reg_path) != 0)
        fatal(1, "cannot stat the registry file");
    gopt.allow_any_uid = opt.allow_uid;
    gopt.want_children = opt.policy == PREOOM_POLICY_CLASSIC;
    memcpy(gopt.protect, opt.protect, sizeof opt.protect);
    gopt.n_protect = opt.n_protect;
    gopt.prefer = opt.prefer ? &prefer_re : NULL;
    gopt.avoid = opt.avoid ? &avoid_re : NULL;
    if (opt.cgroup_given) {
        preoom_memcg_t m;
        if (preoom_read_memcg(&fs, opt.cgroup, &m) != 0)
            fatal(1, "--cgroup %s: not a memory cgroup this machine has (no memory.limit_in_bytes "
                     "or memory.max there)", opt.cgroup);
    }
    /* Everything the loop needs is allocated now, before mlockall and before any pressure. */
    g.cap = reg.slot_count;
    g.procs = calloc(g.cap, sizeof *g.procs);
    scores = calloc(g.cap, sizeof *scores);
    cands = calloc(g.cap, sizeof *cands);
    history = calloc(1, sizeof *history);
    if (!g.procs || !scores || !cands || !history)
        fatal(1, "out of memory at start-up");
    history->window_ms = 2000;
    int msock = -1;
    if (opt.metrics_port) {
        msock = preoom_metrics_start(opt.metrics_port);
        if (msock < 0)
            fatal(1, "--metrics-port %d: %s", opt.metrics_port, strerror(-msock));
    }
    static char mtext[8192];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    protect_self();
    int psifd = psi_trigger();
    logline("watching %s (%llu slots), policy %s, thresholds ask/term/kill "
            "%u.%02u%%/%u.%02u%%/%u.%02u%% (+%llu/%llu/%llu bytes)%s%s%s",
            reg.path, (unsigned long long)reg.slot_count, preoom_policy_name(opt.policy),
            opt.th.ask.percent_x100 / 100, opt.th.ask.percent_x100 % 100,
            opt.th.term.percent_x100 / 100, opt.th.term.percent_x100 % 100,
            opt.th.kill.percent_x100 / 100, opt.th.kill.percent_x100 % 100,
            (unsigned long long)opt.th.ask.bytes, (unsigned long long)opt.th.term.bytes,
            (unsigned long long)opt.th.kill.bytes, opt.cgroup_given ? ", cgroup " : "",
            opt.cgroup_given ? opt.cgroup : "", opt.dry_run ? ", DRY RUN" : "");

    uint64_t cooldown_until = 0, last_reap = 0, last_metrics = 0, last_detect = 0;
    uint64_t last_gather = 0;
    int last_level = -1, far = 0, follow_rc = 0;
    while (!stop_signal) {
        uint64_t now = now_ms(), pass_ns = preoom_now_ns(CLOCK_MONOTONIC);
        int frc = preoom_regwatch_follow(opt.registry, opt.slots, opt.gid, &reg, rmsg, sizeof rmsg);
        if (frc != 0 && frc != follow_rc)
            logline("%s", rmsg);
        follow_rc = frc < 0 ? frc : 0;
        if (frc == 1)
            preoom_gather_opts_for(&reg, opt.registry, &gopt, reg_path, sizeof reg_path);
        /* Far from every threshold (polling at the slowest), the processes are looked at
         * every FAR_GATHER_MS only: memory and PSI are still read every poll, and the PSI
         * trigger wakes us at once. Near, everything is looked at on every poll. */
        int gather_now = !far || victim.rung != RUNG_NONE || now - last_gather >= FAR_GATHER_MS;
        if (gather_now && now - last_reap >= (far ? FAR_GATHER_MS : REAP_EVERY_MS)) {
            preoom_reg_reap(&reg);
            last_reap = now;
        }
        if (gather_now) {
            preoom_gather(&fs, &reg, &gopt, history, now, &g);
            last_gather = now;
        }
        for (size_t i = 0; i < g.n; i++)
            if (g.procs[i].rejected_now)
                logline("slot %llu names pid %d (%s), which does not map %s: ignored (forged "
                        "or stale)", (unsigned long long)g.procs[i].slot_index,
                        (int)g.procs[i].c.pid, g.procs[i].name, reg_path);
            else if (g.procs[i].hint_unproven_now)
                logline("slot %llu names pid %d (%s) with hint %llu but is not its own slot "
                        "(forged or duplicate): hint ignored", (unsigned long long)g.procs[i].slot_index,
                        (int)g.procs[i].c.pid, g.procs[i].name,
                        (unsigned long long)g.procs[i].slot.adj);
        if (!opt.cgroup_given && now - last_detect >= 5000) {
            char d[PREOOM_CGROUP_PATH_MAX];
            if (preoom_detect_cgroup(&fs, &g, d, sizeof d) == 0 && strcmp(d, opt.cgroup) != 0) {
                logline("watching memory cgroup %s (found from the registered processes)", d);
                strcpy(opt.cgroup, d);
            }
            last_detect = now;
        }
        preoom_readings_t r;
        preoom_memcg_t cg;
        memset(&cg, 0, sizeof cg);
        if (preoom_read_readings(&fs, opt.cgroup, g.exposure_bytes, &r, &cg) == -ENOENT &&
            opt.cgroup[0]) {
            logline("memory cgroup %s cannot be read any more; watching the whole machine",
                    opt.cgroup);
            opt.cgroup[0] = '\0';
            opt.cgroup_given = 0;
        }
        preoom_assessment_t a;
        preoom_pressure_assess(&opt.th, &r, &a);
        preoom_reg_set_pressure(&reg, (uint64_t)a.level, (uint64_t)getpid());
        if (opt.verbose && (int)a.level != last_level) {
            char ptext[512];
            pressure_text(&a, &r, ptext, sizeof ptext);
            logline("pressure %s | %s", preoom_pressure_name(a.level), ptext);
        }
        last_level = (int)a.level;
        step(&a, &r, now, &cooldown_until);
        met.pass_us = (preoom_now_ns(CLOCK_MONOTONIC) - pass_ns) / 1000;

        uint32_t poll_ms = preoom_poll_ms(a.headroom_bytes, opt.min_poll_ms, opt.max_poll_ms);
        if (victim.rung != RUNG_NONE || a.level != PREOOM_PRESSURE_NONE)
            poll_ms = opt.min_poll_ms;
        far = poll_ms >= opt.max_poll_ms;
        if (now - last_metrics >= METRICS_EVERY_MS || opt.metrics_port) {
            met.level = (int)a.level;
            met.total_bytes = a.total_bytes;
            met.available_bytes = a.available_bytes;
            met.effective_bytes = a.effective_bytes;
            met.in_cgroup = a.in_cgroup;
            met.exposure_bytes = g.exposure_bytes;
            met.committed_bytes = g.committed_bytes;
            met.touched_bytes = g.touched_bytes;
            met.registered = g.n;
            met.cgroup_oom_kills = cg.oom_kill == PREOOM_VALUE_MISSING ? 0 : cg.oom_kill;
            met.poll_ms = poll_ms;
            met.psi_some_x100 = r.psi_some_avg10_x100;
            met.psi_full_x100 = r.psi_full_avg10_x100;
            if (opt.metrics_port)
                preoom_metrics_publish(&met);
        }
        if (now - last_metrics >= METRICS_EVERY_MS) {
            size_t len = preoom_metrics_format(&met, mtext, sizeof mtext);
            if (opt.metrics_file) {
                int mrc = preoom_metrics_write_file(opt.metrics_file, mtext, len);
                if (mrc != 0) {
                    static uint64_t said;
                    if (now - said > 60000) {
                        logline("cannot write %s: %s", opt.metrics_file, strerror(-mrc));
                        said = now;
                    }
                }
            }
            last_metrics = now;
        }
        struct pollfd pf[1];
        int npf = 0;
        if (psifd >= 0)
            pf[npf++] = (struct pollfd){psifd, POLLPRI, 0};
        poll(pf, (nfds_t)npf, (int)poll_ms);
    }
    logline("stopping on signal %d", (int)stop_signal);
    preoom_reg_set_pressure(&reg, PREOOM_PRESSURE_NONE, 0);
    victim_clear();
    return 0;
}

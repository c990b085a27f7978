/* tools/cmd_report.c — `preoom report FILE|PID`: where the memory came from.
 *
 *   preoom report FILE|PID [--format text|collapsed|svg] [--weight live|peak|total|count]
 *                          [--top N] [-o OUT]
 *
 * FILE is a report written at exit (PREOOM_REPORT with PREOOM_STACKS=sample|all). PID asks a
 * running process through the registry: a request of level PREOOM_REQ_LEVEL_DUMP in its
 * slot, answered by its agent writing the report to preoom_stacks_dump_path() (renamed into
 * place whole). Text output lists the top sites by leaked (live) bytes, by peak and by count;
 * collapsed and svg draw the chosen weight. Never writes to the process beyond that one
 * request word; exit status 0, 1 (one line on stderr), 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "floor.h"
#include "stackreport.h"
#include "symbolize.h"

#define REPORT_MAX_BYTES (256u << 20)

static void usage(FILE *f)
{
    fprintf(f, "usage: preoom report FILE|PID [--format text|collapsed|svg] "
               "[--weight live|peak|total|count] [--top N] [-o OUT]\n");
}

static char *read_file(const char *path, size_t *len, char *err, size_t es)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(err, es, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > REPORT_MAX_BYTES) {
        snprintf(err, es, "%s: not a regular file of at most %u MiB", path, REPORT_MAX_BYTES >> 20);
        close(fd);
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t n = 0;
    while (buf && n < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (!buf) {
        snprintf(err, es, "out of memory");
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* ---- asking a running process --------------------------------------------------------- */
static int ask_process(const char *reg_name, long pid, char *path, size_t path_size, char *err,
                       size_t es)
{
    preoom_reg_t reg;
    const char *why = "";
    int rc = preoom_reg_open(reg_name, 0, 0, -1, 1, &reg, &why);
    if (rc != 0) {
        snprintf(err, es, "registry /dev/shm/preoom.%s: %s (%s)", reg_name, why, strerror(-rc));
        return -1;
    }
    long idx = -1;
    struct preoom_slot snap;
    for (uint64_t i = 0; i < reg.slot_count; i++)
        if (preoom_reg_snapshot(&reg, i, &snap) == 0 && (long)snap.pid == pid &&
            preoom_reg_pid_matches((pid_t)pid, snap.start_time)) {
            idx = (long)i;
            break;
        }
    if (idx < 0) {
        snprintf(err, es, "process %ld is not registered in /dev/shm/preoom.%s", pid, reg_name);
        preoom_reg_close(&reg);
        return -1;
    }
    preoom_stacks_dump_path(reg_name, (pid_t)pid, path, path_size);
    struct stat before;
    int had = stat(path, &before) == 0;
    uint32_t serial;
    rc = preoom_reg_request(&reg, (uint64_t)idx, (int32_t)pid, snap.start_time,
                            PREOOM_REQ_LEVEL_DUMP, 0, &serial);
    int answered = rc == 0 ? 0 : rc;
    preoom_answer_t ans = {0, 0, 0, 0};
    for (int i = 0; i < 1000 && answered == 0; i++) {  /* up to 10 s */
        answered = preoom_reg_answered(&reg, (uint64_t)idx, (int32_t)pid, serial,
                                       PREOOM_REQ_LEVEL_DUMP, &ans);
        if (answered == 0) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    uint64_t bytes = ans.bytes;
    preoom_reg_close(&reg);
    if (answered < 0) {
        snprintf(err, es, "process %ld: its registry slot changed or the registry went bad "
                 "while asking (%s)", pid, strerror(-answered));
        return -1;
    }
    if (!answered) {
        snprintf(err, es, "process %ld did not answer the report request within 10 s", pid);
        return -1;
    }
    struct stat after;
    if (bytes == 0 || stat(path, &after) != 0 ||
        (had && after.st_ino == before.st_ino && after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
         after.st_mtim.tv_nsec == before.st_mtim.tv_nsec)) {
        snprintf(err, es, "process %ld could not write its report to %s (see its stderr)", pid,
                 path);
        return -1;
    }
    return 0;
}

/* ---- output ------------------------------------------------------------------------------- */
typedef struct view {
    const srep_t *r;
    sym_ctx_t *sym;
    sym_frame_t **frames;    /* resolved lazily per site */
} view_t;

static const sym_frame_t *site_frames(view_t *v, size_t i)
{
    if (!v->frames[i]) {
        const srep_site_t *s = &v->r->sites[i];
        v->frames[i] = calloc(s->nframes ? s->nframes : 1, sizeof **v->frames);
        if (!v->frames[i])
            return NULL;
        for (size_t k = 0; k < s->nframes; k++)
            sym_resolve(v->sym, s->frames[k], &v->frames[i][k]);
    }
    return v->frames[i];
}

static enum srep_weight sort_weight;
static const srep_site_t *sort_sites;

static int by_weight(const void *a, const void *b)
{
    uint64_t wa = srep_site_weight(&sort_sites[*(const size_t *)a], sort_weight);
    uint64_t wb = srep_site_weight(&sort_sites[*(const size_t *)b], sort_weight);
    return wa < wb ? 1 : wa > wb ? -1 : 0;
}

static size_t *sorted(const srep_t *r, enum srep_weight w)
{
    size_t *idx = malloc((r->nsites ? r->nsites : 1) * sizeof *idx);
    if (!idx)
        return NULL;
    for (size_t i = 0; i < r->nsites; i++)
        idx[i] = i;
    sort_weight = w;
    sort_sites = r->sites;
    if (r->nsites > 1)
        qsort(idx, r->nsites, sizeof *idx, by_weight);
    return idx;
}

static void print_note(const char *msg, void *arg)
{
    fprintf((FILE *)arg, "note: %s\n", msg);
}

static int print_text(view_t *v, int top, FILE *out)
{
    const srep_t *r = v->r;
    const char *est = strcmp(r->mode, "sample") == 0 ? "~" : "";
    fprintf(out, "process %ld (%s): %zu call sites, mode %s", r->pid, r->name, r->nsites, r->mode);
    if (strcmp(r->mode, "sample") == 0)
        fprintf(out, " (one sample per ~%llu bytes; figures are estimates)",
                (unsigned long long)r->sample_bytes);
    fprintf(out, "\n");
    if (r->dropped)
        fprintf(out, "note: %llu samples could not be kept\n", (unsigned long long)r->dropped);
    if (r->has_cache && strcmp(r->cache_mode, "verify") == 0)
        fprintf(out, "stack cache (verify): %llu hits, %llu differed from the unwinder\n",
                (unsigned long long)r->cache_hits, (unsigned long long)r->cache_mismatches);
    static const struct { enum srep_weight w; const char *title; } tables[] = {
        {SREP_LIVE, "leaked (live at exit or at the request)"},
        {SREP_PEAK, "peak live bytes"},
        {SREP_COUNT, "allocation count"},
    };
    for (size_t t = 0; t < 3; t++) {
        size_t *idx = sorted(r, tables[t].w);
        if (!idx)
            return -1;
        fprintf(out, "\n== top sites by %s ==\n", tables[t].title);
        int shown = 0;
        for (size_t k = 0; k < r->nsites && shown < top; k++) {
            const srep_site_t *s = &r->sites[idx[k]];
            if (srep_site_weight(s, tables[t].w) == 0)
                break;
            shown++;
            fprintf(out, "#%d live %s%llu bytes in %s%llu blocks, peak %s%llu bytes, total %s%llu "
                         "bytes in %s%llu allocations%s\n",
                    shown, est, (unsigned long long)s->live_bytes, est,
                    (unsigned long long)s->live_count, est, (unsigned long long)s->peak_bytes, est,
                    (unsigned long long)s->total_bytes, est, (unsigned long long)s->total_count,
                    s->truncated ? " (stack truncated)" : "");
            const sym_frame_t *f = site_frames(v, idx[k]);
            for (size_t i = 0; f && i < s->nframes; i++)
                fprintf(out, "    %s%s%s\n", f[i].func, f[i].where[0] ? "  " : "", f[i].where);
            if (!s->nframes)
                fprintf(out, "    [no frames]\n");
        }
        if (!shown)
            fprintf(out, "(none)\n");
        free(idx);
    }
    sym_notes(v->sym, print_note, stderr);
    return 0;
}

/* All sites as collapsed lines (identical name stacks merged by the consumer; we merge too
 * so the output is small). */
static char *collapsed(view_t *v, enum srep_weight w)
{
    const srep_t *r = v->r;
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    out[0] = '\0';
    for (size_t i = 0; i < r->nsites; i++) {
        const srep_site_t *s = &r->sites[i];
        uint64_t weight = srep_site_weight(s, w);
        if (!weight)
            continue;
        const sym_frame_t *f = site_frames(v, i);
        const char **names = calloc(s->nframes ? s->nframes : 1, sizeof *names);
        if (!f || !names) {
            free(names);
            free(out);
            return NULL;
        }
        for (size_t k = 0; k < s->nframes; k++)
            names[k] = f[k].func;
        size_t need = srep_collapsed_line(names, s->nframes, s->truncated, weight, NULL, 0);
        if (len + need + 1 > cap) {
            while (len + need + 1 > cap)
                cap *= 2;
            char *n = realloc(out, cap);
            if (!n) {
                free(names);
                free(out);
                return NULL;
            }
            out = n;
        }
        len += srep_collapsed_line(names, s->nframes, s->truncated, weight, out + len, cap - len);
        free(names);
    }
    return out;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

int preoom_cmd_report(const char *reg_name, int argc, char **argv)
{
    const char *target = NULL, *format = "text", *out_path = NULL;
    enum srep_weight weight = SREP_LIVE;
    int top = 10;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((strcmp(a, "--format") == 0 || strcmp(a, "-f") == 0) && i + 1 < argc) {
            format = argv[++i];
        } else if (strcmp(a, "--weight") == 0 && i + 1 < argc) {
            if (srep_parse_weight(argv[++i], &weight) != 0) {
                fprintf(stderr, "preoom report: --weight must be live, peak, total or count\n");
                return 2;
            }
        } else if (strcmp(a, "--top") == 0 && i + 1 < argc) {
            if (parse_int(argv[++i], 1, 100000, &top) != 0) {
                fprintf(stderr, "preoom report: --top must be a number from 1 to 100000\n");
                return 2;
            }
        } else if (strcmp(a, "-o") == 0 && i + 1 < argc) {
            out_path = argv[++i];
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "preoom report: unknown option %s (see preoom report --help)\n", a);
            return 2;
        } else if (!target) {
            target = a;
        } else {
            fprintf(stderr, "preoom report: one FILE or PID only, not also '%s'\n", a);
            return 2;
        }
    }
    if (!target) {
        fprintf(stderr, "preoom report: which report? give a FILE or a PID (see preoom report "
                        "--help)\n");
        return 2;
    }
    if (strcmp(format, "text") && strcmp(format, "collapsed") && strcmp(format, "svg")) {
        fprintf(stderr, "preoom report: --format '%s' is not text, collapsed or svg\n", format);
        return 2;
    }
    char err[1400] = "", path[600];
    snprintf(path, sizeof path, "%s", target);
    struct stat st;
    if (stat(target, &st) != 0 && strspn(target, "0123456789") == strlen(target)) {
        long pid = strtol(target, NULL, 10);
        if (pid <= 0 || ask_process(reg_name, pid, path, sizeof path, err, sizeof err) != 0) {
            fprintf(stderr, "preoom report: %s\n", err[0] ? err : "bad pid");
            return 1;
        }
    }
    size_t len = 0;
    char *buf = read_file(path, &len, err, sizeof err);
    if (strcmp(path, target) != 0)
        unlink(path); /* the process's answer is ours once read: leave nothing in /tmp */
    if (!buf) {
        fprintf(stderr, "preoom report: %s\n", err);
        return 1;
    }
    srep_t r;
    int rc = srep_parse(buf, len, &r, err, sizeof err);
    free(buf);
    if (rc != 0) {
        fprintf(stderr, "preoom report: %s: not a preoom report: %s\n", path, err);
        return 1;
    }
    if (!r.has_stacks) {
        fprintf(stderr, "preoom report: %s has no call sites (run with PREOOM_STACKS=sample or "
                        "all)\n", path);
        srep_free(&r);
        return 1;
    }
    FILE *out = stdout;
    if (out_path && !(out = fopen(out_path, "w"))) {
        fprintf(stderr, "preoom report: cannot write %s: %s\n", out_path, strerror(errno));
        srep_free(&r);
        return 1;
    }
    view_t v = {.r = &r, .sym = sym_open(&r), .frames = calloc(r.nsites ? r.nsites : 1, sizeof *v.frames)};
    int status = 0;
    if (!v.sym || !v.frames) {
        fprintf(stderr, "preoom report: out of memory\n");
        status = 1;
    } else if (strcmp(format, "text") == 0) {
        status = print_text(&v, top, out) == 0 ? 0 : 1;
    } else {
        char *c = collapsed(&v, weight);
        if (!c) {
            fprintf(stderr, "preoom report: out of memory\n");
            status = 1;
        } else if (strcmp(format, "collapsed") == 0) {
            fputs(c, out);
        } else {
            static const char *const wname[] = {"live bytes", "peak bytes", "total bytes",
                                                "allocations"};
            static const char *const unit[] = {"bytes", "bytes", "bytes", "allocations"};
            char title[200];
            snprintf(title, sizeof title, "%s of %s (pid %ld), by call stack%s", wname[weight],
                     r.name, r.pid, strcmp(r.mode, "sample") == 0 ? " (sampled estimate)" : "");
            if (srep_flamegraph_svg(c, title, unit[weight], out) != 0) {
                fprintf(stderr, "preoom report: cannot draw the flame graph\n");
                status = 1;
            }
        }
        free(c);
    }
    for (size_t i = 0; v.frames && i < r.nsites; i++)
        free(v.frames[i]);
    free(v.frames);
    sym_close(v.sym);
    if (out != stdout && fclose(out) != 0 && status == 0) {
        fprintf(stderr, "preoom report: cannot write %s: %s\n", out_path, strerror(errno));
        status = 1;
    }
    srep_free(&r);
    return status;
}

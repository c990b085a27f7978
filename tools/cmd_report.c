/* tools/cmd_report.c — `preoom report FILE|PID`: where the memory came from.
 *
 *   preoom report FILE|PID [--format text|collapsed|svg|pprof]
 *                          [--weight live|peak|max|total|count|temporary]
 *                          [--bytes requested|usable] [--top N] [-o OUT] [--save FILE]
 *   preoom report A.json B.json | B --base A.json       what grew from A to B, by site
 *   preoom report PID --every 10s --diff [--count N]     growth of a running process
 *
 * FILE is a report written at exit (PREOOM_REPORT with PREOOM_STACKS=sample|all). PID asks a
 * running process through the registry: a request of level PREOOM_REQ_LEVEL_DUMP in its
 * slot, answered by its agent writing the report to preoom_stacks_dump_path() (renamed into
 * place whole). Text output lists the top sites by leaked (live) bytes, by peak and by count;
 * collapsed and svg draw the chosen weight. Stacks are shown folded: they start at the caller
 * of the allocation function, and the preload's own allocations are left out (symbolize.c).
 * Bytes are what the code asked for unless --bytes usable. Never writes to the process beyond
 * that one request word; exit status 0, 1 (one line on stderr), 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <uthash.h>

#include "cmd.h"
#include "floor.h"
#include "pprof.h"
#include "stackreport.h"
#include "symbolize.h"

#define REPORT_MAX_BYTES (256u << 20)

static void usage(FILE *f)
{
    fprintf(f, "usage: preoom report FILE|PID [--format text|collapsed|svg|pprof] "
               "[--weight live|peak|max|total|count|temporary]\n"
               "                     [--bytes requested|usable] [--top N] [-o OUT] "
               "[--save FILE]\n"
               "       preoom report A.json B.json   (or B --base A.json): growth by site\n"
               "       preoom report PID --every 10s --diff [--count N]\n");
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

/* ---- a report, loaded and symbolized --------------------------------------------------- */
/* A site as shown: its frames after folding, and the key that names it across reports. */
typedef struct shown {
    const sym_frame_t **f;   /* innermost first */
    size_t n;
    int own;                 /* the preload's own allocation: never shown */
    char *key;               /* the frames' names and places, joined */
} shown_t;

typedef struct loaded {
    srep_t r;
    sym_ctx_t *sym;
    shown_t *sh;             /* per site, built by load_report */
    int req;                 /* bytes shown are requested bytes */
    uint64_t own_sites, own_bytes;
} loaded_t;

static void loaded_free(loaded_t *l)
{
    for (size_t i = 0; l->sh && i < l->r.nsites; i++) {
        free(l->sh[i].f);
        free(l->sh[i].key);
    }
    free(l->sh);
    sym_close(l->sym);
    srep_free(&l->r);
    memset(l, 0, sizeof *l);
}

static char *join_key(const sym_frame_t *const *f, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(f[i]->func) + strlen(f[i]->where) + 2;
    char *k = malloc(len), *p = k;
    if (!k)
        return NULL;
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s@%s;", f[i]->func, f[i]->where);
    *p = '\0';
    return k;
}

/* Every site's shown frames: each distinct address symbolized once (the cache), the leading
 * allocator and preload frames folded away. */
static int build_shown(loaded_t *l)
{
    const srep_t *r = &l->r;
    l->sh = calloc(r->nsites ? r->nsites : 1, sizeof *l->sh);
    const sym_addr_t **a = calloc(r->depth + 1 > 1024 ? r->depth + 1 : 1024, sizeof *a);
    if (!l->sh || !a) {
        free(a);
        return -1;
    }
    for (size_t i = 0; i < r->nsites; i++) {
        const srep_site_t *s = &r->sites[i];
        size_t total = 0;
        for (size_t k = 0; k < s->nframes; k++) {
            a[k] = sym_lookup(l->sym, s->frames[k]);
            if (!a[k]) {
                free(a);
                return -1;
            }
        }
        int own;
        size_t start = sym_fold(a, s->nframes, &own);
        for (size_t k = start; k < s->nframes; k++)
            total += a[k]->nframes;
        shown_t *sh = &l->sh[i];
        sh->own = own;
        sh->f = calloc(total ? total : 1, sizeof *sh->f);
        if (!sh->f) {
            free(a);
            return -1;
        }
        for (size_t k = start; k < s->nframes; k++)
            for (size_t j = 0; j < a[k]->nframes; j++)
                /* An allocation function inlined where the stack starts (the loader's own
                 * malloc wrappers) is folded as a called one is. */
                if (sh->n || !a[k]->frames[j].inlined || !sym_is_allocator_name(a[k]->frames[j].func))
                    sh->f[sh->n++] = &a[k]->frames[j];
        /* Stacks end at main, as heaptrack's: what the C library did to call it is the same
         * for every site. */
        for (size_t k = 0; k < sh->n; k++)
            if (!sh->f[k]->inlined && strcmp(sh->f[k]->func, "main") == 0) {
                sh->n = k + 1;
                break;
            }
        sh->key = join_key(sh->f, sh->n);
        if (!sh->key) {
            free(a);
            return -1;
        }
        if (own) {
            l->own_sites++;
            l->own_bytes += srep_site_weight(s, SREP_LIVE, l->req);
        }
    }
    free(a);
    return 0;
}

/* FILE or PID into l. With a PID the process writes its report (ask_process); save keeps
 * that file under the name given, else it is removed once read. 0, or 1 with one line on
 * stderr. */
static int load_report(const char *reg_name, const char *target, const char *save, int usable,
                       loaded_t *l)
{
    char err[1400] = "", path[600];
    memset(l, 0, sizeof *l);
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
    if (strcmp(path, target) != 0) {
        /* The process's answer is ours once read: kept where asked, else nothing left. */
        if (save && buf && rename(path, save) != 0) {
            fprintf(stderr, "preoom report: cannot save the snapshot as %s: %s\n", save,
                    strerror(errno));
            unlink(path);
            free(buf);
            return 1;
        }
        if (!save)
            unlink(path);
    } else if (save) {
        fprintf(stderr, "preoom report: --save keeps a running process's snapshot; %s is "
                        "a file already\n", target);
        free(buf);
        return 1;
    }
    if (!buf) {
        fprintf(stderr, "preoom report: %s\n", err);
        return 1;
    }
    int rc = srep_parse(buf, len, &l->r, err, sizeof err);
    free(buf);
    if (rc != 0) {
        fprintf(stderr, "preoom report: %s: not a preoom report: %s\n", target, err);
        return 1;
    }
    if (!l->r.has_stacks) {
        fprintf(stderr, "preoom report: %s has no call sites (run with PREOOM_STACKS=sample or "
                        "all)\n", target);
        srep_free(&l->r);
        return 1;
    }
    l->req = !usable && l->r.has_requested;
    l->sym = sym_open(&l->r);
    if (!l->sym || build_shown(l) != 0) {
        fprintf(stderr, "preoom report: out of memory\n");
        loaded_free(l);
        return 1;
    }
    return 0;
}

/* ---- output ------------------------------------------------------------------------------- */
static const char *const weight_names[] = {"live bytes", "bytes at the heap's peak",
                                           "total bytes", "allocations", "own maximum bytes",
                                           "temporary allocations"};

static int weight_counts(enum srep_weight w)
{
    return w == SREP_COUNT || w == SREP_TEMP;
}

static enum srep_weight sort_weight;
static const loaded_t *sort_l;

/* Shares of the heap's peak are kept in requested bytes only: without them (an older report,
 * or --bytes usable) the peak is each site's own maximum. */
static enum srep_weight peak_kind(const loaded_t *l, enum srep_weight w)
{
    return w == SREP_PEAK && !(l->req && l->r.has_at_peak) ? SREP_MAX : w;
}

static uint64_t wt(const loaded_t *l, size_t i, enum srep_weight w)
{
    return srep_site_weight(&l->r.sites[i], peak_kind(l, w), l->req);
}

static int by_weight(const void *a, const void *b)
{
    uint64_t wa = wt(sort_l, *(const size_t *)a, sort_weight);
    uint64_t wb = wt(sort_l, *(const size_t *)b, sort_weight);
    return wa < wb ? 1 : wa > wb ? -1 : 0;
}

/* The shown sites (not the preload's own), heaviest first; *n of them. */
static size_t *sorted(const loaded_t *l, enum srep_weight w, size_t *n)
{
    size_t *idx = malloc((l->r.nsites ? l->r.nsites : 1) * sizeof *idx);
    if (!idx)
        return NULL;
    *n = 0;
    for (size_t i = 0; i < l->r.nsites; i++)
        if (!l->sh[i].own)
            idx[(*n)++] = i;
    sort_weight = w;
    sort_l = l;
    if (*n > 1)
        qsort(idx, *n, sizeof *idx, by_weight);
    return idx;
}

static void print_note(const char *msg, void *arg)
{
    fprintf((FILE *)arg, "note: %s\n", msg);
}

static void print_frames(const shown_t *sh, FILE *out)
{
    for (size_t i = 0; i < sh->n; i++)
        fprintf(out, "    %s%s%s%s\n", sh->f[i]->func, sh->f[i]->where[0] ? "  " : "",
                sh->f[i]->where, sh->f[i]->inlined ? "  (inlined)" : "");
    if (!sh->n)
        fprintf(out, "    [no frames]\n");
}

static const char *bytes_word(const loaded_t *l)
{
    return l->req ? "requested" : "usable";
}

static void print_header(const loaded_t *l, FILE *out)
{
    const srep_t *r = &l->r;
    const char *est = strcmp(r->mode, "sample") == 0 ? "~" : "";
    fprintf(out, "process %ld (%s): %zu call sites, mode %s", r->pid, r->name,
            r->nsites - (size_t)l->own_sites, r->mode);
    if (strcmp(r->mode, "sample") == 0)
        fprintf(out, " (one sample per ~%llu bytes; figures are estimates, a site's relative "
                     "error about sqrt(%llu / its bytes))",
                (unsigned long long)r->sample_bytes, (unsigned long long)r->sample_bytes);
    fprintf(out, "\n");
    if (l->req)
        fprintf(out, "bytes: requested (what the code asked for; --bytes usable for what the "
                     "allocator handed out)\n");
    else
        fprintf(out, "bytes: usable (what the allocator handed out%s)\n",
                r->has_requested ? "" : "; this report has no requested sizes");
    uint64_t live = 0, blocks = 0, total = 0, count = 0, live_u = 0, total_u = 0;
    for (size_t i = 0; i < r->nsites; i++) {
        if (l->sh[i].own)
            continue;
        live += wt(l, i, SREP_LIVE);
        total += wt(l, i, SREP_TOTAL);
        blocks += r->sites[i].live_count;
        count += r->sites[i].total_count;
        live_u += r->sites[i].live_bytes;
        total_u += r->sites[i].total_bytes;
    }
    fprintf(out, "total: %s%llu allocations, %s%llu bytes allocated, %s%llu bytes leaked in "
                 "%s%llu blocks, mappings included",
            est, (unsigned long long)count, est, (unsigned long long)total, est,
            (unsigned long long)live, est, (unsigned long long)blocks);
    if (l->req)
        fprintf(out, " (usable: %s%llu allocated, %s%llu leaked)", est,
                (unsigned long long)total_u, est, (unsigned long long)live_u);
    fprintf(out, "\n");
    if (r->has_at_peak) {
        /* The heap at its peak is what its sites held then: their shares added up (with
         * several threads the preload finds the moment a little late or early, and this sum
         * is the heap at the moment it chose). The preload's own blocks are left out, as
         * they are from the tables. */
        uint64_t temp = 0, peak = 0;
        for (size_t i = 0; i < r->nsites; i++)
            if (!l->sh[i].own) {
                temp += r->sites[i].temporary;
                if (!r->sites[i].is_mmap)
                    peak += r->sites[i].at_peak_req;
            }
        fprintf(out, "peak heap: %s%llu bytes requested, %.3f s after start (the peak table's "
                     "sites add up to it)%s\n",
                est, (unsigned long long)peak, (double)r->heap_peak_ms / 1000,
                r->peak_skipped ? "; a few changes inside signal handlers were not counted" : "");
        fprintf(out, "temporary allocations: %s%llu (%.1f%% of all; freed before any other "
                     "allocation on their thread)\n",
                est, (unsigned long long)temp, count ? 100.0 * (double)temp / (double)count : 0.0);
    }
    if (r->peak_committed)
        fprintf(out, "process: peak committed %llu bytes (heap and mappings, usable)\n",
                (unsigned long long)r->peak_committed);
    if (l->own_sites)
        fprintf(out, "not shown: %llu sites of preoom's own (%llu bytes live)\n",
                (unsigned long long)l->own_sites, (unsigned long long)l->own_bytes);
    if (r->dropped)
        fprintf(out, "note: %llu samples could not be kept\n", (unsigned long long)r->dropped);
    if (r->has_cache && strcmp(r->cache_mode, "verify") == 0)
        fprintf(out, "stack cache (verify): %llu hits, %llu differed from the unwinder\n",
                (unsigned long long)r->cache_hits, (unsigned long long)r->cache_mismatches);
}

static int print_text(const loaded_t *l, int top, FILE *out)
{
    const srep_t *r = &l->r;
    int sampled = strcmp(r->mode, "sample") == 0;
    print_header(l, out);
    const char *peak_title = peak_kind(l, SREP_PEAK) == SREP_PEAK
                                 ? "live bytes at the heap's peak"
                                 : "peak live bytes (each site's own maximum)";
    const struct { enum srep_weight w; const char *title; } tables[] = {
        {SREP_LIVE, "leaked (live at exit or at the request)"},
        {SREP_PEAK, peak_title},
        {SREP_TEMP, "temporary allocations"},
        {SREP_COUNT, "allocation count"},
    };
    for (size_t t = 0; t < 4; t++) {
        if (tables[t].w == SREP_TEMP && !r->has_at_peak)
            continue;
        size_t n;
        size_t *idx = sorted(l, tables[t].w, &n);
        if (!idx)
            return -1;
        fprintf(out, "\n== top sites by %s ==\n", tables[t].title);
        int shown = 0;
        for (size_t k = 0; k < n && shown < top; k++) {
            const srep_site_t *s = &r->sites[idx[k]];
            if (wt(l, idx[k], tables[t].w) == 0)
                break;
            shown++;
            /* Mappings are recorded every one (exact) in sample mode too. */
            const char *est = sampled && !s->is_mmap ? "~" : "";
            fprintf(out, "#%d live %s%llu bytes in %s%llu blocks", shown, est,
                    (unsigned long long)wt(l, idx[k], SREP_LIVE), est,
                    (unsigned long long)s->live_count);
            if (s->is_mmap) /* not in the heap, so no share of its peak */
                fprintf(out, ", own max %s%llu bytes", est,
                        (unsigned long long)wt(l, idx[k], SREP_MAX));
            else if (peak_kind(l, SREP_PEAK) == SREP_PEAK && est[0])
                /* Sampled, a site's own maximum is the largest of its noisy estimates over
                 * time, biased upwards (a single sampled block stands for S bytes): only the
                 * share of the heap's peak, an estimate at one moment, is shown. */
                fprintf(out, ", peak %s%llu bytes", est,
                        (unsigned long long)wt(l, idx[k], SREP_PEAK));
            else if (peak_kind(l, SREP_PEAK) == SREP_PEAK)
                fprintf(out, ", peak %s%llu bytes (own max %s%llu)", est,
                        (unsigned long long)wt(l, idx[k], SREP_PEAK), est,
                        (unsigned long long)wt(l, idx[k], SREP_MAX));
            else
                fprintf(out, ", peak %s%llu bytes", est,
                        (unsigned long long)wt(l, idx[k], SREP_PEAK));
            fprintf(out, ", total %s%llu bytes in %s%llu allocations", est,
                    (unsigned long long)wt(l, idx[k], SREP_TOTAL), est,
                    (unsigned long long)s->total_count);
            if (s->is_mmap)
                fprintf(out, ", mapped (mmap)");
            if (r->has_at_peak && s->temporary)
                fprintf(out, ", %s%llu temporary", est, (unsigned long long)s->temporary);
            if (est[0] && s->samples) {
                /* The sampling error of the table's own figure (preload/stacks.c). */
                uint64_t b = wt(l, idx[k], weight_counts(tables[t].w) ? SREP_TOTAL : tables[t].w);
                if (b)
                    fprintf(out, " (+-%.0f%%)", 100.0 * sqrt((double)r->sample_bytes / (double)b));
            }
            fprintf(out, "%s\n", s->truncated ? " (stack truncated)" : "");
            print_frames(&l->sh[idx[k]], out);
        }
        if (!shown)
            fprintf(out, "(none)\n");
        free(idx);
    }
    sym_notes(l->sym, print_note, stderr);
    return 0;
}

/* A growing text buffer. */
typedef struct sbuf {
    char *s;
    size_t len, cap;
    int failed;
} sbuf_t;

static char *sb_room(sbuf_t *b, size_t need)
{
    if (b->failed)
        return NULL;
    if (b->len + need + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 4096;
        while (b->len + need + 1 > c)
            c *= 2;
        char *n = realloc(b->s, c);
        if (!n) {
            b->failed = 1;
            return NULL;
        }
        b->s = n;
        b->cap = c;
    }
    return b->s + b->len;
}

/* One collapsed line for a shown site; in diff mode the base's weight is written before the
 * weight, as difffolded's two columns. A mapping's stack ends in "[mmap]", so a flame graph
 * tells it from the heap's. */
static void collapsed_line(sbuf_t *b, const shown_t *sh, int truncated, int is_mmap, int diff,
                           uint64_t before, uint64_t after, const char **names)
{
    size_t m = 0;
    if (is_mmap)
        names[m++] = "[mmap]";
    for (size_t k = 0; k < sh->n; k++)
        names[m++] = sh->f[k]->func;
    size_t need = srep_collapsed_line(names, m, truncated, after, NULL, 0) + 24;
    char *p = sb_room(b, need);
    if (!p)
        return;
    size_t n = srep_collapsed_line(names, m, truncated, after, p, need);
    if (diff) {
        /* "stack after\n" -> "stack before after\n" */
        char *sp = strrchr(p, ' ');
        char tail[32];
        snprintf(tail, sizeof tail, "%s", sp + 1);
        n = (size_t)(sp - p) + (size_t)snprintf(sp, need - (size_t)(sp - p), " %llu %s",
                                                  (unsigned long long)before, tail);
    }
    b->len += n;
}

static const char **names_buf(const loaded_t *l)
{
    size_t most = 1;
    for (size_t i = 0; i < l->r.nsites; i++)
        if (l->sh[i].n > most)
            most = l->sh[i].n;
    return calloc(most + 1, sizeof(const char *)); /* and "[mmap]" */
}

static char *collapsed(const loaded_t *l, enum srep_weight w)
{
    sbuf_t b = {0};
    const char **names = names_buf(l);
    if (!names || !sb_room(&b, 0)) {
        free(names);
        free(b.s);
        return NULL;
    }
    b.s[0] = '\0';
    for (size_t i = 0; i < l->r.nsites; i++) {
        uint64_t weight = wt(l, i, w);
        if (weight && !l->sh[i].own)
            collapsed_line(&b, &l->sh[i], l->r.sites[i].truncated, l->r.sites[i].is_mmap, 0, 0,
                           weight, names);
    }
    free(names);
    if (b.failed) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

/* ---- diffs -------------------------------------------------------------------------------- */
/* Sites are matched across reports by their shown frames (names and places), not addresses:
 * two runs load libraries at different places. Sites with the same key add up. */
typedef struct dsite {
    const char *key;
    const shown_t *sh;       /* for printing: B's site, else A's */
    int truncated, is_mmap;
    uint64_t a, b;           /* weight in the base, in the newer report */
    UT_hash_handle hh;
} dsite_t;

static dsite_t *diff_sites(const loaded_t *A, const loaded_t *B, enum srep_weight w, int *fail)
{
    dsite_t *h = NULL;
    const loaded_t *both[2] = {A, B};
    for (int side = 0; side < 2; side++) {
        const loaded_t *l = both[side];
        for (size_t i = 0; i < l->r.nsites; i++) {
            if (l->sh[i].own)
                continue;
            dsite_t *d;
            const char *key = l->sh[i].key;
            HASH_FIND_STR(h, key, d);
            if (!d) {
                d = calloc(1, sizeof *d);
                if (!d) {
                    *fail = 1;
                    return h;
                }
                d->key = key;
                HASH_ADD_KEYPTR(hh, h, d->key, strlen(d->key), d);
            }
            if (side == 1 || !d->sh) {
                d->sh = &l->sh[i];
                d->truncated = l->r.sites[i].truncated;
                d->is_mmap = l->r.sites[i].is_mmap;
            }
            if (side == 0)
                d->a += wt(l, i, w);
            else
                d->b += wt(l, i, w);
        }
    }
    return h;
}

static void diff_free(dsite_t *h)
{
    dsite_t *d, *t;
    HASH_ITER(hh, h, d, t) {
        HASH_DEL(h, d);
        free(d);
    }
}

static int64_t delta(const dsite_t *d)
{
    return (int64_t)d->b - (int64_t)d->a;
}

static int by_growth(const void *x, const void *y)
{
    int64_t a = delta(*(dsite_t *const *)x), b = delta(*(dsite_t *const *)y);
    return a < b ? 1 : a > b ? -1 : 0;
}

static int print_diff(const loaded_t *A, const loaded_t *B, const char *format,
                      enum srep_weight w, int top, FILE *out)
{
    int fail = 0;
    dsite_t *h = diff_sites(A, B, w, &fail);
    size_t n = HASH_COUNT(h), k = 0;
    dsite_t **v = malloc((n ? n : 1) * sizeof *v);
    if (fail || !v) {
        diff_free(h);
        free(v);
        return -1;
    }
    for (dsite_t *d = h; d; d = d->hh.next)
        v[k++] = d;
    if (n > 1)
        qsort(v, n, sizeof *v, by_growth);
    const char *const *wname = weight_names;
    int rc = 0;
    if (strcmp(format, "text") == 0) {
        fprintf(out, "growth of %s (%s bytes) by site, from pid %ld (%s) to pid %ld (%s)\n",
                wname[w], bytes_word(B), A->r.pid, A->r.name, B->r.pid, B->r.name);
        int64_t sum = 0;
        for (size_t i = 0; i < n; i++)
            sum += delta(v[i]);
        fprintf(out, "total: %+lld\n", (long long)sum);
        static const char *const titles[] = {"grew", "shrank"};
        for (int t = 0; t < 2; t++) {
            fprintf(out, "\n== sites that %s ==\n", titles[t]);
            int shown = 0;
            for (size_t i = 0; i < n && shown < top; i++) {
                dsite_t *d = v[t == 0 ? i : n - 1 - i];
                int64_t dl = delta(d);
                if ((t == 0 && dl <= 0) || (t == 1 && dl >= 0))
                    break;
                shown++;
                fprintf(out, "#%d %+lld (%llu -> %llu)\n", shown, (long long)dl,
                        (unsigned long long)d->a, (unsigned long long)d->b);
                print_frames(d->sh, out);
            }
            if (!shown)
                fprintf(out, "(none)\n");
        }
    } else {
        const char **na = names_buf(A), **nb = names_buf(B);
        sbuf_t b = {0};
        if (!na || !nb || !sb_room(&b, 0)) {
            rc = -1;
        } else {
            b.s[0] = '\0';
            for (size_t i = 0; i < n; i++)
                if (v[i]->a || v[i]->b)
                    collapsed_line(&b, v[i]->sh, v[i]->truncated, v[i]->is_mmap, 1, v[i]->a, v[i]->b,
                                   v[i]->sh >= B->sh && v[i]->sh < B->sh + B->r.nsites ? nb
                                                                                      : na);
            if (b.failed) {
                rc = -1;
            } else if (strcmp(format, "collapsed") == 0) {
                fputs(b.s, out);
            } else {
                char title[300];
                snprintf(title, sizeof title, "growth of %s from pid %ld to pid %ld (red grew, "
                         "blue shrank; widths are the newer report's)", wname[w], A->r.pid,
                         B->r.pid);
                rc = srep_flamegraph_svg_diff(b.s, title, weight_counts(w) ? "allocations"
                                                                             : "bytes", out);
            }
        }
        free(na);
        free(nb);
        free(b.s);
    }
    free(v);
    diff_free(h);
    return rc;
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

/* "10s", "500ms", "2m" or plain seconds: milliseconds, or -1. */
static long parse_interval_ms(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v > 0) || v > 86400)
        return -1;
    if (strcmp(end, "ms") == 0)
        return (long)v;
    if (!*end || strcmp(end, "s") == 0)
        return (long)(v * 1000);
    if (strcmp(end, "m") == 0)
        return (long)(v * 60000);
    return -1;
}

static int render(const loaded_t *l, const char *format, enum srep_weight weight, int top,
                  FILE *out)
{
    if (strcmp(format, "text") == 0)
        return print_text(l, top, out) == 0 ? 0 : 1;
    if (strcmp(format, "pprof") == 0) {
        int *skip = calloc(l->r.nsites ? l->r.nsites : 1, sizeof *skip);
        char err[200] = "out of memory";
        for (size_t i = 0; skip && i < l->r.nsites; i++)
            skip[i] = l->sh[i].own;
        int rc = skip ? pprof_write(&l->r, l->sym, skip, l->req, out, err, sizeof err) : -1;
        free(skip);
        if (rc != 0)
            fprintf(stderr, "preoom report: pprof: %s\n", err);
        return rc == 0 ? 0 : 1;
    }
    char *c = collapsed(l, weight);
    int status = 0;
    if (!c) {
        fprintf(stderr, "preoom report: out of memory\n");
        return 1;
    }
    if (strcmp(format, "collapsed") == 0) {
        fputs(c, out);
    } else {
        char title[300];
        snprintf(title, sizeof title, "%s (%s) of %s (pid %ld), by call stack%s",
                 weight_names[peak_kind(l, weight)],
                 weight_counts(weight) ? "calls" : bytes_word(l), l->r.name, l->r.pid,
                 strcmp(l->r.mode, "sample") == 0 ? " (sampled estimate)" : "");
        if (srep_flamegraph_svg(c, title, weight_counts(weight) ? "allocations" : "bytes",
                                out) != 0) {
            fprintf(stderr, "preoom report: cannot draw the flame graph\n");
            status = 1;
        }
    }
    free(c);
    return status;
}

int preoom_cmd_report(const char *reg_name, int argc, char **argv)
{
    const char *targets[2] = {NULL, NULL}, *format = "text", *out_path = NULL, *base = NULL;
    const char *save = NULL;
    enum srep_weight weight = SREP_LIVE;
    int top = 10, usable = 0, ntargets = 0, diff = 0, count = 0;
    long every_ms = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((strcmp(a, "--format") == 0 || strcmp(a, "-f") == 0) && i + 1 < argc) {
            format = argv[++i];
        } else if (strcmp(a, "--weight") == 0 && i + 1 < argc) {
            if (srep_parse_weight(argv[++i], &weight) != 0) {
                fprintf(stderr, "preoom report: --weight must be live, peak, max, total, count "
                                "or temporary\n");
                return 2;
            }
        } else if (strcmp(a, "--bytes") == 0 && i + 1 < argc) {
            a = argv[++i];
            if (strcmp(a, "requested") && strcmp(a, "usable")) {
                fprintf(stderr, "preoom report: --bytes must be requested or usable\n");
                return 2;
            }
            usable = strcmp(a, "usable") == 0;
        } else if (strcmp(a, "--top") == 0 && i + 1 < argc) {
            if (parse_int(argv[++i], 1, 100000, &top) != 0) {
                fprintf(stderr, "preoom report: --top must be a number from 1 to 100000\n");
                return 2;
            }
        } else if (strcmp(a, "--count") == 0 && i + 1 < argc) {
            if (parse_int(argv[++i], 1, 1000000, &count) != 0) {
                fprintf(stderr, "preoom report: --count must be a number from 1 to 1000000\n");
                return 2;
            }
        } else if (strcmp(a, "--every") == 0 && i + 1 < argc) {
            if ((every_ms = parse_interval_ms(argv[++i])) < 10) {
                fprintf(stderr, "preoom report: --every wants an interval like 10s or 500ms "
                                "(at least 10ms)\n");
                return 2;
            }
        } else if (strcmp(a, "--diff") == 0) {
            diff = 1;
        } else if (strcmp(a, "--base") == 0 && i + 1 < argc) {
            base = argv[++i];
        } else if (strcmp(a, "--save") == 0 && i + 1 < argc) {
            save = argv[++i];
        } else if (strcmp(a, "-o") == 0 && i + 1 < argc) {
            out_path = argv[++i];
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "preoom report: unknown option %s (see preoom report --help)\n", a);
            return 2;
        } else if (ntargets < 2) {
            targets[ntargets++] = a;
        } else {
            fprintf(stderr, "preoom report: two reports at most, not also '%s'\n", a);
            return 2;
        }
    }
    if (!ntargets) {
        fprintf(stderr, "preoom report: which report? give a FILE or a PID (see preoom report "
                        "--help)\n");
        return 2;
    }
    if (strcmp(format, "text") && strcmp(format, "collapsed") && strcmp(format, "svg") &&
        strcmp(format, "pprof")) {
        fprintf(stderr, "preoom report: --format '%s' is not text, collapsed, svg or pprof\n",
                format);
        return 2;
    }
    if (strcmp(format, "pprof") == 0 && (base || ntargets == 2 || diff)) {
        fprintf(stderr, "preoom report: pprof compares profiles itself (pprof -diff_base): "
                        "write each report's profile\n");
        return 2;
    }
    if ((ntargets == 2 && base) || (every_ms && (ntargets != 1 || base)) ||
        (diff && !every_ms) || (count && !every_ms) || (save && (ntargets != 1 || base))) {
        fprintf(stderr, "preoom report: give one report, two to compare (or one and --base), "
                        "or a PID with --every [--diff]; --save takes one PID\n");
        return 2;
    }
    if (ntargets == 2) {
        base = targets[0];
        targets[0] = targets[1];
    }
    FILE *out = stdout;
    if (out_path && !(out = fopen(out_path, "w"))) {
        fprintf(stderr, "preoom report: cannot write %s: %s\n", out_path, strerror(errno));
        return 1;
    }
    int status = 0;
    loaded_t A, B;
    if (every_ms) {
        /* Snapshots of a running process, each compared with the one before (--diff), or
         * each shown whole. */
        int have = 0;
        for (int k = 0; !count || k < count; k++) {
            if (k) {
                struct timespec ts = {every_ms / 1000, (every_ms % 1000) * 1000000L};
                nanosleep(&ts, NULL);
            }
            if ((status = load_report(reg_name, targets[0], NULL, usable, &B)) != 0)
                break;
            if (!diff)
                status = render(&B, format, weight, top, out);
            else if (have)
                status = print_diff(&A, &B, format, weight, top, out) == 0 ? 0 : 1;
            fflush(out);
            if (have)
                loaded_free(&A);
            A = B;
            have = 1;
            if (status)
                break;
        }
        if (have)
            loaded_free(&A);
    } else if (base) {
        if ((status = load_report(reg_name, base, NULL, usable, &A)) == 0) {
            if ((status = load_report(reg_name, targets[0], save, usable, &B)) == 0) {
                if (print_diff(&A, &B, format, weight, top, out) != 0) {
                    fprintf(stderr, "preoom report: out of memory or bad flame graph input\n");
                    status = 1;
                }
                loaded_free(&B);
            }
            loaded_free(&A);
        }
    } else if ((status = load_report(reg_name, targets[0], save, usable, &B)) == 0) {
        status = render(&B, format, weight, top, out);
        loaded_free(&B);
    }
    if (out != stdout && fclose(out) != 0 && status == 0) {
        fprintf(stderr, "preoom report: cannot write %s: %s\n", out_path, strerror(errno));
        status = 1;
    }
    return status;
}

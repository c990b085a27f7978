/* tools/stackreport.h — the call-site part of a preoom report, as the tool sees it: a strict
 * parser of the JSON the preload writes (preload/stacks.c, preload/unwind.c), and the pure
 * formatters (collapsed stacks, flame graph SVG). No symbol lookup and no I/O here: names
 * come in from tools/symbolize.c, output goes to a FILE the caller owns.
 */
#ifndef PREOOM_TOOLS_STACKREPORT_H
#define PREOOM_TOOLS_STACKREPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct srep_site {
    uint64_t live_bytes, live_count, total_bytes, total_count, peak_bytes, samples;
    /* What the code asked for (the hooks' n), beside the usable bytes above; only when the
     * report has them (srep_t.has_requested). */
    uint64_t live_req, total_req, peak_req;
    /* Live requested bytes when the process's heap peaked (they add up to the peak), and
     * allocations freed before any other on their thread: when srep_t.has_at_peak. */
    uint64_t at_peak_req, temporary;
    int truncated;
    int is_mmap;             /* the program's own anonymous mappings (always recorded) */
    uint64_t *frames;        /* return addresses, innermost first */
    size_t nframes;
} srep_site_t;

typedef struct srep_module {
    char *path;
    uint64_t bias, lo, hi;
    char build_id[132];      /* lower-case hex, "" when none */
    int loaded;              /* still mapped when the report was written */
} srep_module_t;

typedef struct srep {
    long pid;
    char name[64];
    int has_stacks;          /* the "stacks" object was present */
    int has_requested;       /* every site has requested bytes (version 2 and later) */
    int has_at_peak;         /* sites have at_peak_requested and temporary; heap_peak_* set */
    uint64_t heap_peak_req, heap_peak_ms, peak_skipped;
    /* The process's totals, from the report's top level (0 when absent). */
    uint64_t peak_committed, malloc_bytes, mmap_bytes, calls_alloc, calls_free;
    char mode[16];           /* "sample" | "all" */
    uint64_t sample_bytes, depth, dropped;
    /* The preload's stack cache (optional in the file: reports from before it have none). */
    int has_cache;
    char cache_mode[8];      /* "off" | "on" | "verify" */
    uint64_t cache_hits, cache_walks, cache_mismatches;
    srep_site_t *sites;
    size_t nsites;
    srep_module_t *modules;
    size_t nmodules;
} srep_t;

/* Parse a whole report. 0, or -1 with a one-line reason in err. */
int srep_parse(const char *buf, size_t len, srep_t *out, char *err, size_t err_size);
void srep_free(srep_t *r);
/* The module holding addr, or NULL. */
const srep_module_t *srep_module_of(const srep_t *r, uint64_t addr);

/* peak: a site's share of the heap's peak (requested bytes; the site's own maximum when the
 * report has no shares or usable bytes are asked for); max: the site's own maximum;
 * temporary: allocations freed before any other on their thread. */
enum srep_weight { SREP_LIVE, SREP_PEAK, SREP_TOTAL, SREP_COUNT, SREP_MAX, SREP_TEMP };
int srep_parse_weight(const char *s, enum srep_weight *out);
/* A site's weight; byte weights in requested bytes when req is set (and the report has
 * them), else usable. */
uint64_t srep_site_weight(const srep_site_t *s, enum srep_weight w, int req);

/* One collapsed line: names given innermost first are written root first, joined by ';',
 * then a space and the weight, then '\n'. ';' and control characters inside a name become
 * ':' and ' ' (they would break the format). A truncated stack gets "[truncated]" as its
 * root. Returns the length that was needed (like snprintf); out is always terminated. */
size_t srep_collapsed_line(const char *const *names, size_t n, int truncated, uint64_t weight,
                           char *out, size_t out_size);

/* A flame graph of collapsed lines ("a;b;c 123\n" ...) as one self-contained SVG document.
 * Returns 0 or -1 (bad input line). */
int srep_flamegraph_svg(const char *collapsed, const char *title, const char *unit, FILE *out);
/* A differential flame graph of lines "a;b;c BEFORE AFTER\n" (difffolded's format): widths
 * are AFTER, red where a frame grew, blue where it shrank. 0 or -1. */
int srep_flamegraph_svg_diff(const char *collapsed, const char *title, const char *unit,
                             FILE *out);

#endif

/* tools/stackreport.c — parse the report the preload writes; format collapsed stacks and
 * flame graphs. See stackreport.h.
 *
 * The report is untrusted input (any file a user points us at): the parser is strict JSON,
 * bounds-checked, with a nesting limit, and every number the model uses is checked for type
 * and range. Bad input gives one line of reason, never a crash. Never resolves symbols and
 * never touches the file system.
 */
#include "stackreport.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- a small strict JSON parser into a tree --------------------------------------------- */
enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

typedef struct jval {
    enum jtype t;
    int b;
    int is_uint;             /* a non-negative integer that fits in 64 bits */
    uint64_t u;
    double d;
    char *s;                 /* J_STR (NUL-terminated, may not contain NUL) */
    struct jval *kids;       /* J_ARR, J_OBJ */
    char **keys;             /* J_OBJ */
    size_t n;
} jval_t;

typedef struct jparser {
    const char *p, *end;
    int depth;
    char *err;
    size_t err_size;
    int failed;
} jparser_t;

#define JSON_MAX_DEPTH 32

static int jfail(jparser_t *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int jfail(jparser_t *j, const char *fmt, ...)
{
    if (!j->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(j->err, j->err_size, fmt, ap);
        va_end(ap);
        j->failed = 1;
    }
    return -1;
}

static void jskip(jparser_t *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static void jfree(jval_t *v)
{
    if (v->t == J_STR)
        free(v->s);
    if (v->t == J_ARR || v->t == J_OBJ) {
        for (size_t i = 0; i < v->n; i++) {
            jfree(&v->kids[i]);
            if (v->keys)
                free(v->keys[i]);
        }
        free(v->kids);
        free(v->keys);
    }
    memset(v, 0, sizeof *v);
}

static void utf8_put(char *out, size_t *n, unsigned cp)
{
    if (cp < 0x80) {
        out[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*n)++] = (char)(0xc0 | (cp >> 6));
        out[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        out[(*n)++] = (char)(0xe0 | (cp >> 12));
        out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[(*n)++] = (char)(0x80 | (cp & 0x3f));
    }
}

static int jstring(jparser_t *j, char **out)
{
    j->p++; /* opening quote */
    const char *start = j->p;
    size_t cap = 0;
    for (const char *q = start; q < j->end && *q != '"'; q++, cap++)
        if (*q == '\\')
            q++;
    char *s = malloc(cap * 3 + 1);
    if (!s)
        return jfail(j, "out of memory");
    size_t n = 0;
    while (1) {
        if (j->p >= j->end) {
            free(s);
            return jfail(j, "unterminated string");
        }
        unsigned char c = (unsigned char)*j->p++;
        if (c == '"')
            break;
        if (c < 0x20) {
            free(s);
            return jfail(j, "control character in a string");
        }
        if (c != '\\') {
            s[n++] = (char)c;
            continue;
        }
        if (j->p >= j->end) {
            free(s);
            return jfail(j, "unterminated escape");
        }
        c = (unsigned char)*j->p++;
        switch (c) {
        case '"': case '\\': case '/': s[n++] = (char)c; break;
        case 'b': s[n++] = '\b'; break;
        case 'f': s[n++] = '\f'; break;
        case 'n': s[n++] = '\n'; break;
        case 'r': s[n++] = '\r'; break;
        case 't': s[n++] = '\t'; break;
        case 'u': {
            unsigned cp = 0;
            for (int k = 0; k < 4; k++) {
                if (j->p >= j->end) {
                    free(s);
                    return jfail(j, "short \\u escape");
                }
                char h = *j->p++;
                cp <<= 4;
                if (h >= '0' && h <= '9') cp |= (unsigned)(h - '0');
                else if (h >= 'a' && h <= 'f') cp |= (unsigned)(h - 'a' + 10);
                else if (h >= 'A' && h <= 'F') cp |= (unsigned)(h - 'A' + 10);
                else {
                    free(s);
                    return jfail(j, "bad \\u escape");
                }
            }
            if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff))
                cp = '?'; /* NUL and lone surrogates: not worth carrying */
            utf8_put(s, &n, cp);
            break;
        }
        default:
            free(s);
            return jfail(j, "bad escape \\%c", c);
        }
    }
    s[n] = '\0';
    *out = s;
    return 0;
}

static int jnumber(jparser_t *j, jval_t *v)
{
    const char *q = j->p;
    int neg = 0, frac = 0;
    if (q < j->end && *q == '-') {
        neg = 1;
        q++;
    }
    if (q >= j->end || *q < '0' || *q > '9')
        return jfail(j, "bad number");
    if (*q == '0' && q + 1 < j->end && q[1] >= '0' && q[1] <= '9')
        return jfail(j, "number with a leading zero");
    uint64_t u = 0;
    int overflow = 0;
    while (q < j->end && *q >= '0' && *q <= '9') {
        unsigned dgt = (unsigned)(*q - '0');
        if (u > (UINT64_MAX - dgt) / 10)
            overflow = 1;
        u = u * 10 + dgt;
        q++;
    }
    if (q < j->end && *q == '.') {
        frac = 1;
        q++;
        if (q >= j->end || *q < '0' || *q > '9')
            return jfail(j, "bad fraction");
        while (q < j->end && *q >= '0' && *q <= '9')
            q++;
    }
    if (q < j->end && (*q == 'e' || *q == 'E')) {
        frac = 1;
        q++;
        if (q < j->end && (*q == '+' || *q == '-'))
            q++;
        if (q >= j->end || *q < '0' || *q > '9')
            return jfail(j, "bad exponent");
        while (q < j->end && *q >= '0' && *q <= '9')
            q++;
    }
    char tmp[64];
    size_t len = (size_t)(q - j->p);
    if (len >= sizeof tmp) {
        v->d = neg ? -1e308 : 1e308;
    } else {
        memcpy(tmp, j->p, len);
        tmp[len] = '\0';
        v->d = strtod(tmp, NULL);
    }
    v->t = J_NUM;
    v->is_uint = !neg && !frac && !overflow;
    v->u = u;
    j->p = q;
    return 0;
}

static int jvalue(jparser_t *j, jval_t *v);

static int jpush(jparser_t *j, jval_t *v, size_t *cap)
{
    if (v->n == *cap) {
        size_t c = *cap ? *cap * 2 : 8;
        jval_t *k = realloc(v->kids, c * sizeof *k);
        if (!k)
            return jfail(j, "out of memory");
        v->kids = k;
        if (v->t == J_OBJ) {
            char **ks = realloc(v->keys, c * sizeof *ks);
            if (!ks)
                return jfail(j, "out of memory");
            v->keys = ks;
        }
        *cap = c;
    }
    memset(&v->kids[v->n], 0, sizeof v->kids[v->n]);
    if (v->keys)
        v->keys[v->n] = NULL;
    v->n++;
    return 0;
}

static int jcontainer(jparser_t *j, jval_t *v, char close)
{
    if (++j->depth > JSON_MAX_DEPTH)
        return jfail(j, "nested too deeply");
    v->t = close == ']' ? J_ARR : J_OBJ;
    size_t cap = 0;
    j->p++;
    jskip(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        j->depth--;
        return 0;
    }
    while (1) {
        jskip(j);
        if (jpush(j, v, &cap) != 0)
            return -1;
        if (v->t == J_OBJ) {
            if (j->p >= j->end || *j->p != '"')
                return jfail(j, "expected a key");
            if (jstring(j, &v->keys[v->n - 1]) != 0)
                return -1;
            jskip(j);
            if (j->p >= j->end || *j->p != ':')
                return jfail(j, "expected ':'");
            j->p++;
        }
        if (jvalue(j, &v->kids[v->n - 1]) != 0)
            return -1;
        jskip(j);
        if (j->p >= j->end)
            return jfail(j, "unexpected end");
        if (*j->p == ',') {
            j->p++;
            continue;
        }
        if (*j->p == close) {
            j->p++;
            j->depth--;
            return 0;
        }
        return jfail(j, "expected ',' or '%c' at offset %ld", close,
                     (long)(j->p - (j->end - 0)));
    }
}

static int jliteral(jparser_t *j, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
        return jfail(j, "unexpected character");
    j->p += n;
    return 0;
}

static int jvalue(jparser_t *j, jval_t *v)
{
    jskip(j);
    if (j->p >= j->end)
        return jfail(j, "unexpected end");
    switch (*j->p) {
    case '{': return jcontainer(j, v, '}');
    case '[': return jcontainer(j, v, ']');
    case '"': v->t = J_STR; return jstring(j, &v->s);
    case 't': v->t = J_BOOL; v->b = 1; return jliteral(j, "true");
    case 'f': v->t = J_BOOL; v->b = 0; return jliteral(j, "false");
    case 'n': v->t = J_NULL; return jliteral(j, "null");
    default: return jnumber(j, v);
    }
}

static const jval_t *jget(const jval_t *o, const char *key)
{
    if (!o || o->t != J_OBJ)
        return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->keys[i], key) == 0)
            return &o->kids[i];
    return NULL;
}

/* ---- the report model -------------------------------------------------------------------- */
static int need_u64(const jval_t *o, const char *key, uint64_t *out, char *err, size_t es)
{
    const jval_t *v = jget(o, key);
    if (!v || v->t != J_NUM || !v->is_uint) {
        snprintf(err, es, "\"%s\" missing or not a non-negative integer", key);
        return -1;
    }
    *out = v->u;
    return 0;
}

/* Addresses are written as "0x..." strings (JSON numbers lose precision above 2^53 in
 * most readers). */
static int parse_addr(const jval_t *v, uint64_t *out)
{
    if (!v || v->t != J_STR || strncmp(v->s, "0x", 2) != 0 || !v->s[2] || strlen(v->s) > 18)
        return -1;
    uint64_t a = 0;
    for (const char *c = v->s + 2; *c; c++) {
        a <<= 4;
        if (*c >= '0' && *c <= '9') a |= (uint64_t)(*c - '0');
        else if (*c >= 'a' && *c <= 'f') a |= (uint64_t)(*c - 'a' + 10);
        else return -1;
    }
    *out = a;
    return 0;
}

static int need_addr(const jval_t *o, const char *key, uint64_t *out, char *err, size_t es)
{
    if (parse_addr(jget(o, key), out) != 0) {
        snprintf(err, es, "\"%s\" missing or not a \"0x...\" address", key);
        return -1;
    }
    return 0;
}

static int parse_site(const jval_t *o, srep_site_t *s, char *err, size_t es)
{
    if (o->t != J_OBJ) {
        snprintf(err, es, "a site is not an object");
        return -1;
    }
    if (need_u64(o, "live_bytes", &s->live_bytes, err, es) ||
        need_u64(o, "live_count", &s->live_count, err, es) ||
        need_u64(o, "total_bytes", &s->total_bytes, err, es) ||
        need_u64(o, "total_count", &s->total_count, err, es) ||
        need_u64(o, "peak_bytes", &s->peak_bytes, err, es) ||
        need_u64(o, "samples", &s->samples, err, es))
        return -1;
    /* Optional (version 1 reports have none): all three or the report says it lacks them. */
    s->live_req = s->total_req = s->peak_req = UINT64_MAX;
    if (jget(o, "live_requested") &&
        (need_u64(o, "live_requested", &s->live_req, err, es) ||
         need_u64(o, "total_requested", &s->total_req, err, es) ||
         need_u64(o, "peak_requested", &s->peak_req, err, es)))
        return -1;
    s->at_peak_req = s->temporary = UINT64_MAX;
    if (jget(o, "at_peak_requested") &&
        (need_u64(o, "at_peak_requested", &s->at_peak_req, err, es) ||
         need_u64(o, "temporary", &s->temporary, err, es)))
        return -1;
    const jval_t *t = jget(o, "truncated");
    s->truncated = t && t->t == J_BOOL && t->b;
    t = jget(o, "mmap");
    s->is_mmap = t && t->t == J_BOOL && t->b;
    const jval_t *f = jget(o, "frames");
    if (!f || f->t != J_ARR || f->n > 1024) {
        snprintf(err, es, "a site's \"frames\" missing or not a list");
        return -1;
    }
    s->frames = calloc(f->n ? f->n : 1, sizeof *s->frames);
    if (!s->frames) {
        snprintf(err, es, "out of memory");
        return -1;
    }
    s->nframes = f->n;
    for (size_t i = 0; i < f->n; i++)
        if (parse_addr(&f->kids[i], &s->frames[i]) != 0) {
            snprintf(err, es, "a frame is not a \"0x...\" address");
            return -1;
        }
    return 0;
}

static int parse_module(const jval_t *o, srep_module_t *m, char *err, size_t es)
{
    const jval_t *p = jget(o, "path"), *b = jget(o, "build_id"), *l = jget(o, "loaded");
    if (o->t != J_OBJ || !p || p->t != J_STR) {
        snprintf(err, es, "a module without a \"path\"");
        return -1;
    }
    if (need_addr(o, "bias", &m->bias, err, es) || need_addr(o, "lo", &m->lo, err, es) ||
        need_addr(o, "hi", &m->hi, err, es))
        return -1;
    m->path = strdup(p->s);
    if (!m->path) {
        snprintf(err, es, "out of memory");
        return -1;
    }
    if (b && b->t == J_STR && strlen(b->s) < sizeof m->build_id)
        strcpy(m->build_id, b->s);
    m->loaded = !l || (l->t == J_BOOL && l->b);
    return 0;
}

int srep_parse(const char *buf, size_t len, srep_t *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    jparser_t j = {.p = buf, .end = buf + len, .err = err, .err_size = err_size};
    jval_t root = {0};
    if (jvalue(&j, &root) != 0) {
        /* err is set; say where */
        size_t n = strlen(err);
        snprintf(err + n, err_size - n, " (at byte %ld)", (long)(j.p - buf));
        jfree(&root);
        return -1;
    }
    jskip(&j);
    if (j.p != j.end) {
        snprintf(err, err_size, "trailing data after the report (at byte %ld)", (long)(j.p - buf));
        jfree(&root);
        return -1;
    }
    int rc = -1;
    if (root.t != J_OBJ) {
        snprintf(err, err_size, "the report is not a JSON object");
        goto done;
    }
    uint64_t pid;
    if (need_u64(&root, "pid", &pid, err, err_size) != 0)
        goto done;
    out->pid = (long)pid;
    const jval_t *num;
    if ((num = jget(&root, "peak_committed")) && num->t == J_NUM && num->is_uint)
        out->peak_committed = num->u;
    if ((num = jget(&root, "malloc")) && num->t == J_NUM && num->is_uint)
        out->malloc_bytes = num->u;
    if ((num = jget(&root, "mmap")) && num->t == J_NUM && num->is_uint)
        out->mmap_bytes = num->u;
    const jval_t *calls = jget(&root, "calls");
    static const char *const allocs[] = {"malloc", "calloc", "realloc", "reallocarray",
                                         "posix_memalign", "aligned_alloc", "memalign",
                                         "valloc", "pvalloc"};
    for (size_t k = 0; calls && k < sizeof allocs / sizeof *allocs; k++)
        if ((num = jget(calls, allocs[k])) && num->t == J_NUM && num->is_uint)
            out->calls_alloc += num->u;
    if (calls && (num = jget(calls, "free")) && num->t == J_NUM && num->is_uint)
        out->calls_free = num->u;
    const jval_t *nm = jget(&root, "name");
    if (nm && nm->t == J_STR)
        snprintf(out->name, sizeof out->name, "%s", nm->s);
    const jval_t *st = jget(&root, "stacks");
    if (!st) {
        rc = 0;
        goto done;
    }
    if (st->t != J_OBJ) {
        snprintf(err, err_size, "\"stacks\" is not an object");
        goto done;
    }
    uint64_t version;
    if (need_u64(st, "version", &version, err, err_size) != 0)
        goto done;
    if (version != 1 && version != 2) {
        snprintf(err, err_size, "call-site format version %llu is not known to this preoom",
                 (unsigned long long)version);
        goto done;
    }
    const jval_t *mode = jget(st, "mode");
    if (!mode || mode->t != J_STR || (strcmp(mode->s, "sample") && strcmp(mode->s, "all"))) {
        snprintf(err, err_size, "\"mode\" is not \"sample\" or \"all\"");
        goto done;
    }
    snprintf(out->mode, sizeof out->mode, "%s", mode->s);
    if (need_u64(st, "sample_bytes", &out->sample_bytes, err, err_size) ||
        need_u64(st, "depth", &out->depth, err, err_size) ||
        need_u64(st, "dropped", &out->dropped, err, err_size))
        goto done;
    const jval_t *sc = jget(st, "stack_cache");
    if (sc) {
        const jval_t *scm = jget(sc, "mode");
        if (!scm || scm->t != J_STR || (strcmp(scm->s, "off") && strcmp(scm->s, "on") &&
                                        strcmp(scm->s, "verify"))) {
            snprintf(err, err_size, "\"stack_cache\" has no mode off, on or verify");
            goto done;
        }
        snprintf(out->cache_mode, sizeof out->cache_mode, "%s", scm->s);
        if (need_u64(sc, "hits", &out->cache_hits, err, err_size) ||
            need_u64(sc, "walks", &out->cache_walks, err, err_size) ||
            need_u64(sc, "mismatches", &out->cache_mismatches, err, err_size))
            goto done;
        out->has_cache = 1;
    }
    const jval_t *sites = jget(st, "sites"), *mods = jget(st, "modules");
    if (!sites || sites->t != J_ARR || !mods || mods->t != J_ARR) {
        snprintf(err, err_size, "\"sites\" or \"modules\" missing or not a list");
        goto done;
    }
    out->sites = calloc(sites->n ? sites->n : 1, sizeof *out->sites);
    out->modules = calloc(mods->n ? mods->n : 1, sizeof *out->modules);
    if (!out->sites || !out->modules) {
        snprintf(err, err_size, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < sites->n; i++, out->nsites++)
        if (parse_site(&sites->kids[i], &out->sites[i], err, err_size) != 0) {
            out->nsites++;
            goto done;
        }
    for (size_t i = 0; i < mods->n; i++, out->nmodules++)
        if (parse_module(&mods->kids[i], &out->modules[i], err, err_size) != 0) {
            out->nmodules++;
            goto done;
        }
    out->has_requested = out->nsites > 0;
    out->has_at_peak = out->nsites > 0 && jget(st, "heap_peak_requested") &&
                       need_u64(st, "heap_peak_requested", &out->heap_peak_req, err, err_size) == 0 &&
                       need_u64(st, "heap_peak_ms", &out->heap_peak_ms, err, err_size) == 0 &&
                       need_u64(st, "peak_skipped", &out->peak_skipped, err, err_size) == 0;
    err[0] = '\0';
    for (size_t i = 0; i < out->nsites; i++) {
        if (out->sites[i].live_req == UINT64_MAX)
            out->has_requested = 0;
        if (out->sites[i].at_peak_req == UINT64_MAX)
            out->has_at_peak = 0;
    }
    for (size_t i = 0; i < out->nsites; i++) { /* absent: nothing to show, not "all ones" */
        if (!out->has_requested)
            out->sites[i].live_req = out->sites[i].total_req = out->sites[i].peak_req = 0;
        if (!out->has_at_peak)
            out->sites[i].at_peak_req = out->sites[i].temporary = 0;
    }
    out->has_stacks = 1;
    rc = 0;
done:
    jfree(&root);
    if (rc != 0)
        srep_free(out);
    return rc;
}

void srep_free(srep_t *r)
{
    for (size_t i = 0; i < r->nsites; i++)
        free(r->sites[i].frames);
    for (size_t i = 0; i < r->nmodules; i++)
        free(r->modules[i].path);
    free(r->sites);
    free(r->modules);
    memset(r, 0, sizeof *r);
}

const srep_module_t *srep_module_of(const srep_t *r, uint64_t addr)
{
    /* The most recent module holding addr: a later one may have been loaded where a
     * dlclose'd one was, and sites recorded before the unload still point at the old one —
     * that ambiguity cannot be settled from addresses alone; prefer the loaded one. */
    const srep_module_t *best = NULL;
    for (size_t i = 0; i < r->nmodules; i++) {
        const srep_module_t *m = &r->modules[i];
        if (addr >= m->lo && addr < m->hi && (!best || (!best->loaded && m->loaded) || !best))
            best = m;
    }
    return best;
}

int srep_parse_weight(const char *s, enum srep_weight *out)
{
    static const char *const names[] = {"live", "peak", "total", "count", "max", "temporary"};
    for (int i = 0; i < 6; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (enum srep_weight)i;
            return 0;
        }
    return -1;
}

uint64_t srep_site_weight(const srep_site_t *s, enum srep_weight w, int req)
{
    switch (w) {
    case SREP_LIVE: return req ? s->live_req : s->live_bytes;
    case SREP_PEAK: return req ? s->at_peak_req : s->peak_bytes;
    case SREP_MAX: return req ? s->peak_req : s->peak_bytes;
    case SREP_TEMP: return s->temporary;
    case SREP_TOTAL: return req ? s->total_req : s->total_bytes;
    case SREP_COUNT: return s->total_count;
    }
    return 0;
}

/* ---- collapsed stacks ---------------------------------------------------------------------- */
static void put_c(char *out, size_t size, size_t *n, char c)
{
    if (*n + 1 < size)
        out[*n] = c;
    (*n)++;
}

static void put_name(char *out, size_t size, size_t *n, const char *s)
{
    if (!s || !*s)
        s = "[unknown]";
    for (; *s; s++) {
        char c = *s;
        if (c == ';')
            c = ':';
        else if ((unsigned char)c < 0x20)
            c = ' ';
        put_c(out, size, n, c);
    }
}

size_t srep_collapsed_line(const char *const *names, size_t n, int truncated, uint64_t weight,
                           char *out, size_t out_size)
{
    size_t k = 0;
    int first = 1;
    if (truncated) {
        put_name(out, out_size, &k, "[truncated]");
        first = 0;
    }
    for (size_t i = n; i-- > 0;) {
        if (!first)
            put_c(out, out_size, &k, ';');
        put_name(out, out_size, &k, names[i]);
        first = 0;
    }
    if (first)
        put_name(out, out_size, &k, "[no frames]");
    char num[32];
    snprintf(num, sizeof num, " %llu\n", (unsigned long long)weight);
    for (char *c = num; *c; c++)
        put_c(out, out_size, &k, *c);
    if (out_size)
        out[k < out_size ? k : out_size - 1] = '\0';
    return k;
}

/* ---- flame graph ---------------------------------------------------------------------------- */
typedef struct fnode {
    char *name;
    uint64_t value;
    uint64_t base;           /* differential graphs: the base report's value */
    uint64_t id;             /* stays when a realloc of the parent's array moves the node */
    struct fnode *kids;      /* array */
    size_t nkids, cap;
} fnode_t;

/* A new child of parent (the caller knows it has none of that name). */
static fnode_t *fchild(fnode_t *parent, const char *name, size_t len, uint64_t id)
{
    if (parent->nkids == parent->cap) {
        size_t c = parent->cap ? parent->cap * 2 : 4;
        fnode_t *k = realloc(parent->kids, c * sizeof *k);
        if (!k)
            return NULL;
        parent->kids = k;
        parent->cap = c;
    }
    fnode_t *f = &parent->kids[parent->nkids];
    memset(f, 0, sizeof *f);
    f->id = id;
    f->name = strndup(name, len);
    if (!f->name)
        return NULL;
    parent->nkids++;
    return f;
}

static void ffree(fnode_t *f)
{
    for (size_t i = 0; i < f->nkids; i++)
        ffree(&f->kids[i]);
    free(f->kids);
    free(f->name);
}

static size_t fdepth(const fnode_t *f)
{
    size_t d = 0;
    for (size_t i = 0; i < f->nkids; i++) {
        size_t k = fdepth(&f->kids[i]);
        if (k > d)
            d = k;
    }
    return d + 1;
}

static void xml_text(FILE *out, const char *s, size_t max_chars)
{
    size_t n = 0;
    for (; *s && n < max_chars; s++, n++) {
        switch (*s) {
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '&': fputs("&amp;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&apos;", out); break;
        default:
            fputc((unsigned char)*s < 0x20 ? ' ' : *s, out);
        }
    }
}

#define FG_WIDTH 1200.0
#define FG_FRAME 17
#define FG_PAD 10.0
#define FG_TOP 40

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static void fdraw(const fnode_t *f, double x, size_t level, size_t maxdepth, uint64_t total,
                  const char *unit, int diff, FILE *out)
{
    double w = (FG_WIDTH - 2 * FG_PAD) * (double)f->value / (double)total;
    if (w < 0.1)
        return;
    if (level > 0) {
        double y = FG_TOP + (double)(maxdepth - level) * FG_FRAME;
        uint32_t h = name_hash(f->name);
        /* Warm colours, as flame graphs are read: hue by name, so a function keeps its
         * colour everywhere in the picture. */
        int r = 205 + (int)(h % 50), g = 80 + (int)((h >> 8) % 130), b = 30 + (int)((h >> 16) % 40);
        fprintf(out, "<g><title>");
        xml_text(out, f->name, 4096);
        if (diff) {
            /* As differential flame graphs are read: red grew, blue shrank, the deeper the
             * colour the larger the change against the frame's own size. */
            double d = (double)f->value - (double)f->base;
            double big = (double)(f->value > f->base ? f->value : f->base);
            int k = big > 0 ? (int)(200 * (d < 0 ? -d : d) / big) : 0;
            r = d > 0 ? 255 : 255 - k;
            g = 255 - k;
            b = d < 0 ? 255 : 255 - k;
            fprintf(out, " (%llu %s, was %llu: %+lld)</title>", (unsigned long long)f->value, unit,
                    (unsigned long long)f->base, (long long)f->value - (long long)f->base);
        } else {
            fprintf(out, " (%llu %s, %.2f%%)</title>", (unsigned long long)f->value, unit,
                    100.0 * (double)f->value / (double)total);
        }
        fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"rgb(%d,%d,%d)\" "
                     "rx=\"2\" ry=\"2\"/>",
                x, y, w, FG_FRAME - 1, r, g, b);
        size_t fit = (size_t)(w / 7.0);
        if (fit >= 3) {
            fprintf(out, "<text x=\"%.1f\" y=\"%.1f\">", x + 3, y + FG_FRAME - 5);
            size_t len = strlen(f->name);
            if (len <= fit) {
                xml_text(out, f->name, len);
            } else {
                xml_text(out, f->name, fit - 2);
                fputs("..", out);
            }
            fputs("</text>", out);
        }
        fputs("</g>\n", out);
    }
    double cx = x;
    for (size_t i = 0; i < f->nkids; i++) {
        fdraw(&f->kids[i], cx, level + 1, maxdepth, total, unit, diff, out);
        cx += (FG_WIDTH - 2 * FG_PAD) * (double)f->kids[i].value / (double)total;
    }
}

static int fcmp(const void *a, const void *b)
{
    return strcmp(((const fnode_t *)a)->name, ((const fnode_t *)b)->name);
}

static void fsort(fnode_t *f)
{
    /* Alphabetical, as flame graphs are drawn: the x axis is not time. A leaf has no
     * array at all, and qsort must not be given NULL even for zero elements. */
    if (f->nkids > 1)
        qsort(f->kids, f->nkids, sizeof *f->kids, fcmp);
    for (size_t i = 0; i < f->nkids; i++)
        fsort(&f->kids[i]);
}

/* The children of a node are found through a hash of (parent's id, name): a wide node (a few
 * thousand sites under main) would make a linear search quadratic. Ids, not addresses: a
 * node moves when its parent's array grows. */
typedef struct fkey {
    uint64_t parent;
    const char *name;
    size_t len;
    size_t idx;              /* in parent->kids (which realloc moves) */
    struct fkey *next;
} fkey_t;

typedef struct fhash {
    fkey_t **b;
    size_t nb;
    uint64_t next_id;
} fhash_t;

static size_t fh_index(const fhash_t *h, uint64_t parent, const char *name, size_t len)
{
    uint64_t x = (parent + 1) * 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < len; i++)
        x = (x ^ (unsigned char)name[i]) * 0x100000001b3ULL;
    return (size_t)(x ^ (x >> 29)) & (h->nb - 1);
}

static fnode_t *fchild_h(fhash_t *h, fnode_t *parent, const char *name, size_t len)
{
    size_t i = fh_index(h, parent->id, name, len);
    for (fkey_t *k = h->b[i]; k; k = k->next)
        if (k->parent == parent->id && k->len == len && memcmp(k->name, name, len) == 0)
            return &parent->kids[k->idx];
    fnode_t *f = fchild(parent, name, len, ++h->next_id);
    fkey_t *k = f ? malloc(sizeof *k) : NULL;
    if (!k)
        return NULL;
    *k = (fkey_t){parent->id, f->name, len, (size_t)(f - parent->kids), h->b[i]};
    h->b[i] = k;
    return f;
}

static int flamegraph(const char *collapsed, int diff, const char *title, const char *unit,
                      FILE *out);

int srep_flamegraph_svg(const char *collapsed, const char *title, const char *unit, FILE *out)
{
    return flamegraph(collapsed, 0, title, unit, out);
}

int srep_flamegraph_svg_diff(const char *collapsed, const char *title, const char *unit,
                             FILE *out)
{
    return flamegraph(collapsed, 1, title, unit, out);
}

static int flamegraph(const char *collapsed, int diff, const char *title, const char *unit,
                      FILE *out)
{
    fhash_t fh = {calloc(1 << 16, sizeof(fkey_t *)), 1 << 16};
    if (!fh.b)
        return -1;
    fnode_t root = {.name = strdup("all")};
    int rc = 0;
    for (const char *line = collapsed; *line;) {
        const char *eol = strchr(line, '\n');
        if (!eol)
            eol = line + strlen(line);
        const char *sp = eol;
        while (sp > line && sp[-1] != ' ')
            sp--;
        if (sp == line || sp == eol) {
            rc = -1;
            break;
        }
        char *endp;
        unsigned long long v = strtoull(sp, &endp, 10);
        if (endp != eol) {
            rc = -1;
            break;
        }
        unsigned long long bv = 0;
        const char *stack_end = sp - 1;
        if (diff) {
            /* "stack before after": the base's column is the one before the last. */
            const char *sp2 = stack_end;
            while (sp2 > line && sp2[-1] != ' ')
                sp2--;
            if (sp2 == line || sp2 == stack_end) {
                rc = -1;
                break;
            }
            bv = strtoull(sp2, &endp, 10);
            if (endp != stack_end) {
                rc = -1;
                break;
            }
            stack_end = sp2 - 1;
        }
        root.value += v;
        root.base += bv;
        fnode_t *cur = &root;
        for (const char *a = line; a < stack_end && cur;) {
            const char *semi = memchr(a, ';', (size_t)(stack_end - a));
            if (!semi)
                semi = stack_end;
            cur = fchild_h(&fh, cur, a, (size_t)(semi - a));
            if (cur) {
                cur->value += v;
                cur->base += bv;
            }
            a = semi + 1;
        }
        if (!cur) {
            rc = -1;
            break;
        }
        line = *eol ? eol + 1 : eol;
    }
    if (rc == 0) {
        fsort(&root);
        size_t depth = fdepth(&root) - 1;
        int height = FG_TOP + (int)depth * FG_FRAME + 30;
        fprintf(out,
                "<?xml version=\"1.0\" standalone=\"no\"?>\n"
                "<svg version=\"1.1\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                "xmlns=\"http://www.w3.org/2000/svg\">\n"
                "<style>text { font-family: monospace; font-size: 12px; fill: #000; } "
                "rect:hover { stroke: #000; stroke-width: 0.5; }</style>\n"
                "<rect x=\"0\" y=\"0\" width=\"100%%\" height=\"100%%\" fill=\"#f8f8f0\"/>\n"
                "<text x=\"%d\" y=\"24\" text-anchor=\"middle\" style=\"font-size:17px\">",
                (int)FG_WIDTH, height, (int)FG_WIDTH, height, (int)FG_WIDTH / 2);
        xml_text(out, title, 200);
        fprintf(out, "</text>\n<text x=\"%d\" y=\"%d\">total %llu %s; hover a frame for its "
                     "share</text>\n",
                (int)FG_PAD, height - 8, (unsigned long long)root.value, unit);
        if (root.value > 0)
            fdraw(&root, FG_PAD, 0, depth, root.value, unit, diff, out);
        fputs("</svg>\n", out);
    }
    for (size_t i = 0; i < fh.nb; i++)
        for (fkey_t *k = fh.b[i], *next; k; k = next) {
            next = k->next;
            free(k);
        }
    free(fh.b);
    ffree(&root);
    return rc;
}

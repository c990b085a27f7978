/* tools/pprof.c — write a report's call sites as a pprof profile (profile.proto, gzip'd).
 *
 * The format's public facts, which is all this file uses: a Profile message (1 sample_type,
 * 2 sample, 3 mapping, 4 location, 5 function, 6 string_table, 9 time_nanos, 11 period_type,
 * 12 period, 14 default_sample_type); ValueType (1 type, 2 unit: string indexes); Sample
 * (1 location_id packed, innermost first; 2 value packed); Mapping (1 id, 2 memory_start,
 * 3 memory_limit, 5 filename, 6 build_id, 7-10 has_functions, has_filenames,
 * has_line_numbers, has_inline_frames); Location (1 id, 2 mapping_id, 3 address, 4 line);
 * Line (1 function_id, 2 line), several when calls were inlined, the caller last; Function
 * (1 id, 2 name, 3 system_name, 4 filename). string_table[0] is "". Values, as Go's heap
 * profiles give them: alloc_objects, alloc_space, inuse_objects, inuse_space.
 *
 * One Location per distinct return address (pprof wants the call's address: addr - 1), one
 * Function per distinct (name, file). Stacks are folded as the text report folds them.
 * Never writes anything but to the FILE it is given.
 */
#include "pprof.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include <uthash.h>

typedef struct buf {
    unsigned char *p;
    size_t len, cap;
    int failed;
} buf_t;

static void put(buf_t *b, const void *d, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n > b->cap) {
        size_t c = b->cap ? b->cap : 4096;
        while (b->len + n > c)
            c *= 2;
        unsigned char *q = realloc(b->p, c);
        if (!q) {
            b->failed = 1;
            return;
        }
        b->p = q;
        b->cap = c;
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

size_t pprof_varint(uint64_t v, unsigned char *out)
{
    size_t n = 0;
    do {
        out[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

static void varint(buf_t *b, uint64_t v)
{
    unsigned char t[10];
    put(b, t, pprof_varint(v, t));
}

/* Field `f` as a varint (wire type 0); zero is the default and left out. */
static void fu(buf_t *b, unsigned f, uint64_t v)
{
    if (!v)
        return;
    varint(b, (uint64_t)f << 3);
    varint(b, v);
}

/* Field `f` of wire type 2: bytes, a string or a nested message. */
static void fbytes(buf_t *b, unsigned f, const void *d, size_t n)
{
    varint(b, (uint64_t)f << 3 | 2);
    varint(b, n);
    put(b, d, n);
}

static void fmsg(buf_t *b, unsigned f, buf_t *m)
{
    fbytes(b, f, m->p, m->len);
    if (m->failed)
        b->failed = 1;
    m->len = 0;
}

/* ---- the string table and the functions ------------------------------------------------ */
typedef struct str_e {
    const char *s;
    uint64_t idx;
    UT_hash_handle hh;
} str_e;

typedef struct fn_e {
    char *key;               /* name '\n' file */
    uint64_t id;
    UT_hash_handle hh;
} fn_e;

typedef struct loc_e {
    uint64_t addr, id;
    UT_hash_handle hh;
} loc_e;

typedef struct enc {
    buf_t out, tmp, tmp2;
    str_e *strs;
    uint64_t nstrs;
    fn_e *fns;
    uint64_t nfns;
    loc_e *locs;
    uint64_t nlocs;
} enc_t;

static uint64_t str_idx(enc_t *e, const char *s)
{
    str_e *x;
    HASH_FIND_STR(e->strs, s, x);
    if (x)
        return x->idx;
    x = calloc(1, sizeof *x);
    if (!x) {
        e->out.failed = 1;
        return 0;
    }
    x->s = s;
    x->idx = e->nstrs++;
    HASH_ADD_KEYPTR(hh, e->strs, x->s, strlen(x->s), x);
    fbytes(&e->out, 6, s, strlen(s));
    return x->idx;
}

/* A frame's file and line from "file:line" ("" when unknown). */
static void split_where(const char *where, char *file, size_t size, int64_t *line)
{
    const char *c = strrchr(where, ':');
    *line = 0;
    if (!c) {
        snprintf(file, size, "%s", where);
        return;
    }
    snprintf(file, size, "%.*s", (int)(c - where), where);
    *line = strtoll(c + 1, NULL, 10);
}

static uint64_t fn_id(enc_t *e, const sym_frame_t *f)
{
    char file[600];
    int64_t line;
    split_where(f->where, file, sizeof file, &line);
    size_t n = strlen(f->func) + strlen(file) + 2;
    char *key = malloc(n);
    if (!key) {
        e->out.failed = 1;
        return 0;
    }
    snprintf(key, n, "%s\n%s", f->func, file);
    fn_e *x;
    HASH_FIND_STR(e->fns, key, x);
    if (x) {
        free(key);
        return x->id;
    }
    x = calloc(1, sizeof *x);
    if (!x) {
        free(key);
        e->out.failed = 1;
        return 0;
    }
    x->key = key;
    x->id = ++e->nfns;
    HASH_ADD_KEYPTR(hh, e->fns, x->key, strlen(x->key), x);
    /* Strings first: the table is written as it grows, ahead of the function. */
    uint64_t name = str_idx(e, f->func), fname = str_idx(e, file);
    fu(&e->tmp2, 1, x->id);
    fu(&e->tmp2, 2, name);
    fu(&e->tmp2, 3, name);
    fu(&e->tmp2, 4, fname);
    fmsg(&e->out, 5, &e->tmp2);
    return x->id;
}

static uint64_t mapping_of(const srep_t *r, uint64_t addr)
{
    const srep_module_t *m = srep_module_of(r, addr);
    return m ? (uint64_t)(m - r->modules) + 1 : 0;
}

static uint64_t loc_id(enc_t *e, const srep_t *r, sym_ctx_t *sym, uint64_t addr)
{
    loc_e *x;
    HASH_FIND(hh, e->locs, &addr, sizeof addr, x);
    if (x)
        return x->id;
    const sym_addr_t *a = sym_lookup(sym, addr);
    x = calloc(1, sizeof *x);
    if (!x || !a) {
        free(x);
        e->out.failed = 1;
        return 0;
    }
    x->addr = addr;
    x->id = ++e->nlocs;
    HASH_ADD(hh, e->locs, addr, sizeof x->addr, x);
    uint64_t ids[256];
    size_t n = a->nframes < 256 ? a->nframes : 256, first = 0;
    /* An allocation function inlined at the innermost end (the loader's own malloc
     * wrappers) is folded, as the text report folds it. */
    while (first + 1 < n && a->frames[first].inlined &&
           sym_is_allocator_name(a->frames[first].func))
        first++;
    for (size_t k = first; k < n; k++)
        ids[k] = fn_id(e, &a->frames[k]);
    buf_t line = {0};
    fu(&e->tmp, 1, x->id);
    fu(&e->tmp, 2, mapping_of(r, addr));
    fu(&e->tmp, 3, addr ? addr - 1 : 0);
    for (size_t k = first; k < n; k++) {
        char file[600];
        int64_t ln;
        split_where(a->frames[k].where, file, sizeof file, &ln);
        fu(&line, 1, ids[k]);
        fu(&line, 2, (uint64_t)ln);
        fmsg(&e->tmp, 4, &line);
    }
    free(line.p);
    fmsg(&e->out, 4, &e->tmp);
    return x->id;
}

static void value_type(enc_t *e, unsigned field, const char *type, const char *unit)
{
    uint64_t t = str_idx(e, type), u = str_idx(e, unit);
    fu(&e->tmp, 1, t);
    fu(&e->tmp, 2, u);
    fmsg(&e->out, field, &e->tmp);
}

static int gzip_out(const buf_t *b, FILE *out, char *err, size_t es)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    /* 15 + 16: a gzip wrapper, as pprof reads it. */
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        snprintf(err, es, "zlib could not start");
        return -1;
    }
    unsigned char chunk[65536];
    z.next_in = b->p;
    z.avail_in = (uInt)b->len;
    int rc;
    do {
        z.next_out = chunk;
        z.avail_out = sizeof chunk;
        rc = deflate(&z, Z_FINISH);
        size_t n = sizeof chunk - z.avail_out;
        if (n && fwrite(chunk, 1, n, out) != n) {
            deflateEnd(&z);
            snprintf(err, es, "cannot write the profile");
            return -1;
        }
    } while (rc == Z_OK);
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        snprintf(err, es, "zlib failed");
        return -1;
    }
    return 0;
}

int pprof_write(const srep_t *r, sym_ctx_t *sym, const int *skip, int req, FILE *out,
                char *err, size_t err_size)
{
    enc_t e = {0};
    e.nstrs = 0;
    str_idx(&e, ""); /* index 0 */
    static const char *const types[4][2] = {{"alloc_objects", "count"},
                                            {"alloc_space", "bytes"},
                                            {"inuse_objects", "count"},
                                            {"inuse_space", "bytes"}};
    for (int i = 0; i < 4; i++)
        value_type(&e, 1, types[i][0], types[i][1]);
    for (size_t i = 0; i < r->nmodules; i++) {
        const srep_module_t *m = &r->modules[i];
        uint64_t file = str_idx(&e, m->path), bid = str_idx(&e, m->build_id);
        fu(&e.tmp, 1, i + 1);
        fu(&e.tmp, 2, m->lo);
        fu(&e.tmp, 3, m->hi);
        fu(&e.tmp, 5, file);
        fu(&e.tmp, 6, bid);
        for (unsigned f = 7; f <= 10; f++)
            fu(&e.tmp, f, 1);
        fmsg(&e.out, 3, &e.tmp);
    }
    const sym_addr_t **a = calloc(1024, sizeof *a);
    uint64_t *ids = calloc(1024, sizeof *ids);
    if (!a || !ids)
        e.out.failed = 1;
    for (size_t i = 0; i < r->nsites && !e.out.failed; i++) {
        const srep_site_t *s = &r->sites[i];
        if (skip && skip[i])
            continue;
        size_t n = s->nframes < 1024 ? s->nframes : 1024;
        for (size_t k = 0; k < n && !e.out.failed; k++)
            if (!(a[k] = sym_lookup(sym, s->frames[k])))
                e.out.failed = 1;
        if (e.out.failed)
            break;
        int own;
        size_t start = sym_fold(a, n, &own);
        size_t m = 0;
        for (size_t k = start; k < n; k++)
            ids[m++] = loc_id(&e, r, sym, s->frames[k]);
        buf_t packed = {0};
        for (size_t k = 0; k < m; k++)
            varint(&packed, ids[k]);
        fbytes(&e.tmp2, 1, packed.p, packed.len);
        packed.len = 0;
        uint64_t v[4] = {s->total_count, srep_site_weight(s, SREP_TOTAL, req), s->live_count,
                         srep_site_weight(s, SREP_LIVE, req)};
        for (int k = 0; k < 4; k++)
            varint(&packed, v[k]);
        fbytes(&e.tmp2, 2, packed.p, packed.len);
        if (packed.failed)
            e.out.failed = 1;
        free(packed.p);
        fmsg(&e.out, 2, &e.tmp2);
    }
    free(a);
    free(ids);
    fu(&e.out, 9, (uint64_t)time(NULL) * 1000000000u);
    value_type(&e, 11, "space", "bytes");
    fu(&e.out, 12, r->sample_bytes ? r->sample_bytes : 1);
    fu(&e.out, 14, str_idx(&e, "inuse_space"));
    int rc = 0;
    if (e.out.failed || e.tmp.failed || e.tmp2.failed) {
        snprintf(err, err_size, "out of memory");
        rc = -1;
    } else {
        rc = gzip_out(&e.out, out, err, err_size);
    }
    str_e *sx, *st;
    HASH_ITER(hh, e.strs, sx, st) {
        HASH_DEL(e.strs, sx);
        free(sx);
    }
    fn_e *fx, *ft;
    HASH_ITER(hh, e.fns, fx, ft) {
        HASH_DEL(e.fns, fx);
        free(fx->key);
        free(fx);
    }
    loc_e *lx, *lt;
    HASH_ITER(hh, e.locs, lx, lt) {
        HASH_DEL(e.locs, lx);
        free(lx);
    }
    free(e.out.p);
    free(e.tmp.p);
    free(e.tmp2.p);
    return rc;
}

/* tools/symbolize.c — resolve a report's addresses after the process is gone, as heaptrack
 * shows them.
 *
 * The preload records each module's path, load bias and GNU build id; here each module gets
 * a Dwfl of its own (so a dlclose'd library and the one later loaded at the same address
 * never overlap), reported at its recorded bias so runtime addresses can be asked directly.
 * libdw was chosen because it is the maintained DWARF reader of elfutils (Debian libdw-dev),
 * reads DWARF 5 and split/compressed debug info, and finds separate debug files by build id
 * (/usr/lib/debug/.build-id) without help.
 *
 * One return address may stand for several frames: the compiler inlined calls into the
 * function that holds it. DWARF describes each inlined call as a DW_TAG_inlined_subroutine
 * scope around the address, carrying the place of the call (DW_AT_call_file/call_line) in
 * its caller; the line table gives the innermost place. So the chain is: innermost scope at
 * the line table's place, each outer scope at the call place of the scope inside it, up to
 * the DW_TAG_subprogram. Names are the DIEs' linkage names when they have one, demangled by
 * libstdc++'s __cxa_demangle (the maintained demangler of the toolchain), else their plain
 * names; without DWARF, the ELF symbol.
 *
 * Every distinct address is looked up once: a uthash table from address to its frames. A
 * module whose file is gone, or whose build id no longer matches the file on disk, is never
 * guessed at: its frames are shown as module+0xoffset. Never writes anything.
 */
#include "symbolize.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uthash.h>

/* libstdc++'s demangler (the C++ ABI's), declared here: its header is C++ only. */
extern char *__cxa_demangle(const char *mangled, char *out, size_t *len, int *status);

typedef struct msym {
    GElf_Addr lo, size;
    const char *name;        /* libelf's string, valid while the Dwfl lives */
    int rank;                /* global before weak before local, at one address */
} msym_t;

typedef struct mod_state {
    Dwfl *dwfl;
    Dwfl_Module *mod;
    msym_t *syms;            /* function symbols by address: dwfl_module_addrname scans the
                              * whole table on every call (seconds on cc1) */
    size_t nsyms;
    int tried, usable;
    enum sym_kind kind;
    const char *why;         /* why it is not usable */
} mod_state_t;

typedef struct cache_entry {
    uint64_t addr;
    sym_addr_t a;
    UT_hash_handle hh;
} cache_entry_t;

struct sym_ctx {
    const srep_t *r;
    mod_state_t *ms;
    cache_entry_t *cache;
    size_t ncached;
};

static const Dwfl_Callbacks callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
};

static const char *base_name(const char *path)
{
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

int sym_is_allocator(const char *s)
{
    if (!s)
        return 0;
    /* operator new and new[] in every form: _Znwm, _Znam, nothrow, align_val_t. */
    if (strncmp(s, "_Znw", 4) == 0 || strncmp(s, "_Zna", 4) == 0)
        return 1;
    static const char *const names[] = {
        "malloc", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc",
        "memalign", "valloc", "pvalloc", "__libc_malloc", "__libc_calloc", "__libc_realloc",
        "__libc_memalign", "__libc_valloc", "__libc_pvalloc", "__posix_memalign", "mmap",
        "mmap64", "__mmap",
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcmp(s, names[i]) == 0)
            return 1;
    return 0;
}

int sym_is_allocator_name(const char *func)
{
    return sym_is_allocator(func) || (func && strncmp(func, "operator new", 12) == 0);
}

enum sym_kind sym_kind_of_path(const char *path)
{
    const char *b = base_name(path ? path : "");
    if (strncmp(b, "libpreoom", 9) == 0)
        return SYM_PREOOM;
    static const char *const runtime[] = {"libc.so", "ld-linux", "libstdc++.so", "libgcc_s.so",
                                          "libunwind", "libpthread.so", "libdl.so", "libm.so",
                                          "linux-vdso"};
    for (size_t i = 0; i < sizeof runtime / sizeof *runtime; i++)
        if (strncmp(b, runtime[i], strlen(runtime[i])) == 0)
            return SYM_RUNTIME;
    return SYM_USER;
}

sym_ctx_t *sym_open(const srep_t *r)
{
    sym_ctx_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->r = r;
    c->ms = calloc(r->nmodules ? r->nmodules : 1, sizeof *c->ms);
    if (!c->ms) {
        free(c);
        return NULL;
    }
    return c;
}

static void hex(const unsigned char *b, int n, char *out, size_t size)
{
    size_t k = 0;
    for (int i = 0; i < n && k + 3 <= size; i++)
        k += (size_t)snprintf(out + k, size - k, "%02x", b[i]);
    out[k < size ? k : size - 1] = '\0';
}

static int msym_cmp(const void *x, const void *y)
{
    const msym_t *a = x, *b = y;
    if (a->lo != b->lo)
        return a->lo < b->lo ? -1 : 1;
    return a->rank - b->rank;
}

static void load_syms(mod_state_t *s)
{
    int n = dwfl_module_getsymtab(s->mod);
    if (n <= 0 || !(s->syms = calloc((size_t)n, sizeof *s->syms)))
        return;
    for (int i = 1; i < n; i++) {
        GElf_Sym sym;
        GElf_Addr addr;
        const char *name = dwfl_module_getsym_info(s->mod, i, &sym, &addr, NULL, NULL, NULL);
        int type = GELF_ST_TYPE(sym.st_info), bind = GELF_ST_BIND(sym.st_info);
        if (!name || !name[0] || sym.st_shndx == SHN_UNDEF ||
            (type != STT_FUNC && type != STT_GNU_IFUNC))
            continue;
        s->syms[s->nsyms++] = (msym_t){addr, sym.st_size, name,
                                       bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 1 : 2};
    }
    qsort(s->syms, s->nsyms, sizeof *s->syms, msym_cmp);
}

/* The function symbol holding pc: the last one starting at or below it (the best ranked of
 * those at that address), if pc lies within its size (or it has none). */
static const char *sym_at(const mod_state_t *s, GElf_Addr pc)
{
    size_t lo = 0, hi = s->nsyms;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->syms[mid].lo <= pc)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    size_t i = lo - 1;
    while (i > 0 && s->syms[i - 1].lo == s->syms[i].lo)
        i--;
    const msym_t *m = &s->syms[i];
    if (m->size && pc >= m->lo + m->size)
        return NULL;
    return m->name;
}

static void load(sym_ctx_t *c, size_t i)
{
    mod_state_t *s = &c->ms[i];
    const srep_module_t *m = &c->r->modules[i];
    s->tried = 1;
    s->kind = sym_kind_of_path(m->path);
    if (m->path[0] != '/') {
        s->why = "no file (the vdso or an anonymous object)";
        return;
    }
    s->dwfl = dwfl_begin(&callbacks);
    if (!s->dwfl) {
        s->why = "libdw could not start";
        return;
    }
    s->mod = dwfl_report_elf(s->dwfl, m->path, m->path, -1, m->bias, false);
    dwfl_report_end(s->dwfl, NULL, NULL);
    if (!s->mod) {
        s->why = "cannot read the file";
        return;
    }
    if (m->build_id[0]) {
        const unsigned char *bits;
        GElf_Addr vaddr;
        int n = dwfl_module_build_id(s->mod, &bits, &vaddr);
        char now[132];
        if (n > 0) {
            hex(bits, n, now, sizeof now);
            if (strcmp(now, m->build_id) != 0) {
                s->why = "the file changed since the report (build id differs)";
                return;
            }
        }
    }
    s->usable = 1;
    load_syms(s);
}

/* A name as people read it: demangled when it is a C++ symbol. Always a new string. */
static char *readable(const char *name)
{
    if (!name)
        return strdup("[unknown]");
    if (name[0] == '_' && name[1] == 'Z') {
        int status = -1;
        char *d = __cxa_demangle(name, NULL, NULL, &status);
        if (d && status == 0)
            return d;
        free(d);
    }
    return strdup(name);
}

static const char *die_name(Dwarf_Die *die)
{
    Dwarf_Attribute a;
    const char *s = NULL;
    if (dwarf_attr_integrate(die, DW_AT_linkage_name, &a))
        s = dwarf_formstring(&a);
    if (!s && dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &a))
        s = dwarf_formstring(&a);
    if (!s && dwarf_attr_integrate(die, DW_AT_name, &a))
        s = dwarf_formstring(&a);
    return s;
}

static char *place(const char *file, int line)
{
    if (!file)
        return strdup("");
    size_t n = strlen(file) + 24;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s:%d", file, line);
    return s;
}

typedef struct frames_b {
    sym_frame_t *f;
    size_t n, cap;
    int failed;
} frames_b_t;

/* Takes ownership of func and where. */
static void push(frames_b_t *b, char *func, char *where, int inlined)
{
    if (!b->failed && b->n == b->cap) {
        size_t c = b->cap ? b->cap * 2 : 4;
        sym_frame_t *f = realloc(b->f, c * sizeof *f);
        if (f) {
            b->f = f;
            b->cap = c;
        } else {
            b->failed = 1;
        }
    }
    if (b->failed || !func || !where) {
        b->failed = 1;
        free(func);
        free(where);
        return;
    }
    b->f[b->n++] = (sym_frame_t){func, where, inlined};
}

/* The inline chain at pc from DWARF; 0 frames when the module has none for pc. */
static void inline_chain(Dwfl_Module *mod, Dwarf_Addr pc, const char *sym, const char *file,
                         int line, frames_b_t *b)
{
    Dwarf_Addr bias = 0;
    Dwarf_Die *cudie = dwfl_module_addrdie(mod, pc, &bias);
    if (!cudie)
        return;
    /* dwarf_getscopes finds the innermost scope at pc, but above an inlined call it goes on
     * into the inlined function's abstract definition; the chain of calls is the concrete
     * tree's parents of that innermost scope, which dwarf_getscopes_die gives. */
    Dwarf_Die *scopes = NULL;
    int n = dwarf_getscopes(cudie, pc - bias, &scopes);
    if (n <= 0) {
        free(scopes);
        return;
    }
    Dwarf_Die inner = scopes[0];
    free(scopes);
    scopes = NULL;
    n = dwarf_getscopes_die(&inner, &scopes);
    if (n <= 0) {
        free(scopes);
        return;
    }
    Dwarf_Files *files = NULL;
    size_t nfiles = 0;
    if (dwarf_getsrcfiles(cudie, &files, &nfiles) != 0)
        files = NULL;
    char *where = place(file, line);
    for (int i = 0; i < n; i++) {
        int tag = dwarf_tag(&scopes[i]);
        if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram)
            continue;
        int inl = tag == DW_TAG_inlined_subroutine;
        /* The function itself by its symbol when that is C++'s (static C++ functions have no
         * linkage name in DWARF, and the symbol carries the signature heaptrack shows). */
        char *func = readable(!inl && sym && sym[0] == '_' && sym[1] == 'Z'
                                  ? sym : die_name(&scopes[i]));
        if (!inl) {
            push(b, func, where, 0);
            where = NULL;
            break;
        }
        /* The next frame out is at this inlined call's place in its caller. */
        Dwarf_Attribute a;
        Dwarf_Word fidx = 0, cl = 0;
        const char *cf = NULL;
        if (files && dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_file, &a), &fidx) == 0)
            cf = dwarf_filesrc(files, fidx, NULL, NULL);
        if (dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_line, &a), &cl) != 0)
            cl = 0;
        push(b, func, where, 1);
        where = place(cf, (int)cl);
    }
    free(where); /* a chain with no subprogram around it: the last call place is dropped */
    free(scopes);
}

static void resolve(sym_ctx_t *c, uint64_t addr, sym_addr_t *out)
{
    frames_b_t b = {0};
    const srep_module_t *m = srep_module_of(c->r, addr);
    out->kind = SYM_USER;
    out->allocator = 0;
    if (!m) {
        char hexs[32];
        snprintf(hexs, sizeof hexs, "0x%llx", (unsigned long long)addr);
        push(&b, strdup(hexs), strdup(""), 0);
    } else {
        size_t i = (size_t)(m - c->r->modules);
        if (!c->ms[i].tried)
            load(c, i);
        out->kind = c->ms[i].kind;
        /* A return address points after the call: look up the call itself. */
        Dwarf_Addr pc = addr ? addr - 1 : addr;
        const char *sym = c->ms[i].usable ? sym_at(&c->ms[i], pc) : NULL;
        if (sym) {
            out->allocator = sym_is_allocator(sym);
            Dwfl_Line *l = dwfl_module_getsrc(c->ms[i].mod, pc);
            int line = 0;
            const char *file = l ? dwfl_lineinfo(l, NULL, &line, NULL, NULL, NULL) : NULL;
            inline_chain(c->ms[i].mod, pc, sym, file, line, &b);
            if (b.n == 0 && !b.failed)
                push(&b, readable(sym), place(file, line), 0);
        } else {
            /* The call's own address, as heaptrack and debuggers show it. */
            char s[300];
            snprintf(s, sizeof s, "%s+0x%llx", base_name(m->path),
                     (unsigned long long)(pc - m->bias));
            push(&b, strdup(s), strdup(""), 0);
        }
    }
    if (b.failed) {
        for (size_t k = 0; k < b.n; k++) {
            free((char *)b.f[k].func);
            free((char *)b.f[k].where);
        }
        free(b.f);
        b.f = NULL;
        b.n = 0;
    }
    out->frames = b.f;
    out->nframes = b.n;
}

const sym_addr_t *sym_lookup(sym_ctx_t *c, uint64_t addr)
{
    cache_entry_t *e;
    HASH_FIND(hh, c->cache, &addr, sizeof addr, e);
    if (e)
        return &e->a;
    e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->addr = addr;
    resolve(c, addr, &e->a);
    if (!e->a.frames) {
        free(e);
        return NULL;
    }
    HASH_ADD(hh, c->cache, addr, sizeof e->addr, e);
    c->ncached++;
    return &e->a;
}

size_t sym_cached(const sym_ctx_t *c)
{
    return c->ncached;
}

void sym_notes(sym_ctx_t *c, void (*line)(const char *msg, void *arg), void *arg)
{
    for (size_t i = 0; i < c->r->nmodules; i++) {
        if (!c->ms[i].tried || c->ms[i].usable || c->r->modules[i].path[0] != '/')
            continue;
        char msg[700];
        snprintf(msg, sizeof msg, "%s: %s; its frames are shown as module+offset",
                 c->r->modules[i].path, c->ms[i].why);
        line(msg, arg);
    }
}

void sym_close(sym_ctx_t *c)
{
    if (!c)
        return;
    cache_entry_t *e, *tmp;
    HASH_ITER(hh, c->cache, e, tmp) {
        HASH_DEL(c->cache, e);
        for (size_t k = 0; k < e->a.nframes; k++) {
            free((char *)e->a.frames[k].func);
            free((char *)e->a.frames[k].where);
        }
        free((void *)e->a.frames);
        free(e);
    }
    for (size_t i = 0; i < c->r->nmodules; i++) {
        if (c->ms[i].dwfl)
            dwfl_end(c->ms[i].dwfl);
        free(c->ms[i].syms);
    }
    free(c->ms);
    free(c);
}

size_t sym_fold(const sym_addr_t *const *a, size_t n, int *own)
{
    size_t start = 0;
    while (start < n && a[start] && (a[start]->kind == SYM_PREOOM || a[start]->allocator))
        start++;
    *own = 0;
    /* preoom's own: a preoom frame reached from the allocation through the runtime only (its
     * agent's thread start, libunwind's start-up). The program's code in between (a release
     * callback the agent runs) makes it the program's. */
    for (size_t i = start; i < n && a[i]; i++) {
        if (a[i]->kind == SYM_PREOOM) {
            *own = 1;
            break;
        }
        if (a[i]->kind != SYM_RUNTIME)
            break;
    }
    return start < n ? start : 0;
}

/* tools/symbolize.c — resolve a report's addresses after the process is gone.
 *
 * The preload records each module's path, load bias and GNU build id; here each module gets
 * a Dwfl of its own (so a dlclose'd library and the one later loaded at the same address
 * never overlap), reported at its recorded bias so runtime addresses can be asked directly.
 * libdw was chosen because it is the maintained DWARF reader of elfutils (Debian libdw-dev),
 * reads DWARF 5 and split/compressed debug info, and finds separate debug files by build id
 * (/usr/lib/debug/.build-id) without help. A module whose file is gone, or whose build id no
 * longer matches the file on disk, is never guessed at: its frames are shown as
 * module+0xoffset.
 */
#include "symbolize.h"

#include <elfutils/libdwfl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct mod_state {
    Dwfl *dwfl;
    Dwfl_Module *mod;
    int tried, usable;
    const char *why;         /* why it is not usable */
} mod_state_t;

struct sym_ctx {
    const srep_t *r;
    mod_state_t *ms;
};

static const Dwfl_Callbacks callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
};

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

static void load(sym_ctx_t *c, size_t i)
{
    mod_state_t *s = &c->ms[i];
    const srep_module_t *m = &c->r->modules[i];
    s->tried = 1;
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
}

static const char *base_name(const char *path)
{
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

void sym_resolve(sym_ctx_t *c, uint64_t addr, sym_frame_t *out)
{
    out->where[0] = '\0';
    const srep_module_t *m = srep_module_of(c->r, addr);
    if (!m) {
        snprintf(out->func, sizeof out->func, "0x%llx", (unsigned long long)addr);
        return;
    }
    size_t i = (size_t)(m - c->r->modules);
    if (!c->ms[i].tried)
        load(c, i);
    /* A return address points after the call: look up the call itself. */
    uint64_t pc = addr ? addr - 1 : addr;
    if (c->ms[i].usable) {
        const char *name = dwfl_module_addrname(c->ms[i].mod, pc);
        if (name) {
            snprintf(out->func, sizeof out->func, "%s", name);
            Dwfl_Line *l = dwfl_module_getsrc(c->ms[i].mod, pc);
            int line = 0;
            const char *file = l ? dwfl_lineinfo(l, NULL, &line, NULL, NULL, NULL) : NULL;
            if (file)
                snprintf(out->where, sizeof out->where, "%s:%d", file, line);
            return;
        }
    }
    snprintf(out->func, sizeof out->func, "%s+0x%llx", base_name(m->path),
             (unsigned long long)(addr - m->bias));
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
    for (size_t i = 0; i < c->r->nmodules; i++)
        if (c->ms[i].dwfl)
            dwfl_end(c->ms[i].dwfl);
    free(c->ms);
    free(c);
}

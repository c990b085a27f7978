/* tools/symbolize.h — addresses from a report to the frames heaptrack would show: function
 * names demangled, inlined calls expanded, file:line; one lookup per distinct address, cached.
 * The only file of the tools that includes libdw's headers. Never writes anything.
 */
#ifndef PREOOM_TOOLS_SYMBOLIZE_H
#define PREOOM_TOOLS_SYMBOLIZE_H

#include <stddef.h>
#include <stdint.h>

#include "stackreport.h"

typedef struct sym_ctx sym_ctx_t;

typedef struct sym_frame {
    const char *func;        /* demangled function, or "module+0xoffset" when unknown */
    const char *where;       /* "file:line", or "" */
    int inlined;             /* inlined into the next (outer) frame of the same address */
} sym_frame_t;

/* What kind of code one address lies in: the folding of stacks asks. */
enum sym_kind {
    SYM_USER,                /* the program and its own libraries */
    SYM_RUNTIME,             /* libc, the loader, libstdc++, libgcc_s, libunwind */
    SYM_PREOOM,              /* libpreoom itself */
};

typedef struct sym_addr {
    const sym_frame_t *frames; /* innermost first: the inlined callees, then the function */
    size_t nframes;
    enum sym_kind kind;
    int allocator;           /* the function is one of the allocation functions (malloc &
                              * co, operator new[]), by its symbol name */
} sym_addr_t;

sym_ctx_t *sym_open(const srep_t *r);
/* The frames one return address stands for (looked up at addr-1, the call instruction).
 * Owned by c, valid until sym_close; NULL only when out of memory. */
const sym_addr_t *sym_lookup(sym_ctx_t *c, uint64_t addr);
/* Distinct addresses looked up so far (the cache's size). */
size_t sym_cached(const sym_ctx_t *c);
/* Modules whose file could not be opened or whose build id no longer matches, one line
 * each, for a note under the report. */
void sym_notes(sym_ctx_t *c, void (*line)(const char *msg, void *arg), void *arg);
void sym_close(sym_ctx_t *c);

/* Where a site's stack starts as people read it: the index of the first address that is
 * neither preoom's own code nor an allocation function (so a C++ site starts at the caller
 * of operator new, not in libstdc++ or the preload); own is set when the allocation is the
 * preload's own (a preoom frame reached through the runtime only). Pure. */
size_t sym_fold(const sym_addr_t *const *a, size_t n, int *own);

/* Pure helpers, for the tests: is this symbol name an allocation function; the kind of a
 * module by its path. */
int sym_is_allocator(const char *symbol);
/* The same for a shown (demangled) name: also "operator new(...)" and the like. */
int sym_is_allocator_name(const char *func);
enum sym_kind sym_kind_of_path(const char *path);

#endif

/* tools/symbolize.h — addresses from a report to function names and file:line, with
 * elfutils' libdw (Dwfl). The only file of the tools that includes libdw's headers.
 */
#ifndef PREOOM_TOOLS_SYMBOLIZE_H
#define PREOOM_TOOLS_SYMBOLIZE_H

#include <stddef.h>
#include <stdint.h>

#include "stackreport.h"

typedef struct sym_ctx sym_ctx_t;

typedef struct sym_frame {
    char func[256];          /* function, or "module+0xoffset" when unknown */
    char where[512];         /* "file:line", or "" */
} sym_frame_t;

sym_ctx_t *sym_open(const srep_t *r);
/* Resolve one return address (looked up at addr-1, the call instruction). */
void sym_resolve(sym_ctx_t *c, uint64_t addr, sym_frame_t *out);
/* Modules whose file could not be opened or whose build id no longer matches, one line
 * each, for a note under the report. */
void sym_notes(sym_ctx_t *c, void (*line)(const char *msg, void *arg), void *arg);
void sym_close(sym_ctx_t *c);

#endif

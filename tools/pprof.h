/* tools/pprof.h — a report's call sites in pprof's profile.proto format (gzip'd), for
 * `go tool pprof` and the pprof web UI. Never reads the report file itself.
 */
#ifndef PREOOM_TOOLS_PPROF_H
#define PREOOM_TOOLS_PPROF_H

#include <stdio.h>

#include "stackreport.h"
#include "symbolize.h"

/* Sites whose skip[i] is set (the preload's own) are left out; req picks requested bytes
 * over usable. 0, or -1 with a reason in err. */
int pprof_write(const srep_t *r, sym_ctx_t *sym, const int *skip, int req, FILE *out,
                char *err, size_t err_size);

/* The encoder's pieces, for the tests: a varint into out (at most 10 bytes), its length. */
size_t pprof_varint(uint64_t v, unsigned char *out);

#endif

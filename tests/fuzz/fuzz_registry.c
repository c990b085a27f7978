/* tests/fuzz/fuzz_registry.c — libFuzzer target for the registry's reader: header validation
 * and the snapshot walk of common/registry.c (preoom_reg_check_buffer) over arbitrary bytes,
 * as a hostile or corrupted /dev/shm/preoom.NAME would present them.
 *
 * The first input byte steers the rest toward the deep paths random bytes rarely reach: bit 0
 * stamps a valid magic, ABI and sizes over the header, bit 1 also sets the slot count to what
 * the buffer holds (any more is the truncation check's job), bit 2 trims the buffer to the
 * end of the last whole slot. Slots themselves stay arbitrary. Must never touch the file
 * system or other processes: the checker only reads the buffer it is given.
 *
 *   make fuzz && build/tests/fuzz/fuzz_registry -max_total_time=600 CORPUS_DIR
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "floor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mode = data[0];
    data++, size--;
    /* A private, 8-byte-aligned copy of exactly `size` bytes: ASan then catches any read
     * past the end, as a mapping of that length would fault. */
    uint64_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    size_t len = size;
    if ((mode & 1) && len >= sizeof(struct preoom_registry_header)) {
        struct preoom_registry_header *h = (struct preoom_registry_header *)buf;
        h->magic = PREOOM_REGISTRY_MAGIC;
        h->abi = PREOOM_REGISTRY_ABI;
        h->header_bytes = PREOOM_REGISTRY_HEADER_BYTES;
        h->slot_bytes = PREOOM_REGISTRY_SLOT_BYTES;
        uint64_t fit = (len - PREOOM_REGISTRY_HEADER_BYTES) / PREOOM_REGISTRY_SLOT_BYTES;
        if (mode & 2)
            h->slot_count = fit;
        if (mode & 4)
            len = PREOOM_REGISTRY_HEADER_BYTES + (size_t)fit * PREOOM_REGISTRY_SLOT_BYTES;
    }
    uint64_t live = 0;
    const char *why = NULL;
    int rc = preoom_reg_check_buffer(buf, len, &live, &why);
    /* What the checker promises: a reason with every refusal, and no more live slots than
     * the buffer can hold. */
    if (rc != 0 && (!why || !*why))
        abort();
    if (rc == 0 && live > (len - PREOOM_REGISTRY_HEADER_BYTES) / PREOOM_REGISTRY_SLOT_BYTES)
        abort();
    free(buf);
    return 0;
}

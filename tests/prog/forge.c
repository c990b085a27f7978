/* tests/prog/forge.c — writes a forged slot into a registry, as a hostile or buggy process
 * could: the arbiter must never act on what it names.
 *
 *   forge NAME PID [START_TIME|auto|bad] [GARBAGE]
 *   forge NAME PID inplace SECONDS
 *
 * Claims a free slot by compare-and-swap exactly as a real process would (so readers see a
 * LIVE slot), names PID with the given start time ("auto" copies the real one from
 * /proc/PID/stat, "bad" a wrong one), and claims 8 GiB committed and touched so the slot
 * would rank first. With GARBAGE, the remaining fields are filled with random bytes. With
 * "inplace", it writes no slot of its own but sets hint 1000 in PID's own live slot, every
 * millisecond for SECONDS (against the owner's publications). Uses only
 * include/preoom/registry.h: what anyone's tool could do.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "preoom/registry.h"

static unsigned long long start_of(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long long v = 0;
    for (int field = 2; p && field < 22; field++)
        p = strchr(p + 1, ' ');
    if (p)
        v = strtoull(p + 1, NULL, 10);
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: forge NAME PID [START|auto|bad] [GARBAGE]\n");
        return 2;
    }
    char path[256];
    snprintf(path, sizeof path, "/dev/shm/preoom.%s", argv[1]);
    int pid = atoi(argv[2]);
    const char *how = argc > 3 ? argv[3] : "auto";
    int fd = open(path, O_RDWR);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        perror(path);
        return 1;
    }
    char *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    struct preoom_registry_header *h = (void *)m;
    if (strcmp(how, "inplace") == 0) {
        long ms = argc > 4 ? atol(argv[4]) * 1000 : 5000;
        int found = 0;
        for (long t = 0; t < ms; t++) {
            for (uint64_t i = 0; i < h->slot_count; i++) {
                struct preoom_slot *s = (void *)(m + PREOOM_REGISTRY_HEADER_BYTES + i * PREOOM_REGISTRY_SLOT_BYTES);
                uint64_t cur = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
                if (PREOOM_STATE_KIND(cur) == PREOOM_SLOT_LIVE && s->pid == (uint64_t)pid &&
                    strncmp(s->name, "forged", sizeof s->name) != 0) {
                    __atomic_store_n(&s->adj, 1000, __ATOMIC_RELAXED);
                    if (!found)
                        printf("hint 1000 in slot %llu of pid %d\n", (unsigned long long)i, pid);
                    found = 1;
                }
            }
            usleep(1000);
        }
        return found ? 0 : 1;
    }
    for (uint64_t i = 0; i < h->slot_count; i++) {
        struct preoom_slot *s = (void *)(m + PREOOM_REGISTRY_HEADER_BYTES + i * PREOOM_REGISTRY_SLOT_BYTES);
        uint64_t cur = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
        if (PREOOM_STATE_KIND(cur) != PREOOM_SLOT_FREE)
            continue;
        uint64_t claim = PREOOM_STATE_MAKE(PREOOM_SLOT_CLAIMING, PREOOM_STATE_GEN(cur), pid);
        if (!__atomic_compare_exchange_n(&s->state, &cur, claim, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            continue;
        if (argc > 4) {
            srand((unsigned)getpid());
            for (size_t k = 8; k < sizeof *s; k++)
                ((unsigned char *)s)[k] = (unsigned char)rand();
        }
        s->pid = (uint64_t)pid;
        s->start_time = strcmp(how, "auto") == 0 ? start_of(pid)
                        : strcmp(how, "bad") == 0 ? start_of(pid) + 12345
                                                  : strtoull(how, NULL, 10);
        s->committed = s->touched = s->peak_committed = s->peak_touched = 8ULL << 30;
        s->adj = 1000;
        s->seq = 0;
        memcpy(s->name, "forged", 7);
        s->heartbeat_ns = 0;
        __atomic_store_n(&s->state, PREOOM_STATE_MAKE(PREOOM_SLOT_LIVE, PREOOM_STATE_GEN(cur), pid),
                         __ATOMIC_RELEASE);
        printf("forged slot %llu: pid %d start %llu\n", (unsigned long long)i, pid,
               (unsigned long long)s->start_time);
        return 0;
    }
    fprintf(stderr, "forge: no free slot\n");
    return 1;
}

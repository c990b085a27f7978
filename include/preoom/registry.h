/* preoom/registry.h — the layout of the shared-memory registry /dev/shm/preoom.<name>.
 *
 * This header is the contract between every preloaded process (the writers), the arbiter
 * preoomd and anyone's tools (the readers). It is self-contained: a reader needs nothing else
 * to walk the registry. Every field a reader uses is a naturally aligned 64-bit word, read
 * and written with atomic loads and stores; slots are cache-line aligned so that one process
 * publishing never bounces another's line.
 *
 * Readers must treat every byte as untrusted: check magic, ABI, sizes and the file's length
 * before walking slots, copy a slot under its sequence counter, and verify pid and start time
 * against /proc before believing a slot names a process.
 */
#ifndef PREOOM_REGISTRY_H
#define PREOOM_REGISTRY_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PREOOM_REGISTRY_MAGIC 0x314d4f4f45525050ULL /* "PPREOOM1" little-endian */
/* 2: answers to report requests have fields of their own (report_*), and the agent's thread id
 * (agent_tid) locates the proof that a slot is its process's own (see the README). */
#define PREOOM_REGISTRY_ABI 2
#define PREOOM_REGISTRY_DEFAULT_SLOTS 1024
#define PREOOM_REGISTRY_MAX_SLOTS 65536
#define PREOOM_REGISTRY_HEADER_BYTES 256
#define PREOOM_REGISTRY_SLOT_BYTES 512

/* Slot states: the low 8 bits of `state`. Bits 8..31 are a generation bumped on every
 * release so a stale compare-and-swap never succeeds; bits 32..63 hold the claimer's pid,
 * so a claim that died half-way can be recognised and reclaimed. */
enum preoom_slot_state {
    PREOOM_SLOT_FREE = 0,
    PREOOM_SLOT_CLAIMING = 1, /* being filled in: readers skip it */
    PREOOM_SLOT_LIVE = 2,     /* pid and start time valid, counters published */
};
#define PREOOM_STATE_KIND(s) ((unsigned)((s) & 0xffu))
#define PREOOM_STATE_GEN(s) ((uint32_t)(((s) >> 8) & 0xffffffu))
#define PREOOM_STATE_PID(s) ((int32_t)((s) >> 32))
#define PREOOM_STATE_MAKE(kind, gen, pid) \
    (((uint64_t)(uint32_t)(pid) << 32) | (((uint64_t)(gen) & 0xffffffu) << 8) | (uint64_t)(kind))

/* Pressure levels, as published by the arbiter in the header and used in release requests.
 * The release levels match preoom.h's preoom_level_t. */
enum preoom_pressure {
    PREOOM_PRESSURE_NONE = 0,
    PREOOM_PRESSURE_MODERATE = 1,
    PREOOM_PRESSURE_CRITICAL = 2,
    PREOOM_PRESSURE_COMPLETE = 3,
};

/* Entry points counted per process, in this order in `calls[]`. */
enum preoom_call {
    PREOOM_CALL_MALLOC,
    PREOOM_CALL_FREE,
    PREOOM_CALL_CALLOC,
    PREOOM_CALL_REALLOC,
    PREOOM_CALL_REALLOCARRAY,
    PREOOM_CALL_POSIX_MEMALIGN,
    PREOOM_CALL_ALIGNED_ALLOC,
    PREOOM_CALL_MEMALIGN,
    PREOOM_CALL_VALLOC,
    PREOOM_CALL_PVALLOC,
    PREOOM_CALL_USABLE_SIZE,
    PREOOM_CALL_MMAP,
    PREOOM_CALL_MUNMAP,
    PREOOM_CALL_MREMAP,
    PREOOM_CALL_BRK,
    PREOOM_CALL_SBRK,
    PREOOM_CALL_NEW,
    PREOOM_CALL_DELETE,
    PREOOM_CALL_COUNT
};

/* The request word (arbiter -> process). Its value always fits in 32 bits so the futex can
 * wait on it: bits 0..7 the level, bits 8..31 a serial the arbiter increments per request.
 * Wait/wake on the 32-bit half that holds the value: see preoom_slot_futex_word(). */
#define PREOOM_REQ_LEVEL(w) ((unsigned)((w) & 0xffu))
#define PREOOM_REQ_SERIAL(w) ((uint32_t)(((w) >> 8) & 0xffffffu))
/* A request level above the release levels: not a release but "write your report now"
 * (the agent writes it to the path of preoom_stacks_dump_path and answers in report_serial
 * and report_bytes, never in the release answer's fields). */
#define PREOOM_REQ_LEVEL_DUMP 0x40u
#define PREOOM_REQ_MAKE(serial, level) ((((uint64_t)(serial) & 0xffffffu) << 8) | ((uint64_t)(level) & 0xffu))

struct preoom_registry_header {
    uint64_t magic;          /* PREOOM_REGISTRY_MAGIC */
    uint64_t abi;            /* PREOOM_REGISTRY_ABI */
    uint64_t header_bytes;   /* offset of slot 0 */
    uint64_t slot_bytes;     /* stride between slots */
    uint64_t slot_count;     /* number of slots after the header */
    uint64_t creator_uid;    /* uid of the process that created the file */
    uint64_t created_ns;     /* CLOCK_REALTIME at creation */
    uint64_t pressure;       /* enum preoom_pressure, written by the arbiter */
    uint64_t pressure_ns;    /* CLOCK_MONOTONIC when `pressure` was last written */
    uint64_t arbiter_pid;    /* pid of the arbiter that last wrote, 0 if none */
    /* What the arbiter last measured, for `preoom ls` and `top` (written with `pressure`). */
    uint64_t total_bytes;    /* what its lines are relative to: the cgroup limit or RAM+swap */
    uint64_t available_bytes;
    uint64_t ask_bytes, term_bytes, kill_bytes; /* the three lines, in bytes */
    uint64_t time_to_kill_ms; /* at the recent fall; UINT64_MAX when memory is not falling */
    uint64_t reserved[16];
};

struct preoom_slot {
    uint64_t state;          /* PREOOM_STATE_MAKE(kind, gen, pid) */
    uint64_t seq;            /* odd while the owner writes; readers retry until even & equal */
    uint64_t pid;
    uint64_t start_time;     /* field 22 of /proc/PID/stat (clock ticks after boot) */
    uint64_t uid;
    uint64_t registered_ns;  /* CLOCK_REALTIME when claimed */
    uint64_t heartbeat_ns;   /* CLOCK_MONOTONIC of the last publication */
    uint64_t interval_ms;    /* how often the owner publishes */
    /* bytes — the words of DESIGN.md */
    uint64_t committed;      /* malloc + mmap + brk */
    uint64_t touched;        /* rss_anon + swap */
    uint64_t peak_committed;
    uint64_t peak_touched;
    uint64_t rss_anon;
    uint64_t swap;
    uint64_t malloc_bytes;   /* live usable bytes of the malloc family */
    uint64_t mmap_bytes;     /* private writable anonymous mappings the program made */
    uint64_t brk_bytes;      /* growth of the break through brk/sbrk */
    uint64_t slack;          /* touched - malloc, where positive */
    uint64_t exposure;       /* committed - touched, where positive */
    uint64_t adj;            /* the process's own hint, 0..1000: more willing to be chosen */
    char name[16];           /* short name (comm), NUL-padded; untrusted */
    uint64_t request;        /* PREOOM_REQ_MAKE(serial, level), written by the arbiter */
    uint64_t request_bytes;  /* how much the arbiter would like back */
    uint64_t answer_serial;  /* serial of the last release request the process answered */
    uint64_t answer_bytes;   /* bytes it gave back: the fall of its touched memory */
    uint64_t answers;        /* number of requests answered */
    uint64_t answer_callback_bytes; /* what the app's callbacks said they freed */
    uint64_t answer_trim_bytes;     /* what malloc_trim gave back (touched before - after) */
    uint64_t answer_ns;      /* CLOCK_MONOTONIC when the answer was written */
    uint64_t calls[PREOOM_CALL_COUNT];
    /* The answer to a report request (PREOOM_REQ_LEVEL_DUMP): never mixed with a release's. */
    uint64_t report_serial;  /* serial of the last report request answered */
    uint64_t report_bytes;   /* size of the report written, 0 if it could not be */
    uint64_t report_ns;      /* CLOCK_MONOTONIC when it was answered */
    /* The thread id of the process's agent. Its name, /proc/PID/task/TID/comm, is
     * "preoom<slot index in hex>:<adj>", which only a thread of that process can set: the
     * proof that this slot is the process's own, and the only source of its adj hint. */
    uint64_t agent_tid;
    /* What the arbiter needs to ask well (0: unknown, as an older writer leaves them). */
    uint64_t callbacks;      /* release callbacks registered: asking it can free memory */
    uint64_t reclaimable;    /* bytes the app says it could free if asked; 0 = unknown */
    uint64_t term_grace_ms;  /* its own shutdown time after SIGTERM (PREOOM_TERM_GRACE_MS) */
    uint64_t reserved[64 - 37 - PREOOM_CALL_COUNT];
};

/* The futex the arbiter wakes and the agent waits on: the 32-bit half of `request` that
 * holds its value on this machine's byte order. */
static inline uint32_t *preoom_slot_futex_word(struct preoom_slot *s)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return (uint32_t *)&s->request + 1;
#else
    return (uint32_t *)&s->request;
#endif
}

#ifdef __cplusplus
}
#endif

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct preoom_registry_header) == PREOOM_REGISTRY_HEADER_BYTES,
               "registry header size is ABI");
_Static_assert(sizeof(struct preoom_slot) == PREOOM_REGISTRY_SLOT_BYTES, "slot size is ABI");
#endif

#endif

/* common/floor.h — what the preload and the tools must agree on, in one place: the
 * registry's open/create/validate/map, its SIGBUS guard, the request/answer protocol, the
 * /proc/PID/stat fields the registry trusts, the report-path convention, the parsers of
 * sizes and names, formatting that never allocates and the one JSON string escaper.
 *
 * Both sides include this and nothing of each other: preload/ has its own include path
 * (internal.h), tools/ has its own, and neither can reach the other's headers. Everything
 * here is safe inside the preload: it never allocates and never takes a lock.
 */
#ifndef PREOOM_COMMON_FLOOR_H
#define PREOOM_COMMON_FLOOR_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "preoom/registry.h"

/* ---- fmt.c: formatting that never allocates ------------------------------------------- */
/* A small vsnprintf: %s %c %d %i %u %x %p %% with the l, ll and z length modifiers and a
 * field width. Always NUL-terminates; returns the length written (truncated to size-1). */
size_t preoom_vfmt(char *buf, size_t size, const char *fmt, va_list ap);
size_t preoom_fmt(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The body of a JSON string (no quotes): '"' and '\\' escaped, bytes outside printable
 * ASCII as \u00XX, so names and paths a process chose cannot break a report. Truncates to
 * fit; always NUL-terminates; returns the length. */
size_t preoom_json_escape(char *buf, size_t size, const char *s);
/* Write all of buf to fd, retrying on EINTR and short writes. Returns 0 or -errno. */
int preoom_write_all(int fd, const char *buf, size_t len);

/* ---- parse.c: the parsers of settings and options, pure ----------------------------------- */
enum preoom_stacks_mode { PREOOM_STACKS_OFF = 0, PREOOM_STACKS_SAMPLE, PREOOM_STACKS_ALL };
enum preoom_stack_cache { PREOOM_CACHE_OFF = 0, PREOOM_CACHE_ON, PREOOM_CACHE_VERIFY };
/* The table-driven parsers, pure so the tests can cover bad input. Each returns 0 or
 * -EINVAL/-ERANGE and leaves *out untouched on error. */
int preoom_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int preoom_parse_bytes(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int preoom_parse_bool(const char *s, int *out);
int preoom_parse_stacks(const char *s, int *out);
int preoom_parse_stack_cache(const char *s, int *out);
int preoom_parse_name(const char *s, char *out, size_t out_size);

/* ---- sys.c: raw system calls and clocks ------------------------------------------------- */
/* Raw system calls that never go through the preload's hooks. */
void *preoom_sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int preoom_sys_munmap(void *addr, size_t len);
uint64_t preoom_now_ns(int clock);

/* ---- procstat.c: the one /proc/PID/stat parser ---------------------------------------------- */
#define PREOOM_COMM_MAX 64        /* kthread names may pass TASK_COMM_LEN (16) on new kernels */
/* /proc/PID/stat, the fields the arbiter uses. */
typedef struct {
    int32_t pid;
    char comm[PREOOM_COMM_MAX];  /* printable; bytes outside 0x20..0x7e shown as '?' */
    char state;                  /* R S D Z T t X I … */
    int32_t ppid;
    uint64_t flags;              /* PF_* */
    bool kthread;                /* PF_KTHREAD is set */
    uint64_t utime_ticks;        /* clock ticks, sysconf(_SC_CLK_TCK) a second */
    uint64_t stime_ticks;
    int32_t nice;                /* -20..19 */
    uint64_t num_threads;
    uint64_t starttime_ticks;    /* field 22: ticks after boot; with pid, names the process */
    uint64_t vsize_bytes;
    uint64_t rss_pages;
} preoom_pid_stat_t;
/* Parse a /proc/PID/stat buffer: 0, or -EINVAL/-ERANGE when it is not the kernel's layout. */
int preoom_parse_pid_stat(const char *buf, size_t len, preoom_pid_stat_t *out);
/* Its field 22 (start time, clock ticks after boot). 0 or -errno. */
int preoom_parse_stat_start_time(const char *buf, size_t len, uint64_t *start_ticks);
/* 1 when a /proc/PID/stat line is a zombie (Z or X) with at most one thread left. */
int preoom_parse_stat_defunct(const char *buf, size_t len);

/* ---- reportpath.c: where reports go -------------------------------------------------------- */
/* Expand %p in the template to the pid. Returns 0 or -ENAMETOOLONG. */
int preoom_report_path(const char *tmpl, pid_t pid, char *out, size_t size);
/* Where a running process writes the report `preoom report PID` asks for. 0 or
 * -ENAMETOOLONG. */
int preoom_stacks_dump_path(const char *registry, pid_t pid, char *out, size_t size);

/* A consistent-enough view of a process, in bytes: what its agent publishes. */
/* A consistent-enough view of the process, in bytes. */
typedef struct preoom_totals {
    uint64_t committed, touched, peak_committed, peak_touched;
    uint64_t rss_anon, swap;
    uint64_t malloc_bytes, mmap_bytes, brk_bytes;
    uint64_t slack, exposure;
    uint64_t calls[PREOOM_CALL_COUNT];
} preoom_totals_t;

/* ---- busguard.c: SIGBUS from a registry that shrank becomes -EFAULT ---------------------- */
typedef struct preoom_bus_guard {
    sigjmp_buf env;
    const char *lo, *hi;               /* the armed range: [lo, hi) */
    struct preoom_bus_guard *prev;     /* the guard this one nests in */
} preoom_bus_guard_t;
/* Put our SIGBUS handler in front of whatever is installed (idempotent; call again to win
 * back the front after a host installed its own). Faults outside armed ranges go on. */
void preoom_bus_install(void);
/* Arm g for [base, base+len) on this thread, then sigsetjmp(g->env, 0) in the caller's own
 * frame: a fault in the range returns there with 1 (g already disarmed). */
extern __thread preoom_bus_guard_t *preoom_bus_top; /* the innermost armed guard */
/* Inline: a full walk arms one guard per slot, and a call each way costs a tenth of it. */
static inline void preoom_bus_arm(preoom_bus_guard_t *g, const void *base, size_t len)
{
    g->lo = (const char *)base;
    g->hi = (const char *)base + len;
    g->prev = preoom_bus_top;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    preoom_bus_top = g;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}
static inline void preoom_bus_disarm(preoom_bus_guard_t *g)
{
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    preoom_bus_top = g->prev;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

/* ---- registry.c: the shared-memory registry (the only file that maps it) ----------------- */
#define PREOOM_REG_DIR_MAX 128
#define PREOOM_REG_PATH_MAX 200
typedef struct preoom_reg {
    struct preoom_registry_header *hdr;
    size_t map_bytes;
    uint64_t slot_count;
    int fd;
    dev_t dev;                        /* the file we mapped, to follow its path */
    ino_t ino;
    uid_t uid;                        /* its owner */
    const char *event;                /* NULL, or what opening did: created, replaced ... */
    char path[PREOOM_REG_PATH_MAX];
} preoom_reg_t;

/* Flags of preoom_reg_open. 1 keeps its old meaning ("create if missing"). */
#define PREOOM_REG_CREATE 1    /* create it when missing */
#define PREOOM_REG_REPAIR 2    /* replace our own stale file (empty, no header) */
#define PREOOM_REG_TAKEOVER 4  /* replace a file of an unexpected owner (root's arbiter) */
/* The directory of the registries (default /dev/shm): absolute, no "..". 0 or -EINVAL. */
int preoom_reg_set_dir(const char *dir);
const char *preoom_reg_dir(void);
/* DIR/preoom.NAME for a valid name. 0, -EINVAL or -ENAMETOOLONG. */
int preoom_reg_path(const char *name, char *out, size_t size);
/* Open (with PREOOM_REG_CREATE, create) DIR/preoom.<name>; validates everything, refuses a
 * file of an unexpected owner (not us, not root, not the configured group). A new registry
 * has its blocks reserved and appears at its path complete. On error returns -errno and sets
 * *why to a static sentence; on success out->event says what was done besides opening. */
int preoom_reg_open(const char *name, int flags, uint64_t slots, int64_t gid, int writable,
                    preoom_reg_t *out, const char **why);
void preoom_reg_close(preoom_reg_t *r);
/* Does the path still name the file we mapped, whole? 0 yes; 1 with *why (deleted, replaced,
 * truncated). */
int preoom_reg_changed(const preoom_reg_t *r, const char **why);
/* Unguarded: only for tests and for code that arms its own guard. */
static inline struct preoom_slot *preoom_reg_slot(const preoom_reg_t *r, uint64_t i)
{
    return (struct preoom_slot *)((char *)r->hdr + PREOOM_REGISTRY_HEADER_BYTES +
                                  i * PREOOM_REGISTRY_SLOT_BYTES);
}
/* Every function below touches the mapping under a SIGBUS guard: a file truncated under us
 * makes it return -EFAULT, never crash. */
/* Claim a slot for this process (reclaiming dead ones). Returns the index or -errno
 * (-ENOSPC when full). */
long preoom_reg_claim(preoom_reg_t *r, pid_t pid, uint64_t start_time, uint64_t interval_ms,
                      const char *name);
/* Publish totals under the slot's sequence counter. 0 or -EFAULT. */
int preoom_reg_publish(preoom_reg_t *r, long idx, const preoom_totals_t *t, uint64_t adj);
/* What the arbiter needs to ask well: release callbacks registered, what the app says it
 * could free, its own shutdown time. 0 or -EFAULT. */
int preoom_reg_publish_offer(preoom_reg_t *r, long idx, uint64_t callbacks,
                             uint64_t reclaimable, uint64_t term_grace_ms);
/* Give the slot back (exit). 0 or -EFAULT. */
int preoom_reg_release(preoom_reg_t *r, long idx);
/* Copy a slot consistently. Returns 0, -EAGAIN when it kept changing, -ENOENT if not live. */
int preoom_reg_snapshot(const preoom_reg_t *r, uint64_t idx, struct preoom_slot *out);
/* The state word of a slot. 0, -EINVAL, -EFAULT. */
int preoom_reg_state(const preoom_reg_t *r, uint64_t idx, uint64_t *state);
/* Is the process named by pid + start time still the one that claimed, and not a defunct
 * zombie? 1 yes, 0 no. */
int preoom_reg_pid_matches(pid_t pid, uint64_t start_time);
/* Free the slots of processes that are gone (pid dead or start time changed). Returns how
 * many were freed. Needs a writable mapping. */
long preoom_reg_reap(preoom_reg_t *r);
/* Validate a registry image held in memory (header, sizes against len) and snapshot every
 * slot, for the fuzz target and tests. Never writes to buf. Returns 0 and the number of live
 * slots, or -errno with *why set as preoom_reg_open does. */
int preoom_reg_check_buffer(const void *buf, size_t len, uint64_t *live, const char **why);

/* The request/answer protocol, one function per message. A request (a release level 1..3, or
 * PREOOM_REQ_LEVEL_DUMP for a report) is written with compare-and-swap, so concurrent
 * requesters never share a serial; each kind is answered in fields of its own. */
typedef struct {
    uint64_t bytes;           /* release: the fall of touched memory; report: its size */
    uint64_t callback_bytes;  /* release: what the app's callbacks said they freed */
    uint64_t trim_bytes;      /* release: what malloc_trim gave back */
    uint64_t at_ns;           /* CLOCK_MONOTONIC of the answer */
} preoom_answer_t;
/* Request of the process in slot idx, which must still be pid/start_time; wakes its agent.
 * 0 with *serial, -ESTALE (slot changed hands), -EINVAL (level), -EFAULT. */
int preoom_reg_request(preoom_reg_t *r, uint64_t idx, int32_t pid, uint64_t start_time,
                       unsigned level, uint64_t bytes, uint32_t *serial);
/* Has the request of this level and serial been answered? 1 (with *out), 0, -ESTALE, -EFAULT. */
int preoom_reg_answered(const preoom_reg_t *r, uint64_t idx, int32_t pid, uint32_t serial,
                        unsigned level, preoom_answer_t *out);
/* Agent side: a request newer than `last`? 1 with *req and *bytes, 0 (with *req the word
 * to wait on), -EFAULT. */
int preoom_reg_pending(const preoom_reg_t *r, long idx, uint32_t last, uint64_t *req,
                       uint64_t *bytes);
/* Agent side: answer request word `req` in the fields of its kind. 0 or -EFAULT. */
int preoom_reg_answer(preoom_reg_t *r, long idx, uint64_t req, const preoom_answer_t *a);
/* Agent side: the agent's thread id, where the proof of the slot is (see proof_name). */
int preoom_reg_set_agent(preoom_reg_t *r, long idx, uint64_t tid);
/* Arbiter side: the pressure level in the header, and who wrote it (0: nobody now). */
int preoom_reg_set_pressure(preoom_reg_t *r, uint64_t level, uint64_t arbiter_pid);
int preoom_reg_pressure(const preoom_reg_t *r, uint64_t *level, uint64_t *at_ns,
                        uint64_t *arbiter_pid);
/* Arbiter side: what it last measured (registry.h's header words), for ls and top. */
typedef struct {
    uint64_t total_bytes, available_bytes, ask_bytes, term_bytes, kill_bytes;
    uint64_t time_to_kill_ms; /* UINT64_MAX: not falling */
} preoom_reg_measured_t;
int preoom_reg_set_measured(preoom_reg_t *r, const preoom_reg_measured_t *m);
int preoom_reg_measured(const preoom_reg_t *r, preoom_reg_measured_t *m);
/* The agent thread's name, "preoom<idx hex>:<adj>": only a thread of the process can set it,
 * so it proves which slot is the process's own and carries its adj hint. Pure. */
size_t preoom_reg_proof_name(uint64_t idx, uint64_t adj, char *out, size_t size);
/* Parse such a name (a /proc comm, trailing newline allowed). 0 or -EINVAL. Pure. */
int preoom_reg_proof_parse(const char *comm, size_t len, uint64_t *idx, uint64_t *adj);

#endif

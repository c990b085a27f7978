/* tools/procfs.h — the kernel's numbers about memory and processes, as the arbiter reads them.
 *
 * Each file the kernel writes has a pure parser over a caller's buffer (pointer + length, no
 * NUL needed) and a reader that fetches the file into a stack buffer and calls the parser.
 * The /proc and /sys/fs/cgroup roots are strings in a preoom_procfs_t, so tests point them at
 * a fake tree. Functions that can fail return 0 or -errno and give values through
 * out-parameters; a value the file does not carry is PREOOM_VALUE_MISSING.
 *
 * Never: allocate on the heap, read past the length it was given, trust a number without an
 * overflow check, or write anything under /proc or /sys.
 */
#ifndef PREOOM_TOOLS_PROCFS_H
#define PREOOM_TOOLS_PROCFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "floor.h" /* preoom_pid_stat_t and its parser, PREOOM_COMM_MAX */

/* A value the kernel did not give us (key absent, kernel thread without an mm, …). */
#define PREOOM_VALUE_MISSING UINT64_MAX
/* A memory cgroup limit that does not limit: v2 "max", v1's near-LONG_MAX, or no limit file. */
#define PREOOM_LIMIT_NONE UINT64_MAX

#define PREOOM_CGROUP_PATH_MAX 1024

/* Where the kernel's files are. Both strings are borrowed, never copied or freed. */
typedef struct {
    const char *proc_root;   /* "/proc" */
    const char *cgroup_root; /* "/sys/fs/cgroup" */
} preoom_procfs_t;

/* /proc/meminfo, in bytes. MemTotal and MemFree are required; the rest may be MISSING. */
typedef struct {
    uint64_t mem_total_bytes;
    uint64_t mem_free_bytes;
    uint64_t mem_available_bytes;   /* estimated when the kernel (< 3.14) does not say */
    bool mem_available_estimated;   /* MemFree + Cached + Buffers - Shmem was used */
    uint64_t swap_total_bytes;
    uint64_t swap_free_bytes;
    uint64_t anon_bytes;            /* AnonPages */
    uint64_t committed_as_bytes;    /* Committed_AS: what every process has been promised */
    uint64_t commit_limit_bytes;    /* CommitLimit */
} preoom_meminfo_t;

/* One line of a PSI file: the averages in hundredths of a percent (the kernel prints exactly
 * two decimals, so this is exact), total stall time in microseconds. */
typedef struct {
    uint32_t avg10_centipct;
    uint32_t avg60_centipct;
    uint32_t avg300_centipct;
    uint64_t total_us;
} preoom_psi_line_t;

typedef struct {
    preoom_psi_line_t some;
    preoom_psi_line_t full;
    bool has_full;
} preoom_psi_t;


/* /proc/PID/status. Kernel threads and zombies have no Vm* lines: those stay MISSING. */
typedef struct {
    char name[PREOOM_COMM_MAX];
    bool has_uid;
    uint32_t uid_real;
    uint32_t uid_effective;
    uint64_t vm_rss_bytes;
    uint64_t rss_anon_bytes;
    uint64_t rss_file_bytes;
    uint64_t rss_shmem_bytes;
    uint64_t vm_swap_bytes;
    uint64_t vm_pte_bytes;
    bool has_cap_eff;
    uint64_t cap_eff;            /* bit n = capability n (CAP_SYS_ADMIN is 21) */
    int kthread;                 /* the "Kthread:" line (5.x+): 1, 0, or -1 when absent */
} preoom_pid_status_t;

/* /proc/PID/cgroup: where the process sits in each hierarchy we care about. Paths are as
 * the kernel prints them, relative to the hierarchy's root ("/" or "/a/b"). */
typedef struct {
    bool has_v1_memory;
    char v1_memory[PREOOM_CGROUP_PATH_MAX];
    bool has_v2;
    char v2[PREOOM_CGROUP_PATH_MAX];
} preoom_pid_cgroup_t;

typedef enum {
    PREOOM_CGROUP_V1 = 1,
    PREOOM_CGROUP_V2 = 2,
} preoom_cgroup_version_t;

/* A memory cgroup's state, in bytes. */
typedef struct {
    preoom_cgroup_version_t version;
    uint64_t limit_bytes;           /* this cgroup's own limit, or PREOOM_LIMIT_NONE */
    uint64_t effective_limit_bytes; /* the lowest limit of this cgroup and its ancestors */
    uint64_t usage_bytes;           /* MISSING on a v2 root, which has no memory.current */
    uint64_t anon_bytes;            /* v1 total_rss (or rss), v2 anon */
    uint64_t file_bytes;            /* v1 total_cache (or cache), v2 file */
    uint64_t swap_bytes;            /* v1 total_swap (or swap); v2 memory.swap.current */
    uint64_t oom_kill;              /* kills by the kernel in this cgroup so far */
} preoom_memcg_t;

/* Defaults: "/proc" and "/sys/fs/cgroup". */
void preoom_procfs_init(preoom_procfs_t *fs);

/* Read a whole file into buf (at most cap bytes). -EFBIG when it does not fit, unless
 * allow_truncate, in which case the first cap bytes are kept. */
int preoom_read_file(const char *path, char *buf, size_t cap, size_t *len, bool allow_truncate);

/* Pure parsers. */
int preoom_parse_meminfo(const char *buf, size_t len, preoom_meminfo_t *out);
int preoom_parse_psi(const char *buf, size_t len, preoom_psi_t *out);
int preoom_parse_uptime(const char *buf, size_t len, uint64_t *uptime_ms);
int preoom_parse_pid_status(const char *buf, size_t len, preoom_pid_status_t *out);
int preoom_parse_oom_score_adj(const char *buf, size_t len, int *adj);
int preoom_parse_cmdline(const char *buf, size_t len, char *out, size_t cap);
int preoom_parse_pid_cgroup(const char *buf, size_t len, preoom_pid_cgroup_t *out);
/* A one-number cgroup file ("123\n", or "max\n" → PREOOM_LIMIT_NONE). */
int preoom_parse_cgroup_u64(const char *buf, size_t len, uint64_t *value);
/* A "key value" line file (memory.stat, memory.events, memory.oom_control): -ENOENT if absent. */
int preoom_parse_keyed_u64(const char *buf, size_t len, const char *key, uint64_t *value);
/* /proc/PID/smaps_rollup: a process's own share of anonymous memory and of swap, in bytes
 * (Pss_Anon and SwapPss; Private_Dirty and Swap on kernels without them). */
int preoom_parse_smaps_rollup(const char *buf, size_t len, uint64_t *anon_bytes,
                              uint64_t *swap_bytes);
/* Does a cgroup.controllers line name this controller as a whole word? */
bool preoom_controllers_have(const char *buf, size_t len, const char *controller);

/* Readers. pid 0 means the caller ("self"). */
int preoom_read_meminfo(const preoom_procfs_t *fs, preoom_meminfo_t *out);
int preoom_read_psi(const preoom_procfs_t *fs, preoom_psi_t *out);
int preoom_read_uptime(const preoom_procfs_t *fs, uint64_t *uptime_ms);
int preoom_read_pid_stat(const preoom_procfs_t *fs, int pid, preoom_pid_stat_t *out);
int preoom_read_pid_status(const preoom_procfs_t *fs, int pid, preoom_pid_status_t *out);
int preoom_read_oom_score_adj(const preoom_procfs_t *fs, int pid, int *adj);
int preoom_read_cmdline(const preoom_procfs_t *fs, int pid, char *out, size_t cap);
int preoom_read_pid_cgroup(const preoom_procfs_t *fs, int pid, preoom_pid_cgroup_t *out);

/* Memory cgroups. `dir` is a directory: absolute ("/sys/fs/cgroup/memory/a") or relative to
 * fs->cgroup_root ("memory/a", "unified/a.slice"). The version is told by the files present. */
int preoom_read_memcg(const preoom_procfs_t *fs, const char *dir, preoom_memcg_t *out);
int preoom_read_memcg_psi(const preoom_procfs_t *fs, const char *dir, preoom_psi_t *out);
/* The memory cgroup directory of a process: v2 first (at cgroup_root, then cgroup_root/unified)
 * where that hierarchy has the memory controller, else v1 at cgroup_root/memory. */
int preoom_find_memcg(const preoom_procfs_t *fs, int pid, char *dir, size_t cap,
                      preoom_cgroup_version_t *version);

#endif

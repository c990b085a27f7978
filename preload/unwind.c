/* preload/unwind.c — the only file that includes <libunwind.h>: call stacks and the loaded
 * modules they point into.
 *
 * preoom_unwind() fills a caller's fixed-size array with return addresses (unw_backtrace,
 * local-only) and drops the frames inside libpreoom.so itself, so a stack starts at the
 * program's call to malloc. The module table records every ELF object seen loaded (path, load
 * bias, address range, GNU build id) and keeps it after a dlclose, so the report can still
 * name a library that is gone. Must never be called while holding the call-site lock
 * (DESIGN.md trap 4: libunwind and dl_iterate_phdr take the loader lock); never allocates
 * through malloc (names and entries come from the arena).
 */
#define UNW_LOCAL_ONLY
#include <elf.h>
#include <fcntl.h>
#include <libunwind.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

/* ---- our own text: frames to drop ------------------------------------------------------ */
static uintptr_t self_lo, self_hi;   /* address range of libpreoom.so's PT_LOAD segments */

/* The address range a loaded object's PT_LOAD segments cover; hi is 0 when it has none. */
static void load_span(const struct dl_phdr_info *info, uintptr_t *lo_out, uintptr_t *hi_out)
{
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (a < lo)
            lo = a;
        if (a + ph->p_memsz > hi)
            hi = a + ph->p_memsz;
    }
    *lo_out = lo;
    *hi_out = hi;
}

static int find_self(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    uintptr_t probe = (uintptr_t)data;
    uintptr_t lo, hi;
    load_span(info, &lo, &hi);
    if (probe >= lo && probe < hi) {
        self_lo = lo;
        self_hi = hi;
        return 1;
    }
    return 0;
}

/* ---- libunwind's pipe ------------------------------------------------------------------- */
/* libunwind (1.6) opens a pipe when it initializes and, to check that an address can be read,
 * reads a byte from one end and writes the byte at that address into the other, on many
 * unwinds. It never learns if the program closed those descriptors: a daemon that sweeps its
 * descriptors (closefrom(3)) and then opens its own files would have the unwinder read from
 * one of them and write stray bytes into the other (libunwind issues 274 and 291; our
 * tests/prog/fdsweep.c showed it, 13 to 18 bytes each way). So preoom_unwind_init makes
 * libunwind initialize at once, the pipe2 hook learns which two descriptors it took, and the
 * hooks keep the program's sweeps (close, close_range, closefrom) off them, pretending
 * success: the program never opened them. A program that dup2s onto one of them gets it:
 * unwinding stops first. */
int preoom_unwind_fds[2] = {-1, -1};
static _Atomic int unwind_lost;

/* libunwind makes its pipe with pipe2 (through the PLT, so the hooks see it) while this
 * thread is in one of our walks: the pipe goes to the top of the descriptor table (fds.c), or
 * is refused when the limit leaves no room, and its two numbers are what the sweeps keep. */
int preoom_unwind_pipe_made(int fds[2])
{
    int a = preoom_fd_park(fds[0]), b = preoom_fd_park(fds[1]);
    fds[0] = a;
    fds[1] = b;
    __atomic_store_n(&preoom_unwind_fds[0], a, __ATOMIC_RELEASE);
    __atomic_store_n(&preoom_unwind_fds[1], b, __ATOMIC_RELEASE);
    return 0;
}

/* libunwind closing its own pipe to make a new one (after a failed read). */
void preoom_unwind_pipe_closed(int fd)
{
    for (int i = 0; i < 2; i++)
        if (__atomic_load_n(&preoom_unwind_fds[i], __ATOMIC_RELAXED) == fd)
            __atomic_store_n(&preoom_unwind_fds[i], -1, __ATOMIC_RELEASE);
}

static void find_unwinder_pipe(void)
{
    /* A program started with standard input, output or error closed expects its next open
     * to take that number (daemons do): /dev/null stands in for each closed one of 0..2
     * while libunwind takes its pipe (should it stay low), and goes again after. */
    int held[3], nheld = 0;
    for (int fd = 0; fd < 3; fd++)
        if (syscall(SYS_fcntl, fd, F_GETFD) < 0) {
            long h = syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY | O_CLOEXEC);
            if (h < 0)
                break;
            held[nheld++] = (int)h;
        }
    unw_context_t uc;
    unw_cursor_t c;
    preoom_tls.own_walk++;
    int ok = unw_getcontext(&uc) == 0 && unw_init_local(&c, &uc) == 0;
    preoom_tls.own_walk--;
    while (nheld > 0)
        syscall(SYS_close, held[--nheld]);
    if (ok && __atomic_load_n(&preoom_unwind_fds[0], __ATOMIC_RELAXED) < 0)
        preoom_log_verbose(1, "call stacks: libunwind has no pipe (%s); unchecked addresses "
                              "end a stack",
                           preoom_fd_room() ? "libunwind was initialized before preoom"
                                            : "RLIMIT_NOFILE leaves no descriptor to spare");
}

/* Around every call into libunwind: a Dekker handshake with preoom_unwind_give_up (this
 * thread says it is in, then looks; the giver-up says stop, then looks), so no unwind is
 * under way once the program gets its descriptor. A thread without an account block cannot
 * say so and does not unwind. */
static _Atomic int unwind_paused;  /* a fork is under way: see preoom_unwind_atfork_prepare */
static __thread int forking __attribute__((tls_model("initial-exec")));

static int unwind_enter(void)
{
    preoom_tblock_t *b = preoom_tls.block;
    if (!b)
        return 0;
    atomic_store_explicit(&b->in_unwind, 1, memory_order_seq_cst);
    while (PREOOM_UNLIKELY(atomic_load_explicit(&unwind_paused, memory_order_seq_cst)) &&
           !forking) {
        atomic_store_explicit(&b->in_unwind, 0, memory_order_seq_cst);
        while (atomic_load_explicit(&unwind_paused, memory_order_seq_cst))
            sched_yield();
        atomic_store_explicit(&b->in_unwind, 1, memory_order_seq_cst);
    }
    if (atomic_load_explicit(&unwind_lost, memory_order_seq_cst)) {
        atomic_store_explicit(&b->in_unwind, 0, memory_order_release);
        return 0;
    }
    preoom_tls.own_walk++;
    return 1;
}

static void unwind_leave(void)
{
    preoom_tls.own_walk--;
    atomic_store_explicit(&preoom_tls.block->in_unwind, 0, memory_order_release);
}

void preoom_unwind_give_up(const char *why)
{
    if (atomic_exchange_explicit(&unwind_lost, 1, memory_order_seq_cst))
        return;
    preoom_tblock_t *mine = preoom_tls.block;
    for (preoom_tblock_t *b = preoom_thread_blocks(); b; b = b->next)
        while (b != mine && atomic_load_explicit(&b->in_unwind, memory_order_seq_cst))
            sched_yield();
    __atomic_store_n(&preoom_unwind_fds[0], -1, __ATOMIC_RELEASE);
    __atomic_store_n(&preoom_unwind_fds[1], -1, __ATOMIC_RELEASE);
    preoom_log_error("PREOOM_STACKS: the program %s the unwinder's file descriptor: no more "
                     "unwinding (allocations from stacks not in the cache are recorded "
                     "without frames)", why);
}

int preoom_unwind(uintptr_t *frames, int max_frames, int *truncated)
{
    /* One extra slot tells a stack that filled the array from one that fit exactly; a few
     * more cover our own frames, which are dropped. */
    void *raw[PREOOM_STACK_MAX_FRAMES + 8];
    int cap = max_frames + 8;
    if (cap > (int)(sizeof raw / sizeof raw[0]))
        cap = (int)(sizeof raw / sizeof raw[0]);
    if (!unwind_enter())
        return 0;
    int n = unw_backtrace(raw, cap);
    unwind_leave();
    if (n <= 0)
        return 0;
    int skip = 0;
    if (self_hi)
        while (skip < n && (uintptr_t)raw[skip] >= self_lo && (uintptr_t)raw[skip] < self_hi)
            skip++;
    int out = 0;
    for (int i = skip; i < n && out < max_frames; i++)
        frames[out++] = (uintptr_t)raw[i];
    *truncated = (n == cap) || (n - skip > max_frames);
    return out;
}

/* The slow walk (unw_step, a DWARF interpretation per frame: some thirty times the cost of
 * unw_backtrace's cached trace) for what unw_backtrace does not give: each frame's stack
 * pointer, from which stacks.c learns where each return address is kept. The frame above a
 * signal frame was not called: its address comes from the saved context, not from a slot
 * on the stack, so its stack pointer is given as 0. */
int preoom_unwind_sp(uintptr_t *ips, uintptr_t *sps, int max_frames)
{
    unw_context_t uc;
    unw_cursor_t c;
    if (!unwind_enter())
        return 0;
    int n = 0, after_signal = 0;
    if (unw_getcontext(&uc) == 0 && unw_init_local(&c, &uc) == 0) {
        do {
            unw_word_t ip, sp;
            if (unw_get_reg(&c, UNW_REG_IP, &ip) != 0 || unw_get_reg(&c, UNW_REG_SP, &sp) != 0)
                break;
            ips[n] = (uintptr_t)ip;
            sps[n] = after_signal ? 0 : (uintptr_t)sp;
            n++;
            after_signal = unw_is_signal_frame(&c) > 0;
        } while (n < max_frames && unw_step(&c) > 0);
    }
    unwind_leave();
    return n;
}

/* ---- the module table ------------------------------------------------------------------ */
/* Append-only; entries are never freed, so a reader holding an index keeps a valid entry.
 * Guarded by its own lock, taken inside dl_iterate_phdr's callback: the order is always
 * loader lock -> module lock, and nothing under the module lock calls into the loader. */
typedef struct module {
    uintptr_t bias, lo, hi;
    char *path;
    uint8_t build_id[64];
    uint32_t build_id_len;
    uint32_t seen_gen;        /* refresh generation it was last seen loaded in */
} module_t;

static pthread_mutex_t mod_lock = PTHREAD_MUTEX_INITIALIZER;
static module_t *mods;
static size_t mod_count, mod_cap;
static uint32_t mod_gen;

static void note_build_id(const struct dl_phdr_info *info, module_t *m)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr);
        const char *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)(const void *)p;
            size_t name_sz = (nh->n_namesz + 3) & ~(size_t)3;
            size_t desc_sz = (nh->n_descsz + 3) & ~(size_t)3;
            const char *name = p + sizeof *nh;
            const char *desc = name + name_sz;
            if (desc + desc_sz > end)
                break;
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
                memcmp(name, "GNU", 4) == 0 && nh->n_descsz <= sizeof m->build_id) {
                memcpy(m->build_id, desc, nh->n_descsz);
                m->build_id_len = nh->n_descsz;
                return;
            }
            p = desc + desc_sz;
        }
    }
}

static int record_module(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    uintptr_t lo, hi;
    load_span(info, &lo, &hi);
    if (hi == 0)
        return 0;
    char exe[512];
    const char *path = info->dlpi_name;
    if (!path || !path[0]) {
        /* The main program has no name here: ask the kernel (a system call, no malloc). */
        long r = syscall(SYS_readlink, "/proc/self/exe", exe, sizeof exe - 1);
        exe[r > 0 ? r : 0] = '\0';
        path = exe;
    }
    pthread_mutex_lock(&mod_lock);
    for (size_t i = 0; i < mod_count; i++) {
        module_t *m = &mods[i];
        if (m->bias == info->dlpi_addr && m->lo == lo && m->hi == hi &&
            strcmp(m->path, path) == 0) {
            m->seen_gen = mod_gen;
            pthread_mutex_unlock(&mod_lock);
            return 0;
        }
    }
    if (mod_count == mod_cap) {
        size_t cap = mod_cap ? mod_cap * 2 : 64;
        module_t *n = preoom_arena_realloc(mods, mod_cap * sizeof *mods, cap * sizeof *mods);
        if (!n) {
            pthread_mutex_unlock(&mod_lock);
            return 0;
        }
        mods = n;
        mod_cap = cap;
    }
    size_t len = strlen(path);
    char *copy = preoom_arena_alloc(len + 1);
    if (!copy) {
        pthread_mutex_unlock(&mod_lock);
        return 0;
    }
    memcpy(copy, path, len + 1);
    module_t *m = &mods[mod_count];
    memset(m, 0, sizeof *m);
    m->bias = info->dlpi_addr;
    m->lo = lo;
    m->hi = hi;
    m->path = copy;
    m->seen_gen = mod_gen;
    note_build_id(info, m);
    __atomic_store_n(&mod_count, mod_count + 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&mod_lock);
    return 0;
}

void preoom_modules_refresh(void)
{
    pthread_mutex_lock(&mod_lock);
    mod_gen++;
    pthread_mutex_unlock(&mod_lock);
    preoom_dlsnap_walk(record_module, NULL);
}

int preoom_modules_cover(const uintptr_t *frames, int n)
{
    int all = 1;
    pthread_mutex_lock(&mod_lock);
    for (int i = 0; i < n && all; i++) {
        int found = 0;
        for (size_t k = 0; k < mod_count && !found; k++)
            found = frames[i] >= mods[k].lo && frames[i] < mods[k].hi;
        all = found;
    }
    pthread_mutex_unlock(&mod_lock);
    return all;
}


int preoom_modules_write_json(int fd)
{
    preoom_modules_refresh();
    char line[1400], esc[1100], bid[140];
    int rc = preoom_write_all(fd, "\"modules\": [", 12);
    pthread_mutex_lock(&mod_lock);
    for (size_t i = 0; i < mod_count && rc == 0; i++) {
        module_t *m = &mods[i];
        preoom_json_escape(esc, sizeof esc, m->path);
        size_t b = 0;
        for (uint32_t k = 0; k < m->build_id_len; k++)
            b += preoom_fmt(bid + b, sizeof bid - b, "%02x", m->build_id[k]);
        bid[b] = '\0';
        size_t n = preoom_fmt(line, sizeof line,
                              "%s\n  {\"id\": %zu, \"path\": \"%s\", \"bias\": \"0x%lx\", "
                              "\"lo\": \"0x%lx\", \"hi\": \"0x%lx\", \"build_id\": \"%s\", "
                              "\"loaded\": %s}",
                              i ? "," : "", i, esc, (unsigned long)m->bias,
                              (unsigned long)m->lo, (unsigned long)m->hi, bid,
                              m->seen_gen == mod_gen ? "true" : "false");
        rc = preoom_write_all(fd, line, n);
    }
    pthread_mutex_unlock(&mod_lock);
    if (rc == 0)
        rc = preoom_write_all(fd, "]", 1);
    return rc;
}

void preoom_unwind_init(void)
{
    find_unwinder_pipe();
    preoom_dlsnap_walk(find_self, (void *)(uintptr_t)&find_self);
    preoom_modules_refresh();
}

/* No thread of ours is inside libunwind at the moment of fork. libunwind keeps locks of its
 * own (its global cache of register states, its memory pools), and a child of fork inherits
 * one held by a thread that does not exist there: its first unwind waited for ever (seen in
 * _ULx86_64_step under tests/prog/forkdl). So the prepare handler stops new unwinds (the
 * same handshake as preoom_unwind_give_up, but waiting, not refusing) and waits for those
 * under way, which never wait for anything the forking thread may hold; the forking thread
 * itself may still unwind (other fork handlers allocate). */
void preoom_unwind_atfork_prepare(void)
{
    forking = 1;
    atomic_store_explicit(&unwind_paused, 1, memory_order_seq_cst);
    preoom_tblock_t *mine = preoom_tls.block;
    for (preoom_tblock_t *b = preoom_thread_blocks(); b; b = b->next)
        while (b != mine && atomic_load_explicit(&b->in_unwind, memory_order_seq_cst))
            sched_yield();
}

void preoom_unwind_atfork_parent(void)
{
    atomic_store_explicit(&unwind_paused, 0, memory_order_seq_cst);
    forking = 0;
}

/* The module lock is not held across fork: it is taken under the loader lock, which fork may
 * want too. The table is consistent at every store that publishes an entry (the count is
 * raised last), so the child simply gets a fresh lock. Blocks of threads the child does not
 * have may still say they are unwinding: nobody waits for them there but a later fork's
 * prepare, and account.c hands those blocks back first. */
void preoom_unwind_atfork_child(void)
{
    /* A thread fork left behind may have been inside libunwind: its mark must not keep the
     * child's next fork waiting for ever. */
    preoom_tblock_t *mine = preoom_tls.block;
    for (preoom_tblock_t *b = preoom_thread_blocks(); b; b = b->next)
        if (b != mine)
            atomic_store_explicit(&b->in_unwind, 0, memory_order_relaxed);
    pthread_mutex_init(&mod_lock, NULL);
    atomic_store_explicit(&unwind_paused, 0, memory_order_seq_cst);
    forking = 0;
}

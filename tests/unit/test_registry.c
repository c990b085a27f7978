/* tests/unit/test_registry.c — common/registry.c linked directly: header validation against
 * hostile files, the claim / publish / snapshot / release round trip, generations, reclaiming
 * the slots of dead processes, the exec case, the in-memory checker used by the fuzz target,
 * and a seqlock torture (writers keep an invariant across fields, readers must never see it
 * broken) meant to run under ThreadSanitizer as well.
 *
 * Every file it makes is /dev/shm/preoom.utest-<pid>-<case>, removed again by the case that
 * made it. Children it forks are waited for. Never creates memory pressure.
 */
/* harness.h's first line names "tests/unit/ *.c" without the space, which -Wcomment reads as
 * a nested comment. */
#pragma GCC diagnostic ignored "-Wcomment"
#include "harness.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char name_buf[64];
static char path_buf[128];

/* The registry name and path of a case. */
static const char *reg_name(const char *tag)
{
    snprintf(name_buf, sizeof name_buf, "utest-%d-%s", (int)getpid(), tag);
    snprintf(path_buf, sizeof path_buf, "/dev/shm/preoom.%s", name_buf);
    return name_buf;
}

static uint64_t my_start_time(void)
{
    uint64_t st = 0;
    preoom_procself_start_time(&st);
    return st;
}

/* A header as a creator writes it, for `slots` slots. */
static void good_header(struct preoom_registry_header *h, uint64_t slots)
{
    memset(h, 0, sizeof *h);
    h->magic = PREOOM_REGISTRY_MAGIC;
    h->abi = PREOOM_REGISTRY_ABI;
    h->header_bytes = PREOOM_REGISTRY_HEADER_BYTES;
    h->slot_bytes = PREOOM_REGISTRY_SLOT_BYTES;
    h->slot_count = slots;
    h->creator_uid = geteuid();
}

/* Write a file of `len` bytes at the case's path: `head` (may be NULL) then zeros. */
static int write_file(const void *head, size_t head_len, size_t len, mode_t mode)
{
    unlink(path_buf);
    int fd = open(path_buf, O_WRONLY | O_CREAT | O_EXCL, mode);
    if (fd < 0)
        return -errno;
    int rc = ftruncate(fd, (off_t)len) == 0 ? 0 : -errno;
    if (rc == 0 && head && head_len && pwrite(fd, head, head_len, 0) != (ssize_t)head_len)
        rc = -EIO;
    fchmod(fd, mode);
    close(fd);
    return rc;
}

/* ---- header validation --------------------------------------------------------------- */

enum shape {
    S_EMPTY, S_SHORT, S_TRUNCATED, S_MAGIC, S_ABI, S_HDR_SIZE, S_SLOT_SIZE, S_ZERO_SLOTS,
    S_TOO_MANY, S_HUGE_SLOTS, S_RANDOM, S_GOOD
};

struct bad_case {
    const char *tag;
    enum shape shape;
    int expect_rc;      /* of a read-only open */
};

static const struct bad_case bad_cases[] = {
    {"empty", S_EMPTY, -EPROTO},
    {"short", S_SHORT, -EPROTO},
    {"truncated", S_TRUNCATED, -EPROTO},
    {"magic", S_MAGIC, -EPROTO},
    {"abi", S_ABI, -EPROTO},
    {"hdrsize", S_HDR_SIZE, -EPROTO},
    {"slotsize", S_SLOT_SIZE, -EPROTO},
    {"zeroslots", S_ZERO_SLOTS, -EPROTO},
    {"toomany", S_TOO_MANY, -EPROTO},
    {"hugeslots", S_HUGE_SLOTS, -EPROTO},
    {"random", S_RANDOM, -EPROTO},
    {"good", S_GOOD, 0},
};

static int make_shape(enum shape sh)
{
    struct preoom_registry_header h;
    size_t slots = 4, len = PREOOM_REGISTRY_HEADER_BYTES + slots * PREOOM_REGISTRY_SLOT_BYTES;
    good_header(&h, slots);
    switch (sh) {
    case S_EMPTY: return write_file(NULL, 0, 0, 0600);
    case S_SHORT: return write_file(&h, 100, 100, 0600);
    case S_TRUNCATED: return write_file(&h, sizeof h, len - 1, 0600);
    case S_MAGIC: h.magic ^= 1; break;
    case S_ABI: h.abi = PREOOM_REGISTRY_ABI + 1; break;
    case S_HDR_SIZE: h.header_bytes = 128; break;
    case S_SLOT_SIZE: h.slot_bytes = 256; break;
    case S_ZERO_SLOTS: h.slot_count = 0; break;
    case S_TOO_MANY: h.slot_count = PREOOM_REGISTRY_MAX_SLOTS + 1; break;
    case S_HUGE_SLOTS: h.slot_count = 1ULL << 62; break;
    case S_RANDOM: {
        unsigned char buf[4096];
        uint64_t x = 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
        for (size_t i = 0; i < sizeof buf; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i] = (unsigned char)x;
        }
        return write_file(buf, sizeof buf, sizeof buf, 0600);
    }
    case S_GOOD: break;
    }
    return write_file(&h, sizeof h, len, 0600);
}

static void t_bad_headers(void)
{
    for (size_t k = 0; k < sizeof bad_cases / sizeof bad_cases[0]; k++) {
        const struct bad_case *c = &bad_cases[k];
        const char *name = reg_name(c->tag);
        CHECK(make_shape(c->shape) == 0);
        for (int writable = 0; writable < 2; writable++) {
            preoom_reg_t r;
            const char *why = NULL;
            int rc = preoom_reg_open(name, 0, 0, -1, writable, &r, &why);
            if (rc != c->expect_rc)
                printf("# case %s (writable %d): rc %d, why \"%s\"\n", c->tag, writable, rc,
                       why ? why : "(null)");
            CHECK_EQ_I64(rc, c->expect_rc);
            CHECK(why != NULL);
            if (rc != 0)
                CHECK(why && why[0] != '\0');
            if (rc == 0)
                preoom_reg_close(&r);
            else
                CHECK(r.hdr == NULL && r.fd == -1);
        }
        unlink(path_buf);
    }
}

static void t_missing_and_names(void)
{
    preoom_reg_t r;
    const char *why;
    reg_name("missing");
    unlink(path_buf);
    CHECK_EQ_I64(preoom_reg_open(name_buf, 0, 0, -1, 0, &r, &why), -ENOENT);
    static const char *const bad_names[] = {"", ".", "..", "../x", "a/b", "a b", "x\n",
        "0123456789012345678901234567890123456789012345678901234567890"};
    for (size_t k = 0; k < sizeof bad_names / sizeof bad_names[0]; k++)
        CHECK_EQ_I64(preoom_reg_open(bad_names[k], 1, 4, -1, 1, &r, &why), -EINVAL);
}

static void t_symlink_fifo_dir(void)
{
    preoom_reg_t r;
    const char *why = "";
    /* A symlink to a good registry: refused (O_NOFOLLOW), whatever it points at. */
    char target[128];
    const char *good = reg_name("target");
    CHECK(make_shape(S_GOOD) == 0);
    snprintf(target, sizeof target, "%s", path_buf);
    (void)good;
    reg_name("symlink");
    unlink(path_buf);
    CHECK(symlink(target, path_buf) == 0);
    for (int w = 0; w < 2; w++) {
        CHECK_EQ_I64(preoom_reg_open(name_buf, w, 4, -1, w, &r, &why), -ELOOP);
        CHECK(strstr(why, "symbolic link") != NULL);
    }
    struct stat st;
    CHECK(lstat(path_buf, &st) == 0 && S_ISLNK(st.st_mode)); /* not replaced */
    unlink(path_buf);
    unlink(target);
    /* A FIFO: refused at once, not a hang in open waiting for a writer. */
    reg_name("fifo");
    unlink(path_buf);
    CHECK(mkfifo(path_buf, 0600) == 0);
    for (int w = 0; w < 2; w++)
        CHECK(preoom_reg_open(name_buf, 0, 0, -1, w, &r, &why) < 0);
    unlink(path_buf);
    /* A directory. */
    reg_name("dir");
    CHECK(mkdir(path_buf, 0700) == 0);
    CHECK(preoom_reg_open(name_buf, 0, 0, -1, 0, &r, &why) < 0);
    CHECK(preoom_reg_open(name_buf, 1, 4, -1, 1, &r, &why) < 0);
    rmdir(path_buf);
}

/* Files a writer must refuse: another user's, anyone-writable, a header naming another
 * creator. Readers may still read them. */
static void t_foreign_files(void)
{
    preoom_reg_t r;
    const char *why = "";
    struct preoom_registry_header h;
    size_t len = PREOOM_REGISTRY_HEADER_BYTES + 4 * PREOOM_REGISTRY_SLOT_BYTES;

    reg_name("worldw");
    good_header(&h, 4);
    CHECK(write_file(&h, sizeof h, len, 0666) == 0);
    CHECK_EQ_I64(preoom_reg_open(name_buf, 1, 4, -1, 1, &r, &why), -EPERM);
    CHECK_EQ_I64(preoom_reg_open(name_buf, 0, 0, -1, 0, &r, &why), 0);
    preoom_reg_close(&r);
    unlink(path_buf);

    reg_name("creator");
    good_header(&h, 4);
    h.creator_uid = geteuid() + 1;
    CHECK(write_file(&h, sizeof h, len, 0600) == 0);
    CHECK_EQ_I64(preoom_reg_open(name_buf, 1, 4, -1, 1, &r, &why), -EPERM);
    unlink(path_buf);

    if (geteuid() != 0) {
        SKIP("registry: another user's file", "needs root to chown a file to nobody");
        return;
    }
    reg_name("foreign");
    good_header(&h, 4);
    h.creator_uid = 65534;
    CHECK(write_file(&h, sizeof h, len, 0600) == 0);
    CHECK(chown(path_buf, 65534, 65534) == 0);
    CHECK_EQ_I64(preoom_reg_open(name_buf, 1, 4, -1, 1, &r, &why), -EPERM);
    CHECK(strstr(why, "another user") != NULL);
    /* Nor reads it: at our path, another user's file is a squatter's (preoom ls would show
     * its forged processes as ours). */
    CHECK_EQ_I64(preoom_reg_open(name_buf, 0, 0, -1, 0, &r, &why), -EPERM);
    CHECK(strstr(why, "another user") != NULL);
    /* And nobody cannot open a 0600 registry of ours at all. */
    CHECK(chown(path_buf, 0, 0) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(3);
        int rc1 = preoom_reg_open(name_buf, 0, 0, -1, 0, &r, &why);
        int rc2 = preoom_reg_open(name_buf, 1, 4, -1, 1, &r, &why);
        _exit(rc1 == -EACCES && rc2 == -EACCES ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    unlink(path_buf);
}

/* ---- the life of a slot -------------------------------------------------------------- */

static void fill_totals(preoom_totals_t *t, uint64_t v)
{
    memset(t, 0, sizeof *t);
    t->malloc_bytes = v * 3;
    t->mmap_bytes = v * 5 + 1;
    t->brk_bytes = v * 7 + 2;
    t->committed = t->malloc_bytes + t->mmap_bytes + t->brk_bytes;
    t->rss_anon = v * 11;
    t->swap = v * 13 + 3;
    t->touched = t->rss_anon + t->swap;
    t->peak_committed = t->committed;
    t->peak_touched = t->touched;
    t->slack = v;
    t->exposure = v * 2;
    for (int k = 0; k < PREOOM_CALL_COUNT; k++)
        t->calls[k] = v + (uint64_t)k;
}

static int live_slots_of(preoom_reg_t *r, pid_t pid)
{
    int n = 0;
    struct preoom_slot s;
    for (uint64_t i = 0; i < r->slot_count; i++)
        if (preoom_reg_snapshot(r, i, &s) == 0 && s.pid == (uint64_t)pid)
            n++;
    return n;
}

static void t_round_trip(void)
{
    preoom_reg_t r;
    const char *why = "";
    const char *name = reg_name("life");
    unlink(path_buf);
    CHECK_EQ_I64(preoom_reg_open(name, 1, 8, -1, 1, &r, &why), 0);
    if (!r.hdr)
        return;
    struct stat st;
    CHECK(stat(path_buf, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK_EQ_U64(st.st_size, PREOOM_REGISTRY_HEADER_BYTES + 8 * PREOOM_REGISTRY_SLOT_BYTES);
    CHECK_EQ_U64(r.slot_count, 8);
    CHECK_EQ_U64(r.hdr->creator_uid, geteuid());

    uint64_t start = my_start_time();
    long idx = preoom_reg_claim(&r, getpid(), start, 100, "unit-test-name-too-long");
    CHECK(idx >= 0 && idx < 8);
    if (idx < 0) {
        preoom_reg_close(&r);
        unlink(path_buf);
        return;
    }
    preoom_totals_t t;
    fill_totals(&t, 1000);
    preoom_reg_publish(&r, idx, &t, 7);
    struct preoom_slot s;
    CHECK_EQ_I64(preoom_reg_snapshot(&r, (uint64_t)idx, &s), 0);
    CHECK_EQ_U64(s.pid, (uint64_t)getpid());
    CHECK_EQ_U64(s.start_time, start);
    CHECK_EQ_U64(s.uid, geteuid());
    CHECK_EQ_U64(s.interval_ms, 100);
    CHECK_EQ_U64(s.committed, t.committed);
    CHECK_EQ_U64(s.touched, t.touched);
    CHECK_EQ_U64(s.malloc_bytes, t.malloc_bytes);
    CHECK_EQ_U64(s.mmap_bytes, t.mmap_bytes);
    CHECK_EQ_U64(s.brk_bytes, t.brk_bytes);
    CHECK_EQ_U64(s.swap, t.swap);
    CHECK_EQ_U64(s.slack, t.slack);
    CHECK_EQ_U64(s.exposure, t.exposure);
    CHECK_EQ_U64(s.adj, 7);
    CHECK_EQ_U64(s.calls[PREOOM_CALL_COUNT - 1], t.calls[PREOOM_CALL_COUNT - 1]);
    CHECK_EQ_U64(s.seq, 2);
    CHECK_STR(s.name, "unit-test-name-");
    CHECK_EQ_U64(PREOOM_STATE_KIND(s.state), PREOOM_SLOT_LIVE);
    CHECK_EQ_I64(PREOOM_STATE_PID(s.state), getpid());
    CHECK(preoom_reg_pid_matches(getpid(), start));
    CHECK(!preoom_reg_pid_matches(getpid(), start + 1));

    /* A reader's view: a read-only mapping of the same file sees the same. */
    preoom_reg_t ro;
    CHECK_EQ_I64(preoom_reg_open(name, 0, 0, -1, 0, &ro, &why), 0);
    struct preoom_slot s2;
    CHECK_EQ_I64(preoom_reg_snapshot(&ro, (uint64_t)idx, &s2), 0);
    CHECK_EQ_U64(s2.committed, t.committed);
    CHECK_EQ_I64(preoom_reg_snapshot(&ro, 8, &s2), -EINVAL);

    /* Release: free, and the generation moves on so an old compare-and-swap fails. */
    uint32_t gen = PREOOM_STATE_GEN(s.state);
    preoom_reg_release(&r, idx);
    CHECK_EQ_I64(preoom_reg_snapshot(&ro, (uint64_t)idx, &s2), -ENOENT);
    uint64_t stw = __atomic_load_n(&preoom_reg_slot(&r, (uint64_t)idx)->state, __ATOMIC_ACQUIRE);
    CHECK_EQ_U64(PREOOM_STATE_KIND(stw), PREOOM_SLOT_FREE);
    CHECK_EQ_U64(PREOOM_STATE_GEN(stw), gen + 1);
    /* Releasing twice changes nothing. */
    preoom_reg_release(&r, idx);
    CHECK_EQ_U64(__atomic_load_n(&preoom_reg_slot(&r, (uint64_t)idx)->state, __ATOMIC_ACQUIRE), stw);
    /* Claimed again: same generation as the free slot, fresh counters. */
    long idx2 = preoom_reg_claim(&r, getpid(), start, 100, "again");
    CHECK(idx2 >= 0);
    if (idx2 == idx) {
        CHECK_EQ_I64(preoom_reg_snapshot(&ro, (uint64_t)idx2, &s2), 0);
        CHECK_EQ_U64(PREOOM_STATE_GEN(s2.state), gen + 1);
        CHECK_EQ_U64(s2.committed, 0);
        CHECK_EQ_U64(s2.seq, 0);
    }
    preoom_reg_release(&r, idx2);
    preoom_reg_close(&ro);
    preoom_reg_close(&r);
    unlink(path_buf);
}

/* After an exec the process has the same pid and start time: its claim takes its old slot
 * back rather than appear twice. */
static void t_exec_case(void)
{
    preoom_reg_t r;
    const char *why = "";
    const char *name = reg_name("exec");
    unlink(path_buf);
    CHECK_EQ_I64(preoom_reg_open(name, 1, 4, -1, 1, &r, &why), 0);
    if (!r.hdr)
        return;
    uint64_t start = my_start_time();
    long a = preoom_reg_claim(&r, getpid(), start, 100, "before-exec");
    long b = preoom_reg_claim(&r, getpid(), start, 100, "after-exec");
    CHECK(a >= 0 && b >= 0);
    CHECK_EQ_I64(live_slots_of(&r, getpid()), 1);
    struct preoom_slot s;
    CHECK_EQ_I64(preoom_reg_snapshot(&r, (uint64_t)b, &s), 0);
    CHECK_STR(s.name, "after-exec");
    preoom_reg_release(&r, b);
    CHECK_EQ_I64(live_slots_of(&r, getpid()), 0);
    preoom_reg_close(&r);
    unlink(path_buf);
}

/* Children claim every slot (the mapping is inherited, as after fork in the preload), so the
 * registry is full; once they die without releasing, the next claim and reap free them. */
static void t_full_and_dead(void)
{
    enum { N = 6 };
    preoom_reg_t r;
    const char *why = "";
    const char *name = reg_name("dead");
    unlink(path_buf);
    CHECK_EQ_I64(preoom_reg_open(name, 1, N, -1, 1, &r, &why), 0);
    if (!r.hdr)
        return;
    int go[2], done[2];
    CHECK(pipe(go) == 0 && pipe(done) == 0);
    pid_t kids[N];
    for (int i = 0; i < N; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            close(go[1]); /* else the parent's close never reads as EOF here */
            uint64_t st = 0;
            preoom_procself_start_time(&st);
            long idx = preoom_reg_claim(&r, getpid(), st, 100, "child");
            char c = idx >= 0 ? 'y' : 'n';
            if (write(done[1], &c, 1) != 1)
                _exit(2);
            if (read(go[0], &c, 1) < 0)
                _exit(2);
            _exit(0); /* dies without releasing, like a SIGKILL */
        }
    }
    int claimed = 0;
    for (int i = 0; i < N; i++) {
        char c = 0;
        if (read(done[0], &c, 1) == 1 && c == 'y')
            claimed++;
    }
    CHECK_EQ_I64(claimed, N);
    /* Full of live processes: nothing to reclaim. */
    CHECK_EQ_I64(preoom_reg_claim(&r, getpid(), my_start_time(), 100, "parent"), -ENOSPC);
    CHECK_EQ_I64(preoom_reg_reap(&r), 0);
    for (int i = 0; i < N; i++)
        CHECK_EQ_I64(live_slots_of(&r, kids[i]), 1);
    /* Let them die, and wait: a zombie still has its /proc entry. */
    close(go[1]);
    for (int i = 0; i < N; i++)
        waitpid(kids[i], NULL, 0);
    uint64_t gen0 = PREOOM_STATE_GEN(__atomic_load_n(&preoom_reg_slot(&r, 0)->state,
                                                     __ATOMIC_ACQUIRE));
    /* Half by an explicit reap (a reader such as preoom ls), half by a claimer. */
    CHECK_EQ_I64(preoom_reg_reap(&r), N);
    CHECK_EQ_U64(PREOOM_STATE_GEN(__atomic_load_n(&preoom_reg_slot(&r, 0)->state,
                                                  __ATOMIC_ACQUIRE)), gen0 + 1);
    CHECK_EQ_I64(preoom_reg_reap(&r), 0);
    for (int i = 0; i < N; i++)
        CHECK_EQ_I64(live_slots_of(&r, kids[i]), 0);
    /* Fill again with fake owners: our pid under start times that are not ours (a recycled
     * pid), then one more claim must reclaim them all. */
    for (int i = 0; i < N; i++)
        CHECK(preoom_reg_claim(&r, getpid(), my_start_time() + 1 + (uint64_t)i, 100, "stale") >= 0);
    long idx = preoom_reg_claim(&r, getpid(), my_start_time(), 100, "fresh");
    CHECK(idx >= 0);
    CHECK_EQ_I64(live_slots_of(&r, getpid()), 1);
    /* A claim that died half-way (CLAIMING, pid gone) is reclaimed too. */
    pid_t gone = fork();
    if (gone == 0)
        _exit(0);
    waitpid(gone, NULL, 0);
    uint64_t other = (uint64_t)(idx + 1) % N;
    struct preoom_slot *os = preoom_reg_slot(&r, other);
    uint64_t ost = __atomic_load_n(&os->state, __ATOMIC_ACQUIRE);
    __atomic_store_n(&os->state, PREOOM_STATE_MAKE(PREOOM_SLOT_CLAIMING, PREOOM_STATE_GEN(ost), gone),
                     __ATOMIC_RELEASE);
    CHECK_EQ_I64(preoom_reg_reap(&r), 1);
    CHECK_EQ_U64(PREOOM_STATE_KIND(__atomic_load_n(&os->state, __ATOMIC_ACQUIRE)), PREOOM_SLOT_FREE);
    preoom_reg_release(&r, idx);
    close(go[0]);
    close(done[0]);
    close(done[1]);
    preoom_reg_close(&r);
    unlink(path_buf);
}

/* ---- the in-memory checker (what the fuzz target drives) ------------------------------- */

static void t_check_buffer(void)
{
    size_t len = PREOOM_REGISTRY_HEADER_BYTES + 3 * PREOOM_REGISTRY_SLOT_BYTES;
    uint64_t *buf = calloc(1, len + 8);
    const char *why = "";
    uint64_t live = 99;
    good_header((struct preoom_registry_header *)buf, 3);
    struct preoom_slot *s = (struct preoom_slot *)((char *)buf + PREOOM_REGISTRY_HEADER_BYTES);
    s[1].state = PREOOM_STATE_MAKE(PREOOM_SLOT_LIVE, 5, 1234);
    s[1].pid = 1234;
    memset(s[1].name, 'x', sizeof s[1].name); /* not terminated: the copy must be */
    s[2].state = PREOOM_STATE_MAKE(PREOOM_SLOT_LIVE, 1, 99);
    s[2].seq = 3; /* a writer that never finished: skipped, not waited for */
    CHECK_EQ_I64(preoom_reg_check_buffer(buf, len, &live, &why), 0);
    CHECK_EQ_U64(live, 1);
    CHECK_EQ_I64(preoom_reg_check_buffer(buf, len - 1, &live, &why), -EPROTO);
    CHECK(strstr(why, "truncated") != NULL);
    CHECK_EQ_I64(preoom_reg_check_buffer(buf, 10, &live, &why), -EPROTO);
    CHECK_EQ_I64(preoom_reg_check_buffer((char *)buf + 4, len, &live, &why), -EINVAL);
    ((struct preoom_registry_header *)buf)->slot_count = UINT64_MAX / 512 + 2;
    CHECK_EQ_I64(preoom_reg_check_buffer(buf, len, &live, &why), -EPROTO);
    free(buf);
}

/* ---- seqlock torture ------------------------------------------------------------------- */

#define TORTURE_WRITERS 2
#define TORTURE_READERS 2

static preoom_reg_t torture_reg;
static long torture_idx[TORTURE_WRITERS];
static _Atomic int torture_stop;
static _Atomic long torture_bad, torture_reads, torture_busy;

static void *torture_writer(void *arg)
{
    long w = (long)(intptr_t)arg;
    preoom_totals_t t;
    for (uint64_t v = 1; !atomic_load_explicit(&torture_stop, memory_order_relaxed); v++) {
        fill_totals(&t, v * 1000 + (uint64_t)w);
        preoom_reg_publish(&torture_reg, torture_idx[w], &t, (uint64_t)w);
    }
    return NULL;
}

/* What a reader demands of every snapshot: the fields of one publication, never a mix. */
static int consistent(const struct preoom_slot *s)
{
    if (s->seq == 0)
        return s->committed == 0;
    uint64_t v = s->slack;
    if (s->malloc_bytes != v * 3 || s->mmap_bytes != v * 5 + 1 || s->brk_bytes != v * 7 + 2)
        return 0;
    if (s->committed != s->malloc_bytes + s->mmap_bytes + s->brk_bytes)
        return 0;
    if (s->touched != s->rss_anon + s->swap || s->rss_anon != v * 11 || s->swap != v * 13 + 3)
        return 0;
    if (s->exposure != v * 2 || s->peak_committed != s->committed)
        return 0;
    for (int k = 0; k < PREOOM_CALL_COUNT; k++)
        if (s->calls[k] != v + (uint64_t)k)
            return 0;
    return (s->seq & 1) == 0;
}

static void *torture_reader(void *arg)
{
    (void)arg;
    uint64_t last[TORTURE_WRITERS] = {0};
    struct preoom_slot s;
    while (!atomic_load_explicit(&torture_stop, memory_order_relaxed)) {
        for (int w = 0; w < TORTURE_WRITERS; w++) {
            int rc = preoom_reg_snapshot(&torture_reg, (uint64_t)torture_idx[w], &s);
            if (rc == -EAGAIN) {
                atomic_fetch_add(&torture_busy, 1);
                continue;
            }
            atomic_fetch_add(&torture_reads, 1);
            /* Consistent, and never older than what this reader saw before. */
            if (rc != 0 || !consistent(&s) || s.seq < last[w]) {
                if (atomic_fetch_add(&torture_bad, 1) < 3)
                    printf("# torn snapshot: rc %d seq %llu committed %llu malloc %llu\n", rc,
                           (unsigned long long)s.seq, (unsigned long long)s.committed,
                           (unsigned long long)s.malloc_bytes);
            }
            last[w] = s.seq;
        }
    }
    return NULL;
}

static void t_seqlock_torture(void)
{
    const char *why = "";
    const char *name = reg_name("torture");
    unlink(path_buf);
    CHECK_EQ_I64(preoom_reg_open(name, 1, 8, -1, 1, &torture_reg, &why), 0);
    if (!torture_reg.hdr)
        return;
    uint64_t start = my_start_time();
    /* One writer per slot, as in the preload; distinct fake start times so the claims do not
     * take each other's slot back (the exec rule). */
    for (int w = 0; w < TORTURE_WRITERS; w++)
        torture_idx[w] = preoom_reg_claim(&torture_reg, getpid(), start + 100 + (uint64_t)w,
                                          1, "torture");
    pthread_t th[TORTURE_WRITERS + TORTURE_READERS];
    for (int w = 0; w < TORTURE_WRITERS; w++)
        pthread_create(&th[w], NULL, torture_writer, (void *)(intptr_t)w);
    for (int k = 0; k < TORTURE_READERS; k++)
        pthread_create(&th[TORTURE_WRITERS + k], NULL, torture_reader, NULL);
    const char *ms_env = getenv("PREOOM_TORTURE_MS");
    long ms = ms_env ? atol(ms_env) : 1000;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    atomic_store(&torture_stop, 1);
    for (int k = 0; k < TORTURE_WRITERS + TORTURE_READERS; k++)
        pthread_join(th[k], NULL);
    printf("# seqlock torture: %ld snapshots, %ld busy retries given up, %ld torn, %ld ms\n",
           atomic_load(&torture_reads), atomic_load(&torture_busy), atomic_load(&torture_bad),
           ms);
    CHECK_EQ_I64(atomic_load(&torture_bad), 0);
    CHECK(atomic_load(&torture_reads) > 100);
    for (int w = 0; w < TORTURE_WRITERS; w++) {
        struct preoom_slot s;
        CHECK_EQ_I64(preoom_reg_snapshot(&torture_reg, (uint64_t)torture_idx[w], &s), 0);
        CHECK(consistent(&s));
        /* release checks getpid() against the state's pid: ours. */
        preoom_reg_release(&torture_reg, torture_idx[w]);
    }
    preoom_reg_close(&torture_reg);
    unlink(path_buf);
}

/* ---- a file truncated under its mappings: -EFAULT, never SIGBUS --------------------------- */

static volatile sig_atomic_t prev_calls;
static sigjmp_buf prev_env;
static volatile sig_atomic_t prev_jump;

/* The host's own SIGBUS handler, installed before ours: it must still see every SIGBUS that
 * is not a fault inside an armed registry range. */
static void host_sigbus(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)si;
    (void)uc;
    prev_calls++;
    if (prev_jump) {
        prev_jump = 0;
        siglongjmp(prev_env, 1);
    }
}

static void t_sigbus_guard(void)
{
#ifdef __SANITIZE_THREAD__
    /* ThreadSanitizer takes SIGBUS over itself (the process dies of it whatever handler is
     * installed); this build only runs the concurrency cases, the plain and ASan builds
     * run this one. */
    SKIP("registry: truncated under us (SIGBUS guard)",
         "ThreadSanitizer intercepts SIGBUS; checked by the plain and ASan builds");
    return;
#endif
    struct sigaction host, saved;
    memset(&host, 0, sizeof host);
    host.sa_sigaction = host_sigbus;
    host.sa_flags = SA_SIGINFO;
    sigaction(SIGBUS, &host, &saved);
    preoom_bus_install();

    preoom_reg_t r;
    const char *why;
    reg_name("bus");
    CHECK_EQ_I64(preoom_reg_open(name_buf, PREOOM_REG_CREATE, 4, -1, 1, &r, &why), 0);
    long idx = preoom_reg_claim(&r, getpid(), my_start_time(), 100, "bus");
    CHECK(idx >= 0);
    CHECK(preoom_reg_changed(&r, &why) == 0);
    CHECK(ftruncate(r.fd, 0) == 0);
    CHECK(preoom_reg_changed(&r, &why) == 1 && strstr(why, "truncated"));
    struct preoom_slot s;
    preoom_totals_t t;
    memset(&t, 0, sizeof t);
    uint64_t v, w, x;
    uint32_t serial;
    preoom_answer_t a;
    CHECK_EQ_I64(preoom_reg_snapshot(&r, 0, &s), -EFAULT);
    CHECK_EQ_I64(preoom_reg_publish(&r, idx, &t, 0), -EFAULT);
    CHECK_EQ_I64(preoom_reg_state(&r, 0, &v), -EFAULT);
    CHECK_EQ_I64(preoom_reg_pressure(&r, &v, &w, &x), -EFAULT);
    CHECK_EQ_I64(preoom_reg_set_pressure(&r, 1, 1), -EFAULT);
    CHECK_EQ_I64(preoom_reg_request(&r, 0, getpid(), my_start_time(), 1, 1, &serial), -EFAULT);
    CHECK_EQ_I64(preoom_reg_answered(&r, 0, getpid(), 1, 1, &a), -EFAULT);
    CHECK_EQ_I64(preoom_reg_reap(&r), -EFAULT);
    CHECK_EQ_I64(preoom_reg_release(&r, idx), -EFAULT);
    CHECK_EQ_I64(prev_calls, 0);

    /* Not a fault in a registry: the host's handler gets it, ours stays out of the way. */
    raise(SIGBUS);
    CHECK_EQ_I64(prev_calls, 1);
    char *m = r.map_bytes ? (char *)r.hdr : NULL;
    if (m) {
        /* The same dead pages, touched outside any guard: the host's handler again. */
        prev_jump = 1;
        if (sigsetjmp(prev_env, 1) == 0)
            (void)*(volatile char *)(m + 8);
        CHECK_EQ_I64(prev_calls, 2);
    }
    preoom_reg_close(&r);
    unlink(path_buf);
    sigaction(SIGBUS, &saved, NULL);
}

/* ---- the request/answer protocol ----------------------------------------------------------- */

static preoom_reg_t proto_reg;
static uint32_t proto_serials[2][2000];

static void *proto_requester(void *arg)
{
    int k = (int)(intptr_t)arg;
    for (int i = 0; i < 2000; i++)
        if (preoom_reg_request(&proto_reg, 0, getpid(), my_start_time(),
                               k ? PREOOM_REQ_LEVEL_DUMP : 1, 0, &proto_serials[k][i]) != 0)
            proto_serials[k][i] = 0;
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void t_protocol(void)
{
    const char *why;
    reg_name("proto");
    CHECK_EQ_I64(preoom_reg_open(name_buf, PREOOM_REG_CREATE, 4, -1, 1, &proto_reg, &why), 0);
    pid_t me = getpid();
    uint64_t st = my_start_time();
    long idx = preoom_reg_claim(&proto_reg, me, st, 100, "proto");
    CHECK_EQ_I64(idx, 0);
    uint32_t s1 = 0, s2 = 0, s3 = 0;
    CHECK_EQ_I64(preoom_reg_request(&proto_reg, 0, me, st, 0, 1, &s1), -EINVAL);
    CHECK_EQ_I64(preoom_reg_request(&proto_reg, 0, me, st + 1, 1, 1, &s1), -ESTALE);
    CHECK_EQ_I64(preoom_reg_request(&proto_reg, 1, me, st, 1, 1, &s1), -ESTALE);
    CHECK_EQ_I64(preoom_reg_request(&proto_reg, 0, me, st, 1, 4096, &s1), 0);
    CHECK_EQ_I64(preoom_reg_request(&proto_reg, 0, me, st, PREOOM_REQ_LEVEL_DUMP, 0, &s2), 0);
    CHECK(s1 != 0 && s2 == s1 + 1);
    uint64_t req = 0, bytes = 0;
    CHECK_EQ_I64(preoom_reg_pending(&proto_reg, idx, 0, &req, &bytes), 1);
    CHECK_EQ_U64(PREOOM_REQ_SERIAL(req), s2);
    CHECK_EQ_U64(PREOOM_REQ_LEVEL(req), PREOOM_REQ_LEVEL_DUMP);
    CHECK_EQ_U64(bytes, 4096); /* a report request leaves the release's wish alone */
    preoom_answer_t a = {777, 0, 0, 1};
    CHECK_EQ_I64(preoom_reg_answer(&proto_reg, idx, req, &a), 0);
    CHECK_EQ_I64(preoom_reg_pending(&proto_reg, idx, s2, &req, &bytes), 0);
    preoom_answer_t got;
    /* A report's size is never a release's answer, whatever the serials. */
    CHECK_EQ_I64(preoom_reg_answered(&proto_reg, 0, me, s1, 1, &got), 0);
    CHECK_EQ_I64(preoom_reg_answered(&proto_reg, 0, me, s2, 1, &got), 0);
    CHECK_EQ_I64(preoom_reg_answered(&proto_reg, 0, me, s2, PREOOM_REQ_LEVEL_DUMP, &got), 1);
    CHECK_EQ_U64(got.bytes, 777);
    CHECK_EQ_I64(preoom_reg_request(&proto_reg, 0, me, st, 2, 8192, &s3), 0);
    CHECK_EQ_I64(preoom_reg_pending(&proto_reg, idx, s2, &req, &bytes), 1);
    CHECK_EQ_U64(bytes, 8192);
    preoom_answer_t rel = {5, 6, 7, 2};
    CHECK_EQ_I64(preoom_reg_answer(&proto_reg, idx, req, &rel), 0);
    CHECK_EQ_I64(preoom_reg_answered(&proto_reg, 0, me, s3, 2, &got), 1);
    CHECK(got.bytes == 5 && got.callback_bytes == 6 && got.trim_bytes == 7);
    CHECK_EQ_I64(preoom_reg_answered(&proto_reg, 0, me, s2, PREOOM_REQ_LEVEL_DUMP, &got), 1);
    CHECK_EQ_U64(got.bytes, 777);
    CHECK_EQ_I64(preoom_reg_answered(&proto_reg, 0, me + 1, s3, 2, &got), -ESTALE);

    /* Two requesters at once never get one serial. */
    pthread_t th[2];
    for (int k = 0; k < 2; k++)
        pthread_create(&th[k], NULL, proto_requester, (void *)(intptr_t)k);
    for (int k = 0; k < 2; k++)
        pthread_join(th[k], NULL);
    qsort(proto_serials, 4000, sizeof(uint32_t), cmp_u32);
    int dup = 0, zero = 0;
    for (int i = 0; i < 4000; i++) {
        zero += ((uint32_t *)proto_serials)[i] == 0;
        dup += i > 0 && ((uint32_t *)proto_serials)[i] == ((uint32_t *)proto_serials)[i - 1];
    }
    CHECK_EQ_I64(zero, 0);
    CHECK_EQ_I64(dup, 0);
    preoom_reg_release(&proto_reg, idx);
    preoom_reg_close(&proto_reg);
    unlink(path_buf);
}

/* ---- the proof of a slot: the agent's thread name ------------------------------------------- */

static void t_proof_name(void)
{
    char n[16];
    uint64_t i = 9, a = 9;
    CHECK_EQ_U64(preoom_reg_proof_name(0xffff, 1000, n, sizeof n), 15);
    CHECK(strcmp(n, "preoomffff:1000") == 0);
    CHECK_EQ_I64(preoom_reg_proof_parse(n, strlen(n), &i, &a), 0);
    CHECK(i == 0xffff && a == 1000);
    preoom_reg_proof_name(3, 5000, n, sizeof n); /* a hint is at most 1000 */
    CHECK(strcmp(n, "preoom3:1000") == 0);
    CHECK_EQ_I64(preoom_reg_proof_parse("preoom2a:7\n", 11, &i, &a), 0);
    CHECK(i == 0x2a && a == 7);
    static const char *const bad[] = {"preoom-agent", "preoom:1", "preoom1:", "preoomg:1",
                                      "preoom1:1001", "preoom10000:1", "preoom1:1x",
                                      "Preoom1:1", "preoom1;1", "", "preoom"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        i = a = 99;
        CHECK_EQ_I64(preoom_reg_proof_parse(bad[k], strlen(bad[k]), &i, &a), -EINVAL);
        CHECK(i == 99 && a == 99);
    }
}

/* ---- creation, stale files, squatters ------------------------------------------------------ */

static int temp_files_left(void)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ls -A /dev/shm | grep -q '^\\.preoom-new\\.%s\\.'", name_buf);
    return system(cmd) == 0;
}

static void t_create_and_stale(void)
{
    preoom_reg_t r;
    const char *why;
    struct stat st;
    reg_name("create");
    CHECK_EQ_I64(preoom_reg_open(name_buf, PREOOM_REG_CREATE, 64, -1, 1, &r, &why), 0);
    CHECK(r.event && strcmp(r.event, "created") == 0);
    /* Every block reserved: a full /dev/shm fails here, not in a later page fault. */
    CHECK(stat(path_buf, &st) == 0 && (uint64_t)st.st_blocks * 512 >= (uint64_t)st.st_size);
    CHECK(strcmp(r.path, path_buf) == 0);
    CHECK(!temp_files_left());
    preoom_reg_close(&r);
    unlink(path_buf);

    /* Empty, ours: refused at once without the repair flag, replaced with it. */
    reg_name("stale");
    CHECK(write_file(NULL, 0, 0, 0600) == 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_EQ_I64(preoom_reg_open(name_buf, PREOOM_REG_CREATE, 4, -1, 1, &r, &why), -EPROTO);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(strstr(why, "stale") != NULL);
    long us = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000;
    printf("# a stale registry refused in %ld us\n", us);
    CHECK(us < 5000);
    CHECK_EQ_I64(preoom_reg_open(name_buf, PREOOM_REG_CREATE | PREOOM_REG_REPAIR, 4, -1, 1, &r,
                                 &why), 0);
    CHECK(r.event && strstr(r.event, "stale"));
    CHECK_EQ_U64(r.slot_count, 4);
    preoom_reg_close(&r);
    /* Zero header over a whole file: stale too. */
    CHECK(write_file(NULL, 0, 65536, 0600) == 0);
    CHECK_EQ_I64(preoom_reg_open(name_buf, 0, 0, -1, 0, &r, &why), -EPROTO);
    CHECK_EQ_I64(preoom_reg_open(name_buf, PREOOM_REG_CREATE | PREOOM_REG_REPAIR, 4, -1, 1, &r,
                                 &why), 0);
    preoom_reg_close(&r);
    CHECK(!temp_files_left());
    unlink(path_buf);

    if (geteuid() != 0) {
        SKIP("registry: a squatter's file", "needs root to chown a file to nobody");
        return;
    }
    reg_name("squat");
    struct preoom_registry_header h;
    good_header(&h, 4);
    h.creator_uid = 65534;
    CHECK(write_file(&h, sizeof h, 4096, 0644) == 0);
    CHECK(chown(path_buf, 65534, 65534) == 0);
    CHECK_EQ_I64(preoom_reg_open(name_buf, PREOOM_REG_CREATE | PREOOM_REG_REPAIR, 4, -1, 1, &r,
                                 &why), -EPERM);
    CHECK_EQ_I64(preoom_reg_open(name_buf, 0, 0, -1, 0, &r, &why), -EPERM);
    /* Root's arbiter takes the name back. */
    CHECK_EQ_I64(preoom_reg_open(name_buf, PREOOM_REG_CREATE | PREOOM_REG_TAKEOVER, 4, -1, 1, &r,
                                 &why), 0);
    CHECK(r.event && strstr(r.event, "squatted"));
    CHECK(stat(path_buf, &st) == 0 && st.st_uid == 0 && (st.st_mode & 0777) == 0600);
    preoom_reg_close(&r);
    unlink(path_buf);
}

int main(void)
{
    TEST_CASE("registry: bad headers are refused with a reason", t_bad_headers);
    TEST_CASE("registry: missing file and bad names", t_missing_and_names);
    TEST_CASE("registry: symlink, FIFO and directory refused", t_symlink_fifo_dir);
    TEST_CASE("registry: writers refuse foreign files", t_foreign_files);
    TEST_CASE("registry: claim, publish, snapshot, release, generation", t_round_trip);
    TEST_CASE("registry: exec takes its own slot back", t_exec_case);
    TEST_CASE("registry: full, then dead owners reclaimed", t_full_and_dead);
    TEST_CASE("registry: in-memory checker", t_check_buffer);
    TEST_CASE("registry: seqlock torture, no torn snapshot", t_seqlock_torture);
    TEST_CASE("registry: truncated under us, -EFAULT; other SIGBUS to the host", t_sigbus_guard);
    TEST_CASE("registry: one request writer, answers apart by kind", t_protocol);
    TEST_CASE("registry: the proof name of a slot", t_proof_name);
    TEST_CASE("registry: creation reserves, stale repaired, squatter refused", t_create_and_stale);
    TEST_END();
}

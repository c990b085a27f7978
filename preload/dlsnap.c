/* preload/dlsnap.c — a copy of the loaded objects' program headers, for the unwinder in a
 * child of fork.
 *
 * libunwind finds a frame's unwind table through dl_iterate_phdr, which takes the loader's
 * write lock. glibc does not reset that lock in a child of fork: if another parent thread
 * was inside dlopen, dlclose or dl_iterate_phdr at the moment of fork, the child's first
 * unwind (PREOOM_STACKS, on its first malloc) waited for ever. So the fork's prepare handler
 * copies what dl_iterate_phdr would show (each object's dl_phdr_info, its program headers and
 * its name) into memory of our own, and in the child the hooks serve preoom's own walks from
 * that copy until something of the program's has been through the real dl_iterate_phdr and
 * come back, which proves the lock free. preoom's own walks (unwind.c's) come here directly,
 * through preoom_dlsnap_walk, not through the exported hook.
 * Never: take a lock or allocate through malloc in the child (raw mmap only, and only in the
 * prepare handler, which fork runs in one thread at a time).
 */
#include <link.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

typedef struct snap {
    size_t bytes;                /* of this mapping */
    size_t nobj, cap_obj;
    size_t nph, cap_ph;
    size_t nname, cap_name;
    int overflow;
    struct dl_phdr_info *obj;
    ElfW(Phdr) *ph;
    char *name;
} snap_t;

static snap_t *snap;             /* read by the child only; replaced only in prepare */
_Atomic int preoom_dlsnap_child; /* in a child of fork whose loader lock may be held */

static snap_t *snap_new(size_t cap_obj)
{
    size_t cap_ph = cap_obj * 16, cap_name = cap_obj * 128;
    size_t bytes = sizeof(snap_t) + cap_obj * sizeof(struct dl_phdr_info) +
                   cap_ph * sizeof(ElfW(Phdr)) + cap_name;
    void *m = preoom_sys_mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                              -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    snap_t *s = m;
    s->bytes = bytes;
    s->cap_obj = cap_obj;
    s->cap_ph = cap_ph;
    s->cap_name = cap_name;
    s->obj = (struct dl_phdr_info *)(void *)(s + 1);
    s->ph = (ElfW(Phdr) *)(void *)(s->obj + cap_obj);
    s->name = (char *)(s->ph + cap_ph);
    return s;
}

static int copy_one(struct dl_phdr_info *info, size_t size, void *data)
{
    snap_t *s = data;
    size_t len = info->dlpi_name ? strlen(info->dlpi_name) + 1 : 1;
    if (s->nobj == s->cap_obj || s->nph + info->dlpi_phnum > s->cap_ph ||
        s->nname + len > s->cap_name) {
        s->overflow = 1;
        return 1;
    }
    struct dl_phdr_info *o = &s->obj[s->nobj++];
    memset(o, 0, sizeof *o);
    memcpy(o, info, size < sizeof *o ? size : sizeof *o);
    memcpy(&s->ph[s->nph], info->dlpi_phdr, info->dlpi_phnum * sizeof(ElfW(Phdr)));
    o->dlpi_phdr = &s->ph[s->nph];
    s->nph += info->dlpi_phnum;
    memcpy(&s->name[s->nname], info->dlpi_name ? info->dlpi_name : "", len);
    o->dlpi_name = &s->name[s->nname];
    s->nname += len;
    return 0;
}

void preoom_dlsnap_take(void)
{
    /* A child that never proved the lock free forks again: its copy is still the best. */
    if (atomic_load_explicit(&preoom_dlsnap_child, memory_order_relaxed))
        return;
    size_t cap = snap ? snap->cap_obj : 128;
    for (int tries = 0; tries < 6; tries++, cap *= 2) {
        if (!snap || snap->cap_obj < cap) {
            snap_t *n = snap_new(cap);
            if (!n)
                return; /* keep the old copy: a stale one only shortens stacks */
            if (snap)
                preoom_sys_munmap(snap, snap->bytes);
            snap = n;
        }
        snap->nobj = snap->nph = snap->nname = 0;
        snap->overflow = 0;
        preoom_real_iterate_phdr(copy_one, snap);
        if (!snap->overflow)
            return;
    }
}

void preoom_dlsnap_atfork_child(void)
{
    if (snap)
        atomic_store_explicit(&preoom_dlsnap_child, 1, memory_order_relaxed);
}

/* dl_iterate_phdr's contract over the copy: each object in load order, stopping at the
 * first non-zero return of the callback, which is returned. */
int preoom_dlsnap_iterate(int (*cb)(struct dl_phdr_info *, size_t, void *), void *data)
{
    int rc = 0;
    for (size_t i = 0; snap && i < snap->nobj && rc == 0; i++)
        rc = cb(&snap->obj[i], sizeof snap->obj[i], data);
    return rc;
}

int preoom_dlsnap_walk(int (*cb)(struct dl_phdr_info *, size_t, void *), void *data)
{
    if (atomic_load_explicit(&preoom_dlsnap_child, memory_order_relaxed))
        return preoom_dlsnap_iterate(cb, data);
    return preoom_real_iterate_phdr(cb, data);
}

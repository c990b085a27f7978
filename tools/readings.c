/* tools/readings.c — the pressure inputs of one moment, read from /proc and the cgroup fs.
 * Reading only: the rules that turn readings into a level live in pressure.c. */
#include <errno.h>
#include <string.h>

#include "readings.h"

int preoom_read_readings(const preoom_procfs_t *fs, const char *cgroup_dir, uint64_t exposure,
                         preoom_readings_t *r, preoom_memcg_t *cg)
{
    return preoom_read_readings_with(fs, cgroup_dir, exposure, NULL, r, cg);
}

int preoom_read_readings_with(const preoom_procfs_t *fs, const char *cgroup_dir,
                              uint64_t exposure, const preoom_readings_t *host,
                              preoom_readings_t *r, preoom_memcg_t *cg)
{
    memset(r, 0, sizeof *r);
    if (host) {
        r->mem_total_bytes = host->mem_total_bytes;
        r->mem_available_bytes = host->mem_available_bytes;
        r->swap_total_bytes = host->swap_total_bytes;
        r->swap_free_bytes = host->swap_free_bytes;
    } else {
        preoom_meminfo_t mi;
        int rc = preoom_read_meminfo(fs, &mi);
        if (rc != 0)
            return rc;
        r->mem_total_bytes = mi.mem_total_bytes;
        r->mem_available_bytes = mi.mem_available_bytes;
        r->swap_total_bytes = mi.swap_total_bytes == PREOOM_VALUE_MISSING ? 0 : mi.swap_total_bytes;
        r->swap_free_bytes = mi.swap_free_bytes == PREOOM_VALUE_MISSING ? 0 : mi.swap_free_bytes;
    }
    r->exposure_bytes = exposure;
    int cg_rc = 0;
    preoom_psi_t psi;
    int have_psi = 0;
    if (cgroup_dir && *cgroup_dir) {
        preoom_memcg_t m;
        cg_rc = preoom_read_memcg(fs, cgroup_dir, &m);
        if (cg_rc == 0) {
            r->cgroup_valid = true;
            r->cg_limit_bytes = m.effective_limit_bytes;
            r->cg_usage_bytes = m.usage_bytes == PREOOM_VALUE_MISSING ? 0 : m.usage_bytes;
            r->cg_file_bytes = m.file_bytes == PREOOM_VALUE_MISSING ? 0 : m.file_bytes;
            if (cg)
                *cg = m;
            /* v2 cgroups have their own PSI; v1 has none: then the machine's. */
            if (m.version == PREOOM_CGROUP_V2 && preoom_read_memcg_psi(fs, cgroup_dir, &psi) == 0)
                have_psi = 1;
        } else {
            cg_rc = -ENOENT;
        }
    }
    if (!have_psi && host) {
        r->psi_valid = host->psi_valid;
        r->psi_some_avg10_x100 = host->psi_some_avg10_x100;
        r->psi_full_avg10_x100 = host->psi_full_avg10_x100;
        return cg_rc;
    }
    if (!have_psi && preoom_read_psi(fs, &psi) == 0)
        have_psi = 1;
    if (have_psi) {
        r->psi_valid = true;
        r->psi_some_avg10_x100 = psi.some.avg10_centipct;
        r->psi_full_avg10_x100 = psi.has_full ? psi.full.avg10_centipct : 0;
    }
    return cg_rc;
}

int preoom_detect_cgroup(const preoom_procfs_t *fs, const preoom_gathered_t *g, char *dir,
                         size_t cap)
{
    dir[0] = '\0';
    for (size_t i = 0; i < g->n; i++) {
        char d[PREOOM_CGROUP_PATH_MAX];
        preoom_cgroup_version_t v;
        if (preoom_find_memcg(fs, g->procs[i].c.pid, d, sizeof d, &v) != 0)
            continue;
        preoom_memcg_t m;
        if (preoom_read_memcg(fs, d, &m) != 0 || m.effective_limit_bytes == PREOOM_LIMIT_NONE)
            continue;
        size_t n = strlen(d);
        if (n + 1 > cap)
            return -ENAMETOOLONG;
        memcpy(dir, d, n + 1);
        return 0;
    }
    return -ENOENT;
}

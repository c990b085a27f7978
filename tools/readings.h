/* tools/readings.h — gather the pressure inputs of one moment from the kernel: the
 * machine's meminfo, the memory cgroup the registered processes live in, and PSI. */
#ifndef PREOOM_TOOLS_READINGS_H
#define PREOOM_TOOLS_READINGS_H

#include <stddef.h>

#include "candidates.h"
#include "pressure.h"
#include "procfs.h"

/* Fill `r` (and `cg`, when cgroup_dir is not empty). exposure comes from the registry.
 * Returns 0, or -errno when /proc/meminfo cannot be read; a cgroup that cannot be read
 * leaves cgroup_valid false and returns -ENOENT after filling the rest. */
int preoom_read_readings(const preoom_procfs_t *fs, const char *cgroup_dir, uint64_t exposure,
                         preoom_readings_t *r, preoom_memcg_t *cg);

/* The same, with the machine's figures (meminfo, and PSI where the cgroup has none of its
 * own) taken from `host`, a reading of the machine made just before, when not NULL: one
 * daemon reading fifty cgroups need not read /proc/meminfo fifty times. */
int preoom_read_readings_with(const preoom_procfs_t *fs, const char *cgroup_dir,
                              uint64_t exposure, const preoom_readings_t *host,
                              preoom_readings_t *r, preoom_memcg_t *cg);

/* The memory cgroup with a limit that holds the first registered process that is in one;
 * "" when none is. Returns 0 or -ENOENT. */
int preoom_detect_cgroup(const preoom_procfs_t *fs, const preoom_gathered_t *g, char *dir,
                         size_t cap);

#endif

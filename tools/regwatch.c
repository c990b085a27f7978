/* tools/regwatch.c — preoomd's hold on its registry: where it lives, who owns it, and that
 * its path still names the file we mapped.
 *
 * The arbiter's registry is the one file every registered process trusts, so preoomd keeps
 * it where it chooses (--registry-dir, a root-owned directory such as /run/preoom; /dev/shm
 * by default), replaces a squatter's or a stale file at its path when it may (root), and
 * follows the path: a registry deleted, replaced or truncated under it is reopened (made
 * anew) and said so in one line. Also gives a daemon started without descriptors 0-2 its
 * /dev/null there, so no file it opens later takes their numbers. Never signals anyone.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "regwatch.h"

void preoom_std_fds(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        int n = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        /* open returns the lowest free number: this one, as 0..fd-1 are taken. */
        if (n >= 0 && n != fd) {
            dup2(n, fd);
            close(n);
        }
    }
}

int preoom_regwatch_dir(const char *dir, char *msg, size_t cap)
{
    struct stat st;
    if (preoom_reg_set_dir(dir) != 0) {
        snprintf(msg, cap, "--registry-dir %s: not an absolute path without '..'", dir);
        return -EINVAL;
    }
    if (lstat(dir, &st) != 0 && errno == ENOENT) {
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
            snprintf(msg, cap, "--registry-dir %s: cannot create it (%s)", dir, strerror(errno));
            return -errno;
        }
    }
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(msg, cap, "--registry-dir %s: not a directory (a symbolic link is refused)", dir);
        return -ENOTDIR;
    }
    /* Others must not be able to put a file at our path first, nor remove ours. */
    if ((st.st_uid != geteuid() && st.st_uid != 0) ||
        ((st.st_mode & 0022) && !(st.st_mode & S_ISVTX))) {
        snprintf(msg, cap, "--registry-dir %s: owned by uid %u or writable by others without "
                 "the sticky bit (refused: others could squat the registry)", dir,
                 (unsigned)st.st_uid);
        return -EPERM;
    }
    return 0;
}

static int open_flags(void)
{
    /* Root may replace another user's file in a sticky directory, and is the one expected
     * owner of an arbiter's registry: a squatter's file is refused and replaced. */
    return PREOOM_REG_CREATE | PREOOM_REG_REPAIR | (geteuid() == 0 ? PREOOM_REG_TAKEOVER : 0);
}

int preoom_regwatch_open(const char *name, uint64_t slots, int64_t gid, preoom_reg_t *reg,
                         char *msg, size_t cap)
{
    const char *why = "";
    msg[0] = '\0';
    int rc = preoom_reg_open(name, open_flags(), slots, gid, 1, reg, &why);
    if (rc != 0) {
        char path[PREOOM_REG_PATH_MAX];
        if (preoom_reg_path(name, path, sizeof path) != 0)
            snprintf(path, sizeof path, "%s/preoom.%s", preoom_reg_dir(), name);
        snprintf(msg, cap, "registry %s: %s (%s)", path, why, strerror(-rc));
        return rc;
    }
    if (reg->event && strcmp(reg->event, "created") != 0)
        snprintf(msg, cap, "registry %s: %s", reg->path, reg->event);
    return 0;
}

int preoom_regwatch_follow(const char *name, uint64_t slots, int64_t gid, preoom_reg_t *reg,
                           char *msg, size_t cap)
{
    const char *what = "";
    msg[0] = '\0';
    if (reg->hdr && !preoom_reg_changed(reg, &what))
        return 0;
    char was[PREOOM_REG_PATH_MAX];
    snprintf(was, sizeof was, "%s", reg->path);
    int had = reg->hdr != NULL;
    preoom_reg_close(reg);
    char why[512];
    int rc = preoom_regwatch_open(name, slots, gid, reg, why, sizeof why);
    if (rc != 0) {
        if (had)
            snprintf(msg, cap, "registry %s %s; cannot reopen it: %s", was, what, why);
        else
            snprintf(msg, cap, "%s", why);
        return rc;
    }
    if (had)
        snprintf(msg, cap, "registry %s %s: reopened it (%llu slots)%s%s", reg->path, what,
                 (unsigned long long)reg->slot_count, why[0] ? "; " : "", why);
    else
        snprintf(msg, cap, "registry %s is back (%llu slots)%s%s", reg->path,
                 (unsigned long long)reg->slot_count, why[0] ? "; " : "", why);
    return 1;
}

/* tools/cmd_top.c — `preoom top [-d SECONDS] [-n FRAMES] [--sort COL]`: the table of
 * `preoom ls`, redrawn every interval, largest first.
 *
 * Plain ANSI (clear screen, cursor home) and only when stdout is a terminal; to a pipe or a
 * file each frame is plain text after a blank line, so tests and logs read it. Each frame
 * reopens the registry, so a registry replaced or removed meanwhile is seen as such. Never
 * curses, never raw terminal modes: an interrupted top leaves the terminal as it found it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: preoom top [--registry NAME] [-d SECONDS] [-n FRAMES] "
               "[--sort committed|touched|exposure|slack|peak|pid|name]\n");
}

/* Table rows that fit the terminal: its height less the title, the column and totals lines. */
static int rows_that_fit(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_row < 8)
        return -1;
    return ws.ws_row - 5;
}

int preoom_cmd_top(const char *reg_name, int argc, char **argv)
{
    double delay_s = 1.0;
    long frames = -1;
    const char *sort_name = "touched";
    int sort = preoom_ls_sort_key(sort_name);
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (strcmp(argv[i], "-d") == 0 && i + 1 < argc) {
            errno = 0;
            delay_s = strtod(argv[++i], &end);
            if (errno || end == argv[i] || *end || !(delay_s >= 0.01 && delay_s <= 3600)) {
                fprintf(stderr, "preoom: top: -d wants seconds from 0.01 to 3600, not '%s'\n",
                        argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
            errno = 0;
            frames = strtol(argv[++i], &end, 10);
            if (errno || end == argv[i] || *end || frames < 1) {
                fprintf(stderr, "preoom: top: -n wants a frame count of 1 or more, not '%s'\n",
                        argv[i]);
                return 2;
            }
        } else {
            int r = preoom_ls_common_arg("top", argc, argv, &i, &reg_name, &sort, &sort_name,
                                         usage);
            if (r)
                return r == 1 ? 0 : 2;
        }
    }
    int tty = isatty(STDOUT_FILENO);
    for (long frame = 0; frames < 0 || frame < frames; frame++) {
        if (frame > 0) {
            struct timespec ts = {(time_t)delay_s,
                                  (long)((delay_s - (double)(time_t)delay_s) * 1e9)};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
            }
        }
        time_t now = time(NULL);
        struct tm tm;
        char clock[16] = "";
        if (localtime_r(&now, &tm))
            strftime(clock, sizeof clock, "%H:%M:%S", &tm);
        /* The frame is drawn in memory first: the screen is cleared only for a good frame
         * (a bad registry leaves one line on stderr and nothing else), and at once. */
        char *frame_buf = NULL;
        size_t frame_len = 0;
        FILE *mem = open_memstream(&frame_buf, &frame_len);
        if (!mem) {
            fprintf(stderr, "preoom: top: %s\n", strerror(errno));
            return 1;
        }
        int rc = preoom_ls_show(reg_name, sort, 0, tty ? rows_that_fit() : -1, mem);
        fclose(mem);
        if (rc != 0) {
            free(frame_buf);
            return rc;
        }
        if (tty)
            fputs("\033[H\033[2J", stdout);
        else if (frame > 0)
            fputc('\n', stdout);
        printf("preoom top: /dev/shm/preoom.%s, %s, every %gs, sorted by %s\n", reg_name,
               clock, delay_s, sort_name);
        fwrite(frame_buf, 1, frame_len, stdout);
        free(frame_buf);
        if (fflush(stdout) != 0) {
            fprintf(stderr, "preoom: top: cannot write the output: %s\n", strerror(errno));
            return 1;
        }
    }
    return 0;
}

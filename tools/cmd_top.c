/* tools/cmd_top.c — `preoom top [-d SECONDS] [-n FRAMES] [--sort COL]`: the table of
 * `preoom ls`, redrawn every interval, largest first, grouped by memory domain; the growth
 * between frames gives each domain's time to its limit.
 *
 * On a terminal it draws with ncurses, as every top-like tool on Debian does: the alternate
 * screen (the shell's screen comes back on exit), only the cells that changed are rewritten
 * (no flicker), the table is cut to the terminal's width and height and follows a resize, and
 * keys act at once (q quits, p pauses, c t e s k i n sort). To a pipe or a file each frame is
 * plain text after a blank line, every column, so tests and logs read it. Each frame reopens
 * the registry, so a registry replaced or removed meanwhile is seen as such. Never leaves the
 * terminal in curses mode: an error is printed after the screen is given back, and ncurses
 * restores the terminal on SIGINT and SIGTERM.
 */
#include <curses.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cmd.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: preoom top [--registry NAME] [-d SECONDS] [-n FRAMES] "
               "[--sort committed|touched|exposure|slack|peak|pid|name] [--version]\n"
               "keys on a terminal: q quit, p pause, c t e s k i n sort by committed, touched,\n"
               "exposure, slack, peak, pid, name; any other key redraws at once\n");
}

typedef struct top_opts {
    const char *reg_name;
    double delay_s;
    long frames; /* < 0: until stopped */
    int sort;
    const char *sort_name;
    preoom_ls_trend_t *trend; /* usage between frames, for the time to each limit */
} top_opts_t;

static void title(const top_opts_t *o, int paused, char *buf, size_t size)
{
    time_t now = time(NULL);
    struct tm tm;
    char clock[16] = "";
    if (localtime_r(&now, &tm))
        strftime(clock, sizeof clock, "%H:%M:%S", &tm);
    /* What changes with the keys comes first: a narrow terminal cuts the end. */
    snprintf(buf, size, "preoom top%s: sorted by %s, every %gs, %s, /dev/shm/preoom.%s",
             paused ? " [paused]" : "", o->sort_name, o->delay_s, clock, o->reg_name);
}

/* One frame of the table into a string (malloc'ed): 0, or 1 with the error in *err_text. */
static int frame(const top_opts_t *o, int max_rows, int width, char **text, char **err_text)
{
    size_t len = 0, elen = 0;
    *text = NULL;
    *err_text = NULL;
    FILE *mem = open_memstream(text, &len);
    FILE *emem = open_memstream(err_text, &elen);
    if (!mem || !emem) {
        if (mem)
            fclose(mem);
        if (emem)
            fclose(emem);
        free(*text);
        *text = NULL;
        *err_text = strdup("preoom: top: out of memory\n");
        return 1;
    }
    int rc = preoom_ls_show_trend(o->reg_name, o->sort, 0, max_rows, width, o->trend, mem, emem);
    fclose(mem);
    fclose(emem);
    return rc;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* To a pipe: plain frames, all columns, a blank line between. */
static int top_plain(const top_opts_t *o)
{
    for (long n = 0; o->frames < 0 || n < o->frames; n++) {
        if (n > 0)
            sleep_s(o->delay_s);
        char *text, *err;
        char head[256];
        title(o, 0, head, sizeof head);
        int rc = frame(o, -1, -1, &text, &err);
        if (rc != 0) {
            fputs(err ? err : "", stderr);
            free(text);
            free(err);
            return rc;
        }
        if (n > 0)
            fputc('\n', stdout);
        printf("%s\n%s", head, text);
        free(text);
        free(err);
        if (fflush(stdout) != 0) {
            fprintf(stderr, "preoom: top: cannot write the output: %s\n", strerror(errno));
            return 1;
        }
    }
    return 0;
}

static const struct { int key; const char *col; } sort_keys[] = {
    {'c', "committed"}, {'t', "touched"}, {'e', "exposure"}, {'s', "slack"},
    {'k', "peak"},      {'i', "pid"},     {'n', "name"},
};

/* Draws the title, the table and the key line into the screen, each line cut at COLS and
 * nothing below LINES; curses sends only what changed. */
static void draw(const top_opts_t *o, int paused, const char *text)
{
    char head[256];
    title(o, paused, head, sizeof head);
    erase();
    mvaddnstr(0, 0, head, COLS);
    int y = 1;
    for (const char *p = text; *p && y < LINES - 1; y++) {
        const char *nl = strchr(p, '\n');
        int n = nl ? (int)(nl - p) : (int)strlen(p);
        mvaddnstr(y, 0, p, n < COLS ? n : COLS);
        p = nl ? nl + 1 : p + n;
    }
    if (LINES > 2) {
        attron(A_REVERSE);
        mvaddnstr(LINES - 1, 0, "q quit  p pause  sort: c t e s k i n", COLS);
        attroff(A_REVERSE);
    }
    refresh();
}

static int top_curses(top_opts_t *o)
{
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    int paused = 0, rc = 0;
    char *text = NULL, *err = NULL;
    long drawn = 0;
    for (;;) {
        if (!paused || !text) {
            free(text);
            free(err);
            /* Rows left for processes: less the title, the column titles, the "more" line,
             * the totals, the summary and the key line. */
            int rows = LINES - 6;
            rc = frame(o, rows < 0 ? 0 : rows, COLS, &text, &err);
            if (rc != 0)
                break;
        }
        draw(o, paused, text);
        if (!paused && o->frames >= 0 && ++drawn >= o->frames)
            break;
        timeout(paused ? -1 : (int)(o->delay_s * 1000));
        int ch = getch();
        if (ch == 'q' || ch == 'Q')
            break;
        if (ch == 'p' || ch == 'P') {
            paused = !paused;
            continue;
        }
        for (size_t k = 0; k < sizeof sort_keys / sizeof sort_keys[0]; k++)
            if (ch == sort_keys[k].key) {
                o->sort_name = sort_keys[k].col;
                o->sort = preoom_ls_sort_key(o->sort_name);
                free(text); /* a new order is read at once, paused or not */
                text = NULL;
            }
        /* ERR (the interval passed), KEY_RESIZE (ncurses has updated LINES and COLS) and
         * any other key: the next frame now. */
        if (ch != ERR && paused && text) {
            free(text);
            text = NULL;
        }
    }
    endwin();
    if (rc != 0 && err)
        fputs(err, stderr);
    free(text);
    free(err);
    return rc;
}

/* The frames, to a pipe or on a terminal. */
static int top_run(top_opts_t *o)
{
    if (!isatty(STDOUT_FILENO) || !isatty(STDIN_FILENO))
        return top_plain(o);
    /* A bad registry is said on the shell's screen, before curses takes it. */
    char *text, *err;
    int rc = frame(o, 0, -1, &text, &err);
    free(text);
    if (rc != 0) {
        fputs(err ? err : "", stderr);
        free(err);
        return rc;
    }
    free(err);
    SCREEN *scr = newterm(NULL, stdout, stdin);
    if (!scr) {
        fprintf(stderr, "preoom: top: cannot drive this terminal (TERM=%s); plain frames "
                        "follow\n", getenv("TERM") ? getenv("TERM") : "");
        return top_plain(o);
    }
    rc = top_curses(o);
    delscreen(scr);
    return rc;
}

int preoom_cmd_top(const char *reg_name, int argc, char **argv)
{
    top_opts_t o = {reg_name, 1.0, -1, preoom_ls_sort_key("touched"), "touched", NULL};
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        const char *v;
        int r;
        if ((r = preoom_cli_value("top", "-d", argc, argv, &i, &v)) != 0) {
            if (r == 2)
                return 2;
            errno = 0;
            o.delay_s = strtod(v, &end);
            if (errno || end == v || *end || !(o.delay_s >= 0.01 && o.delay_s <= 3600))
                return preoom_cli_error("top", "-d wants seconds from 0.01 to 3600, not '%s'", v);
        } else if ((r = preoom_cli_value("top", "-n", argc, argv, &i, &v)) != 0) {
            if (r == 2)
                return 2;
            errno = 0;
            o.frames = strtol(v, &end, 10);
            if (errno || end == v || *end || o.frames < 1)
                return preoom_cli_error("top", "-n wants a number of frames, 1 or more, not "
                                               "'%s'", v);
        } else {
            r = preoom_ls_common_arg("top", argc, argv, &i, &o.reg_name, &o.sort, &o.sort_name,
                                     usage);
            if (r)
                return r == 1 ? 0 : 2;
        }
    }
    /* Without it (out of memory) top still runs, only without the times to the limits. */
    o.trend = preoom_ls_trend_new();
    int rc = top_run(&o);
    free(o.trend);
    return rc;
}

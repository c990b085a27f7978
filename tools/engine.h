/* tools/engine.h — the decision engine of one memory domain (a cgroup with a limit, or the
 * host): one snapshot in, one decision record out.
 *
 * preoomd feeds it a snapshot every pass (the readings, the candidates with their badness
 * inputs, the registry's answers, the time) and carries out what it decides through the
 * injected hands (ask, signal); `preoom explain` runs the same engine on the same inputs with
 * no hands. All state lives in the instance, so one daemon can hold one engine per domain,
 * and the unit tests drive it with fake time and fake hands.
 *
 * Never: read a file, look at the clock, allocate, or send anything except through the
 * hands it was given. The rules, and why, are at the top of engine.c.
 */
#ifndef PREOOM_TOOLS_ENGINE_H
#define PREOOM_TOOLS_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "badness.h"
#include "pressure.h"

#define PREOOM_ENGINE_MAX_ASKS 16      /* asks outstanding in one episode */
#define PREOOM_ENGINE_SAMPLES 128      /* forecast ring: (time, available) */
#define PREOOM_ENGINE_MAX_EVENTS 24    /* what one pass has to say */
#define PREOOM_ENGINE_NAME_MAX 64
#define PREOOM_ENGINE_CMDLINE_MAX 160  /* the start of a victim's command line, printable */

typedef enum {
    PREOOM_SCOPE_REGISTERED = 0, /* only processes with a registry slot */
    PREOOM_SCOPE_CGROUP = 1,     /* every process of the watched cgroup */
    PREOOM_SCOPE_ALL = 2,        /* every process of the host (host domains only) */
} preoom_scope_t;

/* The engine's settings: preoomd's flags, the same for `preoom explain` (published). */
typedef struct {
    preoom_thresholds_t th;
    preoom_policy_t policy;
    uint32_t ask_grace_ms;      /* how long asks are given to answer */
    uint32_t term_grace_ms;     /* SIGTERM → SIGKILL when a process names no time of its own */
    uint32_t max_term_grace_ms; /* cap on a process's own shutdown time */
    uint32_t kill_grace_ms;     /* SIGTERM → SIGKILL below the kill line */
    uint32_t horizon_ms;        /* signal only when the kill line is this close in time */
    uint32_t lead_ms;           /* fast falls move the term line up by what falls in this time */
    uint32_t calm_ms;           /* above the ask line this long ends an episode */
    uint32_t min_poll_ms, max_poll_ms;
    /* How fast memory may fall unseen, which sets the poll far from the lines (0: 256 MiB/s).
     * Lower where the kernel itself wakes the daemon at the lines (v1 usage thresholds). */
    uint64_t floor_fall_bytes_per_s;
    bool psi_local;             /* PSI describes this domain (v2 cgroup, or the host) */
    bool dry_run;               /* decide and say, send nothing */
} preoom_engine_conf_t;

/* One process of the domain, as the daemon gathered it. Numbers from a slot are untrusted;
 * the daemon has checked pid and start time against /proc. */
typedef struct {
    int32_t pid;
    uint64_t start_time;
    uint32_t uid;
    char name[PREOOM_ENGINE_NAME_MAX];
    bool registered;            /* has a slot: can be asked; otherwise only signalled */
    uint64_t slot_index;
    uint32_t callbacks;         /* release callbacks the app registered (slot) */
    uint64_t reclaimable_bytes; /* the app's own estimate of what it could free (0: unknown) */
    uint64_t slack_bytes;       /* freed to malloc but not to the system: malloc_trim's */
    uint32_t term_grace_ms;     /* its own shutdown time (slot), 0 = the default */
    uint64_t answer_serial;     /* the slot's answer to the last release request */
    uint64_t answer_bytes;
    uint64_t answer_callback_bytes, answer_trim_bytes;
    preoom_candidate_t c;       /* the badness input (touched, private, growth, ...) */
} preoom_engine_proc_t;

typedef struct {
    uint64_t now_ms;            /* CLOCK_MONOTONIC */
    preoom_readings_t r;
    preoom_engine_proc_t *procs;
    size_t n;
    bool victim_gone;           /* the victim in flight has exited (its pidfd said so) */
    /* The biggest process of the domain by the kernel's view, and whether it is a candidate:
     * when pressure rises and it is not, the engine says so once. */
    int32_t biggest_pid;
    uint64_t biggest_bytes;
    char biggest_name[PREOOM_ENGINE_NAME_MAX];
    bool biggest_is_candidate;
    int32_t self_pid;
    /* Another domain's victim, a process inside this domain, is on its way out: its memory
     * is coming back here too, so no new victim is chosen meanwhile (asks go on). */
    bool hold_signals;
} preoom_engine_input_t;

typedef enum {
    PREOOM_EV_ASK,         /* a release request was sent (or would be) */
    PREOOM_EV_ANSWER,      /* an asked process answered */
    PREOOM_EV_NO_ANSWER,   /* an ask's grace ran out */
    PREOOM_EV_TERM,        /* SIGTERM */
    PREOOM_EV_KILL,        /* SIGKILL */
    PREOOM_EV_EXITED,      /* the victim is gone */
    PREOOM_EV_FAILED,      /* an action could not be taken (reason in `why`) */
    PREOOM_EV_RELIEVED,    /* an episode ended: memory back above the ask line */
    PREOOM_EV_NO_CANDIDATE,/* a signal was due and nobody may be chosen */
    PREOOM_EV_HOG,         /* the biggest process is one preoomd may not act on */
    PREOOM_EV_LEFT,        /* a SIGTERMed victim left to finish: pressure gone */
} preoom_event_kind_t;

typedef struct {
    preoom_event_kind_t kind;
    int32_t pid;
    uint32_t uid;
    char name[PREOOM_ENGINE_NAME_MAX];
    char cmdline[PREOOM_ENGINE_CMDLINE_MAX]; /* asks and signals: "" when not known */
    int level;                 /* asks: the request level */
    uint64_t bytes;            /* asks: wanted; answers: released; hog: its size */
    uint64_t wanted, callback_bytes, trim_bytes; /* answers: asked, said freed, trimmed */
    uint32_t grace_ms;         /* signals: how long before the next rung */
    uint64_t took_ms;          /* answers, exits: since the action */
    bool registered;
    int64_t score;
    const char *why;           /* static text */
    size_t proc;               /* index into the input's procs, or SIZE_MAX */
} preoom_event_t;

/* What the engine saw and did in one pass. */
typedef struct {
    uint64_t now_ms;
    int level;                 /* enum preoom_pressure: what the lines say now */
    const char *reason;        /* static: what set the level */
    uint64_t total_bytes, available_bytes, effective_bytes;
    uint64_t ask_bytes, term_bytes, kill_bytes;
    bool in_cgroup;
    int64_t fall_bytes_per_s;  /* recent fall of available memory (negative: rising) */
    int64_t time_to_kill_ms;   /* at that rate; -1 when not falling */
    uint64_t shortfall_bytes;  /* what it takes to get back over the ask line */
    bool signal_due;           /* the signal gate is open */
    bool dry_run;              /* nothing was sent: the events say what would have been */
    uint32_t next_poll_ms;
    size_t n_events;
    preoom_event_t ev[PREOOM_ENGINE_MAX_EVENTS];
    /* The ranking behind a signal (or behind explain): the chosen index and its terms. */
    long victim;               /* index into procs, -1 none */
} preoom_decision_t;

/* The hands. Each returns 0 or -errno; the engine records a failure and goes on. */
typedef struct {
    void *ctx;
    int (*ask)(void *ctx, const preoom_engine_proc_t *p, int level, uint64_t bytes,
               uint32_t *serial);
    int (*signal)(void *ctx, const preoom_engine_proc_t *p, int sig);
    /* Optional: the process's command line (bounded, printable), read just before an ask or
     * a SIGTERM is sent (a dying process's reads as empty) and only then, never for every
     * process every pass; the SIGKILL and exit events reuse the SIGTERM's. Also called in
     * dry-run (it sends nothing). NULL: events carry no command line. */
    void (*cmdline)(void *ctx, const preoom_engine_proc_t *p, char *buf, size_t cap);
} preoom_engine_hands_t;

enum preoom_rung { PREOOM_RUNG_NONE, PREOOM_RUNG_TERMED, PREOOM_RUNG_KILLED };

typedef struct {
    int32_t pid;
    uint64_t start_time, slot_index;
    uint32_t serial;
    uint64_t wanted, at_ms;
    bool answered, counted;
    uint64_t released, callback_bytes, trim_bytes;
} preoom_engine_ask_t;

typedef struct {
    preoom_engine_conf_t conf;
    /* Forecast: recent (time, available) samples. */
    uint64_t s_t[PREOOM_ENGINE_SAMPLES];
    uint64_t s_a[PREOOM_ENGINE_SAMPLES];
    size_t s_head, s_n;
    /* The episode: from the first pass below the ask line to calm above it. */
    bool episode;
    uint64_t calm_since_ms;
    uint64_t due_since_ms;     /* the signal gate has been open since (0: closed) */
    uint64_t drop_ref, last_drop_ms; /* the last real drop of available memory */
    preoom_engine_ask_t asks[PREOOM_ENGINE_MAX_ASKS];
    size_t n_asks;
    bool hog_said, nocand_said;
    /* One victim in flight. */
    enum preoom_rung rung;
    int32_t v_pid;
    uint64_t v_start, v_since_ms, v_touched;
    uint32_t v_grace_ms;
    uint32_t v_uid;
    char v_name[PREOOM_ENGINE_NAME_MAX];
    char v_cmdline[PREOOM_ENGINE_CMDLINE_MAX]; /* read at SIGTERM: a dying process's is empty */
    bool v_registered;
    /* Totals for metrics. */
    uint64_t n_asked, n_answers, n_terms, n_kills, released_bytes;
    /* Scratch for ranking, owned by the caller (sized to the most candidates). */
    preoom_badness_t *scores;
    size_t scores_cap;
} preoom_engine_t;

void preoom_engine_conf_defaults(preoom_engine_conf_t *c);

/* scores: an array of cap entries the engine may use (no allocation inside). */
void preoom_engine_init(preoom_engine_t *e, const preoom_engine_conf_t *conf,
                        preoom_badness_t *scores, size_t cap);

/* One pass. hands NULL: decide only (explain). */
void preoom_engine_step(preoom_engine_t *e, const preoom_engine_input_t *in,
                        const preoom_engine_hands_t *hands, preoom_decision_t *out);

/* The victim in flight (pid 0: none), for the daemon's pidfd. */
static inline int32_t preoom_engine_victim_pid(const preoom_engine_t *e, uint64_t *start)
{
    if (start)
        *start = e->v_start;
    return e->rung == PREOOM_RUNG_NONE ? 0 : e->v_pid;
}

/* Rank the candidates as the engine would choose now: order[] gets indices, best first;
 * returns how many may be chosen (the rest follow, ineligible). */
size_t preoom_engine_rank(preoom_engine_t *e, const preoom_engine_input_t *in,
                          uint64_t shortfall_bytes, size_t *order);

/* One line of text (or one JSON object, json=1) for event i of a decision. */
int preoom_engine_format_event(const preoom_decision_t *d, size_t i,
                               const preoom_engine_input_t *in, const preoom_badness_t *scores,
                               int json, char *buf, size_t cap);

const char *preoom_event_name(preoom_event_kind_t k);
const char *preoom_scope_name(preoom_scope_t s);
int preoom_scope_from_name(const char *s, preoom_scope_t *out);

#endif

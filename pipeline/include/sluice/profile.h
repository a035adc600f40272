/*
 * Profiling: which stage limits a pipeline, by how much, and what to change.
 *
 * A running iterator keeps counters per stage (sampled: a clock read on one `next` call in 64,
 * and per batch of work in the threads of work-ahead stages). sl_iter_profile copies them into
 * a plain snapshot; the analysis (sl_profile_analyze) is a pure function of a snapshot, so it
 * can be tested on made-up numbers and run by a trainer at any time.
 *
 * The model: every stage has a cost per element (its own time: inclusive time minus its
 * inputs', or for a parallel map the time its workers spend in the function). Scaled by how
 * many of its elements one output element needs, that is its cost per output element. Stages
 * that run on one thread (the consumer's, or a work-ahead stage's coordinator) add up; a
 * parallel map divides its cost by its parallelism; all of it together must fit in the cores.
 * The output rate the model allows is the smallest of these capacities, and the bottleneck is
 * the stage that sets it. Predictions rerun the model with one change applied, each written as
 * pipeline text to paste.
 *
 * Tracing: sl_iter_trace_start makes the iterator record Chrome Trace Event Format spans (the
 * sampled `next` calls, each map worker's drain, waits and blocked producers), one track per
 * thread; sl_iter_trace_write writes them as JSON for Perfetto or chrome://tracing.
 *
 * Threading: sl_iter_profile may be called from any thread while another runs the iterator
 * (values are at worst a few elements old); the analysis functions touch only their arguments.
 */
#ifndef SLUICE_PROFILE_H
#define SLUICE_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/pipeline.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { SL_PROFILE_MAX_STAGES = 64, SL_PROFILE_TEXT_CAP = 2048, SL_PROFILE_MAX_PREDICTIONS = 4 };

/* One stage's counters. Times are nanoseconds; "elements" are the stage's own elements. */
typedef struct sl_profile_stage {
    const char *stage; /* canonical text, e.g. "map(decode_jpeg, parallel=4)" */
    const char *kind;  /* "map", "prefetch", "batch", "range", ... */
    int depth;         /* 0: the pipeline's last stage */
    int parent;        /* index of the stage that consumes this one; -1 for the last stage */
    int chain;         /* 1: on the pipeline text's main chain (changes can be written as text) */
    int work_ahead; /* 1: runs its input on its own coordinator thread (prefetch, parallel map) */
    int parallel;   /* parallel map: worker tasks allowed; 0 otherwise */
    int64_t slots;  /* work-ahead stages: ring capacity; 0 otherwise */
    uint64_t elements;          /* elements returned */
    uint64_t timed;             /* `next` calls measured (sampled) */
    uint64_t timed_ns;          /* their total time, inputs included */
    uint64_t timed_bytes;       /* tensor bytes of the elements those calls returned */
    uint64_t busy_ns;           /* parallel map: time in the function (workers and consumer) */
    uint64_t busy_elements;     /* elements that time covers */
    uint64_t helped_ns;         /* part of busy_ns spent by the consumer inside `next` */
    uint64_t wait_ns;           /* consumer blocked in `next` with nothing ready */
    uint64_t blocked_ns;        /* producer blocked on a full ring */
    uint64_t producer_ns;       /* producer (coordinator) time not blocked, over whole intervals */
    uint64_t producer_elements; /* elements it produced in those intervals */
    uint64_t fill_sum;          /* ring elements ready, summed over fill_samples */
    uint64_t workers_sum;       /* map worker tasks in flight, summed over fill_samples */
    uint64_t fill_samples;
    /* What its buffers can hold: a work-ahead stage's ring at its capacity now x its measured
     * element size; a shuffle, batch or cache as reserved under the iterator's memory budget
     * at open; 0 for stages that buffer nothing. */
    uint64_t memory_bytes;
    const char *io; /* file sources: the I/O backend ("io_uring", "pread"); NULL otherwise */
} sl_profile_stage;

typedef struct sl_profile_snapshot {
    uint64_t elapsed_ns; /* since the iterator opened */
    int threads;         /* the iterator's CPU budget (worker pool size) */
    uint64_t clock_ns;   /* what one clock read adds to each measured call (subtracted) */
    int nstages;         /* entries in stages, the last stage first, inputs after their consumer */
    int truncated;       /* 1: the pipeline has more than SL_PROFILE_MAX_STAGES nodes */
    sl_profile_stage stages[SL_PROFILE_MAX_STAGES];
} sl_profile_snapshot;

/* Copies the iterator's counters. */
void sl_iter_profile(const sl_iter *it, sl_profile_snapshot *out);
/* The running iterator's bottleneck so far: a snapshot analysed for its threads, the limiting
 * stage's canonical pipeline text written to buf. 0; SL_ERR_INVAL when nothing has come out
 * yet (buf holds ""); SL_ERR_NOMEM. Costs a snapshot and an analysis: call it a few times a
 * second at most. */
int sl_iter_bottleneck(const sl_iter *it, char *buf, size_t cap);

/* What the analysis derives for one stage. Rates are elements per second. */
typedef struct sl_profile_stage_result {
    double rate;          /* the stage's own elements returned per second of the run */
    double bytes_per_s;   /* tensor bytes it returned per second (from sampled calls) */
    double own_ns;        /* its own cost per element it returns (work, not waits) */
    double per_core_rate; /* its elements per second on one core (1e9 / own_ns); 0 unknown */
    double ratio;         /* its elements per element of the pipeline's output */
    double cost_ns;       /* its cost per output element: own_ns * ratio */
    double capacity;      /* output elements/s it allows with its current thread/parallelism,
                           * together with the stages sharing its thread; 0 when unlimited */
    int thread;           /* which thread runs it: 0 the consumer's, k a work-ahead stage's */
    double busy_share;    /* share of its thread's time (or of its workers') spent working */
    double wait_share;    /* work-ahead: share of the run the consumer waited in `next` */
    double blocked_share; /* work-ahead: share of the run the producer was blocked on a full ring */
    double fill;    /* work-ahead: mean share of the ring holding ready elements, -1 unknown */
    double workers; /* parallel map: mean worker tasks in flight, -1 unknown */
} sl_profile_stage_result;

typedef enum sl_profile_change {
    SL_PROFILE_PARALLEL = 1, /* more parallelism for a map */
    SL_PROFILE_PREFETCH = 2, /* a prefetch inserted, or an existing one made bigger */
    SL_PROFILE_CACHE = 3,    /* a cache() point: later epochs skip everything below it */
} sl_profile_change;

typedef struct sl_profile_prediction {
    sl_profile_change change;
    int stage;      /* the stage changed (or after which one is inserted) */
    double rate;    /* predicted output elements/s */
    double speedup; /* rate / the measured output rate */
    char what[128]; /* the changed or inserted stage's text, e.g. "map(f, parallel=4)" */
    char text[SL_PROFILE_TEXT_CAP]; /* the whole pipeline with the change, to paste */
} sl_profile_prediction;

typedef struct sl_profile_analysis {
    int nstages;
    sl_profile_stage_result stages[SL_PROFILE_MAX_STAGES];
    double rate;       /* measured output elements/s */
    double model_rate; /* what the model allows as configured (>= rate, up to sampling noise) */
    int bottleneck;    /* index of the stage that limits the output; -1 when nothing ran */
    int cores;         /* the cores the bound and the predictions assume */
    double bound;      /* output elements/s with `cores` cores and every map as parallel as
                        * useful (sl_profile_bound) */
    int npredictions;  /* best first */
    sl_profile_prediction predictions[SL_PROFILE_MAX_PREDICTIONS];
    char pipeline[SL_PROFILE_TEXT_CAP]; /* the pipeline text the predictions edit */
} sl_profile_analysis;

/* Analyses a snapshot for `cores` cores (<= 0: the snapshot's threads). SL_ERR_INVAL when the
 * snapshot has no stage or its last stage returned nothing (out->bottleneck is -1 then). */
int sl_profile_analyze(const sl_profile_snapshot *s, int cores, sl_profile_analysis *out);
/* The output rate the model allows with `cores` cores when every map gets the parallelism it
 * can use and the other stages keep their threads: min(cores / total cost per output element,
 * 1 / the costliest thread's cost). 0 when the snapshot cannot be analysed. */
double sl_profile_bound(const sl_profile_snapshot *s, int cores);

/* ---- trace -------------------------------------------------------------------------------- */

/* Starts recording trace events (up to max_events, 0: 200000; later ones are counted and
 * dropped). Call right after sl_iter_open: a prefetch's first fill may already have run. */
int sl_iter_trace_start(sl_iter *it, size_t max_events);
/* Writes the events so far as Chrome Trace Event Format JSON ({"traceEvents": [...]}: "X"
 * events with ts/dur in microseconds, thread names as "M" events) to path. Recording goes on.
 * SL_ERR_INVAL when no trace was started; -errno when the file cannot be written. */
int sl_iter_trace_write(sl_iter *it, const char *path);

/* ---- AUTOTUNE ------------------------------------------------------------------------------
 *
 * Knobs written `auto` (map(f, parallel=auto), prefetch(auto)) are chosen while the iterator
 * runs: a low-rate thread (every SL_AUTOTUNE_INTERVAL_MS) snapshots the counters, calls
 * sl_autotune_step and applies what it decides. The policy is a pure function of two snapshots
 * and its own state (plain data, no clock), so tests drive it with made-up counters.
 *
 * The policy: the auto maps start with the CPU budget shared out among them. When its workers
 * are saturated (workers in flight near its parallelism) and the consumer waits for it, it
 * tries doubling (bounded by the CPU budget shared by all auto maps); the next interval keeps
 * the step when the output rate rose by SL_AUTOTUNE_GAIN (SL_AUTOTUNE_PREFETCH_GAIN for a
 * prefetch, whose step costs only memory), else reverts and settles there; a kept step reopens
 * the other settled knobs. A map whose workers mostly idle for want of input backs off to the
 * parallelism it uses. A map that is settled or not saturated, and cheap (under 5 us an
 * element), tries inline mode once (value 0: the function runs on the consumer's thread
 * with no handoff, what a cheap function needs), kept on the same gain rule; an inline map goes
 * back to one worker when its cost rises more than 2x. An auto prefetch keeps its opened
 * capacity, quadruples (trial, as above) when the consumer waits on an empty ring, and never holds
 * more than its share of the memory budget (bytes per element x capacity). An
 * interleave(parallel=auto) opens a runner thread per slot up to the CPU budget and starts with
 * one in use; the policy moves the number in use like a map's parallelism (runners busy in
 * their slots' streams are its workers, the consumer waiting for a slot's next element is its
 * wait), sharing the CPU budget with the auto maps. A settled knob reopens when its stage's
 * cost per element changes more than 2x. */
enum { SL_AUTOTUNE_MAX_KNOBS = 16, SL_AUTOTUNE_INTERVAL_MS = 40 };
#define SL_AUTOTUNE_GAIN          1.10
#define SL_AUTOTUNE_PREFETCH_GAIN 1.03

typedef enum sl_autotune_kind {
    SL_AUTOTUNE_MAP_PARALLEL = 1,        /* a parallel map's worker tasks; 0: inline */
    SL_AUTOTUNE_PREFETCH = 2,            /* a prefetch's capacity */
    SL_AUTOTUNE_INTERLEAVE_PARALLEL = 3, /* an interleave's runner threads in use */
} sl_autotune_kind;

typedef struct sl_autotune_limits {
    int threads;          /* CPU budget: all auto maps' parallelism together (<= 0: snapshot's) */
    int64_t memory_bytes; /* what auto prefetch rings may hold together (<= 0: unlimited) */
    int64_t max_prefetch; /* one auto prefetch's capacity at most (<= 0: 64) */
} sl_autotune_limits;

typedef struct sl_autotune_knob {
    sl_autotune_kind kind;
    int stage;           /* its index in the snapshots */
    int64_t value;       /* the setting decided last */
    int64_t before;      /* > 0: a trial step is running; the value to revert to */
    int inline_tried;    /* map: inline mode was tried since the knob last reopened */
    double trial_rate;   /* the output rate before the trial */
    int settled;         /* 1: climbing stopped (no gain) until the cost changes > 2x */
    double settled_cost; /* its cost per element (ns) when it settled */
} sl_autotune_knob;

typedef struct sl_autotune_state {
    int nknobs;
    sl_autotune_knob knobs[SL_AUTOTUNE_MAX_KNOBS];
    uint64_t steps; /* intervals judged */
    int changed;    /* the last step changed a knob: no trial starts on its interval */
} sl_autotune_state;

typedef struct sl_autotune_decision {
    int skipped; /* 1: the interval was too short to judge; call again with the same prev */
    int n;       /* knobs whose value changed */
    struct {
        int stage;
        sl_autotune_kind kind;
        int64_t value;
    } set[SL_AUTOTUNE_MAX_KNOBS];
} sl_autotune_decision;

/* Finds the auto knobs of a snapshot (maps whose text says parallel=auto and that opened
 * parallel, prefetch(auto)); their starting values go to out (maps: 1). Returns the number of
 * knobs (0: nothing to tune). */
int sl_autotune_init(sl_autotune_state *st, const sl_profile_snapshot *s,
                     sl_autotune_decision *out);
/* Judges the interval prev -> now (same iterator, now later) and decides new values. 0, or
 * SL_ERR_INVAL for snapshots that do not match the state. */
int sl_autotune_step(sl_autotune_state *st, const sl_profile_snapshot *prev,
                     const sl_profile_snapshot *now, const sl_autotune_limits *limits,
                     sl_autotune_decision *out);

#ifdef __cplusplus
}
#endif
#endif

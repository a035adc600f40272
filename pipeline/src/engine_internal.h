/*
 * The engine's internal contracts: dataset nodes, the per-iterator context, and stages.
 *
 * A dataset node (struct sl_dataset) is an immutable recipe: a kind (its ops table), its
 * inputs, its parameters, and its canonical text. Opening an iterator instantiates the chain as
 * stages, leaf first: ops->open(ds, ctx, epoch, &stage) opens the node's inputs itself, so a
 * stage owns its input stages and closes them in its own close.
 *
 * Execution model (why it cannot deadlock): every stage's `next` runs on the thread that calls
 * it and may block. Stages that work ahead (prefetch, parallel map) own one coordinator thread
 * that calls their input's `next`; the compute they fan out (map functions) runs as tasks on
 * the iterator's one worker pool, and a pool task never waits for anything: it computes, stores
 * its result, signals, returns. So a blocked `next` always waits for a coordinator thread or a
 * pool task that can make progress. The pool is sized by the CPU budget; coordinator threads
 * only move elements between buffers.
 *
 * Stopping: sl_iter_close sets ctx->cancelled, calls cancel on the top stage (each stage wakes
 * its own waits and forwards to its inputs), then close (each stage joins its threads, closes
 * its inputs, frees itself). Two phases, because a coordinator thread may be blocked inside
 * its input's `next` and must be woken before it can be joined.
 *
 * Errors: `next` returns a negative code after writing the message with sl__stage_fail, which
 * prefixes the stage's canonical text; the first message wins (later ones are dropped), so the
 * user sees the root cause.
 *
 * Locking: the context's `mu` guards `err` and `err_code` only. Each stage documents its own
 * locks; a stage never holds its lock while calling its input's `next` or a map function.
 */
#ifndef SLUICE_ENGINE_INTERNAL_H
#define SLUICE_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "core_internal.h"
#include "sluice/pipeline.h"
#include "sluice/thread_pool.h"

typedef struct sl__ctx sl__ctx;
typedef struct sl__stage sl__stage;

/* Checkpoint state (checkpoint.c). A stage's state is a sequence of little-endian u64 values
 * and snapshot bytes, its own first, then its inputs' in input order; readers of a damaged or
 * foreign blob get zeros and a sticky error instead of reading past the end. */
typedef struct sl__state_writer {
    uint8_t *buf;
    size_t len, cap;
    int err; /* SL_ERR_NOMEM once growing failed; later puts are dropped */
} sl__state_writer;
typedef struct sl__state_reader {
    const uint8_t *buf;
    size_t len, pos;
    int err; /* SL_ERR_CORRUPT once a read ran past the end or a marker did not match */
} sl__state_reader;
void sl__state_put(sl__state_writer *w, uint64_t v);
void sl__state_put_bytes(sl__state_writer *w, const void *p, size_t n);
uint64_t sl__state_get(sl__state_reader *r);
void sl__state_writer_reset(sl__state_writer *w);
void sl__state_writer_free(sl__state_writer *w);
/* Swaps two writers' contents (work-ahead stages hand snapshots over without copying). */
void sl__state_writer_swap(sl__state_writer *a, sl__state_writer *b);

typedef struct sl__stage_ops {
    /* 0 with *out filled, SL_EOF, or a negative code (message already set). The caller hands
     * in a zeroed element; on anything but 0 it is left empty. */
    int (*next)(sl__stage *s, sl_element *out);
    /* Wakes every wait of this stage and of its inputs so blocked `next` calls return
     * SL_ERR_CANCELLED; callable from any thread while `next` runs elsewhere. May be NULL for
     * stages without inputs and without waits. */
    void (*cancel)(sl__stage *s);
    /* Joins its threads, closes its inputs, frees itself (after cancel when stopping early). */
    void (*close)(sl__stage *s);
    /* Random access: element i of this stage's stream (0 <= i < cardinality), independent of
     * `next`'s position. NULL when the stage cannot (see sl__dataset_ops.random_access). */
    int (*get)(sl__stage *s, uint64_t i, sl_element *out);
    /* Checkpoint: writes the state as of the last element `next` returned (its own, then its
     * inputs'), so that opening the node with that state continues with the next element.
     * NULL: not checkpointable (sl__stage_save then fails naming the stage). Called on the
     * thread that calls `next`, between calls. */
    int (*save)(sl__stage *s, sl__state_writer *w);
    /* Random access stages: makes `next` continue at element pos (0 <= pos <= cardinality).
     * NULL when the stage has no `get`. */
    int (*seek)(sl__stage *s, uint64_t pos);
    /* Optional batched `get`: elements idx[0..n) into out[0..n) (zeroed by the caller), all or
     * nothing: on failure every element is released and the message names the failing one.
     * Lets a source keep all n reads in flight at once (global_shuffle's window). NULL: the
     * engine loops `get` (sl__stage_get_batch). */
    int (*get_batch)(sl__stage *s, const uint64_t *idx, size_t n, sl_element *out);
} sl__stage_ops;

/* Counters of one dataset node, kept by the iterator across the stage instances repeat()
 * opens for it. `next` is called by one thread at a time per node, so the `next` counters are
 * updated with relaxed load + store (plain moves, no locked instructions); readers on other
 * threads see values that are at worst a few elements old. The time of a call, and the bytes
 * of the element it returned, are measured only on every SL__SAMPLE_EVERY-th call: no clock
 * read per element.
 *
 * Work-ahead stages (prefetch, parallel map) also count the work of their other threads: the
 * pool workers' time in map functions (one clock pair per drain of the pending queue, not per
 * element), the consumer's time blocked in `next`, the producer's time blocked on a full ring
 * (clock reads only around a wait that is about to sleep anyway), and the ring's fill sampled
 * once per SL__SAMPLE_EVERY elements handed out. Several threads write those, so they use
 * relaxed fetch-adds, a few per batch of work. The analysis (profile_analysis.c) derives rates
 * and shares from a snapshot of these (sl_iter_profile). */
enum { SL__SAMPLE_EVERY = 64 };
_Static_assert(SL__SAMPLE_EVERY == 64, "sl__stage_next's sampling hash takes the top 6 bits");
typedef struct sl__node_stats {
    const sl_dataset *ds;
    int depth;                    /* 0 for the pipeline's last stage, inputs deeper */
    int parent;                   /* index of the node consuming this one's output; -1: top */
    int chain;                    /* 1: on the pipeline text's main chain */
    _Atomic uint64_t calls;       /* `next` calls that returned an element */
    _Atomic uint64_t timed;       /* calls among them whose time was measured */
    _Atomic uint64_t timed_ns;    /* their total time, inputs' time included */
    _Atomic uint64_t timed_bytes; /* tensor bytes of the elements they returned */
    /* work-ahead stages (several writers: relaxed fetch-add) */
    _Atomic int work_ahead;             /* 1 once a prefetch or parallel map instance opened */
    _Atomic int parallel;               /* map: worker tasks allowed now */
    _Atomic int64_t slots;              /* ring capacity now */
    _Atomic uint64_t busy_ns;           /* time in map functions, measured per drain */
    _Atomic uint64_t busy_elements;     /* elements those drains ran */
    _Atomic uint64_t helped_ns;         /* part of busy_ns run by the consumer inside `next` */
    _Atomic uint64_t wait_ns;           /* consumer blocked in `next` (nothing ready) */
    _Atomic uint64_t blocked_ns;        /* producer blocked on a full ring */
    _Atomic uint64_t producer_ns;       /* producer's time not blocked, over whole intervals */
    _Atomic uint64_t producer_elements; /* elements it produced in them */
    _Atomic uint64_t fill_sum;          /* ring elements ready, summed over samples */
    _Atomic uint64_t workers_sum;       /* map worker tasks in flight, summed over samples */
    _Atomic uint64_t fill_samples;      /* samples taken */
    const char *_Atomic io;             /* file sources: the sl_io backend's name, else NULL */
    int64_t reserved_bytes; /* its buffers' share of the memory budget (set at open, read-only) */
    sl__stage *live;        /* guarded by ctx->mu: the open instance, or NULL */
} sl__node_stats;

/* Relaxed add for the counters several threads write (work-ahead stages). */
static inline void sl__stat_add(_Atomic uint64_t *c, uint64_t v)
{
    atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

struct sl__stage {
    const sl__stage_ops *ops;
    sl__ctx *ctx;
    const sl_dataset *ds; /* the node this stage runs (borrowed; the iterator holds the root) */
    uint64_t epoch;
    sl__node_stats *stats; /* set by sl__stage_open; NULL for stages opened outside an iterator */
};

typedef struct sl__dataset_ops {
    const char *kind;
    /* Opens a stage; with st (a checkpoint), reads the node's state from it (in the order
     * `save` wrote it) and passes st on to its inputs. */
    int (*open)(const sl_dataset *ds, sl__ctx *ctx, uint64_t epoch, sl__state_reader *st,
                sl__stage **out);
    int64_t (*cardinality)(const sl_dataset *ds);
    void (*free_params)(void *params);
    /* 1 when the node's stages implement `get` (known cardinality and element i computable on
     * its own); NULL means no. */
    int (*random_access)(const sl_dataset *ds);
    /* 1 for nodes that start a chain although they have inputs (their inputs print inside
     * their own text, e.g. sample_from_datasets): the pipeline text does not continue an
     * input's chain. */
    int starts_chain;
    /* 1 when the node's stages can save their state given checkpointable inputs; NULL means
     * yes (a stage may still refuse at save time, e.g. an unordered map). */
    int (*checkpointable)(const sl_dataset *ds);
    /* Memory estimate (memory_budget.c): given the estimated bytes of one element of each
     * input (in[k]; -1 unknown), sets *elem to this node's (-1 unknown) and returns the bytes
     * its stage holds in buffers (<= 0: none, or unknown). NULL: elements like input 0's (a
     * source: unknown) and no buffers. */
    int64_t (*memory)(const sl_dataset *ds, const int64_t *in, int threads, int64_t *elem);
} sl__dataset_ops;

enum { SL__MAX_INPUTS = 16, SL__TEXT_CAP = 256 };
/* Bytes an element costs beyond its tensors' data (buffer headers), for memory estimates. */
enum { SL__ELEMENT_OVERHEAD = 64 };

struct sl_dataset {
    _Atomic int64_t refs;
    const sl__dataset_ops *ops;
    sl_dataset *inputs[SL__MAX_INPUTS]; /* one reference each */
    int ninputs;
    char text[SL__TEXT_CAP]; /* this node's canonical text, e.g. "batch(4, drop_remainder=true)" */
    void *params;            /* owned; freed by ops->free_params (or sl_free when NULL) */
};

/* One per iterator; shared by all its stages. */
struct sl__ctx {
    sl_thread_pool *pool;
    int threads;
    uint64_t seed;
    sl_error_policy on_error;
    _Atomic uint64_t skipped;
    _Atomic int cancelled;
    pthread_mutex_t mu;
    int err_code;                   /* guarded by mu: first error wins */
    sl_errmsg err;                  /* guarded by mu */
    struct sl__cache_store *caches; /* guarded by mu: cache() contents, kept across epochs */
    sl__node_stats *stats;          /* (nstats) one per node of the pipeline, top first */
    int nstats;
    uint64_t opened_ns;                /* sl_clock_ns() at open: the profile's time base */
    uint64_t clock_ns;                 /* what one clock read adds to a measured interval */
    _Atomic(struct sl__trace *) trace; /* non-NULL while a trace records (profile_trace.c) */
};

/* The counters of node ds in this iterator, or NULL (a stage opened outside the node list,
 * e.g. an interleave's inner pipeline). Work-ahead stages look theirs up at open, before their
 * threads start, because sl__stage_open sets s->stats only after ops->open returns. */
sl__node_stats *sl__ctx_node_stats(sl__ctx *ctx, const sl_dataset *ds);
/* A file source tells the profile which I/O backend it reads with (a static string). */
void sl__stage_note_io(sl__stage *s, const char *backend);

/* Tracing (profile_trace.c): Chrome trace "complete" events, recorded per batch of work only
 * while a trace is on. name must outlive the trace (a stage's text); cat says what the span
 * was ("next", "work", "wait", "blocked"); n is the elements it covered. */
typedef struct sl__trace sl__trace;
void sl__trace_span(sl__ctx *ctx, const char *name, const char *cat, uint64_t t0, uint64_t t1,
                    uint64_t n);
void sl__trace_free(sl__ctx *ctx);
/* A work-ahead stage's producer loop (its coordinator thread): every SL__SAMPLE_EVERY elements
 * produced, the wall time since the last report minus the time blocked on a full ring goes to
 * producer_ns. Owned by the producer thread; ns may be NULL. */
typedef struct sl__producer_clock {
    uint64_t last, blocked;
    unsigned produced;
} sl__producer_clock;
void sl__producer_start(sl__producer_clock *pc, const sl__node_stats *ns);
void sl__producer_report(sl__producer_clock *pc, sl__node_stats *ns);
static inline void sl__producer_tick(sl__producer_clock *pc, sl__node_stats *ns)
{
    if (++pc->produced == SL__SAMPLE_EVERY && ns)
        sl__producer_report(pc, ns);
}
static inline int sl__tracing(sl__ctx *ctx)
{
    return atomic_load_explicit(&ctx->trace, memory_order_relaxed) != NULL;
}

/* A cache() node's elements, owned by the iterator so they outlive the stage instances that
 * repeat() opens for every epoch. Freed when the iterator closes. */
typedef struct sl__cache_store sl__cache_store;
void sl__ctx_free_caches(sl__ctx *ctx);
/* The epoch at which cache node ds reads its input (so that every pass it makes, including one
 * after a restore, has the order of the first): the first caller's `epoch`, or `epoch` when
 * set. */
int sl__ctx_cache_epoch(sl__ctx *ctx, const sl_dataset *ds, uint64_t epoch, int set,
                        uint64_t *fill_epoch);

/* Allocates a node with the given inputs (retained) and params (owned from now on, also on
 * failure). text is printf-style. */
int sl__dataset_create(sl_dataset **out, const sl__dataset_ops *ops, sl_dataset *const *inputs,
                       int ninputs, void *params, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Moves src's tensors into dst (empty) and leaves src empty, touching only the used entries
 * (an sl_element is 1.5 KB; most hold one or two tensors). */
static inline void sl__element_move(sl_element *dst, sl_element *src)
{
    const int n = src->count;
    memcpy(dst->names, src->names, (size_t)n * sizeof src->names[0]);
    memcpy(dst->tensors, src->tensors, (size_t)n * sizeof src->tensors[0]);
    dst->count = n;
    memset(src->names, 0, (size_t)n * sizeof src->names[0]);
    memset(src->tensors, 0, (size_t)n * sizeof src->tensors[0]);
    src->count = 0;
}

/* Opens `ds` as a stage for the given epoch (recursively opening its inputs), fresh when st
 * is NULL, else at the checkpointed state read from st (a corrupt or foreign state fails with
 * SL_ERR_CORRUPT). */
int sl__stage_open(const sl_dataset *ds, sl__ctx *ctx, uint64_t epoch, sl__state_reader *st,
                   sl__stage **out);
/* Opens ds fresh and moves it to element pos: by seeking when it has random access, else by
 * reading and dropping pos elements (a cache restored without its contents). */
int sl__stage_open_at(const sl_dataset *ds, sl__ctx *ctx, uint64_t epoch, uint64_t pos,
                      sl__stage **out);
/* Writes s's state (a marker of its kind, then ops->save); SL_ERR_NOT_CHECKPOINTABLE naming
 * the first stage that cannot. */
int sl__stage_save(sl__stage *s, sl__state_writer *w);
/* sl__stage_save for work-ahead stages' per-element snapshots: a stage that refuses (one the
 * dataset-level check could not see, e.g. inside an interleave's inner pipeline) does not
 * fail the stream; SL_ERR_NOT_CHECKPOINTABLE comes back with the refusal's text in why, for
 * the work-ahead stage's own `save` to report later. */
int sl__stage_snapshot(sl__stage *s, sl__state_writer *w, char *why, size_t whycap);
/* 1 when every node of the chain under ds can be checkpointed (work-ahead stages snapshot
 * their input only then). */
int sl__dataset_checkpointable(const sl_dataset *ds);
/* Reads and checks the kind marker sl__stage_save wrote before ds's state. */
int sl__state_check_marker(const sl_dataset *ds, sl__state_reader *st);
/* The pipeline's identity for checkpoints: its canonical text, shard arguments left out. */
uint64_t sl__dataset_fingerprint(const sl_dataset *ds);
/* The iterator's blob: header, the top stage's state, crc32c (sl_malloc'd). */
int sl__checkpoint_encode(sl__stage *top, const sl_dataset *ds, uint64_t seed, uint8_t **blob,
                          size_t *len);
/* Checks a blob's header and crc against ds and seed; st then reads the stage states. */
int sl__checkpoint_decode(const sl_dataset *ds, uint64_t seed, const uint8_t *blob, size_t len,
                          sl__state_reader *st, sl_errmsg *err);
static inline int sl__stage_seek(sl__stage *s, uint64_t pos)
{
    return s->ops->seek ? s->ops->seek(s, pos) : SL_ERR_UNSUPPORTED;
}
int sl__stage_next_timed(sl__stage *s, sl_element *out);
static inline int sl__stage_next(sl__stage *s, sl_element *out)
{
    sl__node_stats *st = s->stats;
    if (!st)
        return s->ops->next(s, out);
    const uint64_t calls = atomic_load_explicit(&st->calls, memory_order_relaxed);
    /* One call in each run of SL__SAMPLE_EVERY, at a position that changes from run to run
     * (a multiplicative hash of the run's number): a fixed position would alias with a stage
     * whose costly calls are periodic (global_shuffle refills its window every 32 calls) and
     * measure only those. Never the first call, which often fills a buffer. */
    const uint64_t run = calls / SL__SAMPLE_EVERY + 1;
    if (calls % SL__SAMPLE_EVERY == (run * 0x9E3779B97F4A7C15ull) >> 58)
        return sl__stage_next_timed(s, out);
    const int rc = s->ops->next(s, out);
    if (rc == 0)
        atomic_store_explicit(&st->calls, calls + 1, memory_order_relaxed);
    return rc;
}
static inline void sl__stage_cancel(sl__stage *s)
{
    if (s && s->ops->cancel)
        s->ops->cancel(s);
}
void sl__stage_close(sl__stage *s); /* NULL does nothing */

static inline int sl__dataset_random_access(const sl_dataset *ds)
{
    return ds->ops->random_access && ds->ops->random_access(ds);
}
static inline int sl__stage_get(sl__stage *s, uint64_t i, sl_element *out)
{
    return s->ops->get(s, i, out);
}
/* `get_batch` where the stage has one, else `get` element by element (same contract). */
int sl__stage_get_batch(sl__stage *s, const uint64_t *idx, size_t n, sl_element *out);

/* Records an error "<stage text>: <formatted>: <cause>" (first one wins) and returns code. */
int sl__stage_fail(sl__stage *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* As sl__stage_fail but the text is used as is (already carries its context). */
int sl__stage_fail_raw(sl__stage *s, int code, const char *text);
/* SL_ON_ERROR_SKIP: counts one dropped element. */
static inline void sl__ctx_count_skip(sl__ctx *ctx)
{
    atomic_fetch_add_explicit(&ctx->skipped, 1, memory_order_relaxed);
}
static inline int sl__ctx_cancelled(const sl__ctx *ctx)
{
    return atomic_load_explicit(&ctx->cancelled, memory_order_relaxed);
}

/* Tuning hooks, safe while the iterator runs (AUTOTUNE will call them). SL_ERR_INVAL when the
 * stage is not of that kind. */
int sl__prefetch_set_capacity(sl__stage *s, int64_t capacity);
/* A parallel map's worker tasks in flight (1 .. its slots), or 0: inline mode, the function
 * runs on the consumer's thread with no handoff (stage_map.c); SL_ERR_INVAL for other stages,
 * including a map opened sequential (parallel = 1). */
int sl__map_set_parallel(sl__stage *s, int parallel);
/* An interleave's runners serving slots (1 .. the threads it opened); SL_ERR_INVAL for other
 * stages and for an interleave opened sequential. */
int sl__interleave_set_parallel(sl__stage *s, int parallel);

/* map -> batch fusion (tf.data's map_and_batch): when a plain batch(N) reads straight from an
 * ordered map, the batch stage owns a destination (stage_batch.c) and hands it to the map, whose
 * workers write each output tensor straight into its row of the batch being assembled (the
 * function through sl_map_ctx_alloc, or the worker copying it there), so batch() hands out the
 * filled buffer instead of allocating and copying. Nothing else changes: both stages keep their
 * nodes, counters, checkpoint state and error policy; the row of map index i is predicted as
 * i + offset (offset drops by one per element the map skips), and a batch whose rows are not
 * all in place (a skip, a layout change, a full table) is stacked by copying as before.
 * Locking: the destination's own mutex, held for a table lookup only, never while calling
 * anything else. */
typedef struct sl__batch_dest sl__batch_dest;
/* 1 (default): batch over an ordered map fuses. Tests set 0 to compare against the unfused
 * pair (the pipeline text, and so checkpoints, are the same either way). */
extern _Atomic int sl__map_batch_fusion;
/* An sl_map_alloc_fn: a view of row (index + offset) % N of that batch's tensor `name`,
 * creating the batch's tensor on first use with this element's layout; nonzero when the row
 * is taken, the layout differs or the table is full. user is the sl__batch_dest. */
int sl__batch_dest_alloc(void *user, uint64_t index, const char *name, sl_dtype dtype, int rank,
                         const int64_t *shape, sl_tensor *out);
/* Worker side, after the function: copies each output tensor of SL__DEST_PLACE_MIN bytes or
 * more not yet in its row into it (so the copy runs on the workers, in parallel, and the batch
 * is one buffer per field); smaller ones are left to batch's copy, which costs less than the
 * lookup. */
enum { SL__DEST_PLACE_MIN = 4096 };
/* Whether e may hold a tensor that large (8 bytes is the widest dtype): the map's workers skip
 * the call below for elements of scalars, inline, as it runs per element. */
static inline int sl__element_may_place(const sl_element *e)
{
    for (int k = 0; k < e->count; k++) {
        int64_t numel = 1;
        for (int d = 0; d < e->tensors[k].rank; d++)
            numel *= e->tensors[k].shape[d];
        if (numel * 8 >= SL__DEST_PLACE_MIN)
            return 1;
    }
    return 0;
}
void sl__batch_dest_place(sl__batch_dest *d, uint64_t index, sl_element *e);
/* The map skipped an element (SL_ON_ERROR_SKIP): later indices move one row back. */
void sl__batch_dest_skipped(sl__batch_dest *d);
/* Gives map stage s the destination before its first `next`; *index gets the map index of
 * the next element it will hand out. SL_ERR_INVAL when s is not a map stage that can (filter,
 * unordered map). */
int sl__map_attach_dest(sl__stage *s, sl__batch_dest *d, uint64_t *index);

/* The open stage running the first node of `kind` in depth-first order (for tuning), or NULL.
 * The pointer stays valid while the iterator's thread is not inside sl_iter_next only when no
 * repeat() above it reopens it: callers are tests and the autotuner's own thread, under
 * ctx->mu. */
sl__stage *sl__ctx_live_stage(sl__ctx *ctx, const char *kind);
sl__ctx *sl__iter_ctx(sl_iter *it);

/* AUTOTUNE's driver (autotune.c): a thread that retunes the pipeline's `auto` knobs while the
 * iterator runs. Start after the stages opened; *out stays NULL (and no thread starts) when
 * nothing is auto. memory_bytes: the iterator's budget (<= 0: the default 1 GiB). Stop joins
 * the thread; call it before any stage closes. NULL does nothing. */
typedef struct sl__autotuner sl__autotuner;
int sl__autotune_start(sl_iter *it, int64_t memory_bytes, sl__autotuner **out);
void sl__autotune_stop(sl__autotuner *t);

/* Fails with SL_ERR_BUDGET and a message naming the largest holder when the buffers of ds's
 * stages, estimated from element sizes, exceed budget (<= 0: the default 1 GiB). */
int sl__memory_check(const sl_dataset *ds, int threads, int64_t budget, sl_errmsg *err);
/* The bytes the node ds's own buffers reserve under that check (0: none or unknown). */
int64_t sl__memory_reserved(const sl_dataset *ds, int threads);
/* count * each, saturating; -1 when either is unknown (negative). */
int64_t sl__memory_scaled(int64_t count, int64_t each);

/* The RNG seed of a stage: its own when given, else derived from the pipeline seed and the
 * stage's kind, so two stages of one pipeline do not share a stream. */
uint64_t sl__stage_seed(const sl__ctx *ctx, uint64_t own, const char *salt);

#endif

/*
 * The streaming engine: datasets (immutable recipes) and iterators (running traversals).
 *
 * A dataset describes a stream of elements; building one never does I/O or starts threads and
 * a dataset can be opened any number of times, from any thread. An iterator is one traversal:
 * it owns a worker pool sized by its CPU budget, the bounded buffers between stages, and every
 * element buffer it hands out until the caller releases it. `sl_iter_close` at any moment
 * cancels, joins and frees everything.
 *
 * An element is a small tuple of named tensors. Tensors are backed by reference-counted
 * buffers: an element returned by sl_iter_next belongs to the caller until
 * sl_element_release, and may outlive the iterator.
 *
 * Datasets are reference counted: constructors that take an input dataset take their own
 * reference, so the caller releases its reference whenever it is done with it:
 *
 *     sl_dataset *r, *m, *b;
 *     sl_dataset_range(&r, 0, 1000, 1);
 *     sl_dataset_batch(&b, r, 10, 1);    // b holds r
 *     sl_dataset_release(r);
 *
 * Threading: datasets are immutable and may be shared by threads. An iterator is used by one
 * thread at a time (sl_iter_close may come from any thread that owns it).
 */
#ifndef SLUICE_PIPELINE_H
#define SLUICE_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/rng.h"
#include "sluice/status.h"
#include "sluice/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- elements ----------------------------------------------------------------------------- */

enum { SL_ELEMENT_MAX = 16 };

typedef struct sl_element {
    int count;                         /* tensors in the tuple */
    const char *names[SL_ELEMENT_MAX]; /* static strings owned by the dataset */
    sl_tensor tensors[SL_ELEMENT_MAX]; /* each holds its own buffer reference */
} sl_element;

/* Releases every tensor and zeroes the element. NULL and empty elements are fine. */
void sl_element_release(sl_element *e);
/* Index of the tensor called `name`, or SL_ERR_NOT_FOUND. */
int sl_element_find(const sl_element *e, const char *name);
/* The tensor called `name`, or NULL. */
const sl_tensor *sl_element_get(const sl_element *e, const char *name);
/* Appends a tensor (taking over its buffer reference). SL_ERR_RANGE when full. */
int sl_element_push(sl_element *e, const char *name, sl_tensor *t);
/* dst becomes a copy of src sharing src's buffers (references retained). */
void sl_element_share(sl_element *dst, const sl_element *src);

/* ---- datasets ----------------------------------------------------------------------------- */

typedef struct sl_dataset sl_dataset;

void sl_dataset_retain(sl_dataset *ds);
void sl_dataset_release(sl_dataset *ds); /* NULL does nothing */

/* Number of elements when known without a pass, else SL_CARDINALITY_UNKNOWN;
 * SL_CARDINALITY_INFINITE for repeat() forever. */
#define SL_CARDINALITY_UNKNOWN  (-1)
#define SL_CARDINALITY_INFINITE (-2)
int64_t sl_dataset_cardinality(const sl_dataset *ds);

/* The dataset's canonical pipeline text, e.g. "range(0, 10) | batch(4)". Returns the length
 * snprintf would have written. */
int sl_dataset_print(const sl_dataset *ds, char *buf, size_t cap);

/* Sources. Every element of range() is {"value": int64 scalar}. */
int sl_dataset_range(sl_dataset **out, int64_t start, int64_t stop, int64_t step);

/* In-memory elements: the dataset shares the given elements' buffers (retained). */
int sl_dataset_from_elements(sl_dataset **out, const sl_element *elements, size_t count);

/* A user generator: fn fills *out and returns 0, SL_EOF at the end, or an error. Called from
 * one thread at a time. Not checkpointable. */
typedef int (*sl_generator_fn)(void *user, uint64_t index, sl_element *out);
int sl_dataset_generator(sl_dataset **out, sl_generator_fn fn, void *user, const char *name);

/* Sluice files (paths or glob patterns; each pattern must match, matches are sorted). Every
 * file is opened here to learn its record count and schema (all must agree), so the dataset
 * has a cardinality and random access. Elements: {"record": bytes} for opaque records, one
 * tensor per schema field for typed records (views of the reader's buffers, no copy). On
 * failure err (may be NULL) gets a one-line reason naming the file. */
int sl_dataset_records(sl_dataset **out, const char *const *patterns, size_t n, char *err,
                       size_t errcap);
/* TFRecord files (plain, GZIP or ZLIB, detected): {"record": bytes}. When every file has an
 * index FILE.idx (sluice index), the dataset has a cardinality and random access. */
int sl_dataset_tfrecord(sl_dataset **out, const char *const *patterns, size_t n, char *err,
                        size_t errcap);

/* Mixes n inputs (n <= 16): each element comes from input k with probability proportional
 * to weights[k] (NULL: equal), drawn from a stream keyed by (seed, epoch, output index). An
 * input that ends leaves the draw, unless stop_on_empty_dataset ends the whole stream then. */
int sl_dataset_sample_from(sl_dataset **out, sl_dataset *const *inputs, int n,
                           const double *weights, uint64_t seed, int stop_on_empty_dataset);
/* Element i comes from input choices[i] (an int64 scalar per element of `choices`, n <= 15);
 * choosing an input that has ended is an error. */
int sl_dataset_choose_from(sl_dataset **out, sl_dataset *const *inputs, int n, sl_dataset *choices);

/* ---- map functions ------------------------------------------------------------------------ */

/* What a map or filter function gets besides the element: the element's index in the map's
 * input stream, the epoch, and a counter-based RNG keyed by (seed, epoch, index), identical for
 * every thread count and after a restore. Functions draw from ctx->rng in place: the
 * functions of one map(f, g, ...) get the same context in turn, so g continues f's stream. */
typedef struct sl_map_ctx sl_map_ctx;

/* Where a map function's output tensor may go: a tensor of exactly this dtype and shape whose
 * data the function must write in full (it is uninitialised), e.g. a row of the batch that a
 * following batch() is assembling. Returns 0 with *out filled, or nonzero when the engine has
 * no destination for it (the caller then allocates its own). */
typedef int (*sl_map_alloc_fn)(void *user, uint64_t index, const char *name, sl_dtype dtype,
                               int rank, const int64_t *shape, sl_tensor *out);

struct sl_map_ctx {
    uint64_t index;
    uint64_t epoch;
    sl_rng rng;
    /* Optional (NULL: none). Only the last function of a map(f, g, ...) gets it: earlier
     * functions' outputs are inputs of the next, not the map's output. */
    sl_map_alloc_fn alloc;
    void *alloc_user;
};

/* A tensor for the map function's output tensor `name`: the engine's destination when it
 * offers one (no copy later), else a fresh sl_tensor_alloc. Release it on failure as usual. A
 * function that allocates its outputs itself keeps working: the engine copies them where they
 * go. */
static inline int sl_map_ctx_alloc(const sl_map_ctx *ctx, const char *name, sl_dtype dtype,
                                   int rank, const int64_t *shape, sl_tensor *out)
{
    if (ctx && ctx->alloc &&
        ctx->alloc(ctx->alloc_user, ctx->index, name, dtype, rank, shape, out) == 0)
        return 0;
    return sl_tensor_alloc(out, dtype, rank, shape);
}

/* A map function: consumes *in (it must release or move every tensor of it) and fills *out.
 * Returns 0 or an error (the pipeline's error policy decides what happens then); it may write
 * a one-line reason into err. Called concurrently from worker threads: it must be thread-safe
 * for distinct elements. */
typedef int (*sl_map_fn)(void *user, sl_map_ctx *ctx, sl_element *in, sl_element *out, char *err,
                         size_t errcap);
/* A predicate: 1 keep, 0 drop, negative error. Does not consume the element. */
typedef int (*sl_filter_fn)(void *user, sl_map_ctx *ctx, const sl_element *e, char *err,
                            size_t errcap);

/* A named function with its user pointer and, optionally, a destructor for the pointer that
 * runs when the last dataset holding it is released. */
typedef struct sl_map_def {
    const char *name; /* canonical text of the call, e.g. "normalize(imagenet)" */
    sl_map_fn fn;
    void *user;
    void (*free_user)(void *user);
} sl_map_def;

enum { SL_PARALLEL_AUTO = -1 };

typedef struct sl_map_options {
    int parallel;  /* worker tasks in flight: 1 (default, sequential), N, or SL_PARALLEL_AUTO */
    int unordered; /* 1: hand out results as they complete (not checkpointable) */
    uint64_t seed; /* seed of the functions' RNG (mixed with the iterator's seed) */
} sl_map_options;

/* ---- transforms --------------------------------------------------------------------------- */

/* fn->user passes to the dataset: fn->free_user(fn->user) runs when the dataset goes, or at
 * once when sl_dataset_map fails. */
int sl_dataset_map(sl_dataset **out, sl_dataset *in, const sl_map_def *fn,
                   const sl_map_options *opts);
int sl_dataset_filter(sl_dataset **out, sl_dataset *in, sl_filter_fn fn, void *user,
                      const char *name);
int sl_dataset_batch(sl_dataset **out, sl_dataset *in, int64_t batch_size, int drop_remainder);
/* batch for tensors whose dimensions differ: every dimension is padded to the batch's largest
 * with padding_value (converted to the tensor's dtype). Ranks and dtypes must agree; byte
 * strings are refused (decode them first). */
int sl_dataset_padded_batch(sl_dataset **out, sl_dataset *in, int64_t batch_size,
                            double padding_value, int drop_remainder);
int sl_dataset_unbatch(sl_dataset **out, sl_dataset *in);
int sl_dataset_prefetch(sl_dataset **out, sl_dataset *in, int64_t buffer /* or AUTO */);
int sl_dataset_take(sl_dataset **out, sl_dataset *in, int64_t count);
int sl_dataset_skip(sl_dataset **out, sl_dataset *in, int64_t count);
/* count < 0: forever. */
int sl_dataset_repeat(sl_dataset **out, sl_dataset *in, int64_t count);
int sl_dataset_shard(sl_dataset **out, sl_dataset *in, int64_t num_shards, int64_t index);
/* Adds {"index": int64} as the first tensor of every element. */
int sl_dataset_enumerate(sl_dataset **out, sl_dataset *in, int64_t start);
/* buffer >= 1; seed 0 = take the iterator's seed; reshuffle: a new order each epoch. */
int sl_dataset_shuffle(sl_dataset **out, sl_dataset *in, int64_t buffer, uint64_t seed,
                       int reshuffle_each_iteration);

/* Relabels tensor from[k] as to[k] in every element (n <= SL_ELEMENT_MAX); an element without
 * from[k] is an error naming it. */
int sl_dataset_rename(sl_dataset **out, sl_dataset *in, const char *const *from,
                      const char *const *to, int n);
/* Keeps only the tensors named names[0..n) (distinct, n <= SL_ELEMENT_MAX), in that order; an
 * element without one of them is an error naming it. */
int sl_dataset_select(sl_dataset **out, sl_dataset *in, const char *const *names, int n);

/* Keeps the first complete pass over `in` in memory (sharing the elements' buffers) and
 * replays it in later epochs (under repeat) without reading `in` again. A pass that stops
 * early keeps nothing. The memory is the iterator's until it closes. */
int sl_dataset_cache(sl_dataset **out, sl_dataset *in);
/* cache to a file: the first complete pass is written to a sluice file at `path` (published
 * atomically when the pass ends; a pass that stops early leaves no file), and every later
 * pass, in this iterator or any later one, reads the file instead of `in`. An existing file at
 * `path` is used as it is: delete it when the input changes. */
int sl_dataset_cache_file(sl_dataset **out, sl_dataset *in, const char *path);

/* Elements of a and b side by side (a's tensors, then b's), until the shorter input ends. A
 * tensor name found in both is an error naming it. Random access when both have it. */
int sl_dataset_zip(sl_dataset **out, sl_dataset *a, sl_dataset *b);

/* A seeded permutation of the whole input in O(1) memory (each epoch a new one unless
 * reshuffle_each_iteration is 0). The input must be random access with a known cardinality
 * (sources over indexed files, range, in-memory elements, and map/take/skip/shard/enumerate
 * over those); SL_ERR_UNSUPPORTED otherwise. */
int sl_dataset_global_shuffle(sl_dataset **out, sl_dataset *in, uint64_t seed,
                              int reshuffle_each_iteration);

/* tf.train.Example payloads ({"record": bytes}) into named tensors, by a schema text
 * ("image:bytes,label:int64,emb:float32[4],ids:int64[-1]"): int64 and float32 fields of fixed
 * shape are FixedLen, rank-1 fields with -1 are VarLen, bytes fields one byte string. Floats
 * and bytes are views of the record. On a bad schema err gets a one-line reason. */
int sl_dataset_parse_example(sl_dataset **out, sl_dataset *in, const char *schema_text, char *err,
                             size_t errcap);

/* ---- interleave --------------------------------------------------------------------------- */

/* Builds the inner dataset for one element of interleave's input (e.g. records over the file
 * the element names): *inner gets a new reference, which interleave releases. Returns 0 or an
 * error, with a one-line reason in err. Called on the thread that calls sl_iter_next (and again
 * for the open inner datasets when restoring), never concurrently for one iterator; it must give
 * the same dataset for the same element every time. */
typedef int (*sl_interleave_fn)(void *user, const sl_element *outer, sl_dataset **inner, char *err,
                                size_t errcap);

typedef struct sl_interleave_options {
    int64_t cycle_length; /* inner datasets open at once (1 to 1024; 0 means 1) */
    int64_t block_length; /* consecutive elements from each before moving on (0 means 1) */
    /* 1 (default, and 0): inner streams are read on the calling thread. N > 1 or
     * SL_PARALLEL_AUTO (the CPU budget): min(N, cycle_length) threads read the open inner
     * streams ahead, each serving a fixed share of the cycle; the output is unchanged. */
    int parallel;
    /* 1: take from any inner stream that has an element ready (needs parallel > 1 to matter;
     * not checkpointable) */
    int unordered;
    void (*free_user)(void *user); /* runs when the dataset goes, or at once when creation fails */
} sl_interleave_options;

/* For each element of `in`, make_inner builds an inner dataset; the output interleaves up to
 * cycle_length inner streams, block_length elements from each in turn, in tf.data's
 * deterministic order: a slot whose stream ends takes the next input element when the round
 * robin next reaches it. name is the canonical text of the inner pipeline (for messages).
 * Checkpoints save every open slot's input element position and inner state; restoring
 * rebuilds the inner datasets by pulling those elements again from `in` restored to earlier
 * states, reading no inner element before its saved position. With SL_ON_ERROR_SKIP an element
 * whose inner dataset cannot be built is dropped and counted. */
int sl_dataset_interleave(sl_dataset **out, sl_dataset *in, sl_interleave_fn make_inner, void *user,
                          const char *name, const sl_interleave_options *opts);

/* The files matching each pattern (glob(3), sorted within a pattern, in pattern order; a pattern
 * that matches nothing is an error naming it) as elements {"path": bytes}, nothing opened: the
 * input of interleave(records($path), ...). Random access, known cardinality. On failure err (may
 * be NULL) gets a one-line reason. */
int sl_dataset_file_list(sl_dataset **out, const char *const *patterns, size_t n, char *err,
                         size_t errcap);

/* ---- iterators ---------------------------------------------------------------------------- */

typedef enum sl_error_policy {
    SL_ON_ERROR_FAIL = 0, /* the first element error ends the iteration with that error */
    SL_ON_ERROR_SKIP = 1, /* elements whose map/filter/read fails are dropped and counted */
} sl_error_policy;

typedef struct sl_iter_options {
    int threads;          /* CPU budget: worker threads; 0 = number of online CPUs */
    int64_t memory_bytes; /* budget for buffers (shuffle, prefetch, cache, batch); 0 = 1 GiB */
    uint64_t seed;        /* pipeline seed; stages with seed 0 derive theirs from it */
    sl_error_policy on_error;
} sl_iter_options;

typedef struct sl_iter sl_iter;

/* Validates the whole chain (memory budget included) and starts the stages. On failure *out
 * still holds a handle (unless out of memory) for sl_iter_errmsg; close it. */
int sl_iter_open(sl_iter **out, sl_dataset *ds, const sl_iter_options *opts);
/* 0 and *e filled (release it with sl_element_release), SL_EOF at the end, or an error whose
 * message (sl_iter_errmsg) names the stage, and the file and record where there is one. */
int sl_iter_next(sl_iter *it, sl_element *e);
const char *sl_iter_errmsg(const sl_iter *it);
/* Elements dropped by SL_ON_ERROR_SKIP so far. */
uint64_t sl_iter_skipped(const sl_iter *it);
void sl_iter_close(sl_iter *it); /* NULL does nothing */

/* Per-stage counters, sampled cheaply (a clock read on one `next` call in 64, none per
 * element): one entry per node of the pipeline, the last stage first and inputs after it.
 * The full counters and their analysis (bottleneck, predictions): sluice/profile.h. */
typedef struct sl_stage_stats {
    const char *stage;     /* the stage's canonical text (valid while the dataset lives) */
    int depth;             /* 0: the pipeline's last stage; an input is one deeper */
    uint64_t elements;     /* elements the stage has returned */
    double ns_per_element; /* time per returned element in its `next`, its inputs' included
                            * (for a stage above a work-ahead stage: the wait) */
    uint64_t bytes;        /* tensor bytes returned (estimated from the sampled calls) */
    uint64_t wait_ns;      /* work-ahead stages: the consumer's time blocked in `next` */
    uint64_t blocked_ns;   /* work-ahead stages: the producer's time blocked on a full ring */
    uint64_t busy_ns;      /* parallel map: time spent in the function, all threads together */
} sl_stage_stats;
/* Fills up to cap entries; returns the number of nodes (call with cap 0 to size). */
int sl_iter_stats(const sl_iter *it, sl_stage_stats *out, int cap);

/* ---- checkpoints -------------------------------------------------------------------------- */

/* The iterator's position after the elements returned so far, as a small blob (*blob is
 * sl_malloc'd: release it with sl_free). Restoring it continues with exactly the elements an
 * uninterrupted run would have returned next, without reading what came before: sources seek,
 * shuffle re-draws its buffer's indices, work-ahead stages save the state their input had when
 * the last returned element was pulled. A blob stays valid when shard(n, i)'s arguments
 * change (a job restarted on a different number of processes). Fails with
 * SL_ERR_NOT_CHECKPOINTABLE, sl_iter_errmsg naming the stage, for an unordered map, a
 * generator, or shuffle over an input without random access. Call between sl_iter_next calls. */
int sl_iter_save(sl_iter *it, uint8_t **blob, size_t *len);
/* Opens an iterator over ds that continues where `blob` was saved. ds must print the same
 * pipeline text (shard arguments aside) and opts the same seed; otherwise this fails (the
 * message says why) and *out is a handle for sl_iter_errmsg, as with sl_iter_open. */
int sl_iter_restore(sl_iter **out, sl_dataset *ds, const sl_iter_options *opts, const uint8_t *blob,
                    size_t len);

#ifdef __cplusplus
}
#endif
#endif

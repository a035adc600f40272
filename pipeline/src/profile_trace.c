/*
 * The iterator's trace: Chrome Trace Event Format spans, recorded only while a trace is on.
 *
 * Owns one fixed array of events allocated at sl_iter_trace_start (no allocation while
 * recording; events past its end are counted and dropped) and the names of the threads that
 * recorded. Spans come per batch of work (a sampled `next` call, a map worker's drain, one
 * wait), never per element, so the mutex is taken a few times per 64 elements at most.
 *
 * Threading: any thread of the iterator records (sl__trace_span); `mu` guards count, dropped
 * and the thread table. It is a leaf lock: stages record while holding their own `mu`, and
 * nothing is locked while it is held. Events below `count` never change once written, so the writer
 * copies count under the lock and reads them without it. The trace is freed at sl_iter_close after
 * every thread is joined. Each thread remembers, in thread-local storage, the id of the trace
 * it last registered its name with (ids are never reused, unlike addresses).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine_internal.h"
#include "sluice/alloc.h"
#include "sluice/profile.h"

enum { MAX_THREADS = 256, DEFAULT_EVENTS = 200000, NAME_CAP = 16 };

typedef struct trace_event {
    const char *name; /* a stage's text: lives as long as the iterator's dataset */
    const char *cat;  /* a string literal */
    uint64_t t0, dur; /* ns */
    uint64_t n;       /* elements the span covered */
    int tid;
} trace_event;

struct sl__trace {
    uint64_t id;
    pthread_mutex_t mu;
    trace_event *ev; /* (cap) */
    size_t cap;
    size_t count;     /* guarded by mu */
    uint64_t dropped; /* guarded by mu */
    struct {
        int tid;
        char name[NAME_CAP];
    } threads[MAX_THREADS]; /* guarded by mu */
    int nthreads;           /* guarded by mu */
};

static _Atomic uint64_t next_trace_id = 1;
static _Thread_local uint64_t tl_trace_id;
static _Thread_local int tl_tid;

/* First span of this thread in this trace: learn its id and name. */
static void register_thread(sl__trace *t)
{
    tl_tid = (int)syscall(SYS_gettid);
    char name[NAME_CAP] = "";
    if (pthread_getname_np(pthread_self(), name, sizeof name) != 0)
        snprintf(name, sizeof name, "thread");
    pthread_mutex_lock(&t->mu);
    int known = 0;
    for (int i = 0; i < t->nthreads; i++)
        known |= t->threads[i].tid == tl_tid;
    if (!known && t->nthreads < MAX_THREADS) {
        t->threads[t->nthreads].tid = tl_tid;
        memcpy(t->threads[t->nthreads].name, name, sizeof name);
        t->nthreads++;
    }
    pthread_mutex_unlock(&t->mu);
    tl_trace_id = t->id;
}

void sl__trace_span(sl__ctx *ctx, const char *name, const char *cat, uint64_t t0, uint64_t t1,
                    uint64_t n)
{
    sl__trace *t = atomic_load_explicit(&ctx->trace, memory_order_acquire);
    if (!t)
        return;
    if (tl_trace_id != t->id)
        register_thread(t);
    pthread_mutex_lock(&t->mu);
    if (t->count < t->cap)
        t->ev[t->count++] = (trace_event){name, cat, t0, t1 >= t0 ? t1 - t0 : 0, n, tl_tid};
    else
        t->dropped++;
    pthread_mutex_unlock(&t->mu);
}

void sl__trace_free(sl__ctx *ctx)
{
    sl__trace *t = atomic_exchange(&ctx->trace, NULL);
    if (!t)
        return;
    pthread_mutex_destroy(&t->mu);
    sl_free(t->ev);
    sl_free(t);
}

int sl_iter_trace_start(sl_iter *it, size_t max_events)
{
    sl__ctx *ctx = sl__iter_ctx(it);
    if (atomic_load(&ctx->trace))
        return SL_ERR_EXISTS;
    sl__trace *t = sl_calloc(1, sizeof *t);
    if (!t)
        return SL_ERR_NOMEM;
    t->cap = max_events ? max_events : DEFAULT_EVENTS;
    if (!(t->ev = sl_malloc(t->cap * sizeof *t->ev))) {
        sl_free(t);
        return SL_ERR_NOMEM;
    }
    t->id = atomic_fetch_add(&next_trace_id, 1);
    pthread_mutex_init(&t->mu, NULL);
    /* release: a thread that sees the pointer sees the initialised trace */
    atomic_store_explicit(&ctx->trace, t, memory_order_release);
    return 0;
}

static void put_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

int sl_iter_trace_write(sl_iter *it, const char *path)
{
    sl__ctx *ctx = sl__iter_ctx(it);
    sl__trace *t = atomic_load_explicit(&ctx->trace, memory_order_acquire);
    if (!t)
        return SL_ERR_INVAL;
    pthread_mutex_lock(&t->mu);
    const size_t count = t->count;
    const uint64_t dropped = t->dropped;
    const int nthreads = t->nthreads;
    int tids[MAX_THREADS];
    char names[MAX_THREADS][NAME_CAP];
    for (int i = 0; i < nthreads; i++) {
        tids[i] = t->threads[i].tid;
        memcpy(names[i], t->threads[i].name, NAME_CAP);
    }
    pthread_mutex_unlock(&t->mu);

    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    const int pid = (int)getpid();
    fprintf(f,
            "{\"displayTimeUnit\": \"ns\", \"otherData\": {\"dropped_events\": %" PRIu64
            "}, \"traceEvents\": [\n",
            dropped);
    fprintf(f,
            "{\"ph\": \"M\", \"pid\": %d, \"tid\": 0, \"ts\": 0, \"name\": \"process_name\", "
            "\"args\": {\"name\": \"sluice\"}}",
            pid);
    for (int i = 0; i < nthreads; i++) {
        fprintf(f,
                ",\n{\"ph\": \"M\", \"pid\": %d, \"tid\": %d, \"ts\": 0, \"name\": "
                "\"thread_name\", \"args\": {\"name\": ",
                pid, tids[i]);
        put_json_string(f, names[i]);
        fputs("}}", f);
    }
    /* Times in microseconds from the iterator's open, to the nanosecond. */
    for (size_t i = 0; i < count; i++) {
        const trace_event *e = &t->ev[i];
        const uint64_t ts = e->t0 >= ctx->opened_ns ? e->t0 - ctx->opened_ns : 0;
        fprintf(f,
                ",\n{\"ph\": \"X\", \"pid\": %d, \"tid\": %d, \"ts\": %.3f, \"dur\": %.3f, "
                "\"cat\": \"%s\", \"name\": ",
                pid, e->tid, (double)ts / 1e3, (double)e->dur / 1e3, e->cat);
        put_json_string(f, e->name);
        fprintf(f, ", \"args\": {\"elements\": %" PRIu64 "}}", e->n);
    }
    fputs("\n]}\n", f);
    const int werr = ferror(f);
    if (fclose(f) != 0 || werr)
        return -(errno ? errno : EIO);
    return 0;
}

/*
 * Progress line. Counters are atomics so worker threads report directly; whoever notices that
 * 200 ms have passed since the last draw takes the draw with a compare-and-swap on
 * `next_draw_ns`, so at most one thread writes at a time and nobody waits for it.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core_internal.h"
#include "sluice/alloc.h"
#include "sluice/clock.h"
#include "sluice/progress.h"

enum { DRAW_INTERVAL_NS = 200000000 };

struct sl_progress {
    FILE *stream;
    char label[48];
    char unit[24];
    int enabled;
    uint64_t start_ns;
    _Atomic uint64_t done;
    _Atomic uint64_t bytes;
    _Atomic uint64_t total;
    _Atomic uint64_t next_draw_ns;
    size_t last_width; /* written only by the drawing thread */
    pthread_mutex_t note_mu;
    char note[96]; /* appended to the line; guarded by note_mu */
};

static int append(char *buf, size_t cap, int at, const char *fmt, double v)
{
    const size_t pos = (size_t)at < cap ? (size_t)at : cap;
    return at + snprintf(buf + pos, cap - pos, fmt, v);
}

static int append_duration(char *buf, size_t cap, int at, const char *prefix, double s)
{
    const size_t pos = (size_t)at < cap ? (size_t)at : cap;
    const unsigned long long t = (unsigned long long)(s + 0.5);
    if (t >= 3600)
        return at + snprintf(buf + pos, cap - pos, "%s%lluh%02llum", prefix, t / 3600, t / 60 % 60);
    if (t >= 60)
        return at + snprintf(buf + pos, cap - pos, "%s%llum%02llus", prefix, t / 60, t % 60);
    return at + snprintf(buf + pos, cap - pos, "%s%llus", prefix, t);
}

int sl_progress_format(char *buf, size_t cap, const char *label, uint64_t done, uint64_t total,
                       uint64_t bytes, uint64_t elapsed_ns, const char *unit)
{
    const double secs = (double)elapsed_ns / 1e9;
    int n;
    if (total)
        n = snprintf(buf, cap, "%s  %llu/%llu %s  %3.0f%%", label, (unsigned long long)done,
                     (unsigned long long)total, unit, 100.0 * (double)done / (double)total);
    else
        n = snprintf(buf, cap, "%s  %llu %s", label, (unsigned long long)done, unit);
    if (secs > 0) {
        const double rate = (double)done / secs;
        n = append(buf, cap, n, rate >= 100 ? "  %.0f" : "  %.1f", rate);
        const size_t pos = (size_t)n < cap ? (size_t)n : cap;
        n += snprintf(buf + pos, cap - pos, " %s/s", unit);
        if (bytes)
            n = append(buf, cap, n, "  %.1f MB/s", (double)bytes / secs / 1e6);
        if (total && done && done < total)
            n = append_duration(buf, cap, n, "  ETA ", (double)(total - done) / rate);
        else if (total && done >= total)
            n = append_duration(buf, cap, n, "  in ", secs);
    }
    return n;
}

int sl_progress_open(sl_progress **out, FILE *stream, const char *label, uint64_t total,
                     const char *unit, int flags)
{
    *out = NULL;
    sl_progress *p = sl_calloc(1, sizeof *p);
    if (!p)
        return SL_ERR_NOMEM;
    p->stream = stream;
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    snprintf(p->unit, sizeof p->unit, "%s", unit ? unit : "items");
    p->enabled = stream && ((flags & SL_PROGRESS_ALWAYS) || isatty(fileno(stream)));
    p->start_ns = sl_clock_ns();
    atomic_init(&p->total, total);
    atomic_init(&p->next_draw_ns, p->start_ns + DRAW_INTERVAL_NS);
    pthread_mutex_init(&p->note_mu, NULL);
    *out = p;
    return 0;
}

static void draw(sl_progress *p, int final)
{
    char line[384];
    int n = sl_progress_format(line, sizeof line, p->label, atomic_load(&p->done),
                               atomic_load(&p->total), atomic_load(&p->bytes),
                               sl_clock_ns() - p->start_ns, p->unit);
    pthread_mutex_lock(&p->note_mu);
    if (p->note[0] && n >= 0 && (size_t)n < sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, "  %s", p->note);
    pthread_mutex_unlock(&p->note_mu);
    const size_t len = SL_MIN((size_t)(n < 0 ? 0 : n), sizeof line - 1);
    /* Pad with spaces to erase the tail of a longer previous line. */
    const int pad = p->last_width > len ? (int)(p->last_width - len) : 0;
    fprintf(p->stream, "\r%s%*s%s", line, pad, "", final ? "\n" : "");
    fflush(p->stream);
    p->last_width = len;
}

void sl_progress_add(sl_progress *p, uint64_t items, uint64_t bytes)
{
    if (!p)
        return;
    atomic_fetch_add_explicit(&p->done, items, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->bytes, bytes, memory_order_relaxed);
    if (!p->enabled)
        return;
    uint64_t due = atomic_load_explicit(&p->next_draw_ns, memory_order_relaxed);
    const uint64_t now = sl_clock_ns();
    if (now >= due &&
        atomic_compare_exchange_strong(&p->next_draw_ns, &due, now + DRAW_INTERVAL_NS))
        draw(p, 0);
}

void sl_progress_set_note(sl_progress *p, const char *note)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->note_mu);
    const size_t cap = sizeof p->note;
    if (strlen(note) < cap)
        snprintf(p->note, cap, "%s", note);
    else /* cut, and say so: a line longer than the terminal would not redraw in place */
        snprintf(p->note, cap, "%.*s...", (int)(cap - 4), note);
    pthread_mutex_unlock(&p->note_mu);
}

void sl_progress_set_total(sl_progress *p, uint64_t total)
{
    if (p)
        atomic_store(&p->total, total);
}

void sl_progress_close(sl_progress *p)
{
    if (!p)
        return;
    if (p->enabled)
        draw(p, 1);
    pthread_mutex_destroy(&p->note_mu);
    sl_free(p);
}

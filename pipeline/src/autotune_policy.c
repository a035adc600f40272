/*
 * The AUTOTUNE policy: from two counter snapshots to new values for the `auto` knobs.
 *
 * Pure (no clock, no allocation, no globals): the state it keeps between intervals is the
 * caller's plain struct, so tests run it on made-up counters with a fake clock.
 *
 * Signals, per interval (deltas between the snapshots):
 *   - the output rate (the last stage's elements per second): what a trial step must improve;
 *   - a map's workers in flight (sampled once per 64 elements handed out): its utilisation is
 *     workers / parallelism. Its cost per element follows from Little's law, workers in flight
 *     x time / elements, and does not need a worker's drain to end (a saturated map's workers
 *     drain the pending queue for as long as it stays full, so busy_ns lags);
 *   - the consumer's time waiting in a work-ahead stage's `next`, or for a map running its
 *     pending elements itself (the stage, or something below it, is slower than what consumes
 *     it).
 *
 * Rules: a knob climbs by trial steps, one knob at a time so that the rate change can be
 * attributed to it: double, judge on the next interval, keep when the output rate rose by
 * SL_AUTOTUNE_GAIN (a prefetch, whose step costs only memory: SL_AUTOTUNE_PREFETCH_GAIN),
 * else revert and settle; a kept step reopens the other settled knobs, since the bottleneck
 * they were judged behind has moved. Maps back off to what they use when mostly idle for want
 * of input (not when their consumer holds them back).
 * A prefetch tries a bigger ring whenever its consumer waits on an empty one: beyond covering
 * bursts, a bigger ring lets the producer hand over more elements per wakeup, which is what
 * limits cheap stages (the trial rule undoes steps that do not pay).
 * Settled knobs reopen when their stage's cost per element moves by more than 2x.
 *
 * Inline mode (a map knob at 0): a map at one worker runs its function on pool workers and
 * hands each element over, which costs about a microsecond, more than a cheap function. Once
 * a map has no climb ahead of it (settled, or not saturated) and costs under
 * INLINE_MAX_COST_NS an element, it tries inline mode once, judged like any trial step (a
 * revert restores the workers it had). Inline, its
 * cost is the consumer's sampled time in the function; when that rises past 2x the knob returns to
 * one worker and climbs as usual.
 */
#include <string.h>

#include "core_internal.h"
#include "sluice/profile.h"

/* Output elements an interval needs before it is judged; fill samples a map needs. */
enum { MIN_ELEMENTS = 16, MIN_SAMPLES = 2, DEFAULT_MAX_PREFETCH = 64 };
/* An interval this long is judged whatever it holds (a stage that runs rarely). */
static const double MAX_INTERVAL_NS = 2e9;
/* Saturated: workers in flight at least this share of the parallelism. */
static const double BUSY = 0.75;
/* Idle: below this share the map backs off to what it uses, at TARGET utilisation. */
static const double IDLE = 0.40, TARGET = 0.70;
/* A map idle because its consumer is slow (its coordinator waited this share of the interval
 * for ring room) keeps its workers: they cost nothing while idle, and the consumer may speed
 * up (a prefetch growing after it); only a map starved by its input backs off. */
static const double HELD_BACK = 0.25;
/* The consumer waited this share of the interval: the stage is short of elements. */
static const double WAITS = 0.05;
/* Inline mode is tried only by maps cheaper than this per element: about ten handoffs
 * (profile_analysis.c's HANDOFF_NS); a costlier function gains little from losing its handoff
 * and would lose its worker. */
static const double INLINE_MAX_COST_NS = 5000;
/* A prefetch's trial step multiplies its capacity by this: a step costs only memory (bounded
 * by the budget) and each takes two intervals, so big steps reach a useful ring sooner. */
enum { PREFETCH_STEP = 4 };
/* Cost changes beyond this factor reopen a settled knob. */
static const double COST_CHANGE = 2.0;

static uint64_t delta(uint64_t now, uint64_t prev)
{
    return now > prev ? now - prev : 0;
}

static int is_auto_map(const sl_profile_stage *s)
{
    return strcmp(s->kind, "map") == 0 && strstr(s->stage, "parallel=auto") && s->work_ahead;
}

static int is_auto_prefetch(const sl_profile_stage *s)
{
    return strcmp(s->kind, "prefetch") == 0 && strstr(s->stage, "(auto)");
}

/* Whether the call `text` (name(arg, ...)) has `arg` among its own arguments, not inside a
 * nested call or string: interleave's inner pipeline may hold a map(..., parallel=auto). */
static int has_own_arg(const char *text, const char *arg)
{
    const size_t n = strlen(arg);
    int depth = 0, quoted = 0;
    for (const char *p = text; *p; p++) {
        if (quoted) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == '"')
                quoted = 0;
        } else if (*p == '"') {
            quoted = 1;
        } else if (*p == '(' || *p == '[') {
            depth++;
        } else if (*p == ')' || *p == ']') {
            depth--;
        } else if (depth == 1 && (p[-1] == ',' || p[-1] == ' ') && strncmp(p, arg, n) == 0 &&
                   (p[n] == ',' || p[n] == ')')) {
            return 1;
        }
    }
    return 0;
}

static int is_auto_interleave(const sl_profile_stage *s)
{
    return strcmp(s->kind, "interleave") == 0 && s->parallel > 0 &&
           has_own_arg(s->stage, "parallel=auto");
}

/* Knobs that set a number of threads at work (a map's workers, an interleave's runners): they
 * share the CPU budget and follow the same rules. */
static int counts_threads(const sl_autotune_knob *k)
{
    return k->kind == SL_AUTOTUNE_MAP_PARALLEL || k->kind == SL_AUTOTUNE_INTERLEAVE_PARALLEL;
}

int sl_autotune_init(sl_autotune_state *st, const sl_profile_snapshot *s, sl_autotune_decision *out)
{
    memset(st, 0, sizeof *st);
    memset(out, 0, sizeof *out);
    int maps = 0;
    for (int i = 0; i < s->nstages; i++)
        maps += is_auto_map(&s->stages[i]);
    /* Maps start with the CPU budget shared out: a map that cannot use it backs off within an
     * interval or two, while climbing from one worker takes a trial per doubling. */
    const int64_t map_start = SL_MAX(1, s->threads / SL_MAX(maps, 1));
    for (int i = 0; i < s->nstages && st->nknobs < SL_AUTOTUNE_MAX_KNOBS; i++) {
        const sl_profile_stage *g = &s->stages[i];
        sl_autotune_knob *k = &st->knobs[st->nknobs];
        if (is_auto_map(g)) {
            *k = (sl_autotune_knob){
                .kind = SL_AUTOTUNE_MAP_PARALLEL, .stage = i, .value = map_start};
        } else if (is_auto_interleave(g)) {
            *k =
                (sl_autotune_knob){.kind = SL_AUTOTUNE_INTERLEAVE_PARALLEL, .stage = i, .value = 1};
        } else if (is_auto_prefetch(g)) {
            *k = (sl_autotune_knob){
                .kind = SL_AUTOTUNE_PREFETCH, .stage = i, .value = g->slots > 0 ? g->slots : 1};
        } else {
            continue;
        }
        st->nknobs++;
        out->set[out->n].stage = k->stage;
        out->set[out->n].kind = k->kind;
        out->set[out->n].value = k->value;
        out->n++;
    }
    return st->nknobs;
}

/* What one interval says about one knob's stage. */
typedef struct reading {
    double wait_share; /* consumer waiting in the stage's `next` */
    double workers;    /* map: mean workers in flight; -1 unknown */
    double helped;     /* map: the consumer's share of the interval running elements itself */
    double blocked;    /* work-ahead: share of the interval its producer waited for ring room */
    double cost_ns;    /* per element: map work (Little's law), prefetch producer's */
    double elem_bytes; /* prefetch: bytes one ring slot holds */
} reading;

static reading read_stage(const sl_profile_stage *p, const sl_profile_stage *n, double dt)
{
    reading r = {.workers = -1};
    r.wait_share = (double)delta(n->wait_ns, p->wait_ns) / dt;
    r.blocked = (double)delta(n->blocked_ns, p->blocked_ns) / dt;
    const uint64_t samples = delta(n->fill_samples, p->fill_samples);
    const uint64_t elements = delta(n->elements, p->elements);
    if (samples >= MIN_SAMPLES)
        r.workers = (double)delta(n->workers_sum, p->workers_sum) / (double)samples;
    if (strcmp(n->kind, "map") == 0 || strcmp(n->kind, "interleave") == 0) {
        /* A consumer with nothing ready runs pending elements itself rather than sleep: that
         * time is as much a sign of a short map as a wait, and is work done. */
        const double helped = (double)delta(n->helped_ns, p->helped_ns);
        r.helped = helped / dt;
        r.wait_share += r.helped;
        if (r.workers >= 0 && elements > 0)
            r.cost_ns = (r.workers * dt + helped) / (double)elements;
    } else {
        const uint64_t pe = delta(n->producer_elements, p->producer_elements);
        if (pe > 0)
            r.cost_ns = (double)delta(n->producer_ns, p->producer_ns) / (double)pe;
    }
    const uint64_t timed = n->timed, bytes = n->timed_bytes;
    r.elem_bytes = (timed ? (double)bytes / (double)timed : 0) + (double)sizeof(sl_element);
    return r;
}

static int64_t map_budget(const sl_autotune_state *st, const sl_autotune_knob *k, int threads)
{
    int64_t others = 0;
    for (int i = 0; i < st->nknobs; i++)
        if (&st->knobs[i] != k && counts_threads(&st->knobs[i]))
            others += st->knobs[i].value;
    return SL_MAX((int64_t)1, (int64_t)threads - others);
}

static int64_t prefetch_cap(const sl_autotune_state *st, const sl_autotune_limits *lim,
                            double elem_bytes)
{
    int64_t cap = lim->max_prefetch > 0 ? lim->max_prefetch : DEFAULT_MAX_PREFETCH;
    if (lim->memory_bytes > 0) {
        int n = 0;
        for (int i = 0; i < st->nknobs; i++)
            n += st->knobs[i].kind == SL_AUTOTUNE_PREFETCH;
        const double share = (double)lim->memory_bytes / SL_MAX(n, 1);
        cap = SL_MIN(cap, (int64_t)(share / elem_bytes)); /* positive: truncation floors */
    }
    return SL_MAX(cap, (int64_t)1);
}

static void settle(sl_autotune_knob *k, double cost)
{
    k->settled = 1;
    k->settled_cost = cost;
}

/* Reopens a settled knob whose stage's cost moved more than COST_CHANGE either way. */
static void reopen_on_change(sl_autotune_knob *k, double cost)
{
    if (k->settled && cost > 0 && k->settled_cost > 0 &&
        (cost > k->settled_cost * COST_CHANGE || cost * COST_CHANGE < k->settled_cost))
        k->settled = 0;
    if (k->settled && k->settled_cost <= 0)
        k->settled_cost = cost; /* settled before its cost was known */
}

int sl_autotune_step(sl_autotune_state *st, const sl_profile_snapshot *prev,
                     const sl_profile_snapshot *now, const sl_autotune_limits *limits,
                     sl_autotune_decision *out)
{
    memset(out, 0, sizeof *out);
    if (now->nstages != prev->nstages || now->nstages < 1 || now->elapsed_ns <= prev->elapsed_ns)
        return SL_ERR_INVAL;
    for (int i = 0; i < st->nknobs; i++)
        if (st->knobs[i].stage >= now->nstages)
            return SL_ERR_INVAL;
    const double dt = (double)(now->elapsed_ns - prev->elapsed_ns);
    const uint64_t produced = delta(now->stages[0].elements, prev->stages[0].elements);
    int enough = produced >= MIN_ELEMENTS;
    for (int i = 0; i < st->nknobs && enough; i++) {
        const int g = st->knobs[i].stage;
        if (counts_threads(&st->knobs[i]) &&
            delta(now->stages[g].elements, prev->stages[g].elements) > 0 &&
            delta(now->stages[g].fill_samples, prev->stages[g].fill_samples) < MIN_SAMPLES)
            enough = 0;
    }
    if (!enough && dt < MAX_INTERVAL_NS) {
        out->skipped = 1;
        return 0;
    }
    st->steps++;
    const double rate = (double)produced * 1e9 / dt;
    const int threads = limits->threads > 0 ? limits->threads : SL_MAX(now->threads, 1);
    int64_t next[SL_AUTOTUNE_MAX_KNOBS];
    reading rd[SL_AUTOTUNE_MAX_KNOBS];
    /* A trial's baseline is the interval just measured: it must have run without a change,
     * or a revert's or a back-off's transient would be taken for the old setting's rate. */
    int trial = st->changed ? st->nknobs : -1, kept = -1;
    for (int i = 0; i < st->nknobs; i++) {
        sl_autotune_knob *k = &st->knobs[i];
        rd[i] = read_stage(&prev->stages[k->stage], &now->stages[k->stage], dt);
        next[i] = k->value;
        reopen_on_change(k, rd[i].cost_ns);
        if (k->before > 0) { /* judge the trial step that ran this interval */
            const double gain =
                k->kind == SL_AUTOTUNE_PREFETCH ? SL_AUTOTUNE_PREFETCH_GAIN : SL_AUTOTUNE_GAIN;
            if (rate >= k->trial_rate * gain) {
                k->before = 0;
                kept = i;
                if (k->value == 0)
                    settle(k, rd[i].cost_ns); /* inline kept: its cost is measured afresh */
            } else {
                next[i] = k->before;
                k->before = 0;
                if (k->value != 0) /* an inline trial leaves the knob as it was */
                    settle(k, rd[i].cost_ns);
                trial = i; /* no new trial while the revert takes effect */
            }
        }
    }
    /* A kept step moved the bottleneck: the other knobs' verdicts of no gain were reached
     * behind it and get another trial. (Each kept step raised the rate, so this ends.) */
    for (int i = 0; i < st->nknobs && kept >= 0; i++)
        if (i != kept && st->knobs[i].value != 0)
            st->knobs[i].settled = 0;
    for (int i = 0; i < st->nknobs; i++) {
        sl_autotune_knob *k = &st->knobs[i];
        const reading *r = &rd[i];
        if (k->value == 0) { /* inline map (next is 1 when its trial was just reverted) */
            if (next[i] == 0 && !k->settled && r->cost_ns > 0) {
                if (r->cost_ns > k->settled_cost) { /* reopened by a cost rise: workers again */
                    next[i] = 1;
                    k->inline_tried = 0;
                } else {
                    settle(k, r->cost_ns);
                }
            }
        } else if (counts_threads(k)) {
            /* The consumer's own runs are work the workers did not have to do: without them
             * a map whose consumer helps much would look idle and back off. */
            const double util = r->workers >= 0 ? (r->workers + r->helped) / (double)k->value : -1;
            const int64_t cap = map_budget(st, k, threads);
            if (next[i] > cap) {
                next[i] = cap; /* another map took the budget */
            } else if (util >= BUSY && r->wait_share >= WAITS && !k->settled && trial < 0 &&
                       k->value < cap) {
                next[i] = SL_MIN(2 * k->value, cap);
                trial = i;
            } else if (util >= 0 && util < IDLE && r->blocked < HELD_BACK && k->value > 1 &&
                       next[i] == k->value) {
                const double want = (r->workers + r->helped) / TARGET;
                next[i] = SL_MAX((int64_t)1, (int64_t)want + (want > (double)(int64_t)want));
                if (next[i] >= k->value)
                    next[i] = k->value - 1;
            } else if (k->kind == SL_AUTOTUNE_MAP_PARALLEL && next[i] == k->value &&
                       !k->inline_tried && trial < 0 && r->cost_ns > 0 &&
                       r->cost_ns < INLINE_MAX_COST_NS &&
                       (k->settled || (util >= 0 && util < BUSY))) {
                next[i] = 0;
                k->inline_tried = 1;
                k->before = k->value;
                k->trial_rate = rate;
                trial = i;
            }
        } else {
            const int64_t cap = prefetch_cap(st, limits, r->elem_bytes);
            if (next[i] > cap) {
                next[i] = cap;
            } else if (r->wait_share >= WAITS && !k->settled && trial < 0 && k->value < cap) {
                next[i] = SL_MIN(PREFETCH_STEP * k->value, cap);
                trial = i;
            }
        }
        if (trial == i && next[i] > k->value) {
            k->before = k->value;
            k->trial_rate = rate;
        }
        if (next[i] != k->value) {
            k->value = next[i];
            out->set[out->n].stage = k->stage;
            out->set[out->n].kind = k->kind;
            out->set[out->n].value = k->value;
            out->n++;
        }
    }
    st->changed = out->n > 0;
    return 0;
}

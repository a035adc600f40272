/*
 * The profile analysis: from a counters snapshot to per-stage rates, the bottleneck, the
 * throughput bound for N cores, and predictions for concrete changes written as pipeline text.
 *
 * Pure functions of their arguments (no clock, no allocation, no globals), so tests drive them
 * with made-up snapshots. The model (see sluice/profile.h):
 *
 *   - A stage's own cost per element: its sampled inclusive `next` time (less what the clock
 *     reads add) minus its inputs' (scaled by how many input elements one of its elements
 *     takes). For a work-ahead stage, what its `next` costs beyond the consumer's waits (the
 *     consumer's side of the handoff), plus, on its coordinator's thread, what the coordinator
 *     spends per element beyond its input's `next` (locks, wakeups, checkpoint snapshots); for
 *     a parallel map, also its function's time per element measured on the workers.
 *   - ratio: the stage's elements per output element (E_stage / E_top); cost per output
 *     element = own cost * ratio.
 *   - Threads: the consumer's thread runs the last stage and every synchronous input below it;
 *     each work-ahead stage's coordinator runs its input chain. A thread's stages add up: it
 *     allows 1e9 / (sum of their costs) output elements per second.
 *   - A parallel map's function runs on the pool: min(parallel, cores) * 1e9 / its cost.
 *   - Everything together must fit in the cores: cores * 1e9 / total cost.
 *
 * The model's rate is the smallest of those; the bottleneck is the stage that sets it (the
 * costliest stage of the limiting thread, the limiting map, or, when the cores are the limit,
 * the costliest stage). A change (a map's parallelism, a prefetch that splits a thread, a cache
 * point that removes the stages below it after the first epoch) is evaluated by rerunning the
 * model with it applied.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core_internal.h"
#include "sluice/profile.h"

/* What a new work-ahead stage adds per element it hands over, on the consumer side (lock,
 * ring, wakeups): bench_engine measures a parallel map's handoff at about 1,100 instructions
 * per element more than a sequential map (~0.3-0.5 us). Used only for stages a prediction adds. */
static const double HANDOFF_NS = 500;
/* A cache's replay per element (a ring read and buffer retains). */
static const double REPLAY_NS = 100;
/* Changes predicted to gain less than this are not proposed. */
static const double MIN_GAIN = 1.05;

/* A configuration the model is evaluated under. */
typedef struct config {
    int boundary[SL_PROFILE_MAX_STAGES]; /* 1: this stage's inputs run on a thread of its own */
    int par[SL_PROFILE_MAX_STAGES];      /* > 0: a map whose function runs on the pool */
    int gone[SL_PROFILE_MAX_STAGES];     /* 1: cost nothing (served by a cache above it) */
    double extra[SL_PROFILE_MAX_STAGES]; /* ns per own element added on its thread */
} config;

/* Measured costs, per own element. */
typedef struct costs {
    int n, cores;
    double ratio[SL_PROFILE_MAX_STAGES];
    double sync_ns[SL_PROFILE_MAX_STAGES]; /* on the thread that calls its `next` */
    double fn_ns[SL_PROFILE_MAX_STAGES];   /* a map's function (parallel: on the pool) */
    double prod_ns[SL_PROFILE_MAX_STAGES]; /* work-ahead: its coordinator's own cost */
    int is_map[SL_PROFILE_MAX_STAGES];
} costs;

typedef struct verdict {
    double rate; /* output elements/s the model allows */
    int limiter; /* stage that sets it, or -1 */
    double capacity[SL_PROFILE_MAX_STAGES];
    int thread[SL_PROFILE_MAX_STAGES];
} verdict;

static double incl_ns(const sl_profile_snapshot *s, const sl_profile_stage *st)
{
    const double t = st->timed ? (double)st->timed_ns / (double)st->timed - (double)s->clock_ns : 0;
    return t > 0 ? t : 0;
}

/* Time per element of stage i spent in its inputs' `next` calls. */
static double inputs_ns(const sl_profile_snapshot *s, int i)
{
    const double e = (double)s->stages[i].elements;
    double t = 0;
    for (int k = i + 1; k < s->nstages && e > 0; k++)
        if (s->stages[k].parent == i)
            t += (double)s->stages[k].elements / e * incl_ns(s, &s->stages[k]);
    return t;
}

static int is_kind(const sl_profile_stage *st, const char *kind)
{
    return st->kind && strcmp(st->kind, kind) == 0;
}

static void measure(const sl_profile_snapshot *s, int cores, costs *c)
{
    memset(c, 0, sizeof *c);
    c->n = s->nstages;
    c->cores = cores;
    const double top = (double)s->stages[0].elements;
    for (int i = 0; i < c->n; i++) {
        const sl_profile_stage *st = &s->stages[i];
        const double e = (double)st->elements;
        c->ratio[i] = e / top;
        c->is_map[i] = is_kind(st, "map");
        double own = incl_ns(s, st);
        if (st->work_ahead) {
            /* its `next` is a wait plus a handoff; the consumer's own runs of the function
             * count as the function's work */
            if (e > 0)
                own -= (double)(st->wait_ns + st->helped_ns) / e;
            if (st->busy_elements)
                c->fn_ns[i] = (double)st->busy_ns / (double)st->busy_elements;
            if (st->producer_elements) {
                const double prod = (double)st->producer_ns / (double)st->producer_elements;
                c->prod_ns[i] = SL_MAX(0, prod - inputs_ns(s, i));
            }
        } else {
            own -= inputs_ns(s, i);
        }
        c->sync_ns[i] = own > 0 ? own : 0;
        if (c->is_map[i] && !(st->work_ahead && st->parallel > 0))
            c->fn_ns[i] = c->sync_ns[i]; /* a sequential map's own time is its function */
    }
}

static void current_config(const sl_profile_snapshot *s, config *g)
{
    memset(g, 0, sizeof *g);
    for (int i = 0; i < s->nstages; i++) {
        g->boundary[i] = s->stages[i].work_ahead;
        if (s->stages[i].work_ahead && is_kind(&s->stages[i], "map"))
            g->par[i] = s->stages[i].parallel > 0 ? s->stages[i].parallel : 1;
    }
}

/* The stage's cost per output element on its thread under g. */
static double thread_cost(const sl_profile_snapshot *s, const costs *c, const config *g, int i)
{
    if (g->gone[i])
        return 0;
    double own = c->sync_ns[i];
    if (g->par[i] > 0 && !s->stages[i].work_ahead)
        own = HANDOFF_NS; /* a sequential map made parallel: only the handoff stays */
    return (own + g->extra[i]) * c->ratio[i];
}

static double pool_cost(const costs *c, const config *g, int i)
{
    return g->par[i] > 0 && !g->gone[i] ? c->fn_ns[i] * c->ratio[i] : 0;
}

/* A work-ahead stage's cost per output element on its coordinator's thread (thread i + 1). */
static double producer_cost(const costs *c, const config *g, int i)
{
    return g->gone[i] ? 0 : c->prod_ns[i] * c->ratio[i];
}

/* Stage i's cost per output element on thread t under g (v->thread filled). */
static double cost_on(const sl_profile_snapshot *s, const costs *c, const config *g,
                      const verdict *v, int i, int t)
{
    return (v->thread[i] == t ? thread_cost(s, c, g, i) : 0) +
           (i + 1 == t ? producer_cost(c, g, i) : 0);
}

static void evaluate(const sl_profile_snapshot *s, const costs *c, const config *g, verdict *v)
{
    const int n = c->n;
    double tcost[SL_PROFILE_MAX_STAGES + 1] = {0};
    double total = 0;
    for (int i = 0; i < n; i++) {
        const int p = s->stages[i].parent;
        v->thread[i] = p < 0 ? 0 : g->boundary[p] || g->par[p] > 0 ? p + 1 : v->thread[p];
        const double tc = thread_cost(s, c, g, i), pc = producer_cost(c, g, i);
        tcost[v->thread[i]] += tc;
        tcost[i + 1] += pc;
        total += tc + pc + pool_cost(c, g, i);
    }
    v->rate = INFINITY;
    v->limiter = -1;
    int limiting_thread = -1;
    for (int t = 0; t <= n; t++)
        if (tcost[t] > 0 && 1e9 / tcost[t] < v->rate) {
            v->rate = 1e9 / tcost[t];
            limiting_thread = t;
        }
    int limiting_map = -1;
    for (int i = 0; i < n; i++) {
        const double pc = pool_cost(c, g, i);
        v->capacity[i] = tcost[v->thread[i]] > 0 ? 1e9 / tcost[v->thread[i]] : 0;
        if (producer_cost(c, g, i) > 0) /* its coordinator's thread limits it too */
            v->capacity[i] = v->capacity[i] > 0 ? SL_MIN(v->capacity[i], 1e9 / tcost[i + 1])
                                                : 1e9 / tcost[i + 1];
        if (pc > 0) {
            const double cap = SL_MIN(g->par[i], c->cores) * 1e9 / pc;
            v->capacity[i] = v->capacity[i] > 0 ? SL_MIN(v->capacity[i], cap) : cap;
            if (cap < v->rate) {
                v->rate = cap;
                limiting_map = i;
                limiting_thread = -1;
            }
        }
    }
    int cpu_bound = 0;
    if (total > 0 && c->cores * 1e9 / total < v->rate) {
        v->rate = c->cores * 1e9 / total;
        cpu_bound = 1;
    }
    /* the stage that sets the rate: the costliest one of the limiting thread (or of them all) */
    if (limiting_map >= 0 && !cpu_bound) {
        v->limiter = limiting_map;
        return;
    }
    double worst = 0;
    for (int i = 0; i < n; i++) {
        const double cost =
            cpu_bound ? thread_cost(s, c, g, i) + producer_cost(c, g, i) + pool_cost(c, g, i)
                      : cost_on(s, c, g, v, i, limiting_thread);
        if (cost > worst) {
            worst = cost;
            v->limiter = i;
        }
    }
    if (!isfinite(v->rate))
        v->rate = 0;
}

/* ---- pipeline text ------------------------------------------------------------------------ */

/* The main chain's stages, deepest first (the order the text prints them). */
static int chain_order(const sl_profile_snapshot *s, int *order)
{
    int n = 0;
    for (int i = 0; i < s->nstages; i++)
        if (s->stages[i].chain)
            order[n++] = i;
    for (int a = 1; a < n; a++) /* few stages: insertion sort by depth, deepest first */
        for (int b = a; b > 0 && s->stages[order[b]].depth > s->stages[order[b - 1]].depth; b--) {
            const int t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    return n;
}

/* The pipeline text with stage `replace` printed as `with` (when replace >= 0) and `insert`
 * printed right after stage `after` (when after >= 0). */
static void edited_text(const sl_profile_snapshot *s, int replace, const char *with, int after,
                        const char *insert, char *out, size_t cap)
{
    int order[SL_PROFILE_MAX_STAGES];
    const int n = chain_order(s, order);
    size_t len = 0;
    out[0] = '\0';
    for (int k = 0; k < n && len < cap; k++) {
        const int i = order[k];
        len += (size_t)snprintf(out + len, cap - len, "%s%s", k ? " | " : "",
                                i == replace ? with : s->stages[i].stage);
        if (i == after && len < cap)
            len += (size_t)snprintf(out + len, cap - len, " | %s", insert);
    }
}

/* map(...) text with its parallel argument set to k: the top-level arguments are kept except
 * any parallel=..., and ", parallel=k" goes last. */
static void map_with_parallel(const char *text, int k, char *out, size_t cap)
{
    const char *open = strchr(text, '(');
    const size_t tlen = strlen(text);
    if (!open || tlen < 2 || text[tlen - 1] != ')') {
        snprintf(out, cap, "%s", text);
        return;
    }
    size_t len = (size_t)snprintf(out, cap, "%.*s", (int)(open - text + 1), text);
    const char *p = open + 1, *end = text + tlen - 1;
    int first = 1;
    while (p < end) {
        const char *a = p;
        int depth = 0, quoted = 0;
        for (; p < end; p++) {
            if (*p == '"' && (p == a || p[-1] != '\\'))
                quoted = !quoted;
            else if (!quoted && (*p == '(' || *p == '['))
                depth++;
            else if (!quoted && (*p == ')' || *p == ']'))
                depth--;
            else if (!quoted && depth == 0 && *p == ',')
                break;
        }
        const char *b = p;
        while (a < b && *a == ' ')
            a++;
        while (b > a && b[-1] == ' ')
            b--;
        const int is_parallel =
            b - a >= 8 && strncmp(a, "parallel", 8) == 0 && (a[8] == '=' || a[8] == ' ');
        if (!is_parallel && b > a && len < cap) {
            len += (size_t)snprintf(out + len, cap - len, "%s%.*s", first ? "" : ", ", (int)(b - a),
                                    a);
            first = 0;
        }
        if (p < end)
            p++; /* the comma */
    }
    if (len < cap)
        snprintf(out + len, cap - len, "%sparallel=%d)", first ? "" : ", ", k);
}

/* ---- predictions -------------------------------------------------------------------------- */

static void add_prediction(sl_profile_analysis *a, const sl_profile_prediction *p)
{
    int at = a->npredictions;
    if (at == SL_PROFILE_MAX_PREDICTIONS) {
        if (p->rate <= a->predictions[at - 1].rate)
            return;
        at--;
    } else {
        a->npredictions++;
    }
    while (at > 0 && a->predictions[at - 1].rate < p->rate) {
        a->predictions[at] = a->predictions[at - 1];
        at--;
    }
    a->predictions[at] = *p;
}

static double speedup_over(const sl_profile_analysis *a, double rate)
{
    return a->rate > 0 ? rate / a->rate : 0;
}

/* The limiting map (the bottleneck, or the costliest map of the limiting thread) made as
 * parallel as useful: the smallest parallelism within 1% of the best rate. */
static void predict_parallel(const sl_profile_snapshot *s, const costs *c, const config *now,
                             const verdict *v, sl_profile_analysis *a)
{
    const int m = v->limiter;
    if (m < 0 || !c->is_map[m] || !s->stages[m].chain || c->fn_ns[m] <= 0)
        return;
    config g = *now;
    double best = 0, rates[1025];
    const int maxk = SL_MIN(c->cores, 1024);
    for (int k = 1; k <= maxk; k++) {
        /* parallel=1 is the sequential map: for a map that is sequential now, no change */
        if (k == 1 && !s->stages[m].work_ahead) {
            rates[1] = v->rate;
            best = SL_MAX(best, v->rate);
            continue;
        }
        g.par[m] = k;
        verdict w;
        evaluate(s, c, &g, &w);
        rates[k] = w.rate;
        best = SL_MAX(best, w.rate);
    }
    int k = 1;
    while (k < maxk && rates[k] < 0.99 * best)
        k++;
    if (k <= now->par[m] || best < MIN_GAIN * v->rate || k < 2)
        return;
    sl_profile_prediction p = {.change = SL_PROFILE_PARALLEL, .stage = m, .rate = rates[k]};
    p.speedup = speedup_over(a, p.rate);
    map_with_parallel(s->stages[m].stage, k, p.what, sizeof p.what);
    edited_text(s, m, p.what, -1, NULL, p.text, sizeof p.text);
    add_prediction(a, &p);
}

/* A prefetch: an existing one whose both sides stall made twice as big (the model's rate is
 * what it reaches without the stalls), or a new one splitting the limiting thread where the
 * two halves balance best. */
static void predict_prefetch(const sl_profile_snapshot *s, const costs *c, const config *now,
                             const verdict *v, sl_profile_analysis *a)
{
    const double secs = (double)s->elapsed_ns / 1e9;
    for (int i = 0; i < s->nstages; i++) {
        const sl_profile_stage *st = &s->stages[i];
        if (!is_kind(st, "prefetch") || !st->chain || secs <= 0 || st->slots <= 0)
            continue;
        if ((double)st->wait_ns / 1e9 / secs > 0.05 && (double)st->blocked_ns / 1e9 / secs > 0.05 &&
            v->rate > MIN_GAIN * a->rate) {
            sl_profile_prediction p = {.change = SL_PROFILE_PREFETCH, .stage = i, .rate = v->rate};
            p.speedup = speedup_over(a, p.rate);
            snprintf(p.what, sizeof p.what, "prefetch(%lld)", (long long)(2 * st->slots));
            edited_text(s, i, p.what, -1, NULL, p.text, sizeof p.text);
            add_prediction(a, &p);
        }
    }
    if (v->limiter < 0)
        return;
    const int t = v->thread[v->limiter];
    int best_at = -1;
    double best = v->rate;
    for (int i = 0; i < s->nstages; i++) {
        /* a prefetch between chain stage i and its chain input, both on the limiting thread */
        const int parent = s->stages[i].parent;
        if (!s->stages[i].chain || parent < 0 || v->thread[i] != t || now->boundary[parent] ||
            v->thread[parent] != t || !s->stages[parent].chain)
            continue;
        config g = *now;
        g.boundary[parent] = 1;
        /* the parent's thread now pays a handoff per element of i */
        if (c->ratio[parent] > 0)
            g.extra[parent] += HANDOFF_NS * c->ratio[i] / c->ratio[parent];
        verdict w;
        evaluate(s, c, &g, &w);
        if (w.rate > best) {
            best = w.rate;
            best_at = i;
        }
    }
    if (best_at < 0 || best < MIN_GAIN * v->rate)
        return;
    sl_profile_prediction p = {.change = SL_PROFILE_PREFETCH, .stage = best_at, .rate = best};
    p.speedup = speedup_over(a, p.rate);
    snprintf(p.what, sizeof p.what, "prefetch(2)");
    edited_text(s, -1, NULL, best_at, p.what, p.text, sizeof p.text);
    add_prediction(a, &p);
}

/* Whether stage i gives the same elements every epoch, as far as its text tells: shuffles,
 * seeded or random stages and generators do not. A map's randomness is guessed from its
 * functions' names (random_*, flip). */
static int deterministic(const sl_profile_stage *st)
{
    static const char *const kinds[] = {"shuffle", "global_shuffle", "generator",  "cache",
                                        "repeat",  "sample_from",    "choose_from"};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        if (is_kind(st, kinds[k]))
            return 0;
    return !strstr(st->stage, "random") && !strstr(st->stage, "flip") &&
           !strstr(st->stage, "seed=") && !strstr(st->stage, "shuffle");
}

static int in_subtree(const sl_profile_snapshot *s, int i, int root)
{
    for (; i >= 0; i = s->stages[i].parent)
        if (i == root)
            return 1;
    return 0;
}

/* A cache point above the highest chain stage whose whole input is deterministic and holds
 * the bottleneck (below any prefetch, which stays last): from the second epoch on, the stages
 * below it cost nothing. */
static void predict_cache(const sl_profile_snapshot *s, const costs *c, const config *now,
                          const verdict *v, sl_profile_analysis *a)
{
    if (v->limiter < 0)
        return;
    int order[SL_PROFILE_MAX_STAGES];
    const int n = chain_order(s, order);
    int at = -1;
    for (int k = 0; k < n; k++) { /* deepest first: extend while everything stays cacheable */
        const int i = order[k];
        int ok = deterministic(&s->stages[i]) && !is_kind(&s->stages[i], "prefetch");
        for (int j = 0; j < s->nstages && ok; j++)
            if (in_subtree(s, j, i))
                ok = deterministic(&s->stages[j]);
        if (!ok)
            break;
        at = i;
    }
    if (at < 0 || !in_subtree(s, v->limiter, at))
        return;
    config g = *now;
    for (int j = 0; j < s->nstages; j++)
        if (in_subtree(s, j, at))
            g.gone[j] = 1;
    verdict w;
    evaluate(s, c, &g, &w);
    /* the cache itself replays one element per element of `at` on the consumer's side */
    const double replay = REPLAY_NS * c->ratio[at];
    double rate = w.rate > 0 ? 1e9 / (1e9 / w.rate + replay) : 1e9 / replay;
    if (rate < MIN_GAIN * v->rate)
        return;
    sl_profile_prediction p = {.change = SL_PROFILE_CACHE, .stage = at, .rate = rate};
    p.speedup = speedup_over(a, p.rate);
    snprintf(p.what, sizeof p.what, "cache");
    edited_text(s, -1, NULL, at, p.what, p.text, sizeof p.text);
    add_prediction(a, &p);
}

/* ---- entry points ------------------------------------------------------------------------- */

static double best_over_map_choices(const sl_profile_snapshot *s, const costs *c)
{
    config g;
    current_config(s, &g);
    int maps[SL_PROFILE_MAX_STAGES], nmaps = 0;
    for (int i = 0; i < c->n; i++)
        if (c->is_map[i])
            maps[nmaps++] = i;
    /* each map sequential or as parallel as the cores: every choice when there are few maps,
     * else all parallel */
    const int choices = nmaps <= 10 ? 1 << nmaps : 1;
    double best = 0;
    for (int mask = 0; mask < choices; mask++) {
        for (int k = 0; k < nmaps; k++) {
            const int i = maps[k];
            const int parallel = nmaps > 10 || (mask >> k & 1);
            const int was = s->stages[i].work_ahead;
            g.par[i] = parallel ? c->cores : was ? 1 : 0;
            g.boundary[i] = parallel || was;
        }
        verdict v;
        evaluate(s, c, &g, &v);
        best = SL_MAX(best, v.rate);
    }
    return best;
}

double sl_profile_bound(const sl_profile_snapshot *s, int cores)
{
    if (!s || s->nstages < 1 || s->stages[0].elements == 0)
        return 0;
    costs c;
    measure(s, cores > 0 ? cores : SL_MAX(s->threads, 1), &c);
    return best_over_map_choices(s, &c);
}

int sl_profile_analyze(const sl_profile_snapshot *s, int cores, sl_profile_analysis *out)
{
    memset(out, 0, sizeof *out);
    out->bottleneck = -1;
    if (!s || s->nstages < 1 || s->stages[0].elements == 0)
        return SL_ERR_INVAL;
    cores = cores > 0 ? cores : SL_MAX(s->threads, 1);
    out->cores = cores;
    out->nstages = s->nstages;
    const double secs = (double)s->elapsed_ns / 1e9;
    out->rate = secs > 0 ? (double)s->stages[0].elements / secs : 0;

    costs c;
    measure(s, cores, &c);
    config now;
    current_config(s, &now);
    verdict v;
    evaluate(s, &c, &now, &v);
    out->model_rate = v.rate;
    out->bottleneck = v.limiter;
    out->bound = SL_MAX(best_over_map_choices(s, &c), v.rate);

    for (int i = 0; i < s->nstages; i++) {
        const sl_profile_stage *st = &s->stages[i];
        sl_profile_stage_result *r = &out->stages[i];
        const int pool = now.par[i] > 0;
        r->rate = secs > 0 ? (double)st->elements / secs : 0;
        r->bytes_per_s = st->timed && secs > 0 ? (double)st->timed_bytes / (double)st->timed *
                                                     (double)st->elements / secs
                                               : 0;
        r->own_ns = pool ? c.fn_ns[i] : c.sync_ns[i] + c.prod_ns[i];
        r->per_core_rate = r->own_ns > 0 ? 1e9 / r->own_ns : 0;
        r->ratio = c.ratio[i];
        r->cost_ns = r->own_ns * c.ratio[i];
        r->capacity = v.capacity[i];
        r->thread = v.thread[i];
        const double busy = pool ? (double)st->busy_ns / SL_MAX(now.par[i], 1)
                                 : (c.sync_ns[i] + c.prod_ns[i]) * (double)st->elements;
        r->busy_share = secs > 0 ? SL_MIN(busy / 1e9 / secs, 1.0) : 0;
        r->wait_share = secs > 0 ? (double)st->wait_ns / 1e9 / secs : 0;
        r->blocked_share = secs > 0 ? (double)st->blocked_ns / 1e9 / secs : 0;
        r->fill = st->fill_samples && st->slots > 0
                      ? (double)st->fill_sum / (double)st->fill_samples / (double)st->slots
                      : -1;
        r->workers =
            st->fill_samples && pool ? (double)st->workers_sum / (double)st->fill_samples : -1;
    }
    edited_text(s, -1, NULL, -1, NULL, out->pipeline, sizeof out->pipeline);
    predict_parallel(s, &c, &now, &v, out);
    predict_prefetch(s, &c, &now, &v, out);
    predict_cache(s, &c, &now, &v, out);
    return 0;
}

/*
 * Engine overhead per element: range(N) -> map(identity) -> batch(256), and neighbours of it
 * that separate the costs (no map, a parallel map, a prefetch), timed in one run against a bare
 * C loop that produces and sums the same values (the ceiling). Prints ns per element and the
 * ratio to the bare loop, medians of `rounds` interleaved rounds with their spread.
 *
 * Instructions per element: perf counters are often missing in VMs, so `--callgrind` runs this
 * program under valgrind's callgrind twice per pipeline (N1 and N2 elements, one pipeline per
 * run via --only) and divides the difference of the two instruction totals by N2 - N1: setup,
 * thread start and teardown cancel out, what is left is the per-element cost. The issue's
 * target is under 1,000 instructions per element for range | map(identity) | batch(256).
 *
 * usage: bench_engine [N] [rounds]
 *        bench_engine --only K N          (one pipeline, one run: what --callgrind measures)
 *        bench_engine --callgrind [N1 N2]  (default 100000 300000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "sluice/clock.h"
#include "sluice/pipeline.h"

enum { MAX_ROUNDS = 16, BATCH = 256 };

/* The identity a user would write: moves each tensor to the output (sl_element_push takes the
 * buffer reference) and releases what is left of the input. */
static int identity(void *user, sl_map_ctx *c, sl_element *in, sl_element *out, char *err,
                    size_t errcap)
{
    for (int i = 0; i < in->count; i++)
        sl_element_push(out, in->names[i], &in->tensors[i]);
    sl_element_release(in);
    return 0;
}

/* The same by struct assignment: copies and clears the whole sl_element (1.5 KB, 16 tensor
 * slots) whatever it holds. */
static int identity_copy(void *user, sl_map_ctx *c, sl_element *in, sl_element *out, char *err,
                         size_t errcap)
{
    *out = *in;
    memset(in, 0, sizeof *in);
    return 0;
}

typedef struct config {
    const char *name;
    int map;      /* 0: no map stage */
    int parallel; /* map parallelism */
    int prefetch; /* 0: none, else prefetch(prefetch) */
    int copy;     /* 1: identity_copy instead of identity */
} config;

/* Index 0 is the bare loop; the first engine pipeline is the one the target is about. */
static const config configs[] = {
    {"bare C loop (ceiling)", 0, 0, 0, 0},
    {"range | map(identity) | batch(256)", 1, 1, 0, 0},
    {"range | batch(256)", 0, 0, 0, 0},
    {"range | map(identity, parallel=2) | batch(256)", 1, 2, 0, 0},
    {"range | map(identity) | batch(256) | prefetch(4)", 1, 1, 4, 0},
    {"range | map(identity_copy) | batch(256)", 1, 1, 0, 1},
};
enum { NCONFIGS = sizeof configs / sizeof configs[0] };

static void die_rc(const char *what, int rc)
{
    bench_die("bench_engine", what, sl_strerror(rc));
}

static double run(const config *c, int64_t n, int64_t *sum)
{
    sl_dataset *r, *m = NULL, *b, *p = NULL;
    int rc = sl_dataset_range(&r, 0, n, 1);
    if (!rc && c->map) {
        const sl_map_def def = {c->copy ? "identity_copy" : "identity",
                                c->copy ? identity_copy : identity, NULL, NULL};
        const sl_map_options o = {.parallel = c->parallel};
        rc = sl_dataset_map(&m, r, &def, &o);
    }
    if (!rc)
        rc = sl_dataset_batch(&b, m ? m : r, BATCH, 0);
    if (!rc && c->prefetch)
        rc = sl_dataset_prefetch(&p, b, c->prefetch);
    if (rc)
        die_rc("building the pipeline", rc);
    const sl_iter_options io = {.threads = 2};
    sl_iter *it;
    const uint64_t t0 = sl_clock_ns();
    if (sl_iter_open(&it, p ? p : b, &io))
        bench_die("bench_engine", "sl_iter_open", sl_iter_errmsg(it));
    sl_element e;
    while ((rc = sl_iter_next(it, &e)) == 0) {
        const int64_t *v = e.tensors[0].data;
        for (int64_t i = 0; i < e.tensors[0].shape[0]; i++)
            *sum += v[i];
        sl_element_release(&e);
    }
    if (rc != SL_EOF)
        bench_die("bench_engine", "sl_iter_next", sl_iter_errmsg(it));
    sl_iter_close(it);
    const double ns = (double)(sl_clock_ns() - t0) / (double)n;
    sl_dataset *all[] = {r, m, b, p};
    for (int i = 0; i < 4; i++)
        sl_dataset_release(all[i]);
    return ns;
}

static double bare(int64_t n, int64_t *sum)
{
    const uint64_t t0 = sl_clock_ns();
    int64_t *batch = malloc(BATCH * sizeof *batch);
    for (int64_t i = 0; i < n; i += BATCH) {
        const int64_t k = n - i < BATCH ? n - i : BATCH;
        for (int64_t j = 0; j < k; j++)
            batch[j] = i + j;
        /* Keeps the compiler from folding the two loops into a closed form. */
        __asm__ volatile("" : : "r"(batch) : "memory");
        for (int64_t j = 0; j < k; j++)
            *sum += batch[j];
    }
    free(batch);
    return (double)(sl_clock_ns() - t0) / (double)n;
}

static double run_config(int k, int64_t n, int64_t *sum)
{
    return k == 0 ? bare(n, sum) : run(&configs[k], n, sum);
}

/* Instructions callgrind counts for `--only k n`; exits on any failure. */
static double callgrind_total(const char *self, int k, int64_t n)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "valgrind --tool=callgrind --callgrind-out-file=/dev/null '%s' --only %d %lld 2>&1",
             self, k, (long long)n);
    FILE *f = popen(cmd, "r");
    if (!f)
        bench_die("bench_engine", "cannot run", cmd);
    char line[512];
    double total = -1;
    while (fgets(line, sizeof line, f)) {
        const char *at = strstr(line, "Collected : ");
        if (at) {
            total = 0;
            for (const char *q = at + 12; *q && *q != '\n'; q++)
                if (*q >= '0' && *q <= '9')
                    total = total * 10 + (*q - '0');
        }
    }
    if (pclose(f) != 0 || total < 0)
        bench_die("bench_engine", "valgrind failed or printed no total (installed?)", cmd);
    return total;
}

static int callgrind_mode(const char *self, int64_t n1, int64_t n2)
{
    printf("instructions per element under callgrind: (I(%lld) - I(%lld)) / %lld, one pipeline "
           "per valgrind run\n",
           (long long)n2, (long long)n1, (long long)(n2 - n1));
    double base = 0;
    for (int k = 1; k < NCONFIGS; k++) {
        const double a = callgrind_total(self, k, n1), b = callgrind_total(self, k, n2);
        const double per = (b - a) / (double)(n2 - n1);
        if (k == 1)
            base = per;
        printf("  %-52s %8.0f instructions/element  (%.2fx the first; target < 1000: %s)\n",
               configs[k].name, per, per / base, k == 1 ? (per < 1000 ? "met" : "NOT met") : "-");
    }
    printf("reproduce: %s --callgrind %lld %lld\n", self, (long long)n1, (long long)n2);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && !strcmp(argv[1], "--only")) {
        const int k = atoi(argv[2]);
        const int64_t n = atoll(argv[3]);
        if (k < 0 || k >= NCONFIGS || n < 1)
            bench_die("bench_engine", "--only K N", "K out of range or N < 1");
        int64_t sum = 0;
        run_config(k, n, &sum);
        printf("%s: %lld elements, sum %lld\n", configs[k].name, (long long)n, (long long)sum);
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "--callgrind")) {
        const int64_t n1 = argc > 2 ? atoll(argv[2]) : 100000;
        const int64_t n2 = argc > 3 ? atoll(argv[3]) : 300000;
        if (n1 < 1 || n2 <= n1)
            bench_die("bench_engine", "--callgrind N1 N2", "need 1 <= N1 < N2");
        return callgrind_mode(argv[0], n1, n2);
    }
    const int64_t n = argc > 1 ? atoll(argv[1]) : 2000000;
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    if (n < 1 || rounds < 1 || rounds > MAX_ROUNDS)
        bench_die("bench_engine", "usage", "bench_engine [N >= 1] [1 <= rounds <= 16]");
    double t[NCONFIGS][MAX_ROUNDS];
    int64_t sums[NCONFIGS] = {0};
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < NCONFIGS; k++) {
            /* Rotate the order so that no pipeline always runs right after the same one. */
            const int kk = (k + r) % NCONFIGS;
            t[kk][r] = run_config(kk, n, &sums[kk]);
        }
    printf("%lld elements, median of %d interleaved rounds [min-max], 2 worker threads\n",
           (long long)n, rounds);
    double base = 0;
    for (int k = 0; k < NCONFIGS; k++) {
        double v[MAX_ROUNDS];
        memcpy(v, t[k], (size_t)rounds * sizeof *v);
        const double med = bench_median(v, rounds);
        if (k == 0)
            base = med;
        if (sums[k] != sums[0])
            printf("  MISMATCH in %s\n", configs[k].name);
        printf("  %-52s %8.1f ns/element [%.1f-%.1f]  (%.0fx the bare loop)\n", configs[k].name,
               med, v[0], v[rounds - 1], med / base);
    }
    printf("reproduce: %s %lld %d\n", argv[0], (long long)n, rounds);
    return 0;
}

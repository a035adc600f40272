/*
 * The engine's file source on io_uring against pread, through the whole engine, in one run:
 * records(FILE) read sequentially and records(FILE) | global_shuffle(seed=1) | take(K), each
 * once with SLUICE_IO=io_uring and once with SLUICE_IO=pread, with the page cache warm (the
 * file read once before timing) and cold (posix_fadvise(DONTNEED) on the file before every
 * run; --drop-caches uses `echo 3 > /proc/sys/vm/drop_caches` instead, root only). The ceiling
 * is read() of the same file in 1 MiB blocks, under the same cache condition.
 *
 * The file is one raw sluice file of --mb MiB (default 2048) of --record-kb KiB records
 * (default 16), pseudo-random bytes, written here with the public writer (default 1 MiB
 * chunks). The consumer touches one byte per 4 KiB of every record (the reader has already
 * checked every byte's crc32c), CPU budget 2 threads. Each rate is the median of --rounds
 * rounds (default 3) with the MB/s range [min-max]; within a round the backends of a case run
 * back to back, the order alternating between rounds, and read() runs beside the sequential
 * pair; a ratio is the median of the per-round ratios [min-max].
 *
 * --windows runs another comparison instead: global_shuffle | take(K), page cache dropped
 * before every run, with global_shuffle's batch window at 1 (one random read at a time: the
 * old behaviour) and at 32 (the default), each on io_uring and on pread. The window is set
 * through SLUICE_SHUFFLE_WINDOW, an environment variable for benchmarks only. The four run
 * back to back in a round, their order rotating between rounds; ratios are per-round medians.
 * For the figure in bench/README.md: --windows --mb 1024 --record-kb 56 --take 2000.
 *
 * usage: bench_source_io [--dir DIR] [--mb MB] [--record-kb KB] [--take K] [--rounds R]
 *                        [--drop-caches] [--windows] [--keep]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench_util.h"
#include "sluice/alloc.h"
#include "sluice/clock.h"
#include "sluice/io.h"
#include "sluice/pipeline.h"
#include "sluice/record.h"
#include "sluice/rng.h"

enum { MAX_ROUNDS = 9 };

typedef struct opts {
    const char *dir;
    size_t mb, record_kb;
    int64_t take;
    int rounds, drop_caches, keep, windows;
    char path[4096];
} opts;

static void die(const char *what, const char *detail)
{
    bench_die("bench_source_io", what, detail);
}

static void write_file(const opts *o, int64_t n)
{
    if (bench_count_records(o->path) == n)
        return; /* kept from an earlier run with --keep */
    sl_record_writer *w;
    if (sl_record_writer_open(&w, o->path, NULL))
        die(o->path, w ? sl_record_writer_errmsg(w) : "cannot create");
    const size_t size = o->record_kb << 10;
    uint64_t *buf = malloc(size);
    sl_rng r;
    sl_rng_init(&r, 11, 0, 0);
    for (int64_t i = 0; i < n; i++) {
        for (size_t k = 0; k < size / 8; k++)
            buf[k] = sl_rng_u64(&r);
        if (sl_record_writer_write(w, buf, size))
            die(o->path, sl_record_writer_errmsg(w));
    }
    free(buf);
    if (sl_record_writer_finish(w))
        die(o->path, sl_record_writer_errmsg(w));
    sl_record_writer_close(w);
}

static void warm(const char *path)
{
    static uint8_t buf[1 << 20];
    const int fd = open(path, O_RDONLY);
    if (fd < 0)
        die(path, strerror(errno));
    while (read(fd, buf, sizeof buf) > 0) {
    }
    close(fd);
}

static void drop(const opts *o)
{
    if (o->drop_caches) {
        sync();
        FILE *f = fopen("/proc/sys/vm/drop_caches", "w");
        if (!f || fputs("3\n", f) < 0 || fclose(f) != 0)
            die("/proc/sys/vm/drop_caches", "cannot write (not root?)");
        return;
    }
    const int fd = open(o->path, O_RDONLY);
    if (fd < 0 || posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) != 0)
        die(o->path, "posix_fadvise(DONTNEED) refused");
    close(fd);
}

typedef struct result {
    double sec;
    int64_t elements;
    uint64_t bytes;
    int64_t peak; /* sluice-allocated bytes at the peak of the run */
} result;

/* read() of the whole file in 1 MiB blocks. */
static result run_ceiling(const opts *o)
{
    static uint8_t buf[1 << 20];
    result res = {0};
    const uint64_t t0 = sl_clock_ns();
    const int fd = open(o->path, O_RDONLY);
    if (fd < 0)
        die(o->path, strerror(errno));
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL); /* as the record reader does */
    ssize_t got;
    while ((got = read(fd, buf, sizeof buf)) > 0)
        res.bytes += (uint64_t)got;
    close(fd);
    res.sec = (double)(sl_clock_ns() - t0) / 1e9;
    res.elements = (int64_t)(res.bytes / (o->record_kb << 10));
    return res;
}

/* window > 0: global_shuffle's batch window (SLUICE_SHUFFLE_WINDOW), else its default. */
static result run_engine(const opts *o, int shuffled, const char *backend, int64_t n, int window)
{
    setenv("SLUICE_IO", backend, 1);
    if (window > 0) {
        char w[16];
        snprintf(w, sizeof w, "%d", window);
        setenv("SLUICE_SHUFFLE_WINDOW", w, 1);
    }
    const char *pattern = o->path;
    sl_dataset *src, *mid = NULL, *top = NULL;
    char err[512];
    if (sl_dataset_records(&src, &pattern, 1, err, sizeof err))
        die("records", err);
    int64_t want = n;
    if (shuffled) {
        want = o->take < n ? o->take : n;
        if (sl_dataset_global_shuffle(&mid, src, 1, 1) || sl_dataset_take(&top, mid, want))
            die("building the pipeline", "global_shuffle | take");
    }
    const sl_iter_options io = {.threads = 2};
    sl_alloc_reset_peak();
    const int64_t live0 = sl_alloc_live_bytes();
    result res = {0};
    const uint64_t t0 = sl_clock_ns();
    sl_iter *it;
    if (sl_iter_open(&it, top ? top : src, &io))
        die("sl_iter_open", sl_iter_errmsg(it));
    sl_element e;
    uint64_t sum = 0;
    int rc;
    while ((rc = sl_iter_next(it, &e)) == 0) {
        const sl_tensor *t = &e.tensors[0];
        const uint8_t *p = t->data;
        for (int64_t k = 0; k < t->shape[0]; k += 4096)
            sum += p[k];
        res.bytes += (uint64_t)t->shape[0];
        res.elements++;
        sl_element_release(&e);
    }
    if (rc != SL_EOF)
        die("sl_iter_next", sl_iter_errmsg(it));
    sl_iter_close(it);
    res.sec = (double)(sl_clock_ns() - t0) / 1e9;
    res.peak = sl_alloc_peak_bytes() - live0;
    __asm__ volatile("" : : "r"(sum));
    if (res.elements != want)
        die(backend, "wrong number of elements");
    sl_dataset_release(top);
    sl_dataset_release(mid);
    sl_dataset_release(src);
    unsetenv("SLUICE_IO");
    unsetenv("SLUICE_SHUFFLE_WINDOW");
    return res;
}

enum { CEILING, URING, PREAD, NCOLS };
enum { SEQUENTIAL, SHUFFLED, NCASES };
static const char *const case_names[NCASES] = {"sequential", "global_shuffle, take(K)"};

typedef struct cell {
    double rate[MAX_ROUNDS]; /* elements/s */
    double mbps[MAX_ROUNDS];
    int64_t peak;
    int64_t elements;
} cell;

static void record(cell *c, int round, result r)
{
    c->rate[round] = (double)r.elements / r.sec;
    c->mbps[round] = (double)r.bytes / r.sec / 1e6;
    c->peak = r.peak > c->peak ? r.peak : c->peak;
    c->elements = r.elements;
}

static double median_of(const double *v, int n, double *lo, double *hi)
{
    double s[MAX_ROUNDS];
    memcpy(s, v, (size_t)n * sizeof *s);
    const double m = bench_median(s, n);
    *lo = s[0];
    *hi = s[n - 1];
    return m;
}

/* The median of the per-round ratios a/b [min-max] (a round runs a and b back to back, so
 * each pair shares the machine's state). */
static void print_ratio(const cell *a, const cell *b, int rounds, const char *unit)
{
    double r[MAX_ROUNDS];
    for (int i = 0; i < rounds; i++)
        r[i] = a->rate[i] / b->rate[i];
    const double m = bench_median(r, rounds);
    printf(" %.2f%s [%.2f-%.2f] |", m, unit, r[0], r[rounds - 1]);
}

static void print_cell(const cell *c, int rounds)
{
    double lo, hi, mlo, mhi;
    const double m = median_of(c->rate, rounds, &lo, &hi);
    const double mb = median_of(c->mbps, rounds, &mlo, &mhi);
    printf(" %.0f el/s, %.0f MB/s [%.0f-%.0f] |", m, mb, mlo, mhi);
}

/* --windows: cold global_shuffle, window 1 against 32, io_uring against pread. */
enum { W1_URING, W32_URING, W1_PREAD, W32_PREAD, NWIN };
static void run_windows(const opts *o, int64_t n)
{
    static const char *const names[NWIN] = {"window 1, io_uring", "window 32, io_uring",
                                            "window 1, pread", "window 32, pread"};
    static cell cells[NWIN];
    for (int r = 0; r < o->rounds; r++) {
        for (int k = 0; k < NWIN; k++) {
            const int v = (k + r) % NWIN; /* rotate the order between rounds */
            drop(o);
            const char *backend = v == W1_URING || v == W32_URING ? "io_uring" : "pread";
            const int window = v == W1_URING || v == W1_PREAD ? 1 : 32;
            record(&cells[v], r, run_engine(o, 1, backend, n, window));
        }
        fprintf(stderr, "\rround %d/%d   ", r + 1, o->rounds);
    }
    fprintf(stderr, "\r                        \r");
    printf("global_shuffle | take(K), page cache dropped before every run\n\n| variant | rate "
           "|\n|---|---|\n");
    for (int v = 0; v < NWIN; v++) {
        printf("| %s |", names[v]);
        print_cell(&cells[v], o->rounds);
        printf("\n");
    }
    printf("\n| ratio | median [min-max] |\n|---|---|\n| window 32 / 1, io_uring |");
    print_ratio(&cells[W32_URING], &cells[W1_URING], o->rounds, "x");
    printf("\n| window 32 / 1, pread |");
    print_ratio(&cells[W32_PREAD], &cells[W1_PREAD], o->rounds, "x");
    printf("\n| io_uring / pread, window 32 |");
    print_ratio(&cells[W32_URING], &cells[W32_PREAD], o->rounds, "x");
    printf("\n| window 32 io_uring / window 1 pread (old default) |");
    print_ratio(&cells[W32_URING], &cells[W1_PREAD], o->rounds, "x");
    printf("\npeak sluice-allocated bytes per run (MB): window 1 %.1f, window 32 %.1f\n",
           (double)cells[W1_URING].peak / 1e6, (double)cells[W32_URING].peak / 1e6);
}

int main(int argc, char **argv)
{
    opts o = {.dir = "/tmp/sluice-bench", .mb = 2048, .record_kb = 16, .take = 20000, .rounds = 3};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            o.dir = argv[++i];
        else if (!strcmp(argv[i], "--mb") && i + 1 < argc)
            o.mb = (size_t)atoll(argv[++i]);
        else if (!strcmp(argv[i], "--record-kb") && i + 1 < argc)
            o.record_kb = (size_t)atoll(argv[++i]);
        else if (!strcmp(argv[i], "--take") && i + 1 < argc)
            o.take = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            o.rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--drop-caches"))
            o.drop_caches = 1;
        else if (!strcmp(argv[i], "--windows"))
            o.windows = 1;
        else if (!strcmp(argv[i], "--keep"))
            o.keep = 1;
        else {
            fprintf(stderr, "usage: bench_source_io [--dir DIR] [--mb MB] [--record-kb KB] "
                            "[--take K] [--rounds R] [--drop-caches] [--windows] [--keep]\n");
            return 2;
        }
    }
    if (o.mb < 16 || o.record_kb < 1 || o.take < 1 || o.rounds < 1 || o.rounds > MAX_ROUNDS)
        die("bad arguments", "need --mb >= 16, --record-kb >= 1, --take >= 1, 1 <= --rounds <= 9");
    mkdir(o.dir, 0755);
    snprintf(o.path, sizeof o.path, "%s/source-io-%zuM-%zuK.sluice", o.dir, o.mb, o.record_kb);

    sl_io *probe;
    const sl_io_options po = {.backend = SL_IO_URING};
    if (sl_io_open(&probe, &po) != 0)
        die("io_uring is not available here", sl_io_errmsg(probe));
    sl_io_close(probe);

    const int64_t n = (int64_t)((o.mb << 20) / (o.record_kb << 10));
    write_file(&o, n);
    struct utsname u;
    uname(&u);
    printf("bench_source_io: %s, %lld records of %zu KiB (%zu MiB), %ld CPUs, Linux %s\n", o.path,
           (long long)n, o.record_kb, o.mb, sysconf(_SC_NPROCESSORS_ONLN), u.release);
    printf("global_shuffle reads the first %lld elements of its permutation; cold = %s before "
           "every run\n\n",
           (long long)(o.take < n ? o.take : n),
           o.drop_caches ? "drop_caches" : "posix_fadvise(DONTNEED)");

    if (o.windows) {
        run_windows(&o, n);
        if (!o.keep)
            unlink(o.path);
        return 0;
    }
    static cell cells[2][NCASES][NCOLS]; /* [cold][case][column] */
    for (int cold = 0; cold < 2; cold++) {
        if (!cold)
            warm(o.path);
        for (int r = 0; r < o.rounds; r++) {
            for (int c = 0; c < NCASES; c++) {
                const char *order[2] = {"io_uring", "pread"};
                if (r % 2) {
                    order[0] = "pread";
                    order[1] = "io_uring";
                }
                for (int k = 0; k < 2; k++) {
                    if (cold)
                        drop(&o);
                    const int col = !strcmp(order[k], "io_uring") ? URING : PREAD;
                    record(&cells[cold][c][col], r, run_engine(&o, c == SHUFFLED, order[k], n, 0));
                }
                if (c == SEQUENTIAL) {
                    if (cold)
                        drop(&o);
                    record(&cells[cold][c][CEILING], r, run_ceiling(&o));
                }
                fprintf(stderr, "\r%s round %d/%d   ", cold ? "cold" : "warm", r + 1, o.rounds);
            }
        }
    }
    fprintf(stderr, "\r                        \r");

    printf("| case | cache | io_uring | pread | io_uring / pread | io_uring / read() | pread / "
           "read() |\n|---|---|---|---|---|---|---|\n");
    for (int cold = 0; cold < 2; cold++)
        for (int c = 0; c < NCASES; c++) {
            const cell *row = cells[cold][c];
            printf("| %s | %s |", case_names[c], cold ? "cold" : "warm");
            print_cell(&row[URING], o.rounds);
            print_cell(&row[PREAD], o.rounds);
            print_ratio(&row[URING], &row[PREAD], o.rounds, "x");
            if (c == SEQUENTIAL) {
                print_ratio(&row[URING], &row[CEILING], o.rounds, "");
                print_ratio(&row[PREAD], &row[CEILING], o.rounds, "");
                printf("\n");
            } else {
                printf(" | |\n");
            }
        }
    printf("\nread() ceiling, 1 MiB blocks:");
    for (int cold = 0; cold < 2; cold++) {
        double lo, hi;
        const double m = median_of(cells[cold][SEQUENTIAL][CEILING].mbps, o.rounds, &lo, &hi);
        printf(" %s %.0f MB/s [%.0f-%.0f]%s", cold ? "cold" : "warm", m, lo, hi, cold ? "\n" : ";");
    }
    printf("peak sluice-allocated bytes per run (MB): sequential io_uring %.1f, pread %.1f; "
           "global_shuffle io_uring %.1f, pread %.1f\n",
           (double)cells[0][SEQUENTIAL][URING].peak / 1e6,
           (double)cells[0][SEQUENTIAL][PREAD].peak / 1e6,
           (double)cells[0][SHUFFLED][URING].peak / 1e6,
           (double)cells[0][SHUFFLED][PREAD].peak / 1e6);
    if (!o.keep)
        unlink(o.path);
    return 0;
}

/*
 * Orders of reading sluice files through the engine, in one run: sequential, a buffered
 * shuffle(10000) and a global_shuffle, over a raw file, a zstd file with the default 1 MiB
 * chunks and a zstd file with 64 KiB chunks (the layout bench_records recommends for random
 * access). The files are written here with the public writer API: --records records (default
 * 1,000,000) of 100 to 1000 bytes (uniform), each half pseudo-random bytes and half a short
 * repeating pattern, so zstd has something to do.
 *
 * Every pipeline is records(FILE) | ORDER, consumed by the calling thread with a CPU budget of
 * 2 threads; the consumer reads every byte of every record (a sum), so views are paid for. A
 * global_shuffle run reads a prefix of its permutation (| take(K)): random access into a
 * compressed file decompresses a whole chunk per record, so a full pass over 1M records of a
 * 1 MiB-chunk file would take minutes; rates stay comparable because every row reports
 * elements per second. Each figure is the median of --rounds interleaved rounds [min-max]; the
 * ratio is to sequential over the same file in the same run. The page cache is warm (the files
 * are read once before timing).
 *
 * Also printed: the peak of sluice-allocated bytes during each run (sl_alloc_peak_bytes),
 * because shuffle's buffer holds views that pin the reader's chunks.
 *
 * usage: bench_shuffle [--dir DIR] [--records N] [--rounds R] [--keep]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_util.h"
#include "sluice/alloc.h"
#include "sluice/clock.h"
#include "sluice/pipeline.h"
#include "sluice/record.h"
#include "sluice/rng.h"

enum { MAX_ROUNDS = 9, SHUFFLE_BUFFER = 10000, MIN_SIZE = 100, MAX_SIZE = 1000 };

typedef struct file_case {
    const char *name;
    const char *file;
    int level;          /* zstd level, 0 = raw */
    size_t chunk_bytes; /* 0 = default */
    int64_t gs_divisor; /* global_shuffle reads records / gs_divisor elements */
    char path[4096];
} file_case;

static void die(const char *what, const char *detail)
{
    bench_die("bench_shuffle", what, detail);
}

/* Record i: its size and bytes depend only on i. */
static size_t make_record(uint8_t *buf, uint64_t i)
{
    sl_rng r;
    sl_rng_init(&r, 7, 0, i);
    const size_t size = MIN_SIZE + (size_t)sl_rng_below(&r, MAX_SIZE - MIN_SIZE + 1);
    size_t k = 0;
    for (; k + 4 <= size / 2; k += 4) {
        const uint32_t v = sl_rng_u32(&r);
        memcpy(buf + k, &v, 4);
    }
    for (; k < size; k++)
        buf[k] = (uint8_t)(k % 13);
    return size;
}

static void write_file(const file_case *c, int64_t n)
{
    if (bench_count_records(c->path) == n)
        return; /* kept from an earlier run with --keep */
    const sl_record_writer_options o = {
        .compression_level = c->level, .chunk_bytes = c->chunk_bytes, .threads = 2};
    sl_record_writer *w;
    if (sl_record_writer_open(&w, c->path, &o))
        die(c->path, w ? sl_record_writer_errmsg(w) : "cannot create");
    uint8_t buf[MAX_SIZE];
    for (int64_t i = 0; i < n; i++) {
        const size_t size = make_record(buf, (uint64_t)i);
        if (sl_record_writer_write(w, buf, size))
            die(c->path, sl_record_writer_errmsg(w));
    }
    if (sl_record_writer_finish(w))
        die(c->path, sl_record_writer_errmsg(w));
    sl_record_writer_close(w);
}

static void warm_cache(const char *path)
{
    static uint8_t buf[1 << 20];
    const int fd = open(path, O_RDONLY);
    if (fd < 0)
        die(path, strerror(errno));
    while (read(fd, buf, sizeof buf) > 0) {
    }
    close(fd);
}

enum { SEQUENTIAL, SHUFFLE, GLOBAL_SHUFFLE, NORDERS };
static const char *const order_names[NORDERS] = {"sequential", "shuffle(10000)",
                                                 "global_shuffle | take"};

typedef struct result {
    double sec;
    int64_t elements;
    uint64_t bytes;
    int64_t peak; /* peak sluice-allocated bytes during the run */
} result;

static result run(const file_case *c, int order, int64_t n)
{
    const char *pattern = c->path;
    sl_dataset *src, *top = NULL, *mid = NULL;
    char err[512];
    if (sl_dataset_records(&src, &pattern, 1, err, sizeof err))
        die("records", err);
    int rc = 0;
    int64_t want = n;
    if (order == SHUFFLE) {
        rc = sl_dataset_shuffle(&top, src, SHUFFLE_BUFFER, 1, 1);
    } else if (order == GLOBAL_SHUFFLE) {
        want = n / c->gs_divisor;
        rc = sl_dataset_global_shuffle(&mid, src, 1, 1);
        if (!rc)
            rc = sl_dataset_take(&top, mid, want);
    }
    if (rc)
        die("building the pipeline", sl_strerror(rc));
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
    while ((rc = sl_iter_next(it, &e)) == 0) {
        const sl_tensor *t = &e.tensors[0];
        const uint8_t *p = t->data;
        for (int64_t k = 0; k < t->shape[0]; k++)
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
    if (res.elements != want)
        die(c->name, "wrong number of elements");
    __asm__ volatile("" : : "r"(sum));
    sl_dataset_release(top);
    sl_dataset_release(mid);
    sl_dataset_release(src);
    return res;
}

int main(int argc, char **argv)
{
    const char *dir = "/tmp/sluice-bench";
    int64_t n = 1000000;
    int rounds = 3, keep = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--records") && i + 1 < argc)
            n = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--keep"))
            keep = 1;
        else {
            fprintf(stderr,
                    "usage: bench_shuffle [--dir DIR] [--records N] [--rounds R] [--keep]\n");
            return 2;
        }
    }
    if (n < 1000 || rounds < 1 || rounds > MAX_ROUNDS)
        die("bad arguments", "need --records >= 1000, 1 <= --rounds <= 9");
    mkdir(dir, 0755);

    file_case cases[] = {
        {"raw", "shuffle-raw.sluice", 0, 0, 10, ""},
        {"zstd-1, 1 MiB chunks", "shuffle-zstd.sluice", 1, 0, 100, ""},
        {"zstd-1, 64 KiB chunks", "shuffle-zstd64k.sluice", 1, 64 << 10, 10, ""},
    };
    enum { NCASES = sizeof cases / sizeof cases[0] };
    for (int ci = 0; ci < NCASES; ci++) {
        snprintf(cases[ci].path, sizeof cases[ci].path, "%s/%s", dir, cases[ci].file);
        write_file(&cases[ci], n);
        warm_cache(cases[ci].path);
    }

    static result res[NCASES][NORDERS][MAX_ROUNDS];
    for (int r = 0; r < rounds; r++)
        for (int ci = 0; ci < NCASES; ci++)
            for (int k = 0; k < NORDERS; k++) {
                const int order = (k + r) % NORDERS; /* rotate who goes first */
                res[ci][order][r] = run(&cases[ci], order, n);
            }

    printf("%lld records of %d-%d bytes per file, records(FILE) | ORDER, threads=2, median of %d "
           "interleaved rounds [min-max], page cache warm\n",
           (long long)n, MIN_SIZE, MAX_SIZE, rounds);
    for (int ci = 0; ci < NCASES; ci++) {
        struct stat st;
        stat(cases[ci].path, &st);
        printf("%s (%.0f MB on disk)\n", cases[ci].name, (double)st.st_size / 1e6);
        double seq = 0;
        for (int k = 0; k < NORDERS; k++) {
            double rate[MAX_ROUNDS], mb[MAX_ROUNDS], peak[MAX_ROUNDS];
            for (int r = 0; r < rounds; r++) {
                const result *x = &res[ci][k][r];
                rate[r] = (double)x->elements / x->sec;
                mb[r] = (double)x->bytes / x->sec / 1e6;
                peak[r] = (double)x->peak;
            }
            const double med = bench_median(rate, rounds);
            if (k == SEQUENTIAL)
                seq = med;
            char label[64];
            if (k == GLOBAL_SHUFFLE)
                snprintf(label, sizeof label, "global_shuffle | take(%lld)",
                         (long long)(n / cases[ci].gs_divisor));
            else
                snprintf(label, sizeof label, "%s", order_names[k]);
            printf("  %-30s %10.0f elements/s [%.0f-%.0f]  %7.1f MB/s  %5.3fx sequential  "
                   "peak %.1f MiB allocated\n",
                   label, med, rate[0], rate[rounds - 1], bench_median(mb, rounds), med / seq,
                   bench_median(peak, rounds) / 1048576.0);
        }
    }
    printf("reproduce: %s --dir %s --records %lld --rounds %d%s\n", argv[0], dir, (long long)n,
           rounds, keep ? " --keep" : "");
    if (!keep)
        for (int ci = 0; ci < NCASES; ci++)
            unlink(cases[ci].path);
    return 0;
}

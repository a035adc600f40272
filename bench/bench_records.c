/*
 * Record-file read throughput against this machine's ceilings, all measured in one run:
 *
 *   sequential  read() of the file in 1 MiB blocks (the ceiling: what the page cache gives)
 *               vs sl_record_reader_next over a raw and a zstd sluice file and
 *               sl_tfrecord_reader_next over a TFRecord file of the same payloads, checksums on,
 *               each reading with pread/read() into its buffers and again from a mapping of
 *               the file (the readers' `map` option); the zstd file again with chunks
 *               decompressed ahead on 2 threads (`threads` option), and its codec's own
 *               ceiling, pread of each chunk + bare ZSTD_decompressDCtx on one thread
 *   random      pread of exactly each record's bytes in a shuffled order (the ceiling) vs
 *               sl_record_reader_read(i) on a 100k-record file, raw and zstd
 *   cold        the sequential pair again after posix_fadvise(DONTNEED) drops the file from
 *               the page cache (so the disk is in the loop)
 *
 * Each figure is the median of --rounds runs (default 3), the contenders interleaved within a
 * round; each sequential reader is scored against ceiling reads timed just before and after it. Output: one line per measurement with GB/s or records/s and the ratio to its ceiling.
 *
 * usage: bench_records [--dir DIR] [--mb MB] [--random-records N] [--rounds R] [--keep]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "bench_util.h"
#include "record_format_internal.h"
#include "sluice/alloc.h"
#include "sluice/clock.h"
#include "sluice/crc32c.h"
#include "sluice/record.h"
#include "sluice/rng.h"
#include "sluice/tfrecord.h"

enum { MAX_ROUNDS = 9, BLOCK = 1 << 20 };

typedef struct opts {
    const char *dir;
    size_t mb;
    size_t big_gb; /* > 0: also the sequential pair on a file this large (beyond the page cache) */
    int only_big;  /* skip everything else */
    size_t random_records;
    int rounds;
    int keep;
} opts;

static void die(const char *what, const char *detail)
{
    bench_die("bench_records", what, detail);
}

/* Payload i: `size` bytes, the first half pseudo-random (incompressible), the second half a
 * short repeating pattern, so zstd has something to do (about 2:1) as on real tensors. */
static void make_payload(uint8_t *buf, size_t size, uint64_t i)
{
    sl_rng r;
    sl_rng_init(&r, 42, 0, i);
    size_t k = 0;
    for (; k + 4 <= size / 2; k += 4) {
        const uint32_t v = sl_rng_u32(&r);
        memcpy(buf + k, &v, 4);
    }
    for (; k < size; k++)
        buf[k] = (uint8_t)(k % 13);
}

static void write_files(const opts *o, const char *raw, const char *zst, const char *tfr, size_t n,
                        size_t size, size_t zstd_chunk_bytes)
{
    sl_record_writer *wr, *wz;
    sl_tfrecord_writer *wt;
    sl_record_writer_options oz = {
        .compression_level = 1, .threads = 2, .chunk_bytes = zstd_chunk_bytes};
    if (sl_record_writer_open(&wr, raw, NULL) || sl_record_writer_open(&wz, zst, &oz) ||
        sl_tfrecord_writer_open(&wt, tfr, SL_TFRECORD_NONE))
        die("cannot create files in", o->dir);
    uint8_t *buf = malloc(size);
    for (size_t i = 0; i < n; i++) {
        make_payload(buf, size, i);
        if (sl_record_writer_write(wr, buf, size) || sl_record_writer_write(wz, buf, size) ||
            sl_tfrecord_writer_write(wt, buf, size))
            die("write failed", o->dir);
    }
    if (sl_record_writer_finish(wr) || sl_record_writer_finish(wz) || sl_tfrecord_writer_finish(wt))
        die("finish failed", o->dir);
    sl_record_writer_close(wr);
    sl_record_writer_close(wz);
    sl_tfrecord_writer_close(wt);
    free(buf);
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st))
        die(path, strerror(errno));
    return (uint64_t)st.st_size;
}

static void drop_cache(const char *path)
{
    const int fd = open(path, O_RDONLY);
    if (fd < 0)
        die(path, strerror(errno));
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
}

static volatile uint32_t sink; /* keeps the ceilings' checksums from being optimised away */

static void warm_cache(const char *path)
{
    const int fd = open(path, O_RDONLY);
    static uint8_t buf[BLOCK];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    close(fd);
}

/* Seconds to read() the whole file in 1 MiB blocks: the ceiling. With `check`, crc32c each
 * block while it is in cache: the most a reader that copies and checks every byte can do (a
 * second ceiling). */
static double time_read_blocks(const char *path, int check)
{
    static uint8_t *buf;
    if (!buf)
        buf = aligned_alloc(4096, BLOCK);
    const uint64_t t0 = sl_clock_ns();
    const int fd = open(path, O_RDONLY);
    ssize_t n;
    uint32_t crc = 0;
    while ((n = read(fd, buf, BLOCK)) > 0)
        if (check)
            crc = sl_crc32c(crc, buf, (size_t)n);
    close(fd);
    sink ^= crc;
    return (double)(sl_clock_ns() - t0) / 1e9;
}

static double time_read_ceiling(const char *path)
{
    return time_read_blocks(path, 0);
}

static double time_sluice_seq(const char *path, size_t want, int map, int threads)
{
    const uint64_t t0 = sl_clock_ns();
    sl_record_reader *r;
    const sl_record_reader_options ro = {.map = map, .threads = threads};
    if (sl_record_reader_open(&r, path, &ro))
        die(path, r ? sl_record_reader_errmsg(r) : "open failed");
    sl_record rec;
    size_t n = 0;
    int rc;
    while ((rc = sl_record_reader_next(r, &rec)) == 0)
        n++;
    if (rc != SL_EOF || n != want)
        die(path, sl_record_reader_errmsg(r));
    sl_record_reader_close(r);
    return (double)(sl_clock_ns() - t0) / 1e9;
}

static double time_tfrecord_seq(const char *path, size_t want, int map)
{
    const uint64_t t0 = sl_clock_ns();
    sl_tfrecord_reader *r;
    const sl_tfrecord_reader_options to = {.map = map};
    if (sl_tfrecord_reader_open(&r, path, &to))
        die(path, r ? sl_tfrecord_reader_errmsg(r) : "open failed");
    sl_tfrecord_record rec;
    size_t n = 0;
    int rc;
    while ((rc = sl_tfrecord_reader_next(r, &rec)) == 0)
        n++;
    if (rc != SL_EOF || n != want)
        die(path, sl_tfrecord_reader_errmsg(r));
    sl_tfrecord_reader_close(r);
    return (double)(sl_clock_ns() - t0) / 1e9;
}

/* Where each zstd chunk's frame lies in a sluice file: its stored bytes (chunk header and
 * frame) and the frame's own length, found once before any timing. */
typedef struct zstd_chunks {
    size_t n;
    uint64_t *offset;
    size_t *length; /* chunk header + frame, as read */
    size_t max_length;
} zstd_chunks;

static void list_zstd_chunks(const char *path, zstd_chunks *zc)
{
    sl_record_reader *r;
    if (sl_record_reader_open(&r, path, NULL))
        die(path, "open failed");
    zc->n = (size_t)sl_record_reader_chunk_count(r);
    zc->offset = malloc(zc->n * sizeof *zc->offset);
    zc->length = malloc(zc->n * sizeof *zc->length);
    zc->max_length = 0;
    const int fd = open(path, O_RDONLY);
    uint8_t *buf = NULL;
    for (size_t k = 0; k < zc->n; k++) {
        uint64_t off, len;
        if (sl_record_reader_chunk_span(r, k, &off, &len))
            die(path, "chunk span");
        buf = realloc(buf, len);
        if (pread(fd, buf, len, (off_t)off) != (ssize_t)len)
            die(path, "short read");
        const size_t frame = ZSTD_findFrameCompressedSize(buf + SL__CHUNK_HEADER,
                                                          len - SL__CHUNK_HEADER);
        if (ZSTD_isError(frame))
            die(path, "a chunk is not one zstd frame");
        zc->offset[k] = off;
        zc->length[k] = SL__CHUNK_HEADER + frame;
        if (zc->length[k] > zc->max_length)
            zc->max_length = zc->length[k];
    }
    free(buf);
    close(fd);
    sl_record_reader_close(r);
}

/* Seconds to pread every chunk and decompress its frame with bare ZSTD_decompressDCtx into
 * one reused buffer: what the codec costs on this file, the ceiling for its sequential read. */
static double time_zstd_codec(const char *path, const zstd_chunks *zc)
{
    static uint8_t *in, *out;
    static size_t in_cap;
    enum { OUT_CAP = 8 << 20 };
    if (in_cap < zc->max_length) {
        free(in);
        in = aligned_alloc(4096, (zc->max_length + 4095) & ~(size_t)4095);
        in_cap = zc->max_length;
    }
    if (!out)
        out = aligned_alloc(4096, OUT_CAP);
    ZSTD_DCtx *d = ZSTD_createDCtx();
    const uint64_t t0 = sl_clock_ns();
    const int fd = open(path, O_RDONLY);
    for (size_t k = 0; k < zc->n; k++) {
        if (pread(fd, in, zc->length[k], (off_t)zc->offset[k]) != (ssize_t)zc->length[k])
            die(path, "short read");
        const size_t got = ZSTD_decompressDCtx(d, out, OUT_CAP, in + SL__CHUNK_HEADER,
                                               zc->length[k] - SL__CHUNK_HEADER);
        if (ZSTD_isError(got))
            die(path, ZSTD_getErrorName(got));
    }
    close(fd);
    const double s = (double)(sl_clock_ns() - t0) / 1e9;
    ZSTD_freeDCtx(d);
    return s;
}

static void shuffle(uint64_t *order, size_t n, uint64_t seed)
{
    sl_rng r;
    sl_rng_init(&r, seed, 1, 0);
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = n; i > 1; i--) {
        const size_t j = (size_t)sl_rng_below(&r, i);
        const uint64_t t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
}

static double time_sluice_random(const char *path, const uint64_t *order, size_t n, int map)
{
    sl_record_reader *r;
    const sl_record_reader_options ro = {.map = map};
    if (sl_record_reader_open(&r, path, &ro))
        die(path, "open failed");
    const uint64_t t0 = sl_clock_ns();
    sl_record rec;
    for (size_t i = 0; i < n; i++)
        if (sl_record_reader_read(r, order[i], &rec))
            die(path, sl_record_reader_errmsg(r));
    const double s = (double)(sl_clock_ns() - t0) / 1e9;
    sl_record_reader_close(r);
    return s;
}

/* The ceiling for random reads: one pread of exactly each record's stored bytes (located
 * through a TFRecord index of the same payloads: offset + 12 .. + size), crc32c included. */
static double time_pread_random(const char *tfr, const sl_tfrecord_index_entry *idx,
                                const uint64_t *order, size_t n)
{
    const int fd = open(tfr, O_RDONLY);
    uint8_t *buf = malloc(1 << 20);
    uint32_t crc = 0;
    const uint64_t t0 = sl_clock_ns();
    for (size_t i = 0; i < n; i++) {
        const sl_tfrecord_index_entry *e = &idx[order[i]];
        const size_t len = (size_t)e->size - 16;
        if (pread(fd, buf, len, (off_t)e->offset + 12) != (ssize_t)len)
            die(tfr, "short pread");
        crc += sl_crc32c(0, buf, len);
    }
    const double s = (double)(sl_clock_ns() - t0) / 1e9;
    close(fd);
    free(buf);
    sink ^= crc;
    return s;
}

int main(int argc, char **argv)
{
    opts o = {.dir = "/tmp/sluice-bench", .mb = 1024, .random_records = 100000, .rounds = 3};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            o.dir = argv[++i];
        else if (!strcmp(argv[i], "--mb") && i + 1 < argc)
            o.mb = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--random-records") && i + 1 < argc)
            o.random_records = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            o.rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--big-gb") && i + 1 < argc)
            o.big_gb = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--only-big"))
            o.only_big = 1;
        else if (!strcmp(argv[i], "--keep"))
            o.keep = 1;
        else {
            fprintf(stderr, "usage: bench_records [--dir DIR] [--mb MB] [--random-records N] "
                            "[--rounds R] [--big-gb GB [--only-big]] [--keep]\n");
            return 2;
        }
    }
    if (o.rounds < 1 || o.rounds > MAX_ROUNDS)
        o.rounds = 3;
    if (o.only_big) { /* the other measurements shrink to a token size */
        o.mb = 8;
        o.random_records = 1000;
        o.rounds = 1;
    }
    mkdir(o.dir, 0755);
    char raw[4096], zst[4096], tfr[4096], sraw[4096], szst[4096], stfr[4096], sidx[4096];
    snprintf(raw, sizeof raw, "%s/seq-raw.sluice", o.dir);
    snprintf(zst, sizeof zst, "%s/seq-zstd.sluice", o.dir);
    snprintf(tfr, sizeof tfr, "%s/seq.tfrecord", o.dir);
    snprintf(sraw, sizeof sraw, "%s/rand-raw.sluice", o.dir);
    snprintf(szst, sizeof szst, "%s/rand-zstd.sluice", o.dir);
    snprintf(stfr, sizeof stfr, "%s/rand.tfrecord", o.dir);
    snprintf(sidx, sizeof sidx, "%s/rand.tfrecord.idx", o.dir);

    const size_t seq_size = 48 << 10, seq_n = (o.mb << 20) / seq_size;
    const size_t rnd_size = 2048, rnd_n = o.random_records;
    fprintf(stderr, "writing %zu x %zu KiB records (3 files) and %zu x %zu B records...\n", seq_n,
            seq_size >> 10, rnd_n, rnd_size);
    write_files(&o, raw, zst, tfr, seq_n, seq_size, 0);
    write_files(&o, sraw, szst, stfr, rnd_n, rnd_size, 0);
    /* The same records in zstd chunks of 64 KiB: random reads decompress 16x less. */
    char szst64[4096], stfr64[4096], sraw64[4096];
    snprintf(szst64, sizeof szst64, "%s/rand-zstd64k.sluice", o.dir);
    snprintf(stfr64, sizeof stfr64, "%s/rand64k.tfrecord", o.dir);
    snprintf(sraw64, sizeof sraw64, "%s/rand-raw64k.sluice", o.dir);
    write_files(&o, sraw64, szst64, stfr64, rnd_n, rnd_size, 64 << 10);
    char err[512];
    if (sl_tfrecord_index_build(stfr, sidx, NULL, err, sizeof err))
        die("index", err);
    sl_tfrecord_index_entry *idx;
    uint64_t idx_n;
    if (sl_tfrecord_index_load(sidx, stfr, &idx, &idx_n, err, sizeof err))
        die("index", err);

    const double payload_gb = (double)seq_n * seq_size / 1e9;
    printf("machine: %ld CPUs; crc32c: %s; payload %zu x %zu KiB = %.2f GB per sequential file\n",
           sysconf(_SC_NPROCESSORS_ONLN), sl_crc32c_impl(), seq_n, seq_size >> 10, payload_gb);
    printf("files: raw sluice %.2f GB, zstd sluice %.2f GB, tfrecord %.2f GB\n",
           file_size(raw) / 1e9, file_size(zst) / 1e9, file_size(tfr) / 1e9);

    /* Sequential, warm page cache. The machine's copy rate drifts by 20% between runs a
     * second apart, so every reader is timed between two ceiling reads of its own file and
     * scored against their mean; the figure is the median of those per-round ratios. */
    zstd_chunks zc;
    list_zstd_chunks(zst, &zc);
    warm_cache(raw);
    warm_cache(zst);
    warm_cache(tfr);
    enum { RAW, RAW_MAP, ZST, ZST_MAP, ZST_T2, ZST_MAP_T2, TFR, TFR_MAP, RAW_CRC, ZST_CODEC, NSEQ };
    static const char *const seq_name[NSEQ] = {
        "sluice raw (sl_record_reader_next)", "sluice raw, mapped (map = 1)",
        "sluice zstd-1 (decompressing)",      "sluice zstd-1, mapped",
        "sluice zstd-1, threads = 2",         "sluice zstd-1, mapped, threads = 2",
        "tfrecord (sl_tfrecord_reader_next)", "tfrecord, mapped",
        "bare read() + crc32c per block",     "bare pread + ZSTD_decompressDCtx"};
    const char *const seq_file[NSEQ] = {raw, raw, zst, zst, zst, zst, tfr, tfr, raw, zst};
    double seq_ratio[NSEQ][MAX_ROUNDS], seq_gbs[NSEQ][MAX_ROUNDS], seq_ceil[NSEQ][MAX_ROUNDS];
    double zst_of_codec[MAX_ROUNDS], raw_of_checked[MAX_ROUNDS];
    for (int r = 0; r < o.rounds; r++) {
        double t[NSEQ];
        for (int k = 0; k < NSEQ; k++) {
            const double before = time_read_ceiling(seq_file[k]);
            switch (k) {
            case RAW:
            case RAW_MAP: t[k] = time_sluice_seq(raw, seq_n, k == RAW_MAP, 0); break;
            case ZST:
            case ZST_MAP: t[k] = time_sluice_seq(zst, seq_n, k == ZST_MAP, 0); break;
            case ZST_T2:
            case ZST_MAP_T2: t[k] = time_sluice_seq(zst, seq_n, k == ZST_MAP_T2, 2); break;
            case TFR:
            case TFR_MAP: t[k] = time_tfrecord_seq(tfr, seq_n, k == TFR_MAP); break;
            case RAW_CRC: t[k] = time_read_blocks(raw, 1); break;
            default: t[k] = time_zstd_codec(zst, &zc); break;
            }
            const double ceiling = (before + time_read_ceiling(seq_file[k])) / 2;
            seq_ratio[k][r] = ceiling / t[k];
            seq_gbs[k][r] = file_size(seq_file[k]) / 1e9 / t[k];
            seq_ceil[k][r] = file_size(seq_file[k]) / 1e9 / ceiling;
        }
        zst_of_codec[r] = t[ZST_CODEC] / t[ZST];
        raw_of_checked[r] = t[RAW_CRC] / t[RAW];
    }
    printf("\nsequential, page cache warm, checksums verified (file bytes/s; median of %d)\n",
           o.rounds);
    printf("  %-34s %8s %10s %8s %14s\n", "reader", "GB/s", "ceiling", "ratio", "payload GB/s");
    for (int k = 0; k < NSEQ; k++) {
        if (k == RAW_CRC)
            printf("  second ceilings: what any reader that copies and checks, or decompresses,"
                   " can do\n");
        const double gbs = bench_median(seq_gbs[k], o.rounds);
        printf("  %-34s %8.2f %10.2f %7.0f%% %14.2f\n", seq_name[k], gbs,
               bench_median(seq_ceil[k], o.rounds), 100 * bench_median(seq_ratio[k], o.rounds),
               gbs * payload_gb / (file_size(seq_file[k]) / 1e9));
    }
    printf("  (ceiling: read() of the same file in 1 MiB blocks, no checks, timed just before\n"
           "   and just after each reader; ratio: median over rounds of reader / that ceiling)\n");
    printf("  sluice raw (copying) / bare read() + crc32c:       %.0f%%\n",
           100 * bench_median(raw_of_checked, o.rounds));
    printf("  sluice zstd-1 (copying) / bare pread + decompress: %.0f%%\n",
           100 * bench_median(zst_of_codec, o.rounds));
    free(zc.offset);
    free(zc.length);

    /* Random single-record reads. */
    uint64_t *order = malloc(rnd_n * sizeof *order);
    double p_t[MAX_ROUNDS], r_raw[MAX_ROUNDS], r_zst[MAX_ROUNDS], r_z64[MAX_ROUNDS];
    double r_map[MAX_ROUNDS];
    warm_cache(sraw);
    warm_cache(szst);
    warm_cache(szst64);
    warm_cache(stfr);
    for (int r = 0; r < o.rounds; r++) {
        shuffle(order, rnd_n, (uint64_t)r + 1);
        p_t[r] = time_pread_random(stfr, idx, order, rnd_n);
        r_raw[r] = time_sluice_random(sraw, order, rnd_n, 0);
        r_map[r] = time_sluice_random(sraw, order, rnd_n, 1);
        r_zst[r] = time_sluice_random(szst, order, rnd_n, 0);
        r_z64[r] = time_sluice_random(szst64, order, rnd_n, 0);
    }
    const double rp = rnd_n / bench_median(p_t, o.rounds),
                 rr = rnd_n / bench_median(r_raw, o.rounds),
                 rz = rnd_n / bench_median(r_zst, o.rounds),
                 rz64 = rnd_n / bench_median(r_z64, o.rounds),
                 rm = rnd_n / bench_median(r_map, o.rounds);
    printf("\nrandom single-record reads, %zu records of %zu B, shuffled order, page cache warm\n",
           rnd_n, rnd_size);
    printf("  %-34s %12.0f records/s  (ceiling)\n", "pread of exactly the record + crc32c", rp);
    printf("  %-34s %12.0f records/s  %5.0f%% of ceiling\n", "sluice raw read(i)", rr,
           100 * rr / rp);
    printf("  %-34s %12.0f records/s  %5.0f%% of ceiling\n", "sluice raw read(i), mapped", rm,
           100 * rm / rp);
    printf("  %-34s %12.0f records/s  %5.0f%% of ceiling (reads + decompresses its chunk)\n",
           "sluice zstd-1 read(i), 1 MiB chunks", rz, 100 * rz / rp);
    printf("  %-34s %12.0f records/s  %5.0f%% of ceiling (%.2f GB file vs %.2f GB raw)\n",
           "sluice zstd-1 read(i), 64 KiB chunks", rz64, 100 * rz64 / rp, file_size(szst64) / 1e9,
           file_size(sraw) / 1e9);

    /* Sequential, cold page cache. */
    double cc[MAX_ROUNDS], cr[MAX_ROUNDS], cm[MAX_ROUNDS];
    for (int r = 0; r < o.rounds; r++) { /* alternate who goes first: see below */
        drop_cache(raw);
        if (r % 2 == 0)
            cc[r] = time_read_ceiling(raw);
        drop_cache(raw);
        cr[r] = time_sluice_seq(raw, seq_n, 0, 0);
        drop_cache(raw);
        cm[r] = time_sluice_seq(raw, seq_n, 1, 0);
        if (r % 2 == 1) {
            drop_cache(raw);
            cc[r] = time_read_ceiling(raw);
        }
    }
    const double gc = file_size(raw) / 1e9 / bench_median(cc, o.rounds),
                 gr = file_size(raw) / 1e9 / bench_median(cr, o.rounds),
                 gm = file_size(raw) / 1e9 / bench_median(cm, o.rounds);
    printf("\nsequential, page cache dropped (posix_fadvise DONTNEED) before each read\n");
    printf("  %-34s %8.2f GB/s  (ceiling)\n", "read() 1 MiB blocks", gc);
    printf("  %-34s %8.2f GB/s  %5.0f%% of ceiling\n", "sluice raw", gr, 100 * gr / gc);
    printf("  %-34s %8.2f GB/s  %5.0f%% of ceiling\n", "sluice raw, mapped", gm, 100 * gm / gc);

    if (o.big_gb) {
        /* Larger than the page cache: every read comes from the disk, ceiling first. */
        char big[4096];
        snprintf(big, sizeof big, "%s/big-raw.sluice", o.dir);
        const size_t big_n = (o.big_gb << 30) / seq_size;
        fprintf(stderr, "writing %zu GB (%zu records) to %s...\n", o.big_gb, big_n, big);
        sl_record_writer *w;
        if (sl_record_writer_open(&w, big, NULL))
            die("cannot create", big);
        uint8_t *buf = malloc(seq_size);
        for (size_t i = 0; i < big_n; i++) {
            make_payload(buf, seq_size, i % 4096);
            if (sl_record_writer_write(w, buf, seq_size))
                die("write failed", big);
        }
        if (sl_record_writer_finish(w))
            die("finish failed", big);
        sl_record_writer_close(w);
        free(buf);
        /* A VM's disk may be cached by its host: whoever reads second can profit, so the
         * order is ceiling, sluice, sluice, ceiling and each side reports its mean. */
        double t[4];
        for (int k = 0; k < 4; k++) {
            drop_cache(big);
            t[k] = k == 0 || k == 3 ? time_read_ceiling(big) : time_sluice_seq(big, big_n, 0, 0);
        }
        const double bc = 2 * file_size(big) / 1e9 / (t[0] + t[3]);
        const double br = 2 * file_size(big) / 1e9 / (t[1] + t[2]);
        printf("\nsequential, %.1f GB file (RAM: %.1f GB), reads in the order A B B A\n",
               file_size(big) / 1e9,
               (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE) / 1e9);
        printf("  %-34s %8.2f GB/s  (ceiling)\n", "read() 1 MiB blocks", bc);
        printf("  %-34s %8.2f GB/s  %5.0f%% of ceiling\n", "sluice raw", br, 100 * br / bc);
        if (!o.keep)
            unlink(big);
    }

    free(order);
    sl_free(idx);
    if (!o.keep) {
        const char *files[] = {raw, zst, tfr, sraw, szst, stfr, sidx, szst64, stfr64, sraw64};
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
            unlink(files[i]);
    }
    return 0;
}

/*
 * `sluice convert`: TFRecord (plain, GZIP, ZLIB) and sluice files in, a sluice file, sharded
 * sluice files or a TFRecord file out.
 *
 * The job is one ordered stream of records over the inputs. With --shards N the stream is cut
 * into N contiguous ranges (shard s holds records [s*n/N, (s+1)*n/N)), which needs the record
 * count n first: sluice inputs know theirs, TFRecord inputs are counted in a first pass.
 * Compression runs in parallel inside the record writer (--threads).
 *
 * Resuming: every output is published atomically, so a kill leaves only complete files under
 * final names. A sharded job also writes a state file beside its output naming the inputs
 * (path, size, mtime) and options; a rerun that finds the same state keeps every shard that is
 * already published (it opens and has the planned record count) and writes the rest. Output
 * is a deterministic function of inputs and options, so the result is byte-identical to an
 * uninterrupted run. The state file is removed when the job completes.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "sluice/alloc.h"
#include "sluice/clock.h"
#include "sluice/example_typed.h"
#include "sluice/file_format.h"
#include "sluice/progress.h"
#include "sluice/record.h"
#include "sluice/tfrecord.h"

static const char usage_text[] =
    "usage: sluice convert IN... -o OUT [options]\n"
    "\n"
    "Converts TFRecord files (plain, GZIP or ZLIB: detected from their bytes) and sluice\n"
    "files into one sluice file, N sluice shards, or one TFRecord file. Payloads are kept\n"
    "byte for byte, except that --schema parses tf.train.Example payloads into typed\n"
    "records, and typed sluice files written out as TFRecord become tf.train.Example.\n"
    "Outputs appear atomically; after a kill, rerunning the same command keeps the shards\n"
    "already written and finishes the job with output identical to an uninterrupted run.\n"
    "\n"
    "  -o, --output OUT            NAME.sluice, a shard base name with --shards (shards are\n"
    "                              NAME-00000-of-00008.sluice ...), or NAME.tfrecord\n"
    "      --shards N              split the records into N contiguous shards (sluice output)\n"
    "      --compress C            none (default), zstd (level 3) or zstd:LEVEL (1-22); a\n"
    "                              chunk is stored raw when compression does not pay\n"
    "      --chunk-bytes B         target uncompressed chunk size (default 1048576)\n"
    "      --schema SPEC           parse tf.Example payloads into typed records, e.g.\n"
    "                              'image:bytes,label:int64,emb:float32[128]'\n"
    "      --input-compression C   gzip, zlib or none: override detection for TFRecord inputs\n"
    "      --output-compression C  gzip, zlib or none (default) for TFRecord output\n"
    "      --skip-corrupt          skip TFRecord records whose data CRC fails (counted and\n"
    "                              reported) instead of stopping\n"
    "      --threads T             compression threads (default: number of CPUs)\n"
    "  -h, --help                  this text\n";

enum mode { MODE_COPY, MODE_EXAMPLE_TO_TYPED, MODE_TYPED_TO_EXAMPLE };

typedef struct input {
    const char *path;
    sl_file_format fmt;
    uint64_t count; /* UINT64_MAX until known */
    uint64_t size_bytes;
    int64_t mtime_ns;
} input;

typedef struct job {
    /* options */
    input *in;
    int nin;
    const char *out;
    int out_tfrecord;
    sl_tfrecord_compression out_comp, in_comp;
    unsigned shards; /* 0: one output file */
    int level, threads, skip_corrupt;
    size_t chunk_bytes;
    const char *schema_text;
    /* derived */
    enum mode mode;
    sl_schema *out_schema; /* schema of sluice output (owned) */
    sl_schema *in_schema;  /* schema of sluice inputs (owned) */
    sl_example_converter *conv;
    uint64_t total; /* UINT64_MAX when unknown */
    char state_path[4096];
    /* the input stream */
    int cur;          /* input being read */
    uint64_t cur_pos; /* records consumed from it */
    sl_record_reader *sr;
    sl_tfrecord_reader *tr;
    uint64_t skipped_corrupt;
    uint64_t skip_lines; /* skip reports printed */
    int counting;        /* in the counting pass */
    uint64_t done, in_bytes, out_bytes;
    sl_progress *progress;
    uint64_t phase_ns[3]; /* time per phase (enum phase), for the live line's bottleneck */
    uint64_t phase_t, next_note;
    char errbuf[1024];
} job;

static int parse_tf_compression(const char *s, sl_tfrecord_compression *out)
{
    if (!strcmp(s, "gzip"))
        *out = SL_TFRECORD_GZIP;
    else if (!strcmp(s, "zlib"))
        *out = SL_TFRECORD_ZLIB;
    else if (!strcmp(s, "none"))
        *out = SL_TFRECORD_NONE;
    else
        return -1;
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    const size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static void close_current(job *j)
{
    sl_record_reader_close(j->sr);
    sl_tfrecord_reader_close(j->tr);
    j->sr = NULL;
    j->tr = NULL;
}

enum { MAX_SKIP_LINES = 100 };

static void report_skip(uint64_t record, uint64_t offset, void *user)
{
    job *j = user;
    if (j->counting)
        return; /* reported once, by the writing pass */
    if (j->skip_lines++ < MAX_SKIP_LINES)
        fprintf(stderr,
                "sluice convert: skipped %s: record %" PRIu64 " at offset %" PRIu64
                ": data crc32c mismatch\n",
                j->in[j->cur].path, record, offset);
}

static int open_input(job *j, int i, int verify)
{
    const input *in = &j->in[i];
    if (in->fmt == SL_FILE_SLUICE) {
        sl_record_reader_options o = {.skip_verify = !verify};
        const int rc = sl_record_reader_open(&j->sr, in->path, &o);
        if (rc)
            return cli_fail("convert", "%s",
                            j->sr ? sl_record_reader_errmsg(j->sr) : sl_strerror(rc));
        return 0;
    }
    sl_tfrecord_reader_options o = {.compression = j->in_comp,
                                    .skip_verify = !verify,
                                    .skip_corrupt = j->skip_corrupt,
                                    .on_skip = report_skip,
                                    .on_skip_user = j};
    const int rc = sl_tfrecord_reader_open(&j->tr, in->path, &o);
    if (rc)
        return cli_fail("convert", "%s",
                        j->tr ? sl_tfrecord_reader_errmsg(j->tr) : sl_strerror(rc));
    return 0;
}

/* Next record of the whole stream: 0, SL_EOF, or CLI_FAIL after printing the error. */
static int stream_next(job *j, const uint8_t **data, size_t *size)
{
    for (;;) {
        if (!j->sr && !j->tr) {
            if (j->cur >= j->nin)
                return SL_EOF;
            if (open_input(j, j->cur, 1))
                return CLI_FAIL;
            j->cur_pos = 0;
        }
        int rc;
        if (j->sr) {
            sl_record rec;
            rc = sl_record_reader_next(j->sr, &rec);
            if (rc == 0) {
                *data = rec.data;
                *size = rec.size;
                j->cur_pos++;
                return 0;
            }
            if (rc != SL_EOF)
                return cli_fail("convert", "%s", sl_record_reader_errmsg(j->sr));
        } else {
            sl_tfrecord_record rec;
            rc = sl_tfrecord_reader_next(j->tr, &rec);
            if (rc == 0) {
                *data = rec.data;
                *size = rec.size;
                return 0;
            }
            if (rc != SL_EOF)
                return cli_fail("convert", "%s", sl_tfrecord_reader_errmsg(j->tr));
            j->skipped_corrupt += sl_tfrecord_reader_skipped(j->tr);
        }
        close_current(j);
        j->cur++;
    }
}

/* Skips n records of the stream (resuming past kept shards): whole sluice files are passed
 * over unopened and positions inside them are reached by seeking; TFRecord files are read. */
static int stream_skip(job *j, uint64_t n)
{
    while (n) {
        if (!j->sr && !j->tr) {
            if (j->cur >= j->nin)
                return cli_fail("convert", "inputs hold fewer records than planned");
            if (j->in[j->cur].fmt == SL_FILE_SLUICE && j->in[j->cur].count <= n) {
                n -= j->in[j->cur].count;
                j->cur++;
                continue;
            }
            if (open_input(j, j->cur, 1))
                return CLI_FAIL;
            j->cur_pos = 0;
        }
        if (j->sr) {
            const uint64_t left = sl_record_reader_count(j->sr) - j->cur_pos;
            if (n < left) {
                j->cur_pos += n;
                if (sl_record_reader_seek(j->sr, j->cur_pos))
                    return cli_fail("convert", "%s", sl_record_reader_errmsg(j->sr));
                return 0;
            }
            n -= left;
            close_current(j);
            j->cur++;
            continue;
        }
        const uint8_t *d;
        size_t sz;
        const int rc = stream_next(j, &d, &sz);
        if (rc == SL_EOF)
            return cli_fail("convert", "inputs hold fewer records than planned");
        if (rc)
            return rc;
        n--;
    }
    return 0;
}

/* Applies the record conversion of the job's mode. */
static int transform(job *j, const uint8_t *data, size_t size, const uint8_t **out,
                     size_t *out_size)
{
    int rc = 0;
    char err[512] = "";
    switch (j->mode) {
    case MODE_COPY:
        *out = data;
        *out_size = size;
        return 0;
    case MODE_EXAMPLE_TO_TYPED:
        rc = sl_example_converter_to_record(j->conv, data, size, out, out_size, err, sizeof err);
        break;
    case MODE_TYPED_TO_EXAMPLE:
        rc = sl_example_converter_to_example(j->conv, data, size, out, out_size, err, sizeof err);
        break;
    }
    if (rc) {
        const char *path = j->cur < j->nin ? j->in[j->cur].path : "input";
        return cli_fail("convert", "%s: record %" PRIu64 " of the input stream: %s", path, j->done,
                        err[0] ? err : sl_strerror(rc));
    }
    return 0;
}

/* Where convert's time goes: the live line names the phase that takes most of it. */
enum phase { PHASE_READ, PHASE_CONVERT, PHASE_WRITE };
static const char *const phase_name[] = {"reading the input", "converting records",
                                         "writing the output (compression included)"};
#define NOTE_INTERVAL_NS 500000000ull

static void phase_end(job *j, enum phase ph)
{
    const uint64_t now = sl_clock_ns();
    j->phase_ns[ph] += now - j->phase_t;
    j->phase_t = now;
}

static void note_bottleneck(job *j)
{
    uint64_t all = 0;
    int top = 0;
    for (int k = 0; k < 3; k++) {
        all += j->phase_ns[k];
        top = j->phase_ns[k] > j->phase_ns[top] ? k : top;
    }
    if (!all)
        return;
    char note[96];
    snprintf(note, sizeof note, "bottleneck: %s (%.0f%% of the time)", phase_name[top],
             100.0 * (double)j->phase_ns[top] / (double)all);
    sl_progress_set_note(j->progress, note);
}

/* Counts one record written (the last phase ends now) and refreshes the live line. */
static void record_written(job *j, size_t size, size_t out_size)
{
    phase_end(j, PHASE_WRITE);
    j->done++;
    j->in_bytes += size;
    j->out_bytes += out_size;
    if (j->phase_t >= j->next_note) {
        note_bottleneck(j);
        j->next_note = j->phase_t + NOTE_INTERVAL_NS;
    }
    sl_progress_add(j->progress, 1, size);
}

static int write_tfrecord(job *j)
{
    sl_tfrecord_writer *w;
    int rc = sl_tfrecord_writer_open(&w, j->out, j->out_comp);
    if (rc) {
        const int ret =
            cli_fail("convert", "%s", w ? sl_tfrecord_writer_errmsg(w) : sl_strerror(rc));
        sl_tfrecord_writer_close(w);
        return ret;
    }
    const uint8_t *data, *out;
    size_t size, out_size;
    int ret = 0;
    j->phase_t = sl_clock_ns();
    while ((rc = stream_next(j, &data, &size)) == 0) {
        phase_end(j, PHASE_READ);
        if ((ret = transform(j, data, size, &out, &out_size)))
            break;
        phase_end(j, PHASE_CONVERT);
        if ((rc = sl_tfrecord_writer_write(w, out, out_size))) {
            ret = cli_fail("convert", "%s", sl_tfrecord_writer_errmsg(w));
            break;
        }
        record_written(j, size, out_size);
    }
    if (rc != SL_EOF && !ret)
        ret = CLI_FAIL;
    if (!ret && sl_tfrecord_writer_finish(w))
        ret = cli_fail("convert", "%s", sl_tfrecord_writer_errmsg(w));
    sl_tfrecord_writer_close(w);
    return ret;
}

/* Writes up to `limit` records (UINT64_MAX: all) of the stream into one sluice file. */
static int write_sluice(job *j, const char *path, uint64_t limit)
{
    sl_record_writer_options o = {.compression_level = j->level,
                                  .chunk_bytes = j->chunk_bytes,
                                  .threads = j->level > 0 ? j->threads : 1,
                                  .schema = j->out_schema};
    sl_record_writer *w;
    int rc = sl_record_writer_open(&w, path, &o);
    if (rc) {
        const int ret = cli_fail("convert", "%s", w ? sl_record_writer_errmsg(w) : sl_strerror(rc));
        sl_record_writer_close(w);
        return ret;
    }
    const uint8_t *data, *out;
    size_t size, out_size;
    int ret = 0;
    uint64_t written = 0;
    j->phase_t = sl_clock_ns();
    while (written < limit && (rc = stream_next(j, &data, &size)) == 0) {
        phase_end(j, PHASE_READ);
        if ((ret = transform(j, data, size, &out, &out_size)))
            break;
        phase_end(j, PHASE_CONVERT);
        if ((rc = sl_record_writer_write(w, out, out_size))) {
            ret = cli_fail("convert", "%s", sl_record_writer_errmsg(w));
            break;
        }
        written++;
        record_written(j, size, out_size);
    }
    if (!ret && rc != 0 && rc != SL_EOF)
        ret = CLI_FAIL;
    if (!ret && limit != UINT64_MAX && written < limit)
        ret = cli_fail("convert",
                       "inputs ended after %" PRIu64 " records; %" PRIu64
                       " were counted (did an input change during the run?)",
                       j->done, j->total);
    if (!ret && sl_record_writer_finish(w))
        ret = cli_fail("convert", "%s", sl_record_writer_errmsg(w));
    sl_record_writer_close(w);
    return ret;
}

/* First pass over TFRecord inputs without a known count (checks CRCs on the way). */
static int count_records(job *j)
{
    uint64_t total = 0;
    int need = 0;
    for (int i = 0; i < j->nin; i++)
        need += j->in[i].count == UINT64_MAX;
    sl_progress *p = NULL;
    if (need)
        sl_progress_open(&p, stderr, "count", 0, "records", 0);
    j->counting = 1;
    for (int i = 0; i < j->nin; i++) {
        input *in = &j->in[i];
        if (in->count == UINT64_MAX) {
            if (open_input(j, i, 1)) {
                sl_progress_close(p);
                return CLI_FAIL;
            }
            uint64_t n = 0;
            sl_tfrecord_record rec;
            int rc;
            while ((rc = sl_tfrecord_reader_next(j->tr, &rec)) == 0) {
                n++;
                sl_progress_add(p, 1, rec.size);
            }
            if (rc != SL_EOF) {
                sl_progress_close(p);
                const int ret = cli_fail("convert", "%s", sl_tfrecord_reader_errmsg(j->tr));
                close_current(j);
                return ret;
            }
            close_current(j);
            in->count = n;
        }
        total += in->count;
    }
    sl_progress_close(p);
    j->counting = 0;
    j->total = total;
    return 0;
}

/* The job's identity for resuming: inputs as found on disk, and every option that changes
 * output bytes. */
static void describe_job(const job *j, FILE *f)
{
    fprintf(f,
            "sluice-convert-state 1\nshards %u\nlevel %d\nchunk_bytes %zu\nschema %s\n"
            "input_compression %d\ntotal %" PRIu64 "\n",
            j->shards, j->level, j->chunk_bytes, j->schema_text ? j->schema_text : "-",
            (int)j->in_comp, j->total);
    for (int i = 0; i < j->nin; i++)
        fprintf(f, "input %" PRIu64 " %" PRId64 " %s\n", j->in[i].size_bytes, j->in[i].mtime_ns,
                j->in[i].path);
}

static char *job_text(const job *j)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    describe_job(j, f);
    fclose(f);
    return buf;
}

static int state_matches(const job *j)
{
    FILE *f = fopen(j->state_path, "r");
    if (!f)
        return 0;
    char *want = job_text(j);
    size_t cap = want ? strlen(want) + 2 : 0;
    char *have = want ? malloc(cap) : NULL;
    const size_t n = have ? fread(have, 1, cap, f) : 0;
    fclose(f);
    const int same = want && have && n == cap - 2 && !memcmp(want, have, n);
    free(want);
    free(have);
    return same;
}

static int state_write(const job *j)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", j->state_path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return cli_fail("convert", "%s: %s", tmp, strerror(errno));
    describe_job(j, f);
    if (fflush(f) || fsync(fileno(f)) || fclose(f) || rename(tmp, j->state_path))
        return cli_fail("convert", "%s: %s", j->state_path, strerror(errno));
    return 0;
}

/* A published shard is kept when it opens cleanly with exactly the planned record count. */
static int shard_is_done(const char *path, uint64_t planned)
{
    sl_record_reader *r;
    const int ok =
        sl_record_reader_open(&r, path, NULL) == 0 && sl_record_reader_count(r) == planned;
    sl_record_reader_close(r);
    return ok;
}

static int write_shards(job *j)
{
    if (j->total == UINT64_MAX && count_records(j))
        return CLI_FAIL;
    char dir[4096], base[4096];
    snprintf(dir, sizeof dir, "%s", j->out);
    snprintf(base, sizeof base, "%s", j->out);
    snprintf(j->state_path, sizeof j->state_path, "%s/.%s.convert-state", dirname(dir),
             basename(base));
    const int resume = state_matches(j);
    if (!resume && state_write(j))
        return CLI_FAIL;
    sl_progress_set_total(j->progress, j->total);
    const char *hook = getenv("SLUICE_TEST_EXIT_AFTER_SHARDS"); /* kill tests only */
    const long exit_after = hook ? atol(hook) : -1;
    long published = 0;
    unsigned kept = 0;
    for (unsigned s = 0; s < j->shards; s++) {
        const uint64_t lo = j->total * s / j->shards, hi = j->total * (s + 1) / j->shards;
        char path[4096];
        sl_shard_path(path, sizeof path, j->out, s, j->shards);
        if (resume && shard_is_done(path, hi - lo)) {
            kept++;
            if (stream_skip(j, hi - lo))
                return CLI_FAIL;
            j->done += hi - lo;
            sl_progress_add(j->progress, hi - lo, 0);
            continue;
        }
        if (write_sluice(j, path, hi - lo))
            return CLI_FAIL;
        if (++published == exit_after)
            _exit(99);
    }
    if (kept)
        fprintf(stderr, "sluice convert: resumed: kept %u shard%s already published\n", kept,
                kept == 1 ? "" : "s");
    unlink(j->state_path);
    return 0;
}

/* Detects every input, learns counts and schemas, and picks the conversion mode. */
static int plan(job *j)
{
    for (int i = 0; i < j->nin; i++) {
        input *in = &j->in[i];
        struct stat st;
        if (stat(in->path, &st))
            return cli_fail("convert", "%s: %s", in->path, strerror(errno));
        if (!S_ISREG(st.st_mode))
            return cli_fail("convert", "%s: not a regular file", in->path);
        in->size_bytes = (uint64_t)st.st_size;
        in->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        in->count = UINT64_MAX;
        int rc = sl_file_detect(in->path, &in->fmt);
        if (rc)
            return cli_fail("convert", "%s: %s", in->path, sl_strerror(rc));
        if (j->in_comp != SL_TFRECORD_AUTO && in->fmt != SL_FILE_SLUICE)
            in->fmt = SL_FILE_TFRECORD;
        if (in->fmt == SL_FILE_UNKNOWN)
            return cli_fail("convert",
                            "%s: not a sluice or TFRecord file (unrecognised first "
                            "bytes; use --input-compression for other streams)",
                            in->path);
        if (in->fmt != SL_FILE_SLUICE)
            continue;
        if (open_input(j, i, 1))
            return CLI_FAIL;
        in->count = sl_record_reader_count(j->sr);
        const sl_schema *s = sl_record_reader_schema(j->sr);
        if (i > 0 && (s == NULL) != (j->in_schema == NULL))
            rc = 1;
        else if (s && j->in_schema && !sl_schema_equal(s, j->in_schema))
            rc = 1;
        else if (s && !j->in_schema) {
            uint8_t buf[65536];
            size_t len;
            if (sl_schema_serialize(s, buf, sizeof buf, &len) ||
                sl_schema_deserialize(&j->in_schema, buf, len))
                rc = 2;
        }
        close_current(j);
        if (rc == 1)
            return cli_fail("convert",
                            "%s: its schema differs from the other inputs'; convert "
                            "files of one schema at a time",
                            in->path);
        if (rc == 2)
            return cli_fail("convert", "%s: cannot copy its schema", in->path);
    }
    int have_tfrecord = 0;
    for (int i = 0; i < j->nin; i++)
        have_tfrecord |= j->in[i].fmt != SL_FILE_SLUICE;
    if (have_tfrecord && j->in_schema)
        return cli_fail("convert", "typed sluice inputs cannot be mixed with TFRecord inputs");
    j->total = 0;
    for (int i = 0; i < j->nin && j->total != UINT64_MAX; i++)
        j->total = j->in[i].count == UINT64_MAX ? UINT64_MAX : j->total + j->in[i].count;

    char err[512];
    if (j->schema_text) {
        if (j->in_schema)
            return cli_fail("convert", "--schema parses tf.Example payloads, but the inputs are "
                                       "already typed records");
        int rc = sl_schema_parse(&j->out_schema, j->schema_text, err, sizeof err);
        if (rc)
            return cli_usage_error("convert", "--schema: %s", err);
        rc = sl_example_converter_create(&j->conv, j->out_schema, err, sizeof err);
        if (rc)
            return cli_fail("convert", "--schema: %s", err);
        j->mode = MODE_EXAMPLE_TO_TYPED;
    } else if (j->out_tfrecord && j->in_schema) {
        const int rc = sl_example_converter_create(&j->conv, j->in_schema, err, sizeof err);
        if (rc)
            return cli_fail("convert", "cannot write these typed records as tf.Example: %s", err);
        j->mode = MODE_TYPED_TO_EXAMPLE;
    } else {
        j->mode = MODE_COPY;
        j->out_schema = j->in_schema;
        j->in_schema = NULL; /* ownership moves */
    }
    return 0;
}

int cmd_convert(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        fputs(cli_convert_images_help, stdout);
        return CLI_OK;
    }
    if (cli_convert_images_wanted(argc, argv))
        return cmd_convert_images(argc, argv);
    enum { O_SHARDS = 256, O_COMPRESS, O_CHUNK, O_SCHEMA, O_INCOMP, O_OUTCOMP, O_SKIP, O_THREADS };
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {"shards", required_argument, NULL, O_SHARDS},
                                         {"compress", required_argument, NULL, O_COMPRESS},
                                         {"chunk-bytes", required_argument, NULL, O_CHUNK},
                                         {"schema", required_argument, NULL, O_SCHEMA},
                                         {"input-compression", required_argument, NULL, O_INCOMP},
                                         {"output-compression", required_argument, NULL, O_OUTCOMP},
                                         {"skip-corrupt", no_argument, NULL, O_SKIP},
                                         {"threads", required_argument, NULL, O_THREADS},
                                         {NULL, 0, NULL, 0}};
    job j = {.threads = cli_default_threads(),
             .out_comp = SL_TFRECORD_NONE,
             .in_comp = SL_TFRECORD_AUTO};
    int out_comp_given = 0;
    uint64_t v;
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "o:", opts, NULL)) != -1;) {
        switch (c) {
        case 'o':
            j.out = optarg;
            break;
        case O_SHARDS:
            if (cli_parse_u64(optarg, &v) || v < 1 || v > 99999)
                return cli_usage_error("convert", "--shards takes 1 to 99999, not '%s'", optarg);
            j.shards = (unsigned)v;
            break;
        case O_COMPRESS:
            if (cli_parse_compress("convert", optarg, &j.level))
                return CLI_USAGE;
            break;
        case O_CHUNK:
            if (cli_parse_u64(optarg, &v) || v < 1024 || v > (1ull << 31))
                return cli_usage_error("convert", "--chunk-bytes takes 1024 to 2^31, not '%s'",
                                       optarg);
            j.chunk_bytes = (size_t)v;
            break;
        case O_SCHEMA:
            j.schema_text = optarg;
            break;
        case O_INCOMP:
            if (parse_tf_compression(optarg, &j.in_comp))
                return cli_usage_error("convert", "--input-compression takes gzip, zlib or none");
            break;
        case O_OUTCOMP:
            if (parse_tf_compression(optarg, &j.out_comp))
                return cli_usage_error("convert", "--output-compression takes gzip, zlib or none");
            out_comp_given = 1;
            break;
        case O_SKIP:
            j.skip_corrupt = 1;
            break;
        case O_THREADS:
            if (cli_parse_u64(optarg, &v) || v < 1 || v > 1024)
                return cli_usage_error("convert", "--threads takes 1 to 1024, not '%s'", optarg);
            j.threads = (int)v;
            break;
        default:
            return cli_usage_error("convert", "unknown option");
        }
    }
    if (!j.out)
        return cli_usage_error("convert", "-o OUT is required");
    if (optind >= argc)
        return cli_usage_error("convert", "expected at least one input file");
    j.out_tfrecord = ends_with(j.out, ".tfrecord") || ends_with(j.out, ".tfrecords") ||
                     ends_with(j.out, ".tfrecord.gz");
    if (j.out_tfrecord && j.shards)
        return cli_usage_error("convert", "--shards applies to sluice output");
    if (j.out_tfrecord && j.schema_text)
        return cli_usage_error("convert", "--schema makes typed sluice records; TFRecord output "
                                          "keeps tf.Example payloads");
    if (!j.out_tfrecord && out_comp_given)
        return cli_usage_error("convert", "--output-compression applies to TFRecord output");
    if (j.out_tfrecord && ends_with(j.out, ".gz") && !out_comp_given)
        j.out_comp = SL_TFRECORD_GZIP;
    if (j.shards == 1)
        j.shards = 0;

    j.nin = argc - optind;
    j.in = calloc((size_t)j.nin, sizeof *j.in);
    if (!j.in)
        return cli_fail("convert", "out of memory");
    for (int i = 0; i < j.nin; i++) {
        j.in[i].path = argv[optind + i];
        if (!strcmp(j.in[i].path, j.out))
            return cli_usage_error("convert", "output %s is also an input", j.out);
    }

    const uint64_t t0 = sl_clock_ns();
    int ret = plan(&j);
    if (!ret) {
        sl_progress_open(&j.progress, stderr, "convert", j.total == UINT64_MAX ? 0 : j.total,
                         "records", 0);
        if (j.out_tfrecord)
            ret = write_tfrecord(&j);
        else if (j.shards)
            ret = write_shards(&j);
        else
            ret = write_sluice(&j, j.out, UINT64_MAX);
        note_bottleneck(&j);
        sl_progress_close(j.progress);
    }
    close_current(&j);
    if (!ret) {
        const double secs = (double)(sl_clock_ns() - t0) / 1e9;
        char where[4200];
        if (j.shards) {
            char first[4096];
            sl_shard_path(first, sizeof first, j.out, 0, j.shards);
            snprintf(where, sizeof where, "%u shards (%s ...)", j.shards, first);
        } else {
            snprintf(where, sizeof where, "%s", j.out);
        }
        printf("converted %" PRIu64 " records from %d file%s into %s: %.1f MB of payload in "
               "%.2fs\n",
               j.done, j.nin, j.nin == 1 ? "" : "s", where, (double)j.in_bytes / 1e6, secs);
        if (j.skipped_corrupt)
            printf("skipped %" PRIu64 " corrupt record%s (bad data CRC32C)\n", j.skipped_corrupt,
                   j.skipped_corrupt == 1 ? "" : "s");
    }
    sl_example_converter_free(j.conv);
    sl_schema_free(j.out_schema);
    sl_schema_free(j.in_schema);
    free(j.in);
    return ret;
}

/*
 * `sluice convert DIR -o NAME`: an ImageFolder tree (one sub-folder per class) into typed sluice
 * records image:bytes,label:int64,path:bytes,height:int64,width:int64, with labels.txt beside the
 * output and a report of every file that was skipped and why.
 *
 * The job is a fixed list of files: class folders sorted by name (label i = the i-th), every
 * regular file under each, recursively, sorted by relative path; hidden names (a leading '.') are
 * not part of the tree. With --shards N, shard s holds the outcomes of files [s*n/N, (s+1)*n/N)
 * of that list, so a shard's contents are known without looking at any other file. Every file
 * gets one outcome: kept (its bytes as they are), re-encoded (a JPEG at quality 90 when
 * --max-side is given and the longer side is larger), or skipped with a reason (empty,
 * truncated, damaged, not an image, an image format sluice does not decode, unreadable). A file
 * is kept only after a full decode succeeds (at the smallest DCT scale, which still reads every
 * bit of entropy-coded data), so a file that is kept also decodes in a pipeline.
 *
 * Work: the files of a window are read, decoded and re-encoded on --threads pool threads, each
 * into its own slot; the calling thread then writes the window's records in list order. The
 * output bytes depend only on the tree and the options, never on the thread count.
 *
 * Resuming follows cmd_convert.c: outputs are published atomically and a state file beside the
 * output names the job (options, and a fingerprint of every file's path, size and mtime). Before
 * a shard is published, a side file records its outcome counts and skip lines; a rerun that finds
 * the same state keeps every shard that opens with the record count its side file gives, and
 * redoes the others. At the end the side files become NAME.skipped.txt and are removed with the
 * state file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "sluice/clock.h"
#include "sluice/image.h"
#include "sluice/progress.h"
#include "sluice/record.h"
#include "sluice/thread_pool.h"

const char cli_convert_images_help[] =
    "\n"
    "usage: sluice convert DIR -o NAME [--shards N] [--max-side PX] [--threads T]\n"
    "\n"
    "Converts an image folder (one sub-folder per class, class names sorted -> labels 0, 1, ...)\n"
    "into typed records image:bytes,label:int64,path:bytes,height:int64,width:int64, and\n"
    "writes labels.txt (line i: the name of label i) beside NAME. Each JPEG or PNG is checked by\n"
    "a full decode and kept byte for byte; empty, truncated and damaged files and non-images\n"
    "are skipped and listed with the reason in NAME.skipped.txt. Hidden files are ignored.\n"
    "Rerunning after a kill keeps the shards already written.\n"
    "\n"
    "      --max-side PX           re-encode images whose longer side exceeds PX to a JPEG\n"
    "                              (quality 90) with that longer side\n"
    "      --shards N              split the files into N contiguous shards\n"
    "      --threads T             decode threads (default: number of CPUs)\n";

enum {
    QUALITY = 90,
    MAX_FILE_BYTES = 1 << 30, /* larger files are skipped before they are read */
    SKIP_PRINT = 20,          /* skip lines echoed to stderr; the report file has all */
};

static const char schema_text[] = "image:bytes,label:int64,path:bytes,height:int64,width:int64";

typedef struct item {
    char *rel; /* path below DIR: "class/sub/file.jpg" */
    int label;
    uint64_t size;
    int64_t mtime_ns;
} item;

typedef enum outcome { KEPT, REENCODED, SKIPPED } outcome;

/* One file's result, filled by a pool thread and read by the writer after the window's wait. */
typedef struct slot {
    const struct job *j;
    const item *it;
    uint8_t *file; /* (len) bytes of the file, malloc'd */
    size_t len;
    sl_tensor enc; /* REENCODED: the new JPEG */
    outcome out;
    int w, h;
    char reason[300];
} slot;

typedef struct job {
    const char *dir, *out;
    unsigned shards; /* 0: one output file */
    int max_side, threads;
    item *items;
    size_t n, cap;
    char **classes;
    int nclasses;
    uint64_t fingerprint;
    char state_path[PATH_MAX + 64];
    char outdir[PATH_MAX], outbase[PATH_MAX]; /* dirname and basename of NAME */
    sl_schema *schema;
    sl_thread_pool *pool;
    sl_progress *progress;
    uint64_t kept, reencoded, skipped, bytes_in, skip_lines;
} job;

/* ---- listing the tree --------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_item(const void *a, const void *b)
{
    const item *x = a, *y = b;
    if (x->label != y->label)
        return x->label < y->label ? -1 : 1;
    return strcmp(x->rel, y->rel);
}

static int add_item(job *j, const char *rel, int label, const struct stat *st)
{
    if (j->n == j->cap) {
        const size_t cap = j->cap ? 2 * j->cap : 1024;
        item *n = realloc(j->items, cap * sizeof *n);
        if (!n)
            return -1;
        j->items = n;
        j->cap = cap;
    }
    item *it = &j->items[j->n];
    if (!(it->rel = strdup(rel)))
        return -1;
    it->label = label;
    it->size = (uint64_t)st->st_size;
    it->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    j->n++;
    return 0;
}

/* Every regular file below DIR/rel (symbolic links followed), hidden names left out. */
static int walk(job *j, const char *rel, int label)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", j->dir, rel);
    DIR *d = opendir(path);
    if (!d)
        return cli_fail("convert", "%s: %s", path, strerror(errno));
    int ret = 0;
    for (struct dirent *e; ret == 0 && (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        char sub[PATH_MAX], full[PATH_MAX];
        if ((size_t)snprintf(sub, sizeof sub, "%s/%s", rel, e->d_name) >= sizeof sub ||
            (size_t)snprintf(full, sizeof full, "%s/%s", j->dir, sub) >= sizeof full) {
            ret = cli_fail("convert", "%s/%s: path too long", path, e->d_name);
            break;
        }
        struct stat st;
        if (stat(full, &st)) {
            /* A dangling link or a file gone meanwhile: listed, and skipped when read. */
            memset(&st, 0, sizeof st);
            if (add_item(j, sub, label, &st))
                ret = cli_fail("convert", "out of memory");
        } else if (S_ISDIR(st.st_mode)) {
            ret = walk(j, sub, label);
        } else if (S_ISREG(st.st_mode)) {
            if (add_item(j, sub, label, &st))
                ret = cli_fail("convert", "out of memory");
        }
    }
    closedir(d);
    return ret;
}

static int list_tree(job *j)
{
    DIR *d = opendir(j->dir);
    if (!d)
        return cli_fail("convert", "%s: %s", j->dir, strerror(errno));
    size_t cap = 0;
    int ret = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        char full[PATH_MAX];
        snprintf(full, sizeof full, "%s/%s", j->dir, e->d_name);
        struct stat st;
        if (stat(full, &st) || !S_ISDIR(st.st_mode)) {
            fprintf(stderr, "sluice convert: ignored %s: not a class folder\n", full);
            continue;
        }
        if ((size_t)j->nclasses == cap) {
            cap = cap ? 2 * cap : 64;
            char **n = realloc(j->classes, cap * sizeof *n);
            if (!n) {
                ret = cli_fail("convert", "out of memory");
                break;
            }
            j->classes = n;
        }
        if (!(j->classes[j->nclasses] = strdup(e->d_name))) {
            ret = cli_fail("convert", "out of memory");
            break;
        }
        j->nclasses++;
    }
    closedir(d);
    if (ret)
        return ret;
    if (j->nclasses == 0)
        return cli_fail("convert", "%s: no class folders (expected DIR/CLASS/IMAGE files)", j->dir);
    qsort(j->classes, (size_t)j->nclasses, sizeof *j->classes, cmp_str);
    for (int c = 0; c < j->nclasses && ret == 0; c++)
        ret = walk(j, j->classes[c], c);
    if (ret)
        return ret;
    if (j->n == 0)
        return cli_fail("convert", "%s: the class folders hold no files", j->dir);
    qsort(j->items, j->n, sizeof *j->items, cmp_item);
    /* FNV-1a over every file's path, label, size and mtime: the tree's identity for resuming. */
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < j->n; i++) {
        char meta[96];
        const int m = snprintf(meta, sizeof meta, "%c%d %" PRIu64 " %" PRId64 "\n", 0,
                               j->items[i].label, j->items[i].size, j->items[i].mtime_ns);
        for (const char *p = j->items[i].rel; *p; p++)
            h = (h ^ (uint8_t)*p) * 1099511628211ull;
        for (int k = 0; k < m; k++)
            h = (h ^ (uint8_t)meta[k]) * 1099511628211ull;
    }
    j->fingerprint = h;
    return 0;
}

/* ---- one file ----------------------------------------------------------------------------- */

static int read_whole(const char *path, uint8_t **data, size_t *len)
{
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st)) {
        const int e = -errno;
        close(fd);
        return e;
    }
    const size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size ? size : 1);
    size_t got = 0;
    int rc = buf ? 0 : -ENOMEM;
    while (rc == 0 && got < size) {
        const ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = -errno;
        else if (r == 0)
            break; /* shrank meanwhile: what is there is the file */
        else
            got += (size_t)r;
    }
    close(fd);
    if (rc) {
        free(buf);
        return rc;
    }
    *data = buf;
    *len = got;
    return 0;
}

static void skip(slot *s, const char *fmt, const char *what)
{
    s->out = SKIPPED;
    snprintf(s->reason, sizeof s->reason, fmt, what);
}

/* Runs on a pool thread: reads, checks by decoding, re-encodes when over --max-side. */
static void process(void *arg)
{
    slot *s = arg;
    const job *j = s->j;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", j->dir, s->it->rel);
    if (s->it->size > MAX_FILE_BYTES) {
        skip(s, "%s", "file larger than 1 GiB");
        return;
    }
    const int rc = read_whole(path, &s->file, &s->len);
    if (rc) {
        skip(s, "cannot read: %s", strerror(-rc));
        return;
    }
    char err[256] = "";
    sl_image_info info;
    if (sl_image_probe(s->file, s->len, &info, err, sizeof err) < 0) {
        skip(s, "%s", err);
        return;
    }
    const int longer = info.width > info.height ? info.width : info.height;
    const int shrink = j->max_side > 0 && longer > j->max_side;
    int tw = info.width, th = info.height;
    if (shrink) { /* the longer side becomes max_side, the other keeps the aspect (rounded) */
        const double f = (double)j->max_side / longer;
        tw = info.width >= info.height ? j->max_side : (int)(info.width * f + 0.5);
        th = info.width >= info.height ? (int)(info.height * f + 0.5) : j->max_side;
        tw = tw < 1 ? 1 : tw;
        th = th < 1 ? 1 : th;
    }
    /* Decode at the smallest DCT scale that still covers the target size (1 x 1 when the
     * decode is only a check): every entropy-coded bit is still read. */
    const sl_image_decode_opts o = {.min_w = shrink ? tw : 1, .min_h = shrink ? th : 1};
    sl_tensor img;
    if (sl_image_decode(s->file, s->len, &o, &img, NULL, err, sizeof err) < 0) {
        skip(s, "%s", err);
        return;
    }
    s->w = info.width;
    s->h = info.height;
    s->out = KEPT;
    if (shrink) {
        sl_tensor small;
        int r = sl_image_resize(&img, tw, th, &small);
        if (r == 0) {
            r = sl_image_encode_jpeg(&small, QUALITY, &s->enc, err, sizeof err);
            sl_tensor_release(&small);
        }
        if (r < 0) {
            skip(s, "re-encoding failed: %s", err[0] ? err : sl_strerror(r));
        } else {
            s->out = REENCODED;
            s->w = tw;
            s->h = th;
        }
    }
    sl_tensor_release(&img);
}

static void slot_clear(slot *s)
{
    free(s->file);
    sl_tensor_release(&s->enc);
    memset(s, 0, sizeof *s);
}

/* ---- shards ------------------------------------------------------------------------------- */

static void shard_paths(const job *j, unsigned s, char *path, size_t cap, char *side,
                        size_t sidecap)
{
    if (j->shards)
        sl_shard_path(path, cap, j->out, s, j->shards);
    else
        snprintf(path, cap, "%s", j->out);
    snprintf(side, sidecap, "%s/.%s.skipped-%05u", j->outdir, j->outbase, s);
}

static int write_atomic(const char *path, const char *data, size_t len)
{
    char tmp[PATH_MAX + 16];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return cli_fail("convert", "%s: %s", tmp, strerror(errno));
    const int bad = (len && fwrite(data, 1, len, f) != len) | fflush(f) | fsync(fileno(f));
    if (fclose(f) || bad || rename(tmp, path)) {
        unlink(tmp);
        return cli_fail("convert", "%s: %s", path, strerror(errno));
    }
    return 0;
}

/* A published shard whose side file says how many records it holds, and that opens with that
 * many: kept. Its counts go into the job's totals. */
static int shard_is_done(job *j, const char *path, const char *side)
{
    FILE *f = fopen(side, "r");
    if (!f)
        return 0;
    uint64_t kept, reenc, skipped;
    const int ok = fscanf(f, "kept %" SCNu64 " reencoded %" SCNu64 " skipped %" SCNu64 "\n", &kept,
                          &reenc, &skipped) == 3;
    fclose(f);
    if (!ok)
        return 0;
    sl_record_reader *r;
    const int done =
        sl_record_reader_open(&r, path, NULL) == 0 && sl_record_reader_count(r) == kept + reenc;
    sl_record_reader_close(r);
    if (done) {
        j->kept += kept;
        j->reencoded += reenc;
        j->skipped += skipped;
    }
    return done;
}

static int write_record(sl_record_writer *w, const slot *s)
{
    const uint8_t *data = s->out == REENCODED ? s->enc.data : s->file;
    const int64_t nb = s->out == REENCODED ? s->enc.shape[0] : (int64_t)s->len;
    const int64_t np = (int64_t)strlen(s->it->rel);
    int64_t label = s->it->label, h = s->h, w_ = s->w;
    sl_tensor t[5];
    sl_tensor_borrow(&t[0], SL_DTYPE_BYTES, 1, &nb, (void *)data);
    sl_tensor_borrow(&t[1], SL_DTYPE_I64, 0, NULL, &label);
    sl_tensor_borrow(&t[2], SL_DTYPE_BYTES, 1, &np, s->it->rel);
    sl_tensor_borrow(&t[3], SL_DTYPE_I64, 0, NULL, &h);
    sl_tensor_borrow(&t[4], SL_DTYPE_I64, 0, NULL, &w_);
    return sl_record_writer_write_fields(w, t);
}

/* Files [lo, hi) into the shard at path; the side file is written just before publishing. */
static int write_shard(job *j, size_t lo, size_t hi, const char *path, const char *side)
{
    const sl_record_writer_options o = {.schema = j->schema};
    sl_record_writer *w;
    int rc = sl_record_writer_open(&w, path, &o);
    if (rc) {
        const int ret = cli_fail("convert", "%s", w ? sl_record_writer_errmsg(w) : sl_strerror(rc));
        sl_record_writer_close(w);
        return ret;
    }
    /* Enough files in flight to keep every thread busy across a window's uneven files, few
     * enough that a window of large images stays a small fraction of memory. */
    const size_t window = (size_t)j->threads * 32;
    slot *slots = calloc(window, sizeof *slots);
    char *report = NULL;
    size_t report_len = 0;
    FILE *rep = open_memstream(&report, &report_len);
    uint64_t kept = 0, reenc = 0, skipped = 0;
    int ret = slots && rep ? 0 : cli_fail("convert", "out of memory");
    for (size_t at = lo; ret == 0 && at < hi; at += window) {
        const size_t m = hi - at < window ? hi - at : window;
        for (size_t i = 0; i < m; i++) {
            slots[i].j = j;
            slots[i].it = &j->items[at + i];
            if (sl_thread_pool_submit(j->pool, process, &slots[i]))
                process(&slots[i]);
        }
        sl_thread_pool_wait(j->pool);
        for (size_t i = 0; i < m; i++) {
            slot *s = &slots[i];
            if (ret == 0 && s->out == SKIPPED) {
                skipped++;
                fprintf(rep, "%s\t%s\n", s->it->rel, s->reason);
                if (j->skip_lines++ < SKIP_PRINT)
                    fprintf(stderr, "sluice convert: skipped %s: %s\n", s->it->rel, s->reason);
            } else if (ret == 0) {
                if ((rc = write_record(w, s)))
                    ret = cli_fail("convert", "%s", sl_record_writer_errmsg(w));
                kept += s->out == KEPT;
                reenc += s->out == REENCODED;
            }
            sl_progress_add(j->progress, 1, s->len);
            j->bytes_in += s->len;
            slot_clear(s);
        }
    }
    free(slots);
    if (rep && fclose(rep) && ret == 0)
        ret = cli_fail("convert", "out of memory");
    if (ret == 0) {
        char head[128];
        const int hl = snprintf(head, sizeof head,
                                "kept %" PRIu64 " reencoded %" PRIu64 " skipped %" PRIu64 "\n",
                                kept, reenc, skipped);
        char *all = malloc((size_t)hl + report_len + 1);
        if (!all) {
            ret = cli_fail("convert", "out of memory");
        } else {
            memcpy(all, head, (size_t)hl);
            memcpy(all + hl, report, report_len);
            ret = write_atomic(side, all, (size_t)hl + report_len);
            free(all);
        }
    }
    free(report);
    if (ret == 0 && sl_record_writer_finish(w))
        ret = cli_fail("convert", "%s", sl_record_writer_errmsg(w));
    sl_record_writer_close(w);
    if (ret == 0) {
        j->kept += kept;
        j->reencoded += reenc;
        j->skipped += skipped;
    }
    return ret;
}

/* ---- the job ------------------------------------------------------------------------------ */

static void describe_job(const job *j, FILE *f)
{
    char real[PATH_MAX];
    if (!realpath(j->dir, real))
        snprintf(real, sizeof real, "%s", j->dir);
    fprintf(f,
            "sluice-convert-images-state 1\nshards %u\nmax_side %d\nquality %d\nschema %s\n"
            "files %zu\nfingerprint %016" PRIx64 "\ndir %s\n",
            j->shards, j->max_side, QUALITY, schema_text, j->n, j->fingerprint, real);
}

static int state_matches(const job *j)
{
    char *want = NULL, *have = NULL;
    size_t wl = 0, hl = 0;
    FILE *m = open_memstream(&want, &wl);
    if (!m)
        return 0;
    describe_job(j, m);
    fclose(m);
    FILE *f = fopen(j->state_path, "r");
    int same = 0;
    if (f && (have = malloc(wl + 2)) != NULL) {
        hl = fread(have, 1, wl + 2, f);
        same = hl == wl && !memcmp(want, have, wl);
    }
    if (f)
        fclose(f);
    free(want);
    free(have);
    return same;
}

static int state_write(const job *j)
{
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (!m)
        return cli_fail("convert", "out of memory");
    describe_job(j, m);
    fclose(m);
    const int ret = write_atomic(j->state_path, text, len);
    free(text);
    return ret;
}

static int write_labels(const job *j)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/labels.txt", j->outdir);
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (!m)
        return cli_fail("convert", "out of memory");
    for (int c = 0; c < j->nclasses; c++)
        fprintf(m, "%s\n", j->classes[c]);
    fclose(m);
    const int ret = write_atomic(path, text, len);
    free(text);
    return ret;
}

/* NAME.skipped.txt from the side files, in shard order (removed when nothing was skipped). */
static int write_report(const job *j, const char *report_path)
{
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (!m)
        return cli_fail("convert", "out of memory");
    const unsigned n = j->shards ? j->shards : 1;
    for (unsigned s = 0; s < n; s++) {
        char path[PATH_MAX], side[PATH_MAX + 64];
        shard_paths(j, s, path, sizeof path, side, sizeof side);
        FILE *f = fopen(side, "r");
        if (!f) {
            fclose(m);
            free(text);
            return cli_fail("convert", "%s: %s", side, strerror(errno));
        }
        char line[PATH_MAX + 400];
        int first = 1;
        while (fgets(line, sizeof line, f)) {
            if (!first)
                fputs(line, m);
            first = 0;
        }
        fclose(f);
    }
    fclose(m);
    int ret = 0;
    if (len)
        ret = write_atomic(report_path, text, len);
    else if (unlink(report_path) && errno != ENOENT)
        ret = cli_fail("convert", "%s: %s", report_path, strerror(errno));
    free(text);
    for (unsigned s = 0; ret == 0 && s < n; s++) {
        char path[PATH_MAX], side[PATH_MAX + 64];
        shard_paths(j, s, path, sizeof path, side, sizeof side);
        unlink(side);
    }
    return ret;
}

static int run_job(job *j, const char *report_path)
{
    snprintf(j->state_path, sizeof j->state_path, "%s/.%s.convert-state", j->outdir, j->outbase);
    const int resume = state_matches(j);
    if (!resume && state_write(j))
        return CLI_FAIL;
    if (write_labels(j))
        return CLI_FAIL;
    const char *hook = getenv("SLUICE_TEST_EXIT_AFTER_SHARDS"); /* kill tests only */
    const long exit_after = hook ? atol(hook) : -1;
    long published = 0;
    unsigned kept_shards = 0;
    const unsigned n = j->shards ? j->shards : 1;
    for (unsigned s = 0; s < n; s++) {
        const size_t lo = j->n * s / n, hi = j->n * (s + 1) / n;
        char path[PATH_MAX], side[PATH_MAX + 64];
        shard_paths(j, s, path, sizeof path, side, sizeof side);
        if (resume && shard_is_done(j, path, side)) {
            kept_shards++;
            sl_progress_add(j->progress, hi - lo, 0);
            continue;
        }
        if (write_shard(j, lo, hi, path, side))
            return CLI_FAIL;
        if (++published == exit_after)
            _exit(99);
    }
    if (kept_shards)
        fprintf(stderr, "sluice convert: resumed: kept %u shard%s already published\n", kept_shards,
                kept_shards == 1 ? "" : "s");
    if (write_report(j, report_path))
        return CLI_FAIL;
    unlink(j->state_path);
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    const size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* 1 when `inner` is `outer` or lies below it (both existing paths). */
static int path_inside(const char *inner, const char *outer)
{
    char a[PATH_MAX], b[PATH_MAX];
    if (!realpath(inner, a) || !realpath(outer, b))
        return 0;
    const size_t n = strlen(b);
    return !strncmp(a, b, n) && (a[n] == '\0' || a[n] == '/');
}

int cmd_convert_images(int argc, char **argv)
{
    enum { O_SHARDS = 256, O_MAX_SIDE, O_THREADS };
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {"shards", required_argument, NULL, O_SHARDS},
                                         {"max-side", required_argument, NULL, O_MAX_SIDE},
                                         {"threads", required_argument, NULL, O_THREADS},
                                         {NULL, 0, NULL, 0}};
    job j = {.threads = cli_default_threads()};
    uint64_t v;
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "o:", opts, NULL)) != -1;) {
        switch (c) {
        case 'o':
            j.out = optarg;
            break;
        case O_SHARDS:
            if (cli_parse_u64(optarg, &v) || v < 1 || v > 99999)
                return cli_usage_error("convert", "--shards takes 1 to 99999, not '%s'", optarg);
            j.shards = v == 1 ? 0 : (unsigned)v;
            break;
        case O_MAX_SIDE:
            if (cli_parse_u64(optarg, &v) || v < 1 || v > 65500)
                return cli_usage_error("convert", "--max-side takes 1 to 65500 pixels, not '%s'",
                                       optarg);
            j.max_side = (int)v;
            break;
        case O_THREADS:
            if (cli_parse_u64(optarg, &v) || v < 1 || v > 1024)
                return cli_usage_error("convert", "--threads takes 1 to 1024, not '%s'", optarg);
            j.threads = (int)v;
            break;
        default:
            return cli_usage_error("convert",
                                   "'%s' does not apply to an image folder (options: -o, "
                                   "--shards, --max-side, --threads)",
                                   argv[optind - 1]);
        }
    }
    if (!j.out)
        return cli_usage_error("convert", "-o NAME is required");
    if (argc - optind != 1)
        return cli_usage_error("convert", "an image folder is converted on its own: give one DIR");
    j.dir = argv[optind];
    if (ends_with(j.out, ".tfrecord") || ends_with(j.out, ".tfrecords"))
        return cli_usage_error("convert", "an image folder converts to sluice files, not TFRecord");
    {
        char a[PATH_MAX], b[PATH_MAX];
        snprintf(a, sizeof a, "%s", j.out);
        snprintf(b, sizeof b, "%s", j.out);
        snprintf(j.outdir, sizeof j.outdir, "%s", dirname(a));
        snprintf(j.outbase, sizeof j.outbase, "%s", basename(b));
    }
    if (path_inside(j.outdir, j.dir))
        return cli_usage_error("convert", "the output must not be inside the image folder %s",
                               j.dir);
    char report_path[PATH_MAX + 32];
    {
        char stem[PATH_MAX];
        snprintf(stem, sizeof stem, "%s", j.out);
        if (ends_with(stem, ".sluice"))
            stem[strlen(stem) - 7] = '\0';
        snprintf(report_path, sizeof report_path, "%s.skipped.txt", stem);
    }

    const uint64_t t0 = sl_clock_ns();
    int ret = list_tree(&j);
    if (!ret && sl_schema_parse(&j.schema, schema_text, NULL, 0))
        ret = cli_fail("convert", "out of memory");
    if (!ret && sl_thread_pool_open(&j.pool, j.threads, "sl-convert"))
        ret = cli_fail("convert", "cannot start %d threads", j.threads);
    if (!ret) {
        sl_progress_open(&j.progress, stderr, "convert", j.n, "images", 0);
        ret = run_job(&j, report_path);
        sl_progress_close(j.progress);
    }
    sl_thread_pool_close(j.pool);
    if (!ret) {
        const double secs = (double)(sl_clock_ns() - t0) / 1e9;
        char where[PATH_MAX + 64];
        if (j.shards) {
            char first[PATH_MAX];
            sl_shard_path(first, sizeof first, j.out, 0, j.shards);
            snprintf(where, sizeof where, "%u shards (%s ...)", j.shards, first);
        } else {
            snprintf(where, sizeof where, "%s", j.out);
        }
        printf("converted %" PRIu64 " images (%" PRIu64 " re-encoded) of %d classes from %s "
               "into %s: %.1f MB read in %.2fs\n",
               j.kept + j.reencoded, j.reencoded, j.nclasses, j.dir, where,
               (double)j.bytes_in / 1e6, secs);
        if (j.skipped)
            printf("skipped %" PRIu64 " file%s (listed with the reason in %s)\n", j.skipped,
                   j.skipped == 1 ? "" : "s", report_path);
    }
    for (size_t i = 0; i < j.n; i++)
        free(j.items[i].rel);
    free(j.items);
    for (int c = 0; c < j.nclasses; c++)
        free(j.classes[c]);
    free(j.classes);
    sl_schema_free(j.schema);
    return ret;
}

/* The option names of both convert forms that take a value (for finding the inputs). */
static int takes_value(const char *a)
{
    static const char *const names[] = {"-o",
                                        "--output",
                                        "--shards",
                                        "--compress",
                                        "--chunk-bytes",
                                        "--schema",
                                        "--input-compression",
                                        "--output-compression",
                                        "--threads",
                                        "--max-side"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(a, names[i]))
            return 1;
    return 0;
}

int cli_convert_images_wanted(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && a[1]) {
            i += takes_value(a);
            continue;
        }
        struct stat st;
        if (stat(a, &st) == 0 && S_ISDIR(st.st_mode))
            return 1;
    }
    return 0;
}

/* Damaged .sluice files: every flipped byte and every truncation is detected (never wrong data
 * in silence, never a crash), verify places each problem in the damaged structure, stale
 * indexes are refused, scan/repair recover what is intact, and the golden files of
 * tests/data/record give their documented errors. */
#include "testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core_internal.h"
#include "record_format_internal.h"
#include "sluice/record.h"
#include "sluice/rng.h"
#include "sluice/status.h"

static void path_of(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", sl_test_dir, name);
}

/* The small test file: 48 records of 40..90 bytes; groups of 8 alternate between text
 * (compresses: zstd chunks) and noise (stored raw), 600-byte chunks: about 4 KB, 8 chunks. */
enum { NREC = 48 };

static size_t rec_make(uint64_t i, uint8_t *buf)
{
    const size_t n = 40 + (i * 13) % 51;
    sl_rng r;
    sl_rng_init(&r, 3, i, 0);
    for (size_t j = 0; j < n; j++)
        buf[j] = (i / 8) % 2 ? (uint8_t)sl_rng_u32(&r) : (uint8_t)("abcab"[(i + j) % 5]);
    return n;
}

static void write_small(const char *path)
{
    sl_record_writer *w;
    const sl_record_writer_options o = {.compression_level = 3, .chunk_bytes = 600};
    assert_int_equal(sl_record_writer_open(&w, path, &o), 0);
    uint8_t buf[128];
    for (uint64_t i = 0; i < NREC; i++)
        assert_int_equal(sl_record_writer_write(w, buf, rec_make(i, buf)), 0);
    assert_int_equal(sl_record_writer_finish(w), 0);
    sl_record_writer_close(w);
}

/* Layout of the intact file, from its index: [start, end) of every structure. */
typedef struct region {
    uint64_t start, end;
    int chunk; /* chunk number, or -1 */
    int zstd;
    uint64_t payload_end; /* chunks: end of the stored payload (padding follows) */
    uint64_t first, count;
} region;

typedef struct layout {
    region r[64];
    int n;
    uint64_t size;
} layout;

static void layout_of(const uint8_t *f, size_t size, layout *L)
{
    memset(L, 0, sizeof *L);
    L->size = size;
    const uint32_t hsize = sl__load_u32le(f + 16);
    const uint64_t ix = sl__load_u64le(f + size - 64);
    const uint64_t nchunks = sl__load_u64le(f + size - 64 + 24);
    L->r[L->n++] = (region){0, hsize, -1};
    for (uint64_t k = 0; k < nchunks; k++) {
        const sl__chunk_entry *e = (const sl__chunk_entry *)(f + ix + 32 + 48 * k);
        L->r[L->n++] = (region){e->offset,
                                e->offset + 48 + sl__align8(e->stored_size),
                                (int)k,
                                e->codec == 1,
                                e->offset + 48 + e->stored_size,
                                e->first_record,
                                e->count};
    }
    L->r[L->n++] = (region){ix, size - 64, -1};
    L->r[L->n++] = (region){size - 64, size, -1};
}

static const region *region_of(const layout *L, uint64_t off)
{
    for (int k = 0; k < L->n; k++)
        if (off >= L->r[k].start && off < L->r[k].end)
            return &L->r[k];
    return NULL;
}

typedef struct problems {
    int n;
    uint64_t offsets[256];
    int codes[256];
    char first_what[256];
} problems;

static void collect(const sl_record_problem *p, void *user)
{
    problems *ps = user;
    if (ps->n == 0)
        snprintf(ps->first_what, sizeof ps->first_what, "%s", p->what);
    if (ps->n < 256) {
        ps->offsets[ps->n] = p->offset;
        ps->codes[ps->n] = p->code;
    }
    ps->n++;
}

/* Opens and reads every record, sequentially and at random: each record read must be the
 * original; errors are fine. Returns how many records were read intact by `next`; `why`
 * receives the message that stopped it (open's or `next`'s), or "".
 */
static int read_never_wrong_as(const char *path, const sl_record_reader_options *o, char *why,
                               size_t why_cap)
{
    sl_record_reader *r;
    int got = 0;
    uint8_t want[128];
    snprintf(why, why_cap, "%s", "");
    if (sl_record_reader_open(&r, path, o) != 0) {
        snprintf(why, why_cap, "%s", sl_record_reader_errmsg(r));
    } else {
        sl_record rec;
        int rc;
        while ((rc = sl_record_reader_next(r, &rec)) == 0) {
            assert_true(rec.index < NREC);
            assert_int_equal(rec.size, rec_make(rec.index, want));
            assert_memory_equal(rec.data, want, rec.size);
            got++;
        }
        assert_true(rc == SL_EOF || rc < 0);
        if (rc < 0) {
            assert_non_null(strstr(sl_record_reader_errmsg(r), "offset"));
            snprintf(why, why_cap, "%s", sl_record_reader_errmsg(r));
        }
        for (uint64_t i = 0; i < NREC; i++) {
            if (sl_record_reader_read(r, (i * 7) % NREC, &rec) == 0) {
                assert_int_equal(rec.size, rec_make(rec.index, want));
                assert_memory_equal(rec.data, want, rec.size);
            }
        }
    }
    sl_record_reader_close(r);
    return got;
}

/* read_never_wrong_as with copies (pread) and in mapped mode, each with zstd chunks
 * decompressed on the caller's thread and ahead on two threads: all four must agree on the
 * records read, and the two of each mode on the message that stopped them. */
static int read_never_wrong(const char *path)
{
    static const sl_record_reader_options modes[4] = {
        {0}, {.threads = 2}, {.map = 1}, {.map = 1, .threads = 2}};
    char why[4][SL_ERRMSG_CAP];
    const int got = read_never_wrong_as(path, &modes[0], why[0], sizeof why[0]);
    for (int m = 1; m < 4; m++)
        assert_int_equal(read_never_wrong_as(path, &modes[m], why[m], sizeof why[m]), got);
    assert_string_equal(why[1], why[0]);
    assert_string_equal(why[3], why[2]);
    return got;
}

/* Rewrites one byte in place. Rewriting the whole file each time would truncate it first,
 * which ext4 answers with a flush on close (auto_da_alloc): 10x slower for these loops. */
static void put_byte(const char *path, uint64_t at, uint8_t v)
{
    const int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, &v, 1, (off_t)at), 1);
    close(fd);
}

static void flip_every_byte(uint8_t (*mask_of)(uint64_t))
{
    char p[512], q[512];
    path_of(p, sizeof p, "flip_src.sluice");
    path_of(q, sizeof q, "flip.sluice");
    write_small(p);
    uint8_t *orig;
    size_t size;
    assert_int_equal(sl_test_read_file(p, &orig, &size), 0);
    layout L;
    layout_of(orig, size, &L);
    assert_true(L.n >= 6); /* several chunks */
    int zstd = 0, raw = 0;
    for (int k = 0; k < L.n; k++) {
        zstd += L.r[k].chunk >= 0 && L.r[k].zstd;
        raw += L.r[k].chunk >= 0 && !L.r[k].zstd;
    }
    assert_true(zstd > 0 && raw > 0);
    assert_int_equal(sl_test_write_file(q, orig, size), 0);
    for (uint64_t at = 0; at < size; at++) {
        if (at)
            put_byte(q, at - 1, orig[at - 1]);
        put_byte(q, at, orig[at] ^ mask_of(at));
        problems ps = {0};
        const int rc = sl_record_verify(q, collect, &ps);
        const region *reg = region_of(&L, at);
        assert_non_null(reg);
        int inside = 0;
        for (int k = 0; k < ps.n && k < 256; k++)
            inside |= ps.offsets[k] >= reg->start && ps.offsets[k] < reg->end;
        if (!inside || rc == 0)
            fail_msg("byte %llu (region %llu..%llu): verify rc %d, %d problems, first: %s",
                     (unsigned long long)at, (unsigned long long)reg->start,
                     (unsigned long long)reg->end, rc, ps.n, ps.first_what);
        const int got = read_never_wrong(q);
        /* Zero padding after a zstd payload is covered by no crc: harmless to reading. */
        if (reg->chunk >= 0 && at >= reg->payload_end)
            assert_int_equal(got, NREC);
    }
    free(orig);
}

static uint8_t all_bits(uint64_t at)
{
    return 0xff;
}

static uint8_t one_bit(uint64_t at)
{
    return (uint8_t)(1u << (at % 8));
}

static void test_every_flipped_byte_is_detected(void **state)
{
    flip_every_byte(all_bits);
}

static void test_every_flipped_bit_is_detected(void **state)
{
    flip_every_byte(one_bit);
}

static void test_intact_file_verifies_clean(void **state)
{
    char p[512];
    path_of(p, sizeof p, "clean.sluice");
    write_small(p);
    problems ps = {0};
    assert_int_equal(sl_record_verify(p, collect, &ps), 0);
    assert_int_equal(ps.n, 0);
    assert_int_equal(read_never_wrong(p), NREC);
}

static void test_every_truncation_is_detected(void **state)
{
    char p[512], q[512];
    path_of(p, sizeof p, "trunc_src.sluice");
    path_of(q, sizeof q, "trunc.sluice");
    write_small(p);
    uint8_t *orig;
    size_t size;
    assert_int_equal(sl_test_read_file(p, &orig, &size), 0);
    assert_int_equal(sl_test_write_file(q, orig, size), 0);
    for (size_t n = size; n-- > 0;) { /* shrinking in place: see put_byte */
        assert_int_equal(truncate(q, (off_t)n), 0);
        sl_record_reader *r;
        const int rc = sl_record_reader_open(&r, q, NULL);
        if (rc != SL_ERR_TRUNCATED && rc != SL_ERR_FORMAT)
            fail_msg("cut at %zu: open gave %s: %s", n, sl_err_name(rc),
                     sl_record_reader_errmsg(r));
        assert_non_null(strstr(sl_record_reader_errmsg(r), q));
        assert_non_null(strstr(sl_record_reader_errmsg(r), "offset"));
        sl_record_reader_close(r);
        problems ps = {0};
        assert_true(sl_record_verify(q, collect, &ps) < 0);
    }
    free(orig);
}

/* Records recovered by scan, compared with the originals as they arrive. */
typedef struct recovered {
    uint64_t n;
    uint8_t seen[NREC];
    problems ps;
} recovered;

/* scan hands the same user pointer to both callbacks */
static void scan_problem(const sl_record_problem *p, void *user)
{
    collect(p, &((recovered *)user)->ps);
}

static int on_record(const sl_record *rec, void *user)
{
    recovered *rv = user;
    uint8_t want[128];
    assert_true(rec->index < NREC);
    assert_int_equal(rec->size, rec_make(rec->index, want));
    assert_memory_equal(rec->data, want, rec->size);
    assert_int_equal((uintptr_t)rec->data % 8, 0);
    rv->seen[rec->index] = 1;
    rv->n++;
    return 0;
}

static void damage(const char *src, const char *dst, uint64_t at, size_t len)
{
    uint8_t *f;
    size_t size;
    assert_int_equal(sl_test_read_file(src, &f, &size), 0);
    for (size_t k = 0; k < len && at + k < size; k++)
        f[at + k] ^= 0x5a;
    assert_int_equal(sl_test_write_file(dst, f, size), 0);
    free(f);
}

static void small_layout(const char *p, layout *L)
{
    uint8_t *f;
    size_t size;
    assert_int_equal(sl_test_read_file(p, &f, &size), 0);
    layout_of(f, size, L);
    free(f);
}

/* Repair of a file with chunk `k` damaged at `delta` bytes into it: every record of the other
 * chunks comes back, in order, and the damaged chunk's records are counted as lost. */
static void repair_one_chunk(int k, uint64_t delta)
{
    char p[512], q[512], out[512];
    path_of(p, sizeof p, "rep_src.sluice");
    path_of(q, sizeof q, "rep_bad.sluice");
    path_of(out, sizeof out, "rep_out.sluice");
    write_small(p);
    layout L;
    small_layout(p, &L);
    const region *c = &L.r[1 + k];
    assert_int_equal(c->chunk, k);
    damage(p, q, c->start + delta, 4);
    uint64_t got = 0, lost = 0;
    char err[256];
    assert_int_equal(sl_record_repair(q, out, 0, &got, &lost, err, sizeof err), 0);
    assert_int_equal(got, NREC - c->count);
    assert_int_equal(lost, c->count);
    sl_record_reader *r;
    assert_int_equal(sl_record_reader_open(&r, out, NULL), 0);
    assert_int_equal(sl_record_reader_count(r), NREC - c->count);
    sl_record rec;
    uint8_t want[128];
    for (uint64_t i = 0, j = 0; i < NREC; i++) {
        if (i >= c->first && i < c->first + c->count)
            continue;
        assert_int_equal(sl_record_reader_next(r, &rec), 0);
        assert_int_equal(rec.index, j++);
        assert_int_equal(rec.size, rec_make(i, want));
        assert_memory_equal(rec.data, want, rec.size);
    }
    assert_int_equal(sl_record_reader_next(r, &rec), SL_EOF);
    sl_record_reader_close(r);
}

static void test_repair_after_payload_damage_keeps_other_chunks(void **state)
{
    repair_one_chunk(2, 60);
}

static void test_repair_after_chunk_header_damage_resyncs(void **state)
{
    repair_one_chunk(3, 0); /* the chunk magic: the scan must search for the next chunk */
}

static void scan_recovers_all(const char *path)
{
    recovered rv = {0};
    assert_int_equal(sl_record_scan(path, on_record, scan_problem, &rv, NULL), 0);
    assert_int_equal(rv.n, NREC);
    for (int i = 0; i < NREC; i++)
        assert_true(rv.seen[i]);
}

static void test_scan_recovers_all_when_index_damaged(void **state)
{
    char p[512], q[512], out[512];
    path_of(p, sizeof p, "ix_src.sluice");
    path_of(q, sizeof q, "ix_bad.sluice");
    path_of(out, sizeof out, "ix_out.sluice");
    write_small(p);
    layout L;
    small_layout(p, &L);
    const region *ix = &L.r[L.n - 2];
    damage(p, q, ix->start, 8); /* index magic and entry sizes */
    sl_record_reader *r;
    assert_int_equal(sl_record_reader_open(&r, q, NULL), SL_ERR_CORRUPT);
    sl_record_reader_close(r);
    scan_recovers_all(q);
    uint64_t got = 0, lost = 1;
    assert_int_equal(sl_record_repair(q, out, 3, &got, &lost, NULL, 0), 0);
    assert_int_equal(got, NREC);
    assert_int_equal(lost, 0);
}

static void test_scan_recovers_all_when_footer_damaged(void **state)
{
    char p[512], q[512], out[512];
    path_of(p, sizeof p, "ft_src.sluice");
    path_of(q, sizeof q, "ft_bad.sluice");
    path_of(out, sizeof out, "ft_out.sluice");
    write_small(p);
    layout L;
    small_layout(p, &L);
    damage(p, q, L.size - 64, 64);
    scan_recovers_all(q);
    uint64_t got = 0, lost = 1;
    assert_int_equal(sl_record_repair(q, out, 0, &got, &lost, NULL, 0), 0);
    assert_int_equal(got, NREC);
    assert_int_equal(lost, 0); /* the chunk region ends cleanly at the index */
}

static void test_scan_recovers_all_when_index_and_footer_cut_off(void **state)
{
    char p[512], q[512];
    path_of(p, sizeof p, "cut_src.sluice");
    path_of(q, sizeof q, "cut.sluice");
    write_small(p);
    layout L;
    small_layout(p, &L);
    uint8_t *f;
    size_t size;
    assert_int_equal(sl_test_read_file(p, &f, &size), 0);
    assert_int_equal(sl_test_write_file(q, f, L.r[L.n - 2].start + 20), 0);
    free(f);
    scan_recovers_all(q);
}

static void test_scan_reports_header_damage_and_recovers_raw_chunks(void **state)
{
    char p[512], q[512];
    path_of(p, sizeof p, "hd_src.sluice");
    path_of(q, sizeof q, "hd_bad.sluice");
    write_small(p);
    damage(p, q, 28, 1); /* a reserved header field: only the crc32c notices */
    recovered rv = {0};
    sl_schema *schema = (sl_schema *)1;
    assert_int_equal(sl_record_scan(q, on_record, scan_problem, &rv, &schema), 0);
    assert_null(schema);
    assert_true(rv.ps.n >= 1);
    assert_int_equal(rv.ps.offsets[0], 32); /* the header's crc32c (no schema, no dictionary) */
    assert_int_equal(rv.n, NREC);           /* no dictionary: chunks decode without the header */
}

static int stop_after_three(const sl_record *rec, void *user)
{
    return ++*(uint64_t *)user == 3;
}

static void test_scan_stops_when_callback_says_so(void **state)
{
    char p[512];
    path_of(p, sizeof p, "stop.sluice");
    write_small(p);
    uint64_t n = 0;
    assert_int_equal(sl_record_scan(p, stop_after_three, NULL, &n, NULL), 0);
    assert_int_equal(n, 3);
}

/* The index and footer of one file grafted onto the body of another. */
static void graft(const char *body_src, const char *index_src, const char *dst)
{
    uint8_t *a, *b;
    size_t na, nb;
    assert_int_equal(sl_test_read_file(body_src, &a, &na), 0);
    assert_int_equal(sl_test_read_file(index_src, &b, &nb), 0);
    const uint64_t ia = sl__load_u64le(a + na - 64), ib = sl__load_u64le(b + nb - 64);
    uint8_t *out = malloc(ia + (nb - ib));
    memcpy(out, a, ia);
    memcpy(out + ia, b + ib, nb - ib);
    assert_int_equal(sl_test_write_file(dst, out, ia + (nb - ib)), 0);
    free(out);
    free(a);
    free(b);
}

static void write_letters(const char *path, char letter, int n, size_t size)
{
    sl_record_writer *w;
    const sl_record_writer_options o = {.chunk_bytes = 256};
    assert_int_equal(sl_record_writer_open(&w, path, &o), 0);
    char buf[256];
    memset(buf, letter, sizeof buf);
    for (int i = 0; i < n; i++)
        assert_int_equal(sl_record_writer_write(w, buf, size), 0);
    assert_int_equal(sl_record_writer_finish(w), 0);
    sl_record_writer_close(w);
}

static void test_grafted_index_of_other_layout_refused_at_open(void **state)
{
    char a[512], b[512], g[512];
    path_of(a, sizeof a, "graft_a.sluice");
    path_of(b, sizeof b, "graft_b.sluice");
    path_of(g, sizeof g, "graft.sluice");
    write_letters(a, 'a', 30, 50);
    write_letters(b, 'b', 31, 50);
    graft(a, b, g);
    sl_record_reader *r;
    assert_int_equal(sl_record_reader_open(&r, g, NULL), SL_ERR_STALE_INDEX);
    assert_non_null(strstr(sl_record_reader_errmsg(r), "offset"));
    sl_record_reader_close(r);
    problems ps = {0};
    assert_int_equal(sl_record_verify(g, collect, &ps), SL_ERR_STALE_INDEX);
}

static void test_grafted_index_of_same_layout_refused_at_read(void **state)
{
    char a[512], b[512], g[512];
    path_of(a, sizeof a, "same_a.sluice");
    path_of(b, sizeof b, "same_b.sluice");
    path_of(g, sizeof g, "same.sluice");
    write_letters(a, 'a', 30, 50);
    write_letters(b, 'b', 30, 50);
    graft(a, b, g); /* body of a ('a' records) under the index of b */
    sl_record_reader *r;
    /* the cheap checks all pass */
    if (sl_record_reader_open(&r, g, NULL))
        fail_msg("%s", sl_record_reader_errmsg(r));
    sl_record rec;
    assert_int_equal(sl_record_reader_next(r, &rec), SL_ERR_STALE_INDEX);
    assert_non_null(strstr(sl_record_reader_errmsg(r), "record 0 (chunk 0) at offset"));
    assert_int_equal(sl_record_reader_read(r, 17, &rec), SL_ERR_STALE_INDEX);
    sl_record_reader_close(r);
    problems ps = {0};
    assert_int_equal(sl_record_verify(g, collect, &ps), SL_ERR_STALE_INDEX);
}

static void test_trailing_garbage_reported(void **state)
{
    char p[512], q[512];
    path_of(p, sizeof p, "tg_src.sluice");
    path_of(q, sizeof q, "tg.sluice");
    write_small(p);
    uint8_t *f;
    size_t size;
    assert_int_equal(sl_test_read_file(p, &f, &size), 0);
    f = realloc(f, size + 16);
    memset(f + size, 0x33, 16);
    assert_int_equal(sl_test_write_file(q, f, size + 16), 0);
    free(f);
    problems ps = {0};
    assert_int_equal(sl_record_verify(q, collect, &ps), SL_ERR_CORRUPT);
    assert_int_equal(ps.n, 1);
    assert_int_equal(ps.offsets[0], size);
    assert_non_null(strstr(ps.first_what, "16 bytes of trailing garbage"));
}

/* ---- golden files ----------------------------------------------------------------------- */

static void golden_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/record/%s", sl_test_data_dir(), name);
}

/* The records make_golden.py writes. */
static size_t golden_record(int i, uint8_t *buf)
{
    const size_t n = (size_t)(i * 29) % 70;
    for (size_t j = 0; j < n; j++)
        buf[j] = (uint8_t)('a' + (i + j) % 26);
    return n;
}

enum { GOLDEN_N = 24 };

static void assert_golden_records(const char *path)
{
    sl_record_reader *r;
    if (sl_record_reader_open(&r, path, NULL))
        fail_msg("%s", sl_record_reader_errmsg(r));
    assert_int_equal(sl_record_reader_count(r), GOLDEN_N);
    uint8_t want[80];
    sl_record rec;
    for (int i = 0; i < GOLDEN_N; i++) {
        assert_int_equal(sl_record_reader_next(r, &rec), 0);
        assert_int_equal(rec.size, golden_record(i, want));
        assert_memory_equal(rec.data, want, rec.size);
    }
    assert_int_equal(sl_record_reader_next(r, &rec), SL_EOF);
    sl_record_reader_close(r);
}

static void test_golden_valid_file_reads(void **state)
{
    char p[512];
    golden_path(p, sizeof p, "valid.sluice");
    assert_golden_records(p);
}

static void test_golden_valid_file_equals_writer_output(void **state)
{
    char p[512], q[512];
    golden_path(p, sizeof p, "valid.sluice");
    path_of(q, sizeof q, "golden_again.sluice");
    sl_record_writer *w;
    const sl_record_writer_options o = {.chunk_bytes = 256};
    assert_int_equal(sl_record_writer_open(&w, q, &o), 0);
    uint8_t buf[80];
    for (int i = 0; i < GOLDEN_N; i++)
        assert_int_equal(sl_record_writer_write(w, buf, golden_record(i, buf)), 0);
    assert_int_equal(sl_record_writer_finish(w), 0);
    sl_record_writer_close(w);
    uint8_t *a, *b;
    size_t na, nb;
    assert_int_equal(sl_test_read_file(p, &a, &na), 0);
    assert_int_equal(sl_test_read_file(q, &b, &nb), 0);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    free(a);
    free(b);
}

static void test_golden_minor_version_is_readable(void **state)
{
    char p[512];
    golden_path(p, sizeof p, "minor_version.sluice");
    assert_golden_records(p);
    sl_record_reader *r;
    assert_int_equal(sl_record_reader_open(&r, p, NULL), 0);
    sl_record_file_info info;
    sl_record_reader_info(r, &info);
    assert_int_equal(info.version_major, 1);
    assert_int_equal(info.version_minor, 9);
    sl_record_reader_close(r);
}

typedef struct golden {
    const char *name;
    int open_rc; /* expected from open */
    int read_rc; /* expected from the first failing next() when open succeeds */
    const char *msg;
} golden;

static const golden goldens[] = {
    {"major_version.sluice", SL_ERR_VERSION, 0,
     "format version 2.0, this reader supports major version 1"},
    {"bad_magic.sluice", SL_ERR_FORMAT, 0, "bad magic (not a .sluice file) at offset 0"},
    {"header_crc.sluice", SL_ERR_CORRUPT, 0, "header crc32c mismatch at offset 32"},
    {"truncated.sluice", SL_ERR_TRUNCATED, 0, "footer magic missing"},
    {"short.sluice", SL_ERR_TRUNCATED, 0, "file is 20 bytes, shorter than a header"},
    {"trailing_garbage.sluice", SL_ERR_TRUNCATED, 0, "footer magic missing"},
    {"footer_crc.sluice", SL_ERR_CORRUPT, 0, "footer crc32c mismatch at offset 2016"},
    {"index_crc.sluice", SL_ERR_CORRUPT, 0, "index crc32c mismatch at offset"},
    {"stale_header.sluice", SL_ERR_STALE_INDEX, 0, "footer belongs to a different header"},
    {"stale_fingerprint.sluice", SL_ERR_STALE_INDEX, 0, "fingerprint does not match"},
    {"chunk_payload.sluice", 0, SL_ERR_CORRUPT,
     "record 0 (chunk 0) at offset 88: chunk payload crc32c mismatch"},
    {"chunk_magic.sluice", 0, SL_ERR_CORRUPT, "record 0 (chunk 0) at offset 40: bad chunk magic"},
    {"stale_chunk.sluice", 0, SL_ERR_STALE_INDEX,
     "record 0 (chunk 0) at offset 40: chunk header differs from the index's copy"},
};

static void test_golden_corrupt_files_give_documented_errors(void **state)
{
    for (size_t k = 0; k < SL_ARRAY_LEN(goldens); k++) {
        const golden *g = &goldens[k];
        char p[512];
        golden_path(p, sizeof p, g->name);
        sl_record_reader *r;
        int rc = sl_record_reader_open(&r, p, NULL);
        if (rc == 0 && g->read_rc) {
            sl_record rec;
            while ((rc = sl_record_reader_next(r, &rec)) == 0) {
            }
        }
        const char *msg = sl_record_reader_errmsg(r);
        if (rc != (g->open_rc ? g->open_rc : g->read_rc) || !strstr(msg, g->msg) ||
            !strstr(msg, g->name))
            fail_msg("%s: got %s \"%s\"", g->name, sl_err_name(rc), msg);
        sl_record_reader_close(r);
        problems ps = {0};
        assert_true(sl_record_verify(p, collect, &ps) < 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intact_file_verifies_clean),
        cmocka_unit_test(test_every_flipped_byte_is_detected),
        cmocka_unit_test(test_every_flipped_bit_is_detected),
        cmocka_unit_test(test_every_truncation_is_detected),
        cmocka_unit_test(test_repair_after_payload_damage_keeps_other_chunks),
        cmocka_unit_test(test_repair_after_chunk_header_damage_resyncs),
        cmocka_unit_test(test_scan_recovers_all_when_index_damaged),
        cmocka_unit_test(test_scan_recovers_all_when_footer_damaged),
        cmocka_unit_test(test_scan_recovers_all_when_index_and_footer_cut_off),
        cmocka_unit_test(test_scan_reports_header_damage_and_recovers_raw_chunks),
        cmocka_unit_test(test_scan_stops_when_callback_says_so),
        cmocka_unit_test(test_grafted_index_of_other_layout_refused_at_open),
        cmocka_unit_test(test_grafted_index_of_same_layout_refused_at_read),
        cmocka_unit_test(test_trailing_garbage_reported),
        cmocka_unit_test(test_golden_valid_file_reads),
        cmocka_unit_test(test_golden_valid_file_equals_writer_output),
        cmocka_unit_test(test_golden_minor_version_is_readable),
        cmocka_unit_test(test_golden_corrupt_files_give_documented_errors),
    };
    return cmocka_run_group_tests(tests, sl_test_dir_setup, sl_test_dir_teardown);
}

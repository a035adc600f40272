/*
 * The fused image path against a bare-C ceiling, on the same JPEGs, threads and compiler flags:
 *
 *   (a) sluice   sl_image_decode_fused: RandomResizedCrop(224) window, decode of that window
 *                only (libjpeg crop_scanline + skip_scanlines, DCT scaling where it applies),
 *                antialiased resize + flip + ImageNet normalize into a fresh float32 CHW tensor.
 *   (b) ceiling  the same window and flip draws, the same region decode written directly
 *                against libjpeg, then a plain bilinear resize + flip + normalize in one
 *                straightforward loop into a per-thread float32 CHW buffer: no allocation, no
 *                antialiasing (2x2 taps however much the crop shrinks), no engine.
 *
 * (b) does less work per pixel than (a) whenever a crop is larger than 224 (antialiasing reads
 * every source pixel under the footprint), so the ratio (a)/(b) is a conservative measure of
 * how close sluice comes to the machine's limit for this job.
 *
 * The images: --dir DIR takes every .jpg and .jpeg file there; otherwise the bench makes --count
 * 500x375 quality-90 JPEGs (4:2:0, libjpeg defaults) from the photographs Debian's
 * python3-skimage ships (crop, resize, encode; seeded, so every run gets the same bytes), or
 * from a synthetic picture when those are not installed (said on the first line).
 *
 * Each round runs (a) then (b), each over --passes passes of the set on --threads threads
 * pulling image indices from a shared counter; a pass/image pair always gets the same random
 * stream, so (a) and (b) decode the same windows. Prints, per variant, images/s as the median
 * of the rounds (min-max) and CPU-seconds per image (process user+sys over images), then the
 * ratio of the medians and the ratio per round.
 *
 * usage: bench_image [--dir DIR] [--count N] [--threads T] [--rounds R] [--passes P]
 *                    [--size S]
 */
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#include <jpeglib.h>

#include "bench_util.h"
#include "sluice/clock.h"
#include "sluice/image.h"
#include "sluice/rng.h"

enum { MAX_ROUNDS = 15, MAX_THREADS = 64, MAX_IMAGES = 4096, IMG_W = 500, IMG_H = 375 };

static const char *const PROGRAM = "bench_image";

typedef struct image {
    unsigned char *data;
    size_t len;
} image;

static image images[MAX_IMAGES];
static int n_images;

/* ---- the JPEG set ------------------------------------------------------------------------- */

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0, got;
    do {
        if (n == cap) {
            cap = cap ? 2 * cap : 1 << 16;
            unsigned char *nb = realloc(buf, cap);
            if (!nb)
                bench_die(PROGRAM, path, "out of memory");
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    fclose(f);
    *len = n;
    return buf;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void load_dir(const char *dir, int max)
{
    DIR *d = opendir(dir);
    if (!d)
        bench_die(PROGRAM, dir, "cannot open directory");
    char *names[MAX_IMAGES];
    int n = 0;
    const struct dirent *e;
    while ((e = readdir(d)) != NULL && n < MAX_IMAGES) {
        const char *dot = strrchr(e->d_name, '.');
        if (dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg")))
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], by_name);
    for (int i = 0; i < n; i++) {
        if (n_images < max) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            images[n_images].data = read_file(path, &images[n_images].len);
            if (!images[n_images].data)
                bench_die(PROGRAM, path, "cannot read");
            n_images++;
        }
        free(names[i]);
    }
    if (n_images == 0)
        bench_die(PROGRAM, dir, "no .jpg files");
}

/* RGB pixels -> a quality-90 JPEG with libjpeg's defaults (4:2:0, no optimised tables, what
 * PIL writes at quality 90). */
static image encode_jpeg(const uint8_t *rgb, int w, int h)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr); /* a failure exits the bench: fine here */
    jpeg_create_compress(&c);
    unsigned char *buf = NULL;
    unsigned long len = 0;
    jpeg_mem_dest(&c, &buf, &len);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 90, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)c.next_scanline * w * 3);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return (image){buf, len};
}

/* A stand-in when no photographs are installed: smooth shading, hard-edged discs and sensor-like
 * noise, so the entropy coder has a photo's kind of work. */
static void synthetic_picture(sl_tensor *t, int w, int h, uint64_t seed)
{
    const int64_t shape[3] = {h, w, 3};
    if (sl_tensor_alloc(t, SL_DTYPE_U8, 3, shape))
        bench_die(PROGRAM, "synthetic picture", "out of memory");
    sl_rng r;
    sl_rng_init(&r, seed, 7, 0);
    double disc[8][6];
    for (int i = 0; i < 8; i++)
        for (int k = 0; k < 6; k++)
            disc[i][k] = sl_rng_uniform(&r);
    uint8_t *p = t->data;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                double v = 128 + 90 * sin(x / (17.0 + 9 * c) + seed) * cos(y / (23.0 + 5 * c));
                for (int i = 0; i < 8; i++) {
                    const double dx = x - disc[i][0] * w, dy = y - disc[i][1] * h;
                    if (dx * dx + dy * dy < (20 + 60 * disc[i][2]) * (20 + 60 * disc[i][2]))
                        v = 255 * disc[i][3 + c];
                }
                v += (sl_rng_uniform(&r) - 0.5) * 24;
                p[((size_t)y * w + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
}

/* The colour photographs in scikit-image's data directory (CC0 / public domain). */
static const char *const PHOTOS[] = {
    "astronaut.png", "chelsea.png",           "coffee.png",
    "ihc.png",       "motorcycle_left.png",   "motorcycle_right.png",
    "rocket.jpg",    "hubble_deep_field.jpg", "retina.jpg"};
static const char *const PHOTO_DIR = "/usr/lib/python3/dist-packages/skimage/data";
#define N_PHOTOS (sizeof PHOTOS / sizeof PHOTOS[0])

/* Image i: a random 4:3 window over 55-100% of the width of a photo, resized to 500x375 and
 * sometimes mirrored, so no two images are alike. */
static void generate(int count, const char **source)
{
    sl_tensor photos[N_PHOTOS];
    int n_photos = 0;
    for (size_t i = 0; i < N_PHOTOS; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", PHOTO_DIR, PHOTOS[i]);
        size_t len;
        unsigned char *bytes = read_file(path, &len);
        if (!bytes)
            continue;
        if (sl_image_decode(bytes, len, NULL, &photos[n_photos], NULL, NULL, 0) == 0)
            n_photos++;
        free(bytes);
    }
    *source = n_photos ? "photographs from python3-skimage" : "synthetic pictures (no skimage)";
    sl_rng r;
    sl_rng_init(&r, 2024, 0, 0);
    for (int i = 0; i < count; i++) {
        sl_tensor pic, out, flipped;
        if (n_photos) {
            pic = photos[i % n_photos];
        } else {
            synthetic_picture(&pic, 640, 480, (uint64_t)i);
        }
        const int pw = (int)pic.shape[1], ph = (int)pic.shape[0];
        int cw = (int)(pw * (0.55 + 0.45 * sl_rng_uniform(&r)));
        int ch = cw * 3 / 4;
        if (ch > ph) {
            ch = ph;
            cw = ph * 4 / 3;
        }
        const sl_image_rect win = {(int)sl_rng_below(&r, (uint64_t)(pw - cw + 1)),
                                   (int)sl_rng_below(&r, (uint64_t)(ph - ch + 1)), cw, ch};
        if (sl_image_resized_crop(&pic, &win, IMG_W, IMG_H, &out))
            bench_die(PROGRAM, "generate", "resized_crop failed");
        if (sl_rng_uniform(&r) < 0.5 && sl_image_flip(&out, &flipped) == 0) {
            sl_tensor_release(&out);
            out = flipped;
        }
        images[n_images++] = encode_jpeg(out.data, IMG_W, IMG_H);
        sl_tensor_release(&out);
        if (!n_photos)
            sl_tensor_release(&pic);
    }
    for (int i = 0; i < n_photos; i++)
        sl_tensor_release(&photos[i]);
}

/* ---- (b) the ceiling ---------------------------------------------------------------------- */

static const float MEAN[3] = {0.485f, 0.456f, 0.406f}, STD[3] = {0.229f, 0.224f, 0.225f};
static const double SCALE[2] = {0.08, 1.0}, RATIO[2] = {3.0 / 4.0, 4.0 / 3.0};

typedef struct ceiling_buf {
    uint8_t *px; /* decoded window rows */
    size_t cap;
    float *row; /* one vertically interpolated row */
    size_t row_cap;
    float *out; /* (3, size, size) */
    int *x0, *x1;
    float *fx;
} ceiling_buf;

typedef struct bail {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
} bail;

static void bail_out(j_common_ptr c)
{
    longjmp(((bail *)c->err)->jump, 1);
}

/* ROI decode + bilinear resize/flip/normalize, everything in one function the way a bare C
 * loader would write it. Returns 0, or -1 on a decode error. */
static int ceiling_one(const image *im, sl_rng *rng, int size, ceiling_buf *b)
{
    struct jpeg_decompress_struct ci;
    bail err;
    ci.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = bail_out;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&ci);
        return -1;
    }
    jpeg_create_decompress(&ci);
    jpeg_mem_src(&ci, im->data, (unsigned long)im->len);
    jpeg_read_header(&ci, TRUE);
    sl_image_rect r;
    sl_image_random_resized_crop_params((int)ci.image_width, (int)ci.image_height, SCALE, RATIO,
                                        rng, &r);
    const int flip = sl_image_flip_draw(rng, 0.5);
    ci.out_color_space = JCS_RGB;
    ci.dct_method = JDCT_ISLOW;
    jpeg_start_decompress(&ci);
    JDIMENSION xoff = (JDIMENSION)r.x, cw = (JDIMENSION)r.w;
    if (cw < ci.output_width)
        jpeg_crop_scanline(&ci, &xoff, &cw);
    else
        xoff = 0, cw = ci.output_width;
    const size_t stride = (size_t)cw * 3;
    if (stride * (size_t)r.h > b->cap) {
        b->cap = stride * (size_t)r.h;
        b->px = realloc(b->px, b->cap);
        if (!b->px)
            bench_die(PROGRAM, "ceiling", "out of memory");
    }
    if (stride > b->row_cap) {
        b->row_cap = stride;
        b->row = realloc(b->row, sizeof(float) * stride);
        if (!b->row)
            bench_die(PROGRAM, "ceiling", "out of memory");
    }
    if (r.y > 0)
        jpeg_skip_scanlines(&ci, (JDIMENSION)r.y);
    for (int y = 0; y < r.h;) {
        JSAMPROW rows[16];
        const int n = r.h - y < 16 ? r.h - y : 16;
        for (int i = 0; i < n; i++)
            rows[i] = b->px + (size_t)(y + i) * stride;
        y += (int)jpeg_read_scanlines(&ci, rows, (JDIMENSION)n);
    }
    jpeg_abort_decompress(&ci);
    jpeg_destroy_decompress(&ci);

    /* Bilinear with half-pixel centres over the window r (its left edge sits r.x - xoff
     * columns into each decoded row). */
    const int left = r.x - (int)xoff;
    const float sx = (float)r.w / size, sy = (float)r.h / size;
    for (int x = 0; x < size; x++) {
        float f = (x + 0.5f) * sx - 0.5f;
        f = f < 0 ? 0 : f;
        int i0 = (int)f;
        i0 = i0 > r.w - 1 ? r.w - 1 : i0;
        const int i1 = i0 + 1 < r.w ? i0 + 1 : r.w - 1;
        const int xo = flip ? size - 1 - x : x;
        b->x0[xo] = (left + i0) * 3;
        b->x1[xo] = (left + i1) * 3;
        b->fx[xo] = f - i0;
    }
    float a[3], c[3];
    for (int ch = 0; ch < 3; ch++) {
        a[ch] = 1.0f / (255.0f * STD[ch]);
        c[ch] = -MEAN[ch] / STD[ch];
    }
    const size_t plane = (size_t)size * size, n = (size_t)cw * 3;
    for (int y = 0; y < size; y++) {
        float f = (y + 0.5f) * sy - 0.5f;
        f = f < 0 ? 0 : f;
        int j0 = (int)f;
        j0 = j0 > r.h - 1 ? r.h - 1 : j0;
        const int j1 = j0 + 1 < r.h ? j0 + 1 : r.h - 1;
        const float fy = f - j0;
        const uint8_t *r0 = b->px + (size_t)j0 * stride, *r1 = b->px + (size_t)j1 * stride;
        float *row = b->row;
        for (size_t i = 0; i < n; i++) /* vertical lerp of the two rows (vectorises) */
            row[i] = r0[i] + fy * (r1[i] - r0[i]);
        float *o = b->out + (size_t)y * size;
        for (int x = 0; x < size; x++) { /* horizontal lerp, flip and normalize */
            const int p0 = b->x0[x], p1 = b->x1[x];
            const float fx = b->fx[x];
            for (int ch = 0; ch < 3; ch++) {
                const float v = row[p0 + ch] + fx * (row[p1 + ch] - row[p0 + ch]);
                o[ch * plane + x] = v * a[ch] + c[ch];
            }
        }
    }
    return 0;
}

/* ---- runs --------------------------------------------------------------------------------- */

typedef struct run {
    int variant; /* 0 sluice, 1 ceiling */
    int size;
    long total; /* images to process */
    atomic_long next;
    atomic_long failures;
    double checksum[MAX_THREADS];
} run;

typedef struct worker {
    run *run;
    int id;
} worker;

static void *work(void *arg)
{
    const worker *w = arg;
    run *rn = w->run;
    const int size = rn->size;
    ceiling_buf b = {0};
    if (rn->variant == 1) {
        b.out = malloc(sizeof(float) * 3 * size * size);
        b.x0 = malloc(sizeof(int) * size);
        b.x1 = malloc(sizeof(int) * size);
        b.fx = malloc(sizeof(float) * size);
        if (!b.out || !b.x0 || !b.x1 || !b.fx)
            bench_die(PROGRAM, "ceiling", "out of memory");
    }
    sl_image_fused_opts o = {.out_w = size, .out_h = size, .flip_p = 0.5};
    sl_image_normalize_preset("imagenet", &o.norm);
    double sum = 0;
    for (;;) {
        const long n = atomic_fetch_add_explicit(&rn->next, 1, memory_order_relaxed);
        if (n >= rn->total)
            break;
        const int i = (int)(n % n_images);
        sl_rng rng;
        sl_rng_init(&rng, 1, (uint64_t)(n / n_images), (uint64_t)i);
        if (rn->variant == 0) {
            sl_tensor t;
            if (sl_image_decode_fused(images[i].data, images[i].len, &o, &rng, &t, NULL, NULL, NULL,
                                      0) != 0) {
                atomic_fetch_add(&rn->failures, 1);
                continue;
            }
            sum += ((const float *)t.data)[n % (3 * size * size)];
            sl_tensor_release(&t);
        } else {
            if (ceiling_one(&images[i], &rng, size, &b) != 0) {
                atomic_fetch_add(&rn->failures, 1);
                continue;
            }
            sum += b.out[n % (3 * size * size)];
        }
    }
    rn->checksum[w->id] = sum; /* keeps the outputs live */
    free(b.px);
    free(b.row);
    free(b.out);
    free(b.x0);
    free(b.x1);
    free(b.fx);
    return NULL;
}

static double cpu_seconds(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_utime.tv_usec * 1e-6 + u.ru_stime.tv_sec +
           u.ru_stime.tv_usec * 1e-6;
}

/* One measurement: images/s and CPU-seconds per image. */
static void measure(int variant, int threads, long total, int size, double *rate, double *cpu)
{
    run rn = {.variant = variant, .size = size, .total = total};
    pthread_t tid[MAX_THREADS];
    worker w[MAX_THREADS];
    const double c0 = cpu_seconds();
    const uint64_t t0 = sl_clock_ns();
    for (int t = 0; t < threads; t++) {
        w[t] = (worker){&rn, t};
        if (pthread_create(&tid[t], NULL, work, &w[t]))
            bench_die(PROGRAM, "pthread_create", "failed");
    }
    for (int t = 0; t < threads; t++)
        pthread_join(tid[t], NULL);
    const double secs = (sl_clock_ns() - t0) * 1e-9;
    *rate = total / secs;
    *cpu = (cpu_seconds() - c0) / total;
    if (atomic_load(&rn.failures))
        bench_die(PROGRAM, variant ? "ceiling" : "sluice", "some images failed to decode");
}

/* Mean absolute difference between (a)'s and (b)'s outputs over the first images, in 0..255
 * levels: both must compute the same crops (they differ only in the resampling filter). */
static double agreement(int size)
{
    ceiling_buf b = {0};
    b.out = malloc(sizeof(float) * 3 * size * size);
    b.x0 = malloc(sizeof(int) * size);
    b.x1 = malloc(sizeof(int) * size);
    b.fx = malloc(sizeof(float) * size);
    sl_image_fused_opts o = {.out_w = size, .out_h = size, .flip_p = 0.5};
    sl_image_normalize_preset("imagenet", &o.norm);
    double diff = 0;
    long count = 0;
    const int n = n_images < 8 ? n_images : 8;
    for (int i = 0; i < n; i++) {
        sl_rng r1, r2;
        sl_rng_init(&r1, 1, 0, (uint64_t)i);
        r2 = r1;
        sl_tensor t;
        if (sl_image_decode_fused(images[i].data, images[i].len, &o, &r1, &t, NULL, NULL, NULL,
                                  0) != 0 ||
            ceiling_one(&images[i], &r2, size, &b) != 0)
            bench_die(PROGRAM, "check", "decode failed");
        const float *a = t.data;
        for (long k = 0; k < 3L * size * size; k++) {
            const int ch = (int)(k / ((long)size * size));
            diff += fabs(a[k] - b.out[k]) * STD[ch] * 255;
            count++;
        }
        sl_tensor_release(&t);
    }
    free(b.px);
    free(b.row);
    free(b.out);
    free(b.x0);
    free(b.x1);
    free(b.fx);
    return diff / count;
}

static void summary(const char *name, double *rate, double *cpu, int rounds)
{
    double r[MAX_ROUNDS], c[MAX_ROUNDS];
    memcpy(r, rate, sizeof(double) * rounds);
    memcpy(c, cpu, sizeof(double) * rounds);
    const double med = bench_median(r, rounds), cmed = bench_median(c, rounds);
    printf("%-40s %8.0f images/s (%.0f-%.0f)  %6.0f us CPU/image\n", name, med, r[0], r[rounds - 1],
           cmed * 1e6);
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    int count = 40, threads = (int)sysconf(_SC_NPROCESSORS_ONLN), rounds = 3, passes = 50,
        size = 224;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            bench_die(PROGRAM, a, "needs a value (usage in the file's header)");
        if (!strcmp(a, "--dir"))
            dir = v;
        else if (!strcmp(a, "--count"))
            count = atoi(v);
        else if (!strcmp(a, "--threads"))
            threads = atoi(v);
        else if (!strcmp(a, "--rounds"))
            rounds = atoi(v);
        else if (!strcmp(a, "--passes"))
            passes = atoi(v);
        else if (!strcmp(a, "--size"))
            size = atoi(v);
        else
            bench_die(PROGRAM, a, "unknown option");
    }
    if (count < 1 || count > MAX_IMAGES || threads < 1 || threads > MAX_THREADS || rounds < 1 ||
        rounds > MAX_ROUNDS || passes < 1 || size < 8)
        bench_die(PROGRAM, "options", "out of range");
    const char *source = dir;
    if (dir)
        load_dir(dir, count);
    else
        generate(count, &source);
    size_t bytes = 0;
    for (int i = 0; i < n_images; i++)
        bytes += images[i].len;
    printf("%d JPEGs (%s), mean %.1f KB; crop %dx%d, flip, imagenet float32 CHW; %d threads, "
           "%d rounds of %d passes\n",
           n_images, source, bytes / 1e3 / n_images, size, size, threads, rounds, passes);
    printf("check: (a) vs (b) mean |difference| %.2f levels (same windows, different filters)\n",
           agreement(size));

    const long total = (long)passes * n_images;
    double rate[2][MAX_ROUNDS], cpu[2][MAX_ROUNDS], ratio[MAX_ROUNDS];
    measure(0, threads, n_images, size, &rate[0][0], &cpu[0][0]); /* warm-up */
    measure(1, threads, n_images, size, &rate[1][0], &cpu[1][0]);
    for (int r = 0; r < rounds; r++) {
        for (int v = 0; v < 2; v++)
            measure(v, threads, total, size, &rate[v][r], &cpu[v][r]);
        ratio[r] = rate[0][r] / rate[1][r];
        printf("round %d: sluice %.0f/s, ceiling %.0f/s, ratio %.3f\n", r + 1, rate[0][r],
               rate[1][r], ratio[r]);
    }
    summary("(a) sluice fused (sl_image_decode_fused)", rate[0], cpu[0], rounds);
    summary("(b) bare-C ceiling (ROI decode+bilinear)", rate[1], cpu[1], rounds);
    const double med_ratio = bench_median(ratio, rounds); /* sorts ratio */
    const double med_a = bench_median(rate[0], rounds), med_b = bench_median(rate[1], rounds);
    const double cpu_a = bench_median(cpu[0], rounds), cpu_b = bench_median(cpu[1], rounds);
    printf("ratio (a)/(b) images/s: %.3f (medians); per round %.3f (%.3f-%.3f); CPU per image "
           "(b)/(a): %.3f\n",
           med_a / med_b, med_ratio, ratio[0], ratio[rounds - 1], cpu_b / cpu_a);
    printf("target (a) >= 0.90 x (b): %s\n", med_a / med_b >= 0.9 ? "met" : "NOT met");
    printf("reproduce: bench_image%s%s --count %d --threads %d --rounds %d --passes %d --size "
           "%d\n",
           dir ? " --dir " : "", dir ? dir : "", count, threads, rounds, passes, size);
    for (int i = 0; i < n_images; i++)
        free(images[i].data);
    return 0;
}

/*
 * make_shapes: writes an ImageFolder tree of JPEGs, one sub-folder per class (circle, square,
 * triangle, cross), each image one shape of random colour, size and position on a noisy
 * background of another colour. A small real classification task that needs no download: the
 * demo converts it with `sluice convert DIR` and streams it through the image ops.
 *
 * usage: make_shapes DIR [--per-class N] [--size PX] [--seed S]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sluice/image.h"
#include "sluice/rng.h"
#include "sluice/tensor.h"

static const char *const classes[] = {"circle", "square", "triangle", "cross"};
enum { NCLASSES = 4 };

/* 1 when pixel (x, y) lies inside shape k centred at (cx, cy) with half-size r. */
static int inside(int k, double x, double y, double cx, double cy, double r)
{
    const double dx = x - cx, dy = y - cy;
    switch (k) {
    case 0:
        return dx * dx + dy * dy <= r * r;
    case 1:
        return dx >= -r && dx <= r && dy >= -r && dy <= r;
    case 2: /* apex up: the half-width grows from 0 at the top to r at the bottom */
        return dy >= -r && dy <= r && (dx < 0 ? -dx : dx) <= (dy + r) / 2;
    default: {
        const double w = r / 3;
        return (dx >= -r && dx <= r && dy >= -w && dy <= w) ||
               (dy >= -r && dy <= r && dx >= -w && dx <= w);
    }
    }
}

static void random_colour(sl_rng *rng, uint8_t c[3])
{
    for (int i = 0; i < 3; i++)
        c[i] = (uint8_t)sl_rng_below(rng, 256);
}

/* Far enough apart (sum of channel differences) that the shape stays visible. */
static void contrasting(sl_rng *rng, const uint8_t bg[3], uint8_t fg[3])
{
    do
        random_colour(rng, fg);
    while (abs(fg[0] - bg[0]) + abs(fg[1] - bg[1]) + abs(fg[2] - bg[2]) < 150);
}

static int write_image(const char *path, int k, int size, sl_rng *rng)
{
    const int64_t shape[3] = {size, size, 3};
    sl_tensor img, jpeg;
    if (sl_tensor_alloc(&img, SL_DTYPE_U8, 3, shape))
        return -ENOMEM;
    uint8_t bg[3], fg[3];
    random_colour(rng, bg);
    contrasting(rng, bg, fg);
    const double r = size * (0.15 + 0.2 * sl_rng_uniform(rng));
    const double cx = r + (size - 2 * r) * sl_rng_uniform(rng);
    const double cy = r + (size - 2 * r) * sl_rng_uniform(rng);
    uint8_t *p = img.data;
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++, p += 3) {
            const int in = inside(k, x + 0.5, y + 0.5, cx, cy, r);
            for (int c = 0; c < 3; c++) {
                const int noise = (int)sl_rng_below(rng, 21) - 10;
                const int v = (in ? fg[c] : bg[c]) + noise;
                p[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    char err[256];
    int rc = sl_image_encode_jpeg(&img, 90, &jpeg, err, sizeof err);
    sl_tensor_release(&img);
    if (rc) {
        fprintf(stderr, "make_shapes: %s: %s\n", path, err);
        return rc;
    }
    FILE *f = fopen(path, "wb");
    rc =
        f && fwrite(jpeg.data, 1, sl_tensor_nbytes(&jpeg), f) == sl_tensor_nbytes(&jpeg) ? 0 : -EIO;
    if (f && fclose(f))
        rc = -EIO;
    if (rc)
        fprintf(stderr, "make_shapes: %s: %s\n", path, strerror(errno));
    sl_tensor_release(&jpeg);
    return rc;
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    long per_class = 250, size = 64;
    unsigned long long seed = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--per-class") && i + 1 < argc)
            per_class = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--size") && i + 1 < argc)
            size = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else if (!dir && argv[i][0] != '-')
            dir = argv[i];
        else
            dir = NULL, i = argc;
    }
    if (!dir || per_class < 1 || size < 16 || size > 4096) {
        fprintf(stderr, "usage: make_shapes DIR [--per-class N] [--size PX(16-4096)] [--seed S]\n");
        return 2;
    }
    char path[4096];
    mkdir(dir, 0755);
    for (int k = 0; k < NCLASSES; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, classes[k]);
        if (mkdir(path, 0755) && errno != EEXIST) {
            fprintf(stderr, "make_shapes: %s: %s\n", path, strerror(errno));
            return 1;
        }
        for (long i = 0; i < per_class; i++) {
            sl_rng rng; /* one stream per image: the set does not depend on the order made */
            sl_rng_init(&rng, seed, (uint64_t)k, (uint64_t)i);
            snprintf(path, sizeof path, "%s/%s/%05ld.jpg", dir, classes[k], i);
            if (write_image(path, k, (int)size, &rng))
                return 1;
        }
    }
    printf("%ld images of %ldx%ld in %d classes under %s\n", per_class * NCLASSES, size, size,
           NCLASSES, dir);
    return 0;
}

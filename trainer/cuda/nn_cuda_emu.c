/*
 * The CUDA backend compiled as C and run on the CPU (sl_cuda_emu_*, sluice/nn_cuda.h): the
 * kernels of nn_kernels.inc launched through the emulator of emu.h, with "device memory" being
 * counted host memory. It exists so that every kernel body is exercised, under the sanitizers
 * too, on machines without a GPU; it is a test vehicle, not a fast path (one CPU thread, one
 * emulated thread at a time).
 *
 * Also the training step and feed of cuda_train.inc over those kernels (sl_cuda_emu_model_*,
 * sl_cuda_emu_feed_*), with trivial streams and events.
 *
 * Threading: one handle per thread (emulator state is thread-local).
 */
#include <stdio.h>
#include <string.h>

#include "sluice/alloc.h"
#include "sluice/cuda_train.h"
#include "sluice/nn_cuda.h"
#include "sluice/status.h"

#include "cuda_compat.h"

struct sl_cuda_emu {
    void *scratch; /* nn_kernels.inc's scratch() */
    size_t scratch_bytes;
    char err[256];
};

#define SL_CUDA_FN(name) sl_cuda_emu_##name
#define SL_CUDA_CTX      sl_cuda_emu

static int launch_failed(sl_cuda_emu *ctx, int rc, const char *kernel)
{
    snprintf(ctx->err, sizeof(ctx->err), "launch of %s failed: %s", kernel, sl_strerror(rc));
    return rc;
}

/* Runs the kernel for every thread; a failed launch returns from the calling launcher. */
#define SL_LAUNCH(ctx, kernel, grid, block, smem, ...)              \
    do {                                                            \
        sl_emu_launch l_;                                           \
        const int rc_ = sl_emu_begin(&l_, (grid), (block), (smem)); \
        if (rc_ < 0)                                                \
            return launch_failed((ctx), rc_, #kernel);              \
        while (sl_emu_next(&l_))                                    \
            kernel(__VA_ARGS__);                                    \
        sl_emu_end(&l_);                                            \
    } while (0)

int sl_cuda_emu_open(sl_cuda_emu **out)
{
    *out = sl_calloc(1, sizeof(sl_cuda_emu));
    return *out ? 0 : SL_ERR_NOMEM;
}

void sl_cuda_emu_close(sl_cuda_emu *ctx)
{
    if (!ctx)
        return;
    sl_free(ctx->scratch);
    sl_free(ctx);
}

const char *sl_cuda_emu_errmsg(const sl_cuda_emu *ctx)
{
    return ctx->err;
}

int sl_cuda_emu_device_count(void)
{
    return 1;
}

const char *sl_cuda_emu_gemm_name(void)
{
    return "kernels";
}

int sl_cuda_emu_malloc(sl_cuda_emu *ctx, size_t bytes, void **out)
{
    *out = sl_malloc(bytes ? bytes : 1);
    if (!*out) {
        snprintf(ctx->err, sizeof(ctx->err), "cannot allocate %zu bytes", bytes);
        return SL_ERR_NOMEM;
    }
    return 0;
}

void sl_cuda_emu_free(sl_cuda_emu *ctx, void *dev)
{
    (void)ctx;
    sl_free(dev);
}

int sl_cuda_emu_upload(sl_cuda_emu *ctx, void *dev, const void *host, size_t bytes)
{
    (void)ctx;
    memcpy(dev, host, bytes);
    return 0;
}

int sl_cuda_emu_download(sl_cuda_emu *ctx, void *host, const void *dev, size_t bytes)
{
    (void)ctx;
    memcpy(host, dev, bytes);
    return 0;
}

int sl_cuda_emu_zero(sl_cuda_emu *ctx, void *dev, size_t bytes)
{
    (void)ctx;
    memset(dev, 0, bytes);
    return 0;
}

int sl_cuda_emu_sync(sl_cuda_emu *ctx)
{
    (void)ctx;
    return 0;
}

int sl_cuda_emu_copy(sl_cuda_emu *ctx, void *dst, const void *src, size_t bytes)
{
    (void)ctx;
    memmove(dst, src, bytes);
    return 0;
}

int sl_cuda_emu_host_alloc(sl_cuda_emu *ctx, size_t bytes, void **out)
{
    return sl_cuda_emu_malloc(ctx, bytes, out);
}

void sl_cuda_emu_host_free(sl_cuda_emu *ctx, void *host)
{
    (void)ctx;
    sl_free(host);
}

int sl_cuda_precision_parse(const char *name, sl_cuda_precision *out)
{
    static const char *const names[] = {"fp32", "bf16", "fp16"};
    for (int i = 0; i < 3; i++)
        if (name && !strcmp(name, names[i])) {
            *out = (sl_cuda_precision)i;
            return 0;
        }
    return SL_ERR_INVAL;
}

#include "nn_kernels.inc"

/* The feed's streams and events (cuda_train.inc): the emulator runs everything on the calling
 * thread in call order, so a copy has finished when it returns and there is nothing to wait
 * for; the feed's buffer rotation and normalize kernel are the device's. */
typedef int bk_stream;
typedef int bk_event;

static int bk_stream_create(sl_cuda_emu *ctx, bk_stream *s)
{
    (void)ctx;
    *s = 1;
    return 0;
}

static void bk_stream_destroy(bk_stream s)
{
    (void)s;
}

static int bk_stream_sync(sl_cuda_emu *ctx, bk_stream s)
{
    (void)ctx, (void)s;
    return 0;
}

static int bk_event_create(sl_cuda_emu *ctx, bk_event *e)
{
    (void)ctx;
    *e = 1;
    return 0;
}

static void bk_event_destroy(bk_event e)
{
    (void)e;
}

static int bk_event_sync(sl_cuda_emu *ctx, bk_event e)
{
    (void)ctx, (void)e;
    return 0;
}

static int bk_event_done(bk_event e)
{
    (void)e;
    return 1;
}

static int bk_event_record(sl_cuda_emu *ctx, bk_event e, bk_stream s)
{
    (void)ctx, (void)e, (void)s;
    return 0;
}

static int bk_stream_wait(sl_cuda_emu *ctx, bk_stream s, bk_event e)
{
    (void)ctx, (void)s, (void)e;
    return 0;
}

static int bk_compute_wait(sl_cuda_emu *ctx, bk_event e)
{
    (void)ctx, (void)e;
    return 0;
}

static int bk_compute_record(sl_cuda_emu *ctx, bk_event e)
{
    (void)ctx, (void)e;
    return 0;
}

static int bk_copy_h2d_async(sl_cuda_emu *ctx, bk_stream s, void *dev, const void *host,
                             size_t bytes)
{
    (void)s;
    return sl_cuda_emu_upload(ctx, dev, host, bytes);
}

#include "cuda_train.inc"

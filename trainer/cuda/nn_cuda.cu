/*
 * The CUDA backend on a real device (sl_cuda_*, sluice/nn_cuda.h): the kernels of
 * nn_kernels.inc compiled by nvcc, device memory through the CUDA runtime, linear layers through
 * cuBLAS sgemm. One handle owns a non-blocking stream, a cuBLAS handle bound to it and a grown-
 * on-demand scratch buffer; every launch and copy goes to that stream, so calls on one handle
 * run in order and a download (or sync) is where earlier kernel faults surface.
 *
 * Row-major <-> cuBLAS: a row-major (r x c) matrix is the column-major (c x r) matrix with
 * leading dimension c, so each row-major product is issued transposed (see linear_gemm_*).
 *
 * Also the training step and feed of cuda_train.inc (sl_cuda_model_*, sl_cuda_feed_*), with a
 * second stream for the feed's copies and events ordering the two streams.
 *
 * Threading: one handle per thread.
 */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <string.h>

#include "sluice/alloc.h"
#include "sluice/cuda_train.h"
#include "sluice/nn_cuda.h"
#include "sluice/status.h"

#include "cuda_compat.h"
#include "mp_bodies.h"
#include "nn_bodies.h"

struct sl_cuda {
    void *scratch; /* nn_kernels.inc's scratch() */
    size_t scratch_bytes;
    cudaStream_t stream;
    cublasHandle_t blas;
    char err[256];
};

#define SL_CUDA_FN(name) sl_cuda_##name
#define SL_CUDA_CTX      sl_cuda
#define SL_HAVE_CUBLAS   1

/* CUDA runtime errors map to SL_ERR_UNSUPPORTED for a missing device or driver, SL_ERR_NOMEM
 * for allocation failures, else SL_ERR_INVAL; the text keeps CUDA's own name for it. */
static int cuda_failed(sl_cuda *ctx, cudaError_t e, const char *what)
{
    if (ctx)
        snprintf(ctx->err, sizeof(ctx->err), "%s: %s (%s)", what, cudaGetErrorString(e),
                 cudaGetErrorName(e));
    if (e == cudaErrorMemoryAllocation)
        return SL_ERR_NOMEM;
    if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver)
        return SL_ERR_UNSUPPORTED;
    return SL_ERR_INVAL;
}

static int blas_failed(sl_cuda *ctx, cublasStatus_t st, const char *what)
{
    snprintf(ctx->err, sizeof(ctx->err), "%s: cuBLAS status %d", what, (int)st);
    return st == CUBLAS_STATUS_ALLOC_FAILED ? SL_ERR_NOMEM : SL_ERR_INVAL;
}

#define SL_LAUNCH(ctx, kernel, grid, block, smem, ...)                   \
    do {                                                                 \
        kernel<<<(grid), (block), (smem), (ctx)->stream>>>(__VA_ARGS__); \
        const cudaError_t e_ = cudaGetLastError();                       \
        if (e_ != cudaSuccess)                                           \
            return cuda_failed((ctx), e_, "launch of " #kernel);         \
    } while (0)

extern "C" {

int sl_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* clear the sticky "no device" so later calls start clean */
        return 0;
    }
    return n;
}

const char *sl_cuda_gemm_name(void)
{
    return "cublas";
}

int sl_cuda_open(sl_cuda **out)
{
    *out = NULL;
    sl_cuda *ctx = (sl_cuda *)sl_calloc(1, sizeof(sl_cuda));
    if (!ctx)
        return SL_ERR_NOMEM;
    cudaError_t e = cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        const int rc = cuda_failed(NULL, e, "cudaStreamCreate");
        sl_free(ctx);
        return rc;
    }
    cublasStatus_t st = cublasCreate(&ctx->blas);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasSetStream(ctx->blas, ctx->stream);
    if (st != CUBLAS_STATUS_SUCCESS) {
        if (ctx->blas)
            cublasDestroy(ctx->blas);
        cudaStreamDestroy(ctx->stream);
        sl_free(ctx);
        return SL_ERR_UNSUPPORTED;
    }
    *out = ctx;
    return 0;
}

void sl_cuda_close(sl_cuda *ctx)
{
    if (!ctx)
        return;
    cudaStreamSynchronize(ctx->stream);
    cudaFree(ctx->scratch);
    cublasDestroy(ctx->blas);
    cudaStreamDestroy(ctx->stream);
    sl_free(ctx);
}

const char *sl_cuda_errmsg(const sl_cuda *ctx)
{
    return ctx->err;
}

int sl_cuda_malloc(sl_cuda *ctx, size_t bytes, void **out)
{
    const cudaError_t e = cudaMalloc(out, bytes ? bytes : 1);
    return e == cudaSuccess ? 0 : cuda_failed(ctx, e, "cudaMalloc");
}

void sl_cuda_free(sl_cuda *ctx, void *dev)
{
    (void)ctx;
    if (dev) {
        /* cudaFree synchronises the device, so memory is never freed under a running kernel. */
        cudaFree(dev);
    }
}

int sl_cuda_upload(sl_cuda *ctx, void *dev, const void *host, size_t bytes)
{
    cudaError_t e = cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, ctx->stream);
    if (e == cudaSuccess) /* pageable host memory: wait, the caller may reuse it at once */
        e = cudaStreamSynchronize(ctx->stream);
    return e == cudaSuccess ? 0 : cuda_failed(ctx, e, "upload");
}

int sl_cuda_download(sl_cuda *ctx, void *host, const void *dev, size_t bytes)
{
    cudaError_t e = cudaMemcpyAsync(host, dev, bytes, cudaMemcpyDeviceToHost, ctx->stream);
    if (e == cudaSuccess)
        e = cudaStreamSynchronize(ctx->stream);
    return e == cudaSuccess ? 0 : cuda_failed(ctx, e, "download");
}

int sl_cuda_zero(sl_cuda *ctx, void *dev, size_t bytes)
{
    const cudaError_t e = cudaMemsetAsync(dev, 0, bytes, ctx->stream);
    return e == cudaSuccess ? 0 : cuda_failed(ctx, e, "cudaMemset");
}

int sl_cuda_sync(sl_cuda *ctx)
{
    const cudaError_t e = cudaStreamSynchronize(ctx->stream);
    return e == cudaSuccess ? 0 : cuda_failed(ctx, e, "sync");
}

int sl_cuda_copy(sl_cuda *ctx, void *dst, const void *src, size_t bytes)
{
    const cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx->stream);
    return e == cudaSuccess ? 0 : cuda_failed(ctx, e, "device copy");
}

int sl_cuda_host_alloc(sl_cuda *ctx, size_t bytes, void **out)
{
    const cudaError_t e = cudaHostAlloc(out, bytes ? bytes : 1, cudaHostAllocDefault);
    return e == cudaSuccess ? 0 : cuda_failed(ctx, e, "cudaHostAlloc");
}

void sl_cuda_host_free(sl_cuda *ctx, void *host)
{
    (void)ctx;
    if (host)
        cudaFreeHost(host);
}

} /* extern "C" */

/* y (n, out) row-major = x (n, in) w^T + b: column-major Y (out x n) = W^T X with W = w read as
 * (in x out) and X = x read as (in x n). The bias is copied into every row first (beta = 1). */
__global__ void bias_rows_kernel(const float *b, float *y, int n, int out)
{
    const int64_t g = SL_GID();
    if (g < (int64_t)n * out)
        y[g] = b[g % out];
}

static int linear_gemm_fwd(sl_cuda *ctx, const float *x, const float *w, const float *b, float *y,
                           int n, int in, int out);
static int linear_gemm_bwd(sl_cuda *ctx, const float *x, const float *w, const float *dy, float *dx,
                           float *dw, int n, int in, int out);

/* The API functions get C linkage from their declarations in sluice/nn_cuda.h. */
#include "nn_kernels.inc"

static int linear_gemm_fwd(sl_cuda *ctx, const float *x, const float *w, const float *b, float *y,
                           int n, int in, int out)
{
    const float one = 1.0f, zero = 0.0f;
    if (b)
        SL_LAUNCH(ctx, bias_rows_kernel, blocks_for((int64_t)n * out), SL_BLOCK, 0, b, y, n, out);
    const cublasStatus_t st = cublasSgemm(ctx->blas, CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &one, w,
                                          in, x, in, b ? &one : &zero, y, out);
    return st == CUBLAS_STATUS_SUCCESS ? 0 : blas_failed(ctx, st, "linear_fwd sgemm");
}

/* dw (out, in) += dy^T x: column-major DW (in x out) += X DY^T. dx (n, in) = dy w: column-major
 * DX (in x n) = W DY. */
static int linear_gemm_bwd(sl_cuda *ctx, const float *x, const float *w, const float *dy, float *dx,
                           float *dw, int n, int in, int out)
{
    const float one = 1.0f, zero = 0.0f;
    cublasStatus_t st = cublasSgemm(ctx->blas, CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, &one, x, in,
                                    dy, out, &one, dw, in);
    if (st != CUBLAS_STATUS_SUCCESS)
        return blas_failed(ctx, st, "linear_bwd sgemm (dw)");
    if (dx) {
        st = cublasSgemm(ctx->blas, CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, &one, w, in, dy, out,
                         &zero, dx, in);
        if (st != CUBLAS_STATUS_SUCCESS)
            return blas_failed(ctx, st, "linear_bwd sgemm (dx)");
    }
    return 0;
}

/* ---- the feed's streams and events (cuda_train.inc) ----------------------------------------- */

typedef cudaStream_t bk_stream;
typedef cudaEvent_t bk_event;

static int bk_stream_create(sl_cuda *ctx, bk_stream *s)
{
    const cudaError_t e = cudaStreamCreateWithFlags(s, cudaStreamNonBlocking);
    return e == cudaSuccess ? 0 : cuda_failed(ctx, e, "cudaStreamCreate (copy stream)");
}

static void bk_stream_destroy(bk_stream s)
{
    cudaStreamDestroy(s);
}

static int bk_stream_sync(sl_cuda *ctx, bk_stream s)
{
    const cudaError_t e = cudaStreamSynchronize(s);
    return e == cudaSuccess ? 0 : cuda_failed(ctx, e, "copy stream sync");
}

/* Timing off: these events only order work, and timing-disabled events are the cheap kind. */
static int bk_event_create(sl_cuda *ctx, bk_event *ev)
{
    const cudaError_t e = cudaEventCreateWithFlags(ev, cudaEventDisableTiming);
    return e == cudaSuccess ? 0 : cuda_failed(ctx, e, "cudaEventCreate");
}

static void bk_event_destroy(bk_event ev)
{
    if (ev)
        cudaEventDestroy(ev);
}

static int bk_event_sync(sl_cuda *ctx, bk_event ev)
{
    const cudaError_t e = cudaEventSynchronize(ev);
    return e == cudaSuccess ? 0 : cuda_failed(ctx, e, "cudaEventSynchronize");
}

/* Not ready yet is the only "no"; an error also answers "done" and surfaces at the sync. */
static int bk_event_done(bk_event ev)
{
    return cudaEventQuery(ev) != cudaErrorNotReady;
}

static int bk_event_record(sl_cuda *ctx, bk_event ev, bk_stream s)
{
    const cudaError_t e = cudaEventRecord(ev, s);
    return e == cudaSuccess ? 0 : cuda_failed(ctx, e, "cudaEventRecord");
}

static int bk_stream_wait(sl_cuda *ctx, bk_stream s, bk_event ev)
{
    const cudaError_t e = cudaStreamWaitEvent(s, ev, 0);
    return e == cudaSuccess ? 0 : cuda_failed(ctx, e, "cudaStreamWaitEvent");
}

static int bk_compute_wait(sl_cuda *ctx, bk_event ev)
{
    return bk_stream_wait(ctx, ctx->stream, ev);
}

static int bk_compute_record(sl_cuda *ctx, bk_event ev)
{
    return bk_event_record(ctx, ev, ctx->stream);
}

/* From page-locked memory the copy is truly asynchronous (pageable memory would be staged). */
static int bk_copy_h2d_async(sl_cuda *ctx, bk_stream s, void *dev, const void *host, size_t bytes)
{
    const cudaError_t e = cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice, s);
    return e == cudaSuccess ? 0 : cuda_failed(ctx, e, "feed copy");
}

/* The API functions get C linkage from their declarations in sluice/cuda_train.h. */
#include "cuda_train.inc"

/*
 * Matrix products for the trainer: the reference (one dot product per output value) and the
 * fast GEMM, which is OpenBLAS's cblas_sgemm when the build found OpenBLAS (SL_HAVE_OPENBLAS)
 * and otherwise a plain cache-blocked loop, so a machine without OpenBLAS (a GPU box with no
 * package registry) still builds and runs every path.
 *
 * Threading: stateless; OpenBLAS may use its own threads inside a call.
 */
#include <assert.h>
#include <stddef.h>

#include "sluice/nn.h"

#ifdef SL_HAVE_OPENBLAS
#include <cblas.h>
#endif

const char *sl_nn_gemm_name(void)
{
#ifdef SL_HAVE_OPENBLAS
    return "openblas";
#else
    return "plain";
#endif
}

void sl_nn_set_gemm_threads(int threads)
{
#ifdef SL_HAVE_OPENBLAS
    openblas_set_num_threads(threads < 1 ? 1 : threads);
#else
    (void)threads;
#endif
}

static inline float at(const float *x, int trans, int ld, int r, int c)
{
    return trans ? x[(ptrdiff_t)c * ld + r] : x[(ptrdiff_t)r * ld + c];
}

static void gemm_reference(int ta, int tb, int m, int n, int k, float alpha, const float *a,
                           int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float acc = 0.0f;
            for (int p = 0; p < k; p++)
                acc += at(a, ta, lda, i, p) * at(b, tb, ldb, p, j);
            float *cij = &c[(ptrdiff_t)i * ldc + j];
            /* beta == 0 must not read C: it may be uninitialised (BLAS semantics). */
            *cij = alpha * acc + (beta == 0.0f ? 0.0f : beta * *cij);
        }
}

#ifndef SL_HAVE_OPENBLAS
/* The fallback: C rows scaled by beta, then rank-1 updates in i-p-j order so the innermost loop
 * streams contiguous rows of B and C (vectorisable); blocks of K keep a panel of B in cache. */
static void gemm_plain(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                       const float *b, int ldb, float beta, float *c, int ldc)
{
    enum { KB = 128 };
    for (int i = 0; i < m; i++) {
        float *ci = c + (ptrdiff_t)i * ldc;
        for (int j = 0; j < n; j++)
            ci[j] = beta == 0.0f ? 0.0f : beta * ci[j];
    }
    for (int p0 = 0; p0 < k; p0 += KB) {
        const int p1 = p0 + KB < k ? p0 + KB : k;
        for (int i = 0; i < m; i++) {
            float *ci = c + (ptrdiff_t)i * ldc;
            for (int p = p0; p < p1; p++) {
                const float aip = alpha * at(a, ta, lda, i, p);
                if (!tb) {
                    const float *bp = b + (ptrdiff_t)p * ldb;
                    for (int j = 0; j < n; j++)
                        ci[j] += aip * bp[j];
                } else {
                    for (int j = 0; j < n; j++)
                        ci[j] += aip * b[(ptrdiff_t)j * ldb + p];
                }
            }
        }
    }
}
#endif

void sl_nn_gemm(sl_nn_impl impl, int trans_a, int trans_b, int m, int n, int k, float alpha,
                const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    assert(m >= 0 && n >= 0 && k >= 0);
    if (m == 0 || n == 0)
        return;
    if (impl == SL_NN_REFERENCE) {
        gemm_reference(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
#ifdef SL_HAVE_OPENBLAS
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#else
    gemm_plain(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
}

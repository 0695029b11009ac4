/* kernels/cpu/cpu_kernels.h — declarations of the CPU kernels that live in
 * their own files (kernels/cpu/cpu_*.c) and are installed in the vtable by
 * kernels/cpu/cpu_backend.c. Internal to libwb; signatures match the entries
 * of struct wb_backend (wb/backend.h), whose comments define them.
 *
 * Shape legend: B batch, C channels, G groups, HW = H·W pixels per plane,
 * rows/cols of a row-major matrix.
 */
#ifndef WB_CPU_KERNELS_H
#define WB_CPU_KERNELS_H

#include <stdint.h>

/* gemm */
/* kernels/cpu/cpu_gemm.c: every GEMM of the backend (row-major, BLAS's
 * semantics, k = 0 scales C by beta): OpenBLAS, or in the deterministic
 * mode (wb_cpu_deterministic, wb/cpu.h) a split of C fixed by the shape,
 * one-thread sgemm per piece. */
void wb_cpu_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                  const float *b, int ldb, float beta, float *c, int ldc);
/* 0, or -1 with the error set when WB_DETERMINISTIC is set to something
 * that is neither on (1, true, yes, on) nor off (0, false, no, off, empty). */
int wb_cpu_check_deterministic_env(void);
/* end gemm */

/* conv */
/* kernels/cpu/cpu_conv.c: batched GEMM, im2col/col2im, 2× up/down-sampling */
void wb_cpu_gemm_batched(int batch, int trans_a, int trans_b, int m, int n, int k, float alpha,
                         const float *a, int lda, int64_t stride_a, const float *b, int ldb,
                         int64_t stride_b, float beta, float *c, int ldc, int64_t stride_c);
void wb_cpu_im2col(const float *x, int c, int h, int w, int kh, int kw, int sh, int sw, int pad_h, int pad_w,
                   float *col);
void wb_cpu_col2im(const float *col, int c, int h, int w, int kh, int kw, int sh, int sw, int pad_h, int pad_w,
                   float *dx);
void wb_cpu_upsample2x(int64_t planes, int h, int w, const float *x, float *y);
void wb_cpu_upsample2x_bwd(int64_t planes, int h, int w, const float *dy, float *dx);
void wb_cpu_avgpool2x(int64_t planes, int h, int w, const float *x, float *y);
void wb_cpu_avgpool2x_bwd(int64_t planes, int h, int w, const float *dy, float *dx);
/* end conv */

/* conv_dnnl */
/* kernels/cpu/cpu_conv_dnnl.c: the fused (oneDNN) convolution path and the
 * per-graph context that picks it (WB_CONV); the kernels exist only when
 * built with oneDNN (WB_HAVE_DNNL). */
struct wb_conv_geom;
int wb_cpu_conv_ctx_new(void **ctx);
#ifdef WB_HAVE_DNNL
void wb_cpu_conv_ctx_free(void *ctx);
int wb_cpu_conv2d_use_fused(const void *ctx, const struct wb_conv_geom *geom);
int wb_cpu_conv2d_fwd(void *ctx, const struct wb_conv_geom *geom, const float *x, const float *w, const float *b,
                      float *y);
int wb_cpu_conv2d_bwd(void *ctx, const struct wb_conv_geom *geom, const float *x, const float *w, const float *dy,
                      float *dx, float *dw, float *db);
#endif
/* end conv_dnnl */

/* norm */
/* kernels/cpu/cpu_norm.c: group norm and row softmax */
void wb_cpu_group_norm(int b, int c, int64_t hw, int groups, const float *x, const float *gamma,
                    const float *beta, float eps, float *y, float *mean, float *rstd);
void wb_cpu_group_norm_bwd(int b, int c, int64_t hw, int groups, const float *x, const float *gamma,
                        const float *mean, const float *rstd, const float *dy, float *dx,
                        float *dgamma, float *dbeta);
void wb_cpu_softmax_rows(int64_t rows, int64_t cols, const float *x, float *y);
void wb_cpu_softmax_rows_bwd(int64_t rows, int64_t cols, const float *y, const float *dy, float *dx);
/* end norm */

/* pool */
/* kernels/cpu/cpu_pool.c: k×k max / average pooling, bilinear resizing */
void wb_cpu_maxpool2d(int64_t planes, int h, int w, int k, int stride, int pad, const float *x, float *y);
void wb_cpu_maxpool2d_bwd(int64_t planes, int h, int w, int k, int stride, int pad, const float *x,
                          const float *dy, float *dx);
void wb_cpu_avgpool2d(int64_t planes, int h, int w, int k, int stride, int pad, int count_include_pad,
                      const float *x, float *y);
void wb_cpu_avgpool2d_bwd(int64_t planes, int h, int w, int k, int stride, int pad, int count_include_pad,
                          const float *dy, float *dx);
void wb_cpu_resize_bilinear(int64_t planes, int h, int w, int ho, int wo, const float *x, float *y);
void wb_cpu_resize_bilinear_bwd(int64_t planes, int h, int w, int ho, int wo, const float *dy, float *dx);
/* end pool */

/* diffusion */
/* kernels/cpu/cpu_diffusion.c: the distillation step's kernels */
void wb_cpu_flag_nonfinite(int64_t n, const float *x, int *flag);
void wb_cpu_rng_normal(uint64_t seed, uint64_t stream, uint64_t offset, int64_t n, float *out);
void wb_cpu_rng_uniform(uint64_t seed, uint64_t stream, uint64_t offset, int64_t n, float *out);
void wb_cpu_karras_sigma(int64_t n, const float *u, float t_min, float t_max, double sigma_min, double sigma_max,
                         double rho, float *sigma);
void wb_cpu_dmd_weight(int64_t rows, int64_t cols, const float *x0, const float *d, const float *sigma, float *w);
void wb_cpu_dmd_weight_bwd(int64_t rows, int64_t cols, const float *x0, const float *d, const float *sigma,
                           const float *dw, float *dx0, float *dd, float *dsigma);
/* end diffusion */

#endif

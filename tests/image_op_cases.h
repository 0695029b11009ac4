/* tests/image_op_cases.h — the case table and harness shared by the image-op
 * tests (test_ops_conv.c: conv2d, up/down-sampling, bmm; test_ops_pool.c:
 * pooling, resizing, conv2d_ex): a case is an op name, its inputs' shapes
 * and up to four integer parameters; each test file supplies its table and
 * the function that builds the op, and gets from here the fixed inputs, the
 * seeded forward + backward, the finite-difference check and the
 * comparison with a torch script (tests/torch_exchange.py's
 * run_image_cases; manifest lines "case NAME OP N_IN P0 P1 P2 P3").
 *
 * Inputs are N(0, 1) (or rounded to {-1, 0, 1} for a case with ties) and the
 * loss is L = Σ w ⊙ op(inputs) with weights ±U[0.5, 1.5], all from Philox
 * streams fixed by (suite seed, case index), so every run and both checks
 * see the same numbers.
 *
 * Shape legend: inputs up to 4-D, x (B, C, H, W) for the image ops.
 */
#ifndef WB_TEST_IMAGE_OP_CASES_H
#define WB_TEST_IMAGE_OP_CASES_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wb/tensor.h"
#include "wb_test_util.h"

#define IMG_MAX_IN 3

typedef struct img_input {
    int ndim;
    int64_t shape[4];
} img_input;

/* How a case is checked against finite differences. */
enum {
    IMG_FD_NONE = 0,  /* torch only: too big, or ties at every window   */
    IMG_FD_LINEAR,    /* linear in each input: step 0.5, no truncation  */
    IMG_FD_PIECEWISE, /* max pooling: step 1e-3, inside every gap       */
};

typedef struct img_case {
    const char *name; /* unique: keys the torch script's tensors */
    const char *op;   /* the key the torch script dispatches on */
    int n_in;
    img_input in[IMG_MAX_IN];
    int p[4];         /* op parameters (each test file documents its own) */
    int fd;           /* IMG_FD_* */
    int ties;         /* inputs rounded to {-1, 0, 1}: many equal maxima */
} img_case;

typedef wb_tensor *(*img_run_fn)(wb_graph *g, const img_case *c, wb_tensor **x);

typedef struct img_suite {
    const img_case *cases;
    int n;
    img_run_fn run;
    uint64_t seed; /* Philox key base: case ci uses seed + ci */
} img_suite;

#define IMG_X4(a, b, c, d) {4, {a, b, c, d}}
#define IMG_X3(a, b, c) {3, {a, b, c}}
#define IMG_X1(a) {1, {a}}

static inline int64_t img_numel(const img_input *in) {
    int64_t n = 1;
    for (int d = 0; d < in->ndim; d++) n *= in->shape[d];
    return n;
}

static inline float *img_make_input(const img_suite *s, int ci, int k) {
    int64_t n = img_numel(&s->cases[ci].in[k]);
    float *h = malloc((size_t)(n ? n : 1) * sizeof *h);
    assert_non_null(h);
    wb_rng rng;
    wb_rng_init(&rng, s->seed + (uint64_t)ci, (uint64_t)k);
    wb_rng_normal(&rng, h, n);
    if (s->cases[ci].ties)
        for (int64_t i = 0; i < n; i++) h[i] = h[i] > 0.5f ? 1.0f : h[i] < -0.5f ? -1.0f : 0.0f;
    return h;
}

static inline float *img_make_weights(const img_suite *s, int ci, int64_t n) {
    float *w = malloc((size_t)(n ? n : 1) * sizeof *w);
    assert_non_null(w);
    wb_rng rng;
    wb_rng_init(&rng, s->seed + (uint64_t)ci, 99);
    wb_rng_uniform(&rng, w, n);
    for (int64_t i = 0; i < n; i++) {
        float u = w[i], mag = 0.5f + fmodf(u * 2.0f, 1.0f);
        w[i] = u < 0.5f ? -mag : mag;
    }
    return w;
}

/* Forward + seeded backward (d(Σ w ⊙ y)/dx) of case ci; returns y, the
 * leaves in x and the loss weights in *w (the caller frees *w). */
static inline wb_tensor *img_forward_backward(const img_suite *s, wb_graph *g, int ci, float **host, wb_tensor **x,
                                              float **w) {
    const img_case *c = &s->cases[ci];
    for (int k = 0; k < c->n_in; k++) {
        x[k] = wb_leaf(g, c->in[k].ndim, c->in[k].shape, host[k], 1);
        assert_non_null(x[k]);
    }
    wb_tensor *y = s->run(g, c, x);
    if (!y) fail_msg("%s: forward failed: %s", c->name, wb_last_error());
    *w = img_make_weights(s, ci, y->numel);
    wb_tensor *seed = wb_from_host(g, y->ndim, y->shape, *w);
    if (wb_backward(g, y, seed)) fail_msg("%s: backward: %s", c->name, wb_last_error());
    return y;
}

static inline double img_loss_of(const img_suite *s, wb_graph *g, int ci, float **host, const float *w) {
    const img_case *c = &s->cases[ci];
    wb_graph_reset(g);
    wb_tensor *x[IMG_MAX_IN] = {0};
    for (int k = 0; k < c->n_in; k++) x[k] = wb_leaf(g, c->in[k].ndim, c->in[k].shape, host[k], 0);
    wb_tensor *y = s->run(g, c, x);
    if (!y) fail_msg("%s: forward failed: %s", c->name, wb_last_error());
    return wb_test_weighted_sum(y, w);
}

/* Central differences of L for every input element of every case with an
 * FD mode: |analytic − FD| / max(1, max|FD|) ≤ tol, failing with the case,
 * input and index. Returns the number of cases checked; the worst error and
 * its case go to *worst / *worst_name. */
static inline int img_check_finite_differences(const img_suite *s, double tol, double *worst, const char **worst_name) {
    int n_fd = 0;
    *worst = 0.0;
    *worst_name = "-";
    for (int ci = 0; ci < s->n; ci++) {
        const img_case *c = &s->cases[ci];
        if (c->fd == IMG_FD_NONE) continue;
        n_fd++;
        /* Linear ops: a large step has no truncation error and keeps the
         * float round-off of L (~1e-6) small after ÷2h. Max pooling: a step
         * well inside the gap between each window's two largest inputs. */
        float step = c->fd == IMG_FD_LINEAR ? 0.5f : 1e-3f;
        wb_graph *g = wb_graph_new(wb_backend_cpu()), *gfd = wb_graph_new(wb_backend_cpu());
        assert_non_null(g);
        assert_non_null(gfd);
        wb_graph_set_grad(gfd, 0);
        float *host[IMG_MAX_IN] = {0}, *w = NULL;
        wb_tensor *x[IMG_MAX_IN] = {0};
        for (int k = 0; k < c->n_in; k++) host[k] = img_make_input(s, ci, k);
        img_forward_backward(s, g, ci, host, x, &w);
        for (int k = 0; k < c->n_in; k++) {
            int64_t n = img_numel(&c->in[k]);
            float *ga = malloc((size_t)(n ? n : 1) * sizeof *ga);
            double *fd = malloc((size_t)(n ? n : 1) * sizeof *fd);
            assert_non_null(ga);
            assert_non_null(fd);
            assert_int_equal(wb_grad_to_host(x[k], ga), 0);
            double gmax = 1.0;
            for (int64_t i = 0; i < n; i++) {
                float x0 = host[k][i];
                host[k][i] = x0 + step;
                double lp = img_loss_of(s, gfd, ci, host, w);
                host[k][i] = x0 - step;
                double lm = img_loss_of(s, gfd, ci, host, w);
                host[k][i] = x0;
                fd[i] = (lp - lm) / (2.0 * step);
                if (fabs(fd[i]) > gmax) gmax = fabs(fd[i]);
            }
            for (int64_t i = 0; i < n; i++) {
                double e = fabs(ga[i] - fd[i]) / gmax;
                if (e > tol)
                    fail_msg("%s: d/d input %d [%lld]: analytic %.7g, finite differences %.7g", c->name, k,
                             (long long)i, (double)ga[i], fd[i]);
                if (e > *worst) {
                    *worst = e;
                    *worst_name = c->name;
                }
            }
            free(ga);
            free(fd);
        }
        for (int k = 0; k < c->n_in; k++) free(host[k]);
        free(w);
        wb_graph_free(g);
        wb_graph_free(gfd);
    }
    return n_fd;
}

/* ---- torch ---------------------------------------------------------------------- */
/* Errors the script reported, per case: out, grad0, ...; NaN until reported.
 * One suite per test file, so these file-statics are the running check's. */
#define IMG_MAX_CASES 64
static const img_suite *img_torch_suite;
static double img_torch_err[IMG_MAX_CASES][1 + IMG_MAX_IN];
static char img_torch_dir[64]; /* the exchange folder; img_torch_cleanup removes it */

/* For main(): a failed assertion longjmps past img_check_torch's cleanup. */
static inline void img_torch_cleanup(void) { wb_torch_remove_dir(img_torch_dir); }

/* Where the script's "RESULT NAME WHAT ERR" goes: out, grad<k>. */
static inline double *img_torch_slot(const char *name, const char *what) {
    const img_suite *s = img_torch_suite;
    int ci = 0, k = -1;
    while (ci < s->n && strcmp(s->cases[ci].name, name) != 0) ci++;
    if (strcmp(what, "out") == 0) k = 0;
    else if (sscanf(what, "grad%d", &k) == 1 && k >= 0 && ci < s->n && k < s->cases[ci].n_in) k++;
    else k = -1;
    if (ci == s->n || k < 0) return NULL;
    return &img_torch_err[ci][k];
}

/* Every case's output and input gradients against tests/<script> (skipped
 * without torch): each relative error ≤ tol and none missing. Returns the
 * worst error and its case. */
static inline void img_check_torch(const img_suite *s, const char *script, const char *dir_template, double tol,
                                   double *worst, const char **worst_name) {
    assert_true(s->n <= IMG_MAX_CASES);
    wb_torch_skip_without_python();
    FILE *tf, *mf;
    wb_torch_open(img_torch_dir, sizeof img_torch_dir, dir_template, &tf, &mf);
    char key[160];
    for (int ci = 0; ci < s->n; ci++) {
        const img_case *c = &s->cases[ci];
        wb_graph *g = wb_graph_new(wb_backend_cpu());
        float *host[IMG_MAX_IN] = {0}, *w = NULL;
        wb_tensor *x[IMG_MAX_IN] = {0};
        for (int k = 0; k < c->n_in; k++) host[k] = img_make_input(s, ci, k);
        wb_tensor *y = img_forward_backward(s, g, ci, host, x, &w);
        for (int k = 0; k < c->n_in; k++) {
            snprintf(key, sizeof key, "%s/in%d", c->name, k);
            wb_test_write_tensor(tf, key, c->in[k].ndim, c->in[k].shape, host[k]);
            snprintf(key, sizeof key, "%s/grad%d", c->name, k);
            wb_test_write_tensor_t(tf, key, x[k], 1);
            free(host[k]);
        }
        snprintf(key, sizeof key, "%s/w", c->name);
        wb_test_write_tensor(tf, key, y->ndim, y->shape, w);
        snprintf(key, sizeof key, "%s/out", c->name);
        wb_test_write_tensor_t(tf, key, y, 0);
        fprintf(mf, "case %s %s %d %d %d %d %d\n", c->name, c->op, c->n_in, c->p[0], c->p[1], c->p[2], c->p[3]);
        free(w);
        wb_graph_free(g);
        for (int k = 0; k <= IMG_MAX_IN; k++) img_torch_err[ci][k] = NAN;
    }
    wb_torch_close(tf, mf);

    img_torch_suite = s;
    wb_torch_run(script, img_torch_dir, img_torch_slot);
    *worst = 0.0;
    *worst_name = "-";
    for (int ci = 0; ci < s->n; ci++)
        for (int k = 0; k <= s->cases[ci].n_in; k++) {
            double e = img_torch_err[ci][k];
            if (isnan(e)) fail_msg("%s: %s was not compared", s->cases[ci].name, k ? "a gradient" : "the output");
            if (!(e <= tol))
                fail_msg("%s: %s%.0d differs from torch: rel. error %.3g > %.1g", s->cases[ci].name,
                         k ? "gradient of input " : "output", k ? k - 1 : 0, e, tol);
            if (e > *worst) {
                *worst = e;
                *worst_name = s->cases[ci].name;
            }
        }
    img_torch_cleanup();
}

/* ---- conv cases (tests/test_ops_conv.c; also tests/test_backend_ops.c) ---- */
/* p: conv2d stride, pad; bmm trans_a, trans_b. conv2d: n_in 2 = no bias,
 * 3 = with bias. fd: IMG_FD_NONE for cases too big for finite differences. */
static const img_case IMG_CONV_CASES[] = {
    {"conv_3x3_p1", "conv2d", 3, {IMG_X4(2, 3, 5, 6), IMG_X4(4, 3, 3, 3), IMG_X1(4)}, {1, 1}, IMG_FD_LINEAR, 0},
    {"conv_1x1", "conv2d", 3, {IMG_X4(2, 4, 3, 5), IMG_X4(3, 4, 1, 1), IMG_X1(3)}, {1, 0}, IMG_FD_LINEAR, 0},   /* pointwise path */
    {"conv_1x1_s2", "conv2d", 2, {IMG_X4(1, 2, 5, 5), IMG_X4(3, 2, 1, 1)}, {2, 0}, IMG_FD_LINEAR, 0},       /* 1×1 through im2col */
    {"conv_3x3_s2", "conv2d", 3, {IMG_X4(2, 3, 7, 6), IMG_X4(5, 3, 3, 3), IMG_X1(5)}, {2, 1}, IMG_FD_LINEAR, 0},
    {"conv_2x4_s2_p2", "conv2d", 3, {IMG_X4(1, 2, 6, 9), IMG_X4(3, 2, 2, 4), IMG_X1(3)}, {2, 2}, IMG_FD_LINEAR, 0}, /* rows of pure padding */
    {"conv_5x5_nobias", "conv2d", 2, {IMG_X4(3, 2, 8, 8), IMG_X4(2, 2, 5, 5)}, {1, 2}, IMG_FD_LINEAR, 0},
    {"conv_3x1_s3", "conv2d", 2, {IMG_X4(2, 3, 7, 5), IMG_X4(2, 3, 3, 1)}, {3, 0}, IMG_FD_LINEAR, 0},     /* stride > kernel width */
    {"conv_big", "conv2d", 3, {IMG_X4(4, 8, 16, 16), IMG_X4(16, 8, 3, 3), IMG_X1(16)}, {1, 1}, IMG_FD_NONE, 0},
    {"upsample", "upsample2x", 1, {IMG_X4(2, 3, 3, 4)}, {0, 0}, IMG_FD_LINEAR, 0},
    {"avgpool", "avgpool2x", 1, {IMG_X4(2, 3, 4, 6)}, {0, 0}, IMG_FD_LINEAR, 0},
    {"bmm_nn", "bmm", 2, {IMG_X3(3, 4, 5), IMG_X3(3, 5, 2)}, {0, 0}, IMG_FD_LINEAR, 0},
    {"bmm_tn", "bmm", 2, {IMG_X3(3, 5, 4), IMG_X3(3, 5, 2)}, {1, 0}, IMG_FD_LINEAR, 0},
    {"bmm_nt", "bmm", 2, {IMG_X3(3, 4, 5), IMG_X3(3, 2, 5)}, {0, 1}, IMG_FD_LINEAR, 0},
    {"bmm_tt", "bmm", 2, {IMG_X3(3, 5, 4), IMG_X3(3, 2, 5)}, {1, 1}, IMG_FD_LINEAR, 0},
};

#define IMG_CONV_N_CASES ((int)(sizeof IMG_CONV_CASES / sizeof IMG_CONV_CASES[0]))
#define IMG_CONV_SEED 0xc0de0000u

static inline wb_tensor *img_conv_run(wb_graph *g, const img_case *c, wb_tensor **x) {
    if (strcmp(c->op, "conv2d") == 0) return wb_conv2d(g, x[0], x[1], c->n_in > 2 ? x[2] : NULL, c->p[0], c->p[1]);
    if (strcmp(c->op, "upsample2x") == 0) return wb_upsample2x(g, x[0]);
    if (strcmp(c->op, "avgpool2x") == 0) return wb_avgpool2x(g, x[0]);
    return wb_bmm(g, x[0], x[1], c->p[0], c->p[1]);
}

/* ---- pool cases (tests/test_ops_pool.c; also tests/test_backend_ops.c) ---- */
/* p: maxpool2d k, stride, pad; avgpool2d k, stride, pad, count_include_pad;
 * resize_bilinear out_h, out_w; conv2d_ex stride_h, stride_w, pad_h, pad_w
 * (n_in 2 = no bias, 3 = with bias). fd: IMG_FD_NONE for torch only (too
 * big, or ties). */
static const img_case IMG_POOL_CASES[] = {
    {"max_k3_s2", "maxpool2d", 1, {IMG_X4(2, 3, 7, 7)}, {3, 2, 0, 0}, IMG_FD_PIECEWISE, 0},   /* stem, blocks B and D */
    {"max_k3_s1_p1", "maxpool2d", 1, {IMG_X4(2, 2, 5, 6)}, {3, 1, 1, 0}, IMG_FD_PIECEWISE, 0}, /* Mixed_7c's pool branch */
    {"max_k2_s2_p1", "maxpool2d", 1, {IMG_X4(1, 2, 5, 5)}, {2, 2, 1, 0}, IMG_FD_PIECEWISE, 0}, /* floor with padding */
    {"max_k3_s2_even", "maxpool2d", 1, {IMG_X4(1, 2, 8, 6)}, {3, 2, 0, 0}, IMG_FD_PIECEWISE, 0}, /* last row/col unused */
    {"max_ties", "maxpool2d", 1, {IMG_X4(2, 2, 6, 6)}, {3, 1, 1, 0}, IMG_FD_NONE, 1},
    {"avg_k3_s1_p1_excl", "avgpool2d", 1, {IMG_X4(2, 3, 5, 6)}, {3, 1, 1, 0}, IMG_FD_LINEAR, 0}, /* the FID blocks */
    {"avg_k3_s1_p1_incl", "avgpool2d", 1, {IMG_X4(2, 3, 5, 6)}, {3, 1, 1, 1}, IMG_FD_LINEAR, 0}, /* torchvision's */
    {"avg_k3_s2_p1_excl", "avgpool2d", 1, {IMG_X4(1, 2, 7, 8)}, {3, 2, 1, 0}, IMG_FD_LINEAR, 0},
    {"avg_k2_s2", "avgpool2d", 1, {IMG_X4(2, 2, 4, 6)}, {2, 2, 0, 1}, IMG_FD_LINEAR, 0},
    {"avg_k4_s3_p2_excl", "avgpool2d", 1, {IMG_X4(1, 2, 9, 7)}, {4, 3, 2, 0}, IMG_FD_LINEAR, 0},
    {"avg_k4_s3_p2_incl", "avgpool2d", 1, {IMG_X4(1, 2, 9, 7)}, {4, 3, 2, 1}, IMG_FD_LINEAR, 0},
    {"resize_up", "resize_bilinear", 1, {IMG_X4(2, 3, 5, 7)}, {11, 13, 0, 0}, IMG_FD_LINEAR, 0},
    {"resize_down", "resize_bilinear", 1, {IMG_X4(1, 2, 9, 8)}, {4, 3, 0, 0}, IMG_FD_LINEAR, 0},
    {"resize_mixed", "resize_bilinear", 1, {IMG_X4(1, 2, 6, 5)}, {4, 9, 0, 0}, IMG_FD_LINEAR, 0},
    {"resize_same", "resize_bilinear", 1, {IMG_X4(1, 1, 4, 4)}, {4, 4, 0, 0}, IMG_FD_LINEAR, 0},
    {"resize_from_1", "resize_bilinear", 1, {IMG_X4(1, 1, 1, 3)}, {3, 5, 0, 0}, IMG_FD_LINEAR, 0},
    {"resize_32_299", "resize_bilinear", 1, {IMG_X4(1, 2, 32, 32)}, {299, 299, 0, 0}, IMG_FD_NONE, 0}, /* FID input */
    {"conv_1x7_p03", "conv2d_ex", 3, {IMG_X4(2, 3, 6, 9), IMG_X4(4, 3, 1, 7), IMG_X1(4)}, {1, 1, 0, 3}, IMG_FD_LINEAR, 0},
    {"conv_7x1_p30", "conv2d_ex", 2, {IMG_X4(1, 3, 9, 6), IMG_X4(2, 3, 7, 1)}, {1, 1, 3, 0}, IMG_FD_LINEAR, 0},
    {"conv_1x3_p01", "conv2d_ex", 3, {IMG_X4(2, 2, 5, 5), IMG_X4(3, 2, 1, 3), IMG_X1(3)}, {1, 1, 0, 1}, IMG_FD_LINEAR, 0},
    {"conv_3x1_p10", "conv2d_ex", 3, {IMG_X4(2, 2, 5, 5), IMG_X4(3, 2, 3, 1), IMG_X1(3)}, {1, 1, 1, 0}, IMG_FD_LINEAR, 0},
    {"conv_3x3_s21_p12", "conv2d_ex", 3, {IMG_X4(1, 2, 7, 6), IMG_X4(3, 2, 3, 3), IMG_X1(3)}, {2, 1, 1, 2}, IMG_FD_LINEAR, 0},
    {"conv_1x1_s12", "conv2d_ex", 2, {IMG_X4(1, 2, 5, 6), IMG_X4(2, 2, 1, 1)}, {1, 2, 0, 0}, IMG_FD_LINEAR, 0},
};

#define IMG_POOL_N_CASES ((int)(sizeof IMG_POOL_CASES / sizeof IMG_POOL_CASES[0]))
#define IMG_POOL_SEED 0x9001000u

static inline wb_tensor *img_pool_run(wb_graph *g, const img_case *c, wb_tensor **x) {
    const int *p = c->p;
    if (strcmp(c->op, "maxpool2d") == 0) return wb_maxpool2d(g, x[0], p[0], p[1], p[2]);
    if (strcmp(c->op, "avgpool2d") == 0) return wb_avgpool2d(g, x[0], p[0], p[1], p[2], p[3]);
    if (strcmp(c->op, "resize_bilinear") == 0) return wb_resize_bilinear(g, x[0], p[0], p[1]);
    return wb_conv2d_ex(g, x[0], x[1], c->n_in > 2 ? x[2] : NULL, p[0], p[1], p[2], p[3]);
}

#endif

/* tests/test_unet.c — the `unet` net plugin (EDM DDPM++ family): output and
 * feature shapes for 1- and 3-channel 32×32 images, the untrained denoiser
 * D = c_skip·x, gradients reaching every parameter, a finite-difference
 * check of ∂Σ(r⊙F)/∂x through attention and both resampling directions,
 * the encoder_only classifier, Fourier and label embeddings, the
 * cifar10-ddpmpp preset's parameter count against EDM, and errors for bad
 * resolutions.
 *
 * Shapes: x (B, C, H, W), c_noise and σ (B), F and D (B, C, H, W),
 * classifier logit (B, 1, 1, 1).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "engine/engine.h"

typedef struct fixture {
    wb_registry *reg;
    const wb_plugin_desc *unet;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    f->reg = wb_registry_new();
    wb_registry_load_dir(f->reg, WB_TEST_PLUGIN_DIR);
    const wb_plugin_info *info = wb_registry_find(f->reg, WB_KIND_NET, "unet");
    if (!info) return -1;
    f->unet = info->desc;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    wb_registry_free(f->reg);
    free(f);
    return 0;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A net from a preset (or "custom" with the caller's edits in cfg). */
static wb_net *make_net(fixture *f, wb_config_owned *cfg, int c, int h, int out_c, int label_dim, uint64_t seed) {
    wb_netspec spec = {f->unet, cfg};
    wb_net_shape shape = {c, h, h, out_c, label_dim};
    wb_rng rng;
    wb_rng_init(&rng, seed, 0);
    return wb_net_new(&spec, &shape, wb_backend_cpu(), &rng);
}

static wb_net *make_preset(fixture *f, const char *preset, int c, int h, int out_c) {
    wb_config_owned *cfg = wb_config_new(f->unet);
    assert_int_equal(wb_config_set_string(cfg, "preset", preset), 0);
    wb_net *net = make_net(f, cfg, c, h, out_c, 0, 1);
    wb_config_free(cfg);
    return net;
}

static void fill_random(float *p, int64_t n, uint64_t seed, float scale) {
    wb_rng rng;
    wb_rng_init(&rng, seed, 7);
    wb_rng_normal(&rng, p, n);
    for (int64_t i = 0; i < n; i++) p[i] *= scale;
}

/* Replace the near-zero initialisations (zero output conv, 1e-5 conv1 and
 * attention proj) by O(1) values, so every path carries signal. */
static void randomize_small_weights(wb_net *net, uint64_t seed) {
    for (int i = 0; i < wb_params_count(net->params); i++) {
        wb_tensor *t = wb_params_at(net->params, i);
        const char *n = t->name;
        size_t len = strlen(n);
        int small = (len > 12 && strcmp(n + len - 12, "conv1.weight") == 0) ||
                    (len > 11 && strcmp(n + len - 11, "proj.weight") == 0) ||
                    (len > 15 && strcmp(n + len - 15, "aux_conv.weight") == 0);
        if (small) fill_random(t->data, t->numel, seed + (uint64_t)i, 0.3f / sqrtf((float)(t->numel / t->shape[0])));
    }
}

/* Σ numel over the tensors: wb_params_numel also counts the flat buffer's
 * alignment padding. */
static int64_t count_params(wb_params *ps) {
    int64_t n = 0;
    for (int i = 0; i < wb_params_count(ps); i++) n += wb_params_at(ps, i)->numel;
    return n;
}

static void check_shape(const wb_tensor *t, int64_t a, int64_t b, int64_t c, int64_t d) {
    assert_non_null(t);
    assert_int_equal(t->ndim, 4);
    assert_int_equal(t->shape[0], a);
    assert_int_equal(t->shape[1], b);
    assert_int_equal(t->shape[2], c);
    assert_int_equal(t->shape[3], d);
}

/* Tiny preset (32 channels, mult 1,2,2, one block, attention at 16):
 * F keeps x's shape and the features are the per-level encoder outputs. */
static void test_tiny_shapes_and_features(void **state) {
    fixture *f = *state;
    for (int c = 1; c <= 3; c += 2) {
        wb_net *net = make_preset(f, "tiny", c, 32, c);
        assert_non_null(net);
        wb_graph *g = wb_graph_new(wb_backend_cpu());
        int64_t xs[4] = {2, c, 32, 32}, b = 2;
        float *x = malloc(sizeof(float) * 2 * c * 32 * 32), cn[2] = {-0.5f, 0.7f};
        fill_random(x, 2 * c * 32 * 32, 3, 1.0f);
        wb_features feats = {0};
        double t0 = now();
        wb_tensor *y = wb_net_forward(net, g, wb_from_host(g, 4, xs, x), wb_from_host(g, 1, &b, cn), NULL, &feats);
        double t1 = now();
        check_shape(y, 2, c, 32, 32);
        assert_int_equal(feats.n, 4);
        check_shape(wb_features_get(&feats, "enc32"), 2, 32, 32, 32);
        check_shape(wb_features_get(&feats, "enc16"), 2, 64, 16, 16);
        check_shape(wb_features_get(&feats, "enc8"), 2, 64, 8, 8);
        check_shape(wb_features_get(&feats, "mid"), 2, 64, 8, 8);
        print_message("unet tiny C=%d: %lld params, forward (2,%d,32,32) %.3f s\n", c,
                      (long long)count_params(net->params), c, t1 - t0);
        free(x);
        wb_graph_free(g);
        wb_net_free(net);
    }
}

/* The output conv starts at exactly zero, so D(x, σ) = c_skip(σ)·x. */
static void test_untrained_denoiser_is_c_skip_x(void **state) {
    fixture *f = *state;
    wb_net *net = make_preset(f, "tiny", 3, 32, 3);
    assert_non_null(net);
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    int64_t xs[4] = {2, 3, 32, 32}, b = 2, n = 2 * 3 * 32 * 32;
    float *x = malloc(sizeof(float) * (size_t)n), *d = malloc(sizeof(float) * (size_t)n), sigma[2] = {0.05f, 20.0f};
    fill_random(x, n, 4, 1.0f);
    wb_tensor *out = wb_net_denoise(net, g, wb_from_host(g, 4, xs, x), wb_from_host(g, 1, &b, sigma), NULL, NULL);
    assert_non_null(out);
    wb_to_host(out, d);
    for (int64_t i = 0; i < n; i++) {
        float s = sigma[i / (n / 2)], c_skip = 0.25f / (s * s + 0.25f);
        assert_float_equal(d[i], c_skip * x[i], 1e-6 * (1.0 + fabs(x[i])));
    }
    free(x);
    free(d);
    wb_graph_free(g);
    wb_net_free(net);
}

/* Backward from Σ r⊙F with an O(1) output conv: every gradient is finite
 * and nearly every parameter gets a non-zero one; one Adam step changes
 * the output. */
static void test_backward_reaches_every_parameter(void **state) {
    fixture *f = *state;
    wb_config_owned *cfg = wb_config_new(f->unet);
    assert_int_equal(wb_config_set_string(cfg, "preset", "tiny"), 0);
    assert_int_equal(wb_config_set_number(cfg, "dropout", 0.1), 0);
    wb_net *net = make_net(f, cfg, 3, 32, 3, 0, 5);
    wb_config_free(cfg);
    assert_non_null(net);
    randomize_small_weights(net, 11);
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    int64_t xs[4] = {2, 3, 32, 32}, b = 2, n = 2 * 3 * 32 * 32;
    float *x = malloc(sizeof(float) * (size_t)n), *r = malloc(sizeof(float) * (size_t)n), cn[2] = {-1.0f, 0.3f};
    fill_random(x, n, 6, 1.0f);
    fill_random(r, n, 8, 1.0f);
    wb_params_zero_grad(net->params);
    double t0 = now();
    wb_tensor *y = wb_net_forward(net, g, wb_from_host(g, 4, xs, x), wb_from_host(g, 1, &b, cn), NULL, NULL);
    double t1 = now();
    wb_tensor *loss = wb_sum(g, wb_mul(g, y, wb_from_host(g, 4, xs, r)));
    assert_non_null(loss);
    assert_int_equal(wb_backward(g, loss, NULL), 0);
    double t2 = now();
    print_message("unet tiny: forward (2,3,32,32) %.3f s, backward %.3f s\n", t1 - t0, t2 - t1);
    assert_true(wb_params_all_finite(net->params));
    int zero = 0, count = wb_params_count(net->params);
    for (int i = 0; i < count; i++) {
        wb_tensor *t = wb_params_at(net->params, i);
        double s = 0;
        for (int64_t j = 0; j < t->numel; j++) {
            assert_true(isfinite(t->grad[j]));
            s += fabs(t->grad[j]);
        }
        if (s == 0) {
            zero++;
            print_message("zero gradient: %s\n", t->name);
        }
    }
    assert_int_equal(zero, 0);
    /* one optimiser step moves the output */
    float before = y->data[0];
    wb_adam *opt = wb_adam_new(net->params, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 0);
    assert_int_equal(wb_adam_step(opt), 0);
    wb_adam_free(opt);
    wb_graph_reset(g);
    wb_graph_set_grad(g, 0);
    y = wb_net_forward(net, g, wb_from_host(g, 4, xs, x), wb_from_host(g, 1, &b, cn), NULL, NULL);
    assert_non_null(y);
    assert_true(y->data[0] != before);
    free(x);
    free(r);
    wb_graph_free(g);
    wb_net_free(net);
}

/* ∂Σ(r⊙F)/∂x from the tape against central differences, on a small custom
 * net (8 channels, mult 1,2, attention at 8) with O(1) weights everywhere.
 * Float32 forward passes: h = 1e-2 and a 3% tolerance. */
static void test_input_gradient_finite_difference(void **state) {
    fixture *f = *state;
    wb_config_owned *cfg = wb_config_new(f->unet);
    int64_t mult[2] = {1, 2}, attn[1] = {8};
    assert_int_equal(wb_config_set_number(cfg, "channels", 8), 0);
    assert_int_equal(wb_config_set_ints(cfg, "multipliers", mult, 2), 0);
    assert_int_equal(wb_config_set_ints(cfg, "attn_resolutions", attn, 1), 0);
    assert_int_equal(wb_config_set_number(cfg, "emb_mult", 2), 0);
    wb_net *net = make_net(f, cfg, 2, 16, 2, 0, 9);
    wb_config_free(cfg);
    assert_non_null(net);
    randomize_small_weights(net, 21);
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    int64_t xs[4] = {1, 2, 16, 16}, b = 1, n = 2 * 16 * 16;
    float x[512], r[512], grad[512], cn[1] = {0.2f};
    fill_random(x, n, 12, 1.0f);
    fill_random(r, n, 13, 1.0f);
    wb_tensor *xt = wb_leaf(g, 4, xs, x, 1);
    wb_tensor *loss = wb_sum(g, wb_mul(g, wb_net_forward(net, g, xt, wb_from_host(g, 1, &b, cn), NULL, NULL),
                                       wb_from_host(g, 4, xs, r)));
    assert_non_null(loss);
    assert_int_equal(wb_backward(g, loss, NULL), 0);
    wb_grad_to_host(xt, grad);
    wb_graph_reset(g);
    wb_graph_set_grad(g, 0);
    const int64_t coords[] = {0, 17, 100, 255, 256 + 37, 256 + 200, 511};
    for (size_t k = 0; k < sizeof coords / sizeof coords[0]; k++) {
        int64_t i = coords[k];
        const float h = 1e-2f;
        double val[2];
        for (int s = 0; s < 2; s++) {
            float xp[512];
            memcpy(xp, x, sizeof xp);
            xp[i] += s ? -h : h;
            wb_tensor *l = wb_sum(g, wb_mul(g, wb_net_forward(net, g, wb_from_host(g, 4, xs, xp),
                                                              wb_from_host(g, 1, &b, cn), NULL, NULL),
                                            wb_from_host(g, 4, xs, r)));
            assert_non_null(l);
            val[s] = l->data[0];
            wb_graph_reset(g);
        }
        double fd = (val[0] - val[1]) / (2.0 * h);
        if (fabs(fd - grad[i]) > 0.03 * fabs(fd) + 2e-3)
            fail_msg("d/dx[%lld]: tape %g, finite difference %g", (long long)i, (double)grad[i], fd);
    }
    wb_graph_free(g);
    wb_net_free(net);
}

/* encoder_only: a (B, 1, 1, 1) logit, differentiable in x (for ∇_x l). */
static void test_encoder_only_classifier(void **state) {
    fixture *f = *state;
    wb_config_owned *cfg = wb_config_new(f->unet);
    assert_int_equal(wb_config_set_string(cfg, "preset", "tiny"), 0);
    assert_int_equal(wb_config_set_number(cfg, "encoder_only", 1), 0);
    wb_net *net = make_net(f, cfg, 3, 32, 1, 0, 2);
    wb_config_free(cfg);
    assert_non_null(net);
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    int64_t xs[4] = {3, 3, 32, 32}, b = 3, n = 3 * 3 * 32 * 32;
    float *x = malloc(sizeof(float) * (size_t)n), *gx = malloc(sizeof(float) * (size_t)n), cn[3] = {0, 1, -1};
    fill_random(x, n, 14, 1.0f);
    wb_tensor *xt = wb_leaf(g, 4, xs, x, 1);
    wb_features feats = {0};
    wb_tensor *y = wb_net_forward(net, g, xt, wb_from_host(g, 1, &b, cn), NULL, &feats);
    check_shape(y, 3, 1, 1, 1);
    check_shape(wb_features_get(&feats, "mid"), 3, 64, 8, 8);
    assert_int_equal(wb_backward(g, wb_sum(g, y), NULL), 0);
    wb_grad_to_host(xt, gx);
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += fabs(gx[i]);
    assert_true(s > 0 && isfinite(s));
    /* no decoder parameters in a classifier */
    assert_null(wb_params_find(net->params, "dec32.aux_conv.weight"));
    free(x);
    free(gx);
    wb_graph_free(g);
    wb_net_free(net);
}

/* Fourier embedding: runs, and its frequencies stay frozen (zero grad);
 * class labels: a label_dim net takes (B, L) one-hots and they matter. */
static void test_fourier_and_labels(void **state) {
    fixture *f = *state;
    wb_config_owned *cfg = wb_config_new(f->unet);
    int64_t mult[2] = {1, 1}, attn[1] = {0};
    assert_int_equal(wb_config_set_number(cfg, "channels", 8), 0);
    assert_int_equal(wb_config_set_ints(cfg, "multipliers", mult, 2), 0);
    assert_int_equal(wb_config_set_ints(cfg, "attn_resolutions", attn, 1), 0);
    assert_int_equal(wb_config_set_string(cfg, "embedding", "fourier"), 0);
    wb_net *net = make_net(f, cfg, 1, 8, 1, 4, 3);
    wb_config_free(cfg);
    assert_non_null(net);
    randomize_small_weights(net, 5);
    wb_tensor *freq = wb_params_find(net->params, "map_noise.freqs");
    assert_non_null(freq);
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    int64_t xs[4] = {2, 1, 8, 8}, b = 2, ls[2] = {2, 4};
    float x[128], cn[2] = {0.1f, 0.1f}, lab[8] = {1, 0, 0, 0, 0, 0, 1, 0};
    for (int i = 0; i < 128; i++) x[i] = i < 64 ? 0.01f * (float)i : 0.01f * (float)(i - 64); /* same image twice */
    wb_params_zero_grad(net->params);
    wb_tensor *y = wb_net_forward(net, g, wb_from_host(g, 4, xs, x), wb_from_host(g, 1, &b, cn),
                                  wb_from_host(g, 2, ls, lab), NULL);
    check_shape(y, 2, 1, 8, 8);
    assert_int_equal(wb_backward(g, wb_sum(g, y), NULL), 0);
    for (int64_t i = 0; i < freq->numel; i++) assert_true(freq->grad[i] == 0.0f);
    assert_true(wb_params_all_finite(net->params));
    double diff = 0;
    for (int i = 0; i < 64; i++) diff += fabs(y->data[i] - y->data[64 + i]);
    assert_true(diff > 0); /* different labels, same image and noise */
    wb_graph_free(g);
    wb_net_free(net);
}

/* EDM's DDPM++ CIFAR-10 network: 55.73 M parameters (EDM paper, Table 7);
 * 55,732,739 is SongUNet's exact count for this config, recomputed
 * layer by layer. One forward at batch 1 on the CPU (≈ 6 G multiply-adds,
 * single-threaded BLAS in CTest: a few seconds). */
static void test_cifar10_ddpmpp_preset(void **state) {
    fixture *f = *state;
    wb_net *net = make_preset(f, "cifar10-ddpmpp", 3, 32, 3);
    assert_non_null(net);
    int64_t count = count_params(net->params);
    print_message("unet cifar10-ddpmpp: %lld parameters\n", (long long)count);
    assert_true(fabs((double)count - 55.73e6) < 0.01 * 55.73e6);
    assert_int_equal(count, 55732739);
    randomize_small_weights(net, 3);
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    wb_graph_set_grad(g, 0);
    int64_t xs[4] = {1, 3, 32, 32}, b = 1, n = 3 * 32 * 32;
    float *x = malloc(sizeof(float) * (size_t)n), cn[1] = {0.3f};
    fill_random(x, n, 15, 1.0f);
    wb_features feats = {0};
    double t0 = now();
    wb_tensor *y = wb_net_forward(net, g, wb_from_host(g, 4, xs, x), wb_from_host(g, 1, &b, cn), NULL, &feats);
    double t1 = now();
    check_shape(y, 1, 3, 32, 32);
    check_shape(wb_features_get(&feats, "enc16"), 1, 256, 16, 16);
    for (int64_t i = 0; i < n; i++) assert_true(isfinite(y->data[i]));
    print_message("unet cifar10-ddpmpp: forward (1,3,32,32) %.3f s, arena %.1f MiB\n", t1 - t0,
                  (double)wb_graph_arena_bytes(g) / (1024.0 * 1024.0));
    free(x);
    wb_graph_free(g);
    wb_net_free(net);
}

/* H, W must divide by 2^(levels-1): 28×28 fails at 4 levels (8) but works
 * at 3 (4); 30×30 fails at 3. The error names the resolution. */
/* The no-grad forward runs each block in a memory scope: the same bits as a
 * forward that records a tape (where scopes release nothing), with a
 * fraction of its arena; the captured features survive the moves. */
static void test_no_grad_forward_scopes(void **state) {
    fixture *f = *state;
    wb_net *net = make_preset(f, "tiny", 3, 32, 3);
    assert_non_null(net);
    randomize_small_weights(net, 5);
    const int64_t b = 4, n = b * 3 * 32 * 32, xs[4] = {b, 3, 32, 32};
    float *x = malloc(sizeof(float) * (size_t)n), *y_tape = malloc(sizeof(float) * (size_t)n);
    float *y_free = malloc(sizeof(float) * (size_t)n), cn[4] = {-1.0f, 0.0f, 0.5f, 1.2f};
    float f_tape[4 * 64 * 8 * 8], f_free[4 * 64 * 8 * 8];
    fill_random(x, n, 9, 1.0f);
    size_t arena[2];
    for (int mode = 0; mode < 2; mode++) { /* 0: tape (x requires grad), 1: grad off */
        wb_graph *g = wb_graph_new(wb_backend_cpu());
        wb_graph_set_grad(g, mode == 0);
        wb_features feats = {0};
        wb_tensor *y = wb_net_forward(net, g, wb_leaf(g, 4, xs, x, mode == 0), wb_from_host(g, 1, &b, cn), NULL,
                                      &feats);
        assert_non_null(y);
        assert_int_equal(wb_to_host(y, mode ? y_free : y_tape), 0);
        assert_int_equal(wb_to_host(wb_features_get(&feats, "enc8"), mode ? f_free : f_tape), 0);
        arena[mode] = wb_graph_arena_bytes(g);
        wb_graph_free(g);
    }
    assert_memory_equal(y_tape, y_free, sizeof(float) * (size_t)n);
    assert_memory_equal(f_tape, f_free, sizeof f_tape);
    print_message("unet tiny forward arena: %.1f MB with a tape, %.1f MB without\n", (double)arena[0] / 1048576.0,
                  (double)arena[1] / 1048576.0);
    assert_true(arena[1] * 2 < arena[0]);
    free(x);
    free(y_tape);
    free(y_free);
    wb_net_free(net);
}

static void test_bad_resolution_is_an_error(void **state) {
    fixture *f = *state;
    wb_config_owned *cfg = wb_config_new(f->unet);
    int64_t mult[4] = {1, 2, 2, 2};
    assert_int_equal(wb_config_set_ints(cfg, "multipliers", mult, 4), 0);
    assert_null(make_net(f, cfg, 1, 28, 1, 0, 1));
    assert_non_null(strstr(wb_last_error(), "28x28"));
    assert_non_null(strstr(wb_last_error(), "not divisible by 2^(levels-1) = 8"));
    wb_config_free(cfg);
    assert_null(make_preset(f, "tiny", 1, 30, 1));
    assert_non_null(strstr(wb_last_error(), "30x30"));
    wb_net *ok = make_preset(f, "tiny", 1, 28, 1); /* 3 levels: 28 = 4·7 works */
    assert_non_null(ok);
    wb_net_free(ok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_shapes_and_features),
        cmocka_unit_test(test_untrained_denoiser_is_c_skip_x),
        cmocka_unit_test(test_backward_reaches_every_parameter),
        cmocka_unit_test(test_input_gradient_finite_difference),
        cmocka_unit_test(test_encoder_only_classifier),
        cmocka_unit_test(test_fourier_and_labels),
        cmocka_unit_test(test_cifar10_ddpmpp_preset),
        cmocka_unit_test(test_no_grad_forward_scopes),
        cmocka_unit_test(test_bad_resolution_is_an_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* tests/test_ops_torch.c — every op of wb/tensor.h (the cases of
 * tests/op_cases.h, a small MLP among them) and the Adam/AdamW optimisers
 * against PyTorch. The C side runs each op forward and backward (seeded with
 * fixed weights w, i.e. the gradient of Σ w ⊙ out) and writes inputs,
 * weights, outputs and gradients to a temporary directory;
 * tests/torch_ops.py recomputes them in float32 torch and prints one
 * relative error per compared tensor; this file asserts every expected
 * error line is present and below the case's tolerance.
 *
 * Where WB_TEST_PYTHON is empty or has no torch the test prints
 * "SKIP: torch not installed" and is reported skipped, not passed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "op_cases.h"
#include "wb/tensor.h"
#include "wb_test_util.h"

/* Adam runs: flat parameter vector, fixed gradient sequence, torch defaults
 * for betas/eps; Adam with L2 decay and AdamW with decoupled decay 0.01. */
typedef struct adam_run {
    const char *name;
    float lr, beta1, beta2, eps, wd;
    int decoupled;
} adam_run;
static const adam_run ADAM_RUNS[] = {
    {"adam", 1e-2f, 0.9f, 0.999f, 1e-8f, 0.0f, 0},
    {"adam_wd", 1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, 0},
    {"adamw", 1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, 1},
};
#define N_ADAM ((int)(sizeof ADAM_RUNS / sizeof ADAM_RUNS[0]))
#define ADAM_STEPS 5
#define ADAM_TOL 1e-5

static char g_dir[64];

/* One case: forward, seeded backward, everything the script needs. */
static void dump_case(FILE *tf, FILE *mf, int ci) {
    const op_case *c = &OP_CASES[ci];
    wb_graph *g = wb_graph_new(wb_backend_cpu());
    wb_tensor *x[OPC_MAX_IN] = {0};
    char key[160];
    for (int k = 0; k < c->n_in; k++) {
        float *host = malloc((size_t)opc_numel(&c->in[k]) * sizeof *host);
        assert_non_null(host);
        opc_fill_input(ci, k, host);
        x[k] = wb_leaf(g, c->in[k].ndim, c->in[k].shape, host, c->in[k].grad != GRAD_NO);
        assert_non_null(x[k]);
        snprintf(key, sizeof key, "%s/in%d", c->name, k);
        wb_test_write_tensor(tf, key, c->in[k].ndim, c->in[k].shape, host);
        free(host);
    }
    wb_tensor *y = c->fn(g, x, c->p);
    if (!y) fail_msg("%s: forward failed: %s", c->name, wb_last_error());
    float *w = malloc((size_t)y->numel * sizeof *w);
    assert_non_null(w);
    opc_fill_weights(ci, y->numel, w);
    wb_tensor *seed = wb_from_host(g, y->ndim, y->shape, w);
    /* the seed form of backward: d(Σ w ⊙ y)/dx without building the sum */
    if (wb_backward(g, y, seed)) fail_msg("%s: backward: %s", c->name, wb_last_error());
    snprintf(key, sizeof key, "%s/w", c->name);
    wb_test_write_tensor(tf, key, y->ndim, y->shape, w);
    snprintf(key, sizeof key, "%s/out", c->name);
    wb_test_write_tensor_t(tf, key, y, 0);
    for (int k = 0; k < c->n_in; k++) {
        if (c->in[k].grad == GRAD_NO) continue;
        snprintf(key, sizeof key, "%s/grad%d", c->name, k);
        wb_test_write_tensor_t(tf, key, x[k], 1);
    }
    fprintf(mf, "case %s %s %d %.9g %.9g", c->name, c->op, c->n_in, (double)c->p[0], (double)c->p[1]);
    for (int k = 0; k < c->n_in; k++) fprintf(mf, " %d", c->in[k].grad);
    fprintf(mf, "\n");
    free(w);
    wb_graph_free(g);
}

/* One optimiser run on a store of two tensors; the script sees the flat
 * values (Adam is elementwise, so layout does not matter to it). */
static void dump_adam(FILE *tf, FILE *mf, int ai) {
    const adam_run *r = &ADAM_RUNS[ai];
    wb_params *ps = wb_params_new(wb_backend_cpu());
    int64_t sw[2] = {6, 5}, sb = 6;
    wb_tensor *tw = wb_params_add(ps, "w", 2, sw, WB_INIT_UNIFORM_FAN_IN, 1.0f);
    wb_tensor *tb = wb_params_add(ps, "b", 1, &sb, WB_INIT_NORMAL, 1.0f);
    wb_rng rng;
    wb_rng_init(&rng, 100 + (uint64_t)ai, 0);
    assert_int_equal(wb_params_finalize(ps, &rng), 0);
    wb_tensor *ts[2] = {tw, tb};
    const int64_t n = 36;
    float init[36], fin[36], grads[ADAM_STEPS][36];
    for (int t = 0, o = 0; t < 2; t++)
        for (int64_t j = 0; j < ts[t]->numel; j++) init[o++] = ts[t]->data[j];
    wb_adam *opt = wb_adam_new(ps, r->lr, r->beta1, r->beta2, r->eps, r->wd, r->decoupled);
    assert_non_null(opt);
    for (int s = 0; s < ADAM_STEPS; s++) {
        wb_rng_normal(&rng, grads[s], n);
        for (int t = 0, o = 0; t < 2; t++)
            for (int64_t j = 0; j < ts[t]->numel; j++) ts[t]->grad[j] = grads[s][o++];
        assert_int_equal(wb_adam_step(opt), 0);
    }
    for (int t = 0, o = 0; t < 2; t++)
        for (int64_t j = 0; j < ts[t]->numel; j++) fin[o++] = ts[t]->data[j];
    char key[64];
    int64_t shape2[2] = {ADAM_STEPS, n};
    snprintf(key, sizeof key, "%s/init", r->name);
    wb_test_write_tensor(tf, key, 1, &n, init);
    snprintf(key, sizeof key, "%s/grads", r->name);
    wb_test_write_tensor(tf, key, 2, shape2, &grads[0][0]);
    snprintf(key, sizeof key, "%s/final", r->name);
    wb_test_write_tensor(tf, key, 1, &n, fin);
    fprintf(mf, "adam %s %.9g %.9g %.9g %.9g %.9g %d %d\n", r->name, (double)r->lr, (double)r->beta1,
            (double)r->beta2, (double)r->eps, (double)r->wd, r->decoupled, ADAM_STEPS);
    wb_adam_free(opt);
    wb_params_free(ps);
}

/* Errors reported by the script, NAN until a RESULT line fills them in. */
static double g_err_out[OPC_COUNT], g_err_grad[OPC_COUNT][OPC_MAX_IN], g_err_adam[N_ADAM];

static double *result_slot(const char *name, const char *what) {
    for (int ci = 0; ci < OPC_COUNT; ci++) {
        if (strcmp(OP_CASES[ci].name, name) != 0) continue;
        if (strcmp(what, "out") == 0) return &g_err_out[ci];
        int k;
        if (sscanf(what, "grad%d", &k) == 1 && k >= 0 && k < OP_CASES[ci].n_in) return &g_err_grad[ci][k];
        return NULL;
    }
    for (int ai = 0; ai < N_ADAM; ai++)
        if (strcmp(ADAM_RUNS[ai].name, name) == 0 && strcmp(what, "final") == 0) return &g_err_adam[ai];
    return NULL;
}

static void remove_dir(void) { wb_torch_remove_dir(g_dir); }

static void test_ops_match_torch(void **state) {
    (void)state;
    wb_torch_skip_without_python();
    FILE *tf, *mf;
    wb_torch_open(g_dir, sizeof g_dir, "/tmp/wb_ops_torch_XXXXXX", &tf, &mf);
    for (int ci = 0; ci < OPC_COUNT; ci++) dump_case(tf, mf, ci);
    for (int ai = 0; ai < N_ADAM; ai++) dump_adam(tf, mf, ai);
    wb_torch_close(tf, mf);

    for (int ci = 0; ci < OPC_COUNT; ci++) {
        g_err_out[ci] = NAN;
        for (int k = 0; k < OPC_MAX_IN; k++) g_err_grad[ci][k] = NAN;
    }
    for (int ai = 0; ai < N_ADAM; ai++) g_err_adam[ai] = NAN;

    /* single-threaded torch and BLAS (deterministic; pools cost more than
     * they save on tensors this small), coreutils timeout when present */
    wb_torch_run("torch_ops.py", g_dir, result_slot);

    const char *verbose = getenv("WB_TEST_VERBOSE");
    double worst = 0.0, worst_ratio = 0.0;
    const char *worst_name = "-";
    for (int ci = 0; ci < OPC_COUNT; ci++) {
        const op_case *c = &OP_CASES[ci];
        double e = g_err_out[ci];
        if (isnan(e)) fail_msg("%s: output was not compared", c->name);
        if (!(e <= c->torch_tol)) fail_msg("%s: output differs from torch: rel. error %.3g > %.1g", c->name, e, c->torch_tol);
        double case_worst = e;
        for (int k = 0; k < c->n_in; k++) {
            if (c->in[k].grad == GRAD_NO) continue;
            double eg = g_err_grad[ci][k];
            if (isnan(eg)) fail_msg("%s: gradient of input %d was not compared", c->name, k);
            if (!(eg <= c->torch_tol))
                fail_msg("%s: gradient of input %d differs from torch: rel. error %.3g > %.1g", c->name, k, eg,
                         c->torch_tol);
            if (eg > case_worst) case_worst = eg;
        }
        if (verbose) print_message("%-16s worst rel. error %.3g\n", c->name, case_worst);
        if (case_worst / c->torch_tol > worst_ratio) {
            worst_ratio = case_worst / c->torch_tol;
            worst = case_worst;
            worst_name = c->name;
        }
    }
    for (int ai = 0; ai < N_ADAM; ai++) {
        double e = g_err_adam[ai];
        if (isnan(e)) fail_msg("%s: not compared", ADAM_RUNS[ai].name);
        if (!(e <= ADAM_TOL))
            fail_msg("%s: %d steps differ from torch.optim: rel. error of the update %.3g > %.1g",
                     ADAM_RUNS[ai].name, ADAM_STEPS, e, ADAM_TOL);
        if (verbose) print_message("%-16s rel. error of the update %.3g\n", ADAM_RUNS[ai].name, e);
    }
    print_message("%d op cases and %d optimiser runs match torch; tightest: %s (%.3g, %.0f%% of its tolerance)\n",
                  OPC_COUNT, N_ADAM, worst_name, worst, 100.0 * worst_ratio);
    remove_dir();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ops_match_torch),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    remove_dir(); /* a failed assertion longjmps past the cleanup above */
    return rc;
}

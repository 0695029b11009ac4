/* test_divergences.c — the three divergence plugin libraries (div_bregman,
 * div_fdiv, div_scorefree) against closed forms computed independently here
 * in long double.
 *
 * What is checked, per library and per member:
 *   - the ABI: entry symbol, library header, descriptors (version, sizes,
 *     kind, names unique and all 14 present, tables set), the sba parameter,
 *     and that wb_plugin_entry is the only symbol a .so exports;
 *   - weights(): finite over l ∈ [−50, 50] (step 0.05) and at extreme logits,
 *     equal to the §1.2 table evaluated in long double with the exponent
 *     clamped at ±80 like the plugins, monotone where the closed form is,
 *     NaN in → NaN out wherever the weight depends on l;
 *   - value(): finite everywhere, equal to the mean of the textbook f(ρ) /
 *     Bregman form on fixed logits, 0 at p = q, per-sample non-negative where
 *     the generator makes it so, and — on samples of q = N(0,1) against
 *     p = N(μ,1), where l(x) = μx − μ²/2 exactly — equal to the divergence
 *     itself (by quadrature, and in closed form where one exists).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <float.h>
#include <link.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wb/plugin.h"

#ifndef WB_TEST_PLUGIN_DIR
#error "WB_TEST_PLUGIN_DIR must name the build's plugin directory"
#endif

#define CLAMP 80.0L /* WB_EXP_CLAMP, restated: the test must not trust the header */
#define LN2 0.693147180559945309417232121458176568L

/* ---- the cases --------------------------------------------------------------- */
typedef struct div_case {
    const char *name;
    const char *lib; /* target name of the .so */
    int score_free;
    /* shape of the non-zero weight over l: +1 increasing, −1 decreasing,
     * 0 constant; 2 for sba, whose direction is the sign of −λ */
    int mono;
} div_case;

static const div_case CASES[] = {
    {"lr", "div_bregman", 0, +1},     {"kl", "div_bregman", 0, 0},
    {"be", "div_bregman", 0, +1},     {"ls", "div_bregman", 0, -1},
    {"sba", "div_bregman", 0, 2},     {"rkl", "div_fdiv", 0, 0},
    {"srkl", "div_fdiv", 0, -1},      {"js", "div_fdiv", 0, +1},
    {"sh", "div_fdiv", 0, +1},        {"fkl", "div_fdiv", 0, +1},
    {"jeffreys", "div_fdiv", 0, +1},  {"dikl", "div_scorefree", 1, 0},
    {"dijs", "div_scorefree", 1, +1}, {"dirm", "div_scorefree", 1, -1},
};
#define N_CASES ((int)(sizeof(CASES) / sizeof(CASES[0])))
static const char *const LIBS[] = {"div_bregman", "div_fdiv", "div_scorefree"};
#define N_LIBS 3
static const double SBA_LAMBDAS[] = {-1.0, 0.5, 1.0, 3.0, 5.0, 10.0};
#define N_LAMBDAS ((int)(sizeof(SBA_LAMBDAS) / sizeof(SBA_LAMBDAS[0])))

/* ---- loading ----------------------------------------------------------------- */
static void *g_handles[N_LIBS];
static const wb_plugin_library *g_libs[N_LIBS];

static void lib_path(const char *lib, char *buf, size_t n) {
    snprintf(buf, n, "%s/divergences/%s.so", WB_TEST_PLUGIN_DIR, lib);
}

static int load_all(void **state) {
    (void)state;
    for (int i = 0; i < N_LIBS; i++) {
        char path[4096];
        lib_path(LIBS[i], path, sizeof path);
        g_handles[i] = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!g_handles[i]) {
            fprintf(stderr, "cannot load %s: %s\n", path, dlerror());
            return -1;
        }
        wb_plugin_entry_fn entry;
        void *sym = dlsym(g_handles[i], WB_PLUGIN_ENTRY_SYMBOL);
        if (!sym) {
            fprintf(stderr, "%s: no %s\n", path, WB_PLUGIN_ENTRY_SYMBOL);
            return -1;
        }
        memcpy(&entry, &sym, sizeof entry); /* object → function pointer, POSIX-style */
        g_libs[i] = entry();
        if (!g_libs[i]) {
            fprintf(stderr, "%s: entry returned NULL\n", path);
            return -1;
        }
    }
    return 0;
}

static int unload_all(void **state) {
    (void)state;
    for (int i = 0; i < N_LIBS; i++) {
        if (g_handles[i]) dlclose(g_handles[i]);
        g_handles[i] = NULL;
        g_libs[i] = NULL;
    }
    return 0;
}

static const wb_plugin_desc *find_desc(const char *name) {
    for (int i = 0; i < N_LIBS; i++) {
        for (int j = 0; j < g_libs[i]->n_plugins; j++) {
            const wb_plugin_desc *d = g_libs[i]->plugins[j];
            if (d && d->name && strcmp(d->name, name) == 0) return d;
        }
    }
    return NULL;
}

/* A config from the descriptor's specs at their defaults (what the host
 * hands a plugin when the user sets nothing). */
typedef struct test_cfg {
    wb_config cfg;
    wb_param_value values[8];
} test_cfg;

static void make_cfg(const wb_plugin_desc *d, test_cfg *tc) {
    memset(tc, 0, sizeof *tc);
    assert_true(d->n_params >= 0 && d->n_params <= 8);
    for (int i = 0; i < d->n_params; i++) {
        tc->values[i].num = d->params[i].def;
        if (d->params[i].def_str) {
            snprintf(tc->values[i].str, sizeof tc->values[i].str, "%s", d->params[i].def_str);
        }
    }
    tc->cfg.n = d->n_params;
    tc->cfg.specs = d->params;
    tc->cfg.values = tc->values;
}

static void set_lambda(test_cfg *tc, double lambda) {
    for (int i = 0; i < tc->cfg.n; i++) {
        if (strcmp(tc->cfg.specs[i].name, "lambda") == 0) {
            tc->values[i].num = lambda;
            return;
        }
    }
    fail_msg("sba has no lambda parameter");
}

/* ---- the logit grid ---------------------------------------------------------- */
#define GRID_N 2001 /* −50 … 50 step 0.05 */
static const float EXTREMES[] = {
    0.0f,  -0.0f,  FLT_MIN,     -FLT_MIN,     1e-30f,  -1e-30f,  79.9f, -79.9f,
    80.5f, -80.5f, 88.8f,       -88.8f,       100.0f,  -100.0f,  1e4f,  -1e4f,
    1e30f, -1e30f, FLT_MAX / 2, -FLT_MAX / 2, FLT_MAX, -FLT_MAX,
};
#define N_EXTREMES ((int)(sizeof(EXTREMES) / sizeof(EXTREMES[0])))
#define ALL_N (GRID_N + N_EXTREMES)

static float grid_at(int k) { return (float)(-50.0 + 0.05 * (double)k); }

static void all_logits(float *out) {
    for (int k = 0; k < GRID_N; k++) out[k] = grid_at(k);
    for (int k = 0; k < N_EXTREMES; k++) out[GRID_N + k] = EXTREMES[k];
}

/* ---- closed forms, long double ----------------------------------------------- */
static long double clamp_expl(long double x) {
    return x > CLAMP ? CLAMP : (x < -CLAMP ? -CLAMP : x);
}
static long double clamped_expl(long double x) { return expl(clamp_expl(x)); }
static long double sigl(long double x) { return 1.0L / (1.0L + expl(-x)); }

/* §1.2 table */
static void expected_weights(const char *name, double lambda, float lf, long double *ws,
                             long double *wl) {
    long double l = (long double)lf;
    *ws = 0.0L;
    *wl = 0.0L;
    if (!strcmp(name, "lr"))
        *ws = sigl(l);
    else if (!strcmp(name, "kl"))
        *ws = 1.0L;
    else if (!strcmp(name, "be"))
        *ws = clamped_expl(l);
    else if (!strcmp(name, "ls"))
        *ws = clamped_expl(-l);
    else if (!strcmp(name, "sba"))
        *ws = clamped_expl(-(long double)lambda * l);
    else if (!strcmp(name, "rkl"))
        *ws = 1.0L;
    else if (!strcmp(name, "srkl"))
        *ws = sigl(-l);
    else if (!strcmp(name, "js"))
        *ws = sigl(l);
    else if (!strcmp(name, "sh"))
        *ws = 0.25L * clamped_expl(0.5L * l);
    else if (!strcmp(name, "fkl"))
        *ws = clamped_expl(l);
    else if (!strcmp(name, "jeffreys"))
        *ws = 1.0L + clamped_expl(l);
    else if (!strcmp(name, "dikl"))
        *wl = 1.0L;
    else if (!strcmp(name, "dijs"))
        *wl = sigl(l);
    else if (!strcmp(name, "dirm"))
        *wl = sigl(-l);
    else
        fail_msg("no closed form for %s", name);
}

/* Per-sample value terms in their textbook form (ρ = p/q = e^l for f,
 * r = q/p = e^{−l} and (1/r)·(h(r) − h(1) − h'(1)(r − 1)) for Bregman),
 * deliberately NOT the logit-space rewrites of the plugins. Valid for
 * moderate |l| only (no clamping). */
static long double bregman_term(long double r, long double h_r, long double h_1, long double dh_1) {
    return (h_r - h_1 - dh_1 * (r - 1.0L)) / r;
}

static long double expected_term(const char *name, double lambda_d, long double l) {
    long double rho = expl(l), r = expl(-l), lam = (long double)lambda_d;
    if (!strcmp(name, "sba")) {
        if (lambda_d == 0.0)
            name = "kl"; /* the λ → 0 limit  */
        else if (lambda_d == -1.0)
            name = "be"; /* the λ → −1 limit */
    }
    if (!strcmp(name, "lr"))
        return bregman_term(r, r * logl(r) - (1 + r) * logl(1 + r), -2 * LN2, -LN2);
    if (!strcmp(name, "kl")) return bregman_term(r, r * logl(r) - r, -1.0L, 0.0L);
    if (!strcmp(name, "be")) return bregman_term(r, -logl(r), 0.0L, -1.0L);
    if (!strcmp(name, "ls")) return bregman_term(r, r * r / 2, 0.5L, 1.0L);
    if (!strcmp(name, "sba"))
        return bregman_term(r, (powl(r, 1 + lam) - r) / (lam * (lam + 1)), 0.0L, 1.0L / (1 + lam));
    if (!strcmp(name, "rkl") || !strcmp(name, "dikl")) return -logl(rho);
    if (!strcmp(name, "srkl")) return (rho + 1) * logl((rho + 1) / (2 * rho));
    if (!strcmp(name, "js") || !strcmp(name, "dijs"))
        return rho * logl(rho) - (rho + 1) * logl((rho + 1) / 2);
    if (!strcmp(name, "sh")) return 1 - sqrtl(rho);
    if (!strcmp(name, "fkl")) return rho * logl(rho);
    if (!strcmp(name, "jeffreys")) return (rho - 1) * logl(rho);
    if (!strcmp(name, "dirm")) return -logl(sigl(l));
    fail_msg("no value form for %s", name);
    return 0;
}

/* |a − e| ≤ rtol·|e| + atol, with a readable failure. */
static void assert_close(const char *what, const char *name, double lambda, double x, long double a,
                         long double e, long double rtol, long double atol) {
    long double err = fabsl(a - e);
    if (!(err <= rtol * fabsl(e) + atol)) {
        fail_msg("%s %s (lambda %g) at l = %.9g: got %.12Lg, want %.12Lg (err %.3Lg)", what, name,
                 lambda, x, a, e, err);
    }
}

/* Each case once, and sba once per λ in SBA_LAMBDAS plus its default. */
typedef void (*case_fn)(const div_case *c, const wb_plugin_desc *d, test_cfg *tc, double lambda);

static void for_each_case(case_fn fn) {
    for (int i = 0; i < N_CASES; i++) {
        const wb_plugin_desc *d = find_desc(CASES[i].name);
        assert_non_null(d);
        test_cfg tc;
        make_cfg(d, &tc);
        if (strcmp(CASES[i].name, "sba") != 0) {
            fn(&CASES[i], d, &tc, 0.0);
            continue;
        }
        fn(&CASES[i], d, &tc, d->params[0].def);
        for (int k = 0; k < N_LAMBDAS; k++) {
            set_lambda(&tc, SBA_LAMBDAS[k]);
            fn(&CASES[i], d, &tc, SBA_LAMBDAS[k]);
        }
    }
}

/* ---- ABI --------------------------------------------------------------------- */
static void test_libraries(void **state) {
    (void)state;
    for (int i = 0; i < N_LIBS; i++) {
        const wb_plugin_library *L = g_libs[i];
        assert_int_equal(L->abi_version, WB_ABI_VERSION);
        assert_int_equal(L->struct_size, sizeof(wb_plugin_library));
        assert_true(L->n_plugins > 0);
        assert_non_null(L->plugins);
        int expected = 0;
        for (int c = 0; c < N_CASES; c++) expected += strcmp(CASES[c].lib, LIBS[i]) == 0;
        assert_int_equal(L->n_plugins, expected);
        for (int j = 0; j < L->n_plugins; j++) {
            const wb_plugin_desc *d = L->plugins[j];
            assert_non_null(d);
            assert_int_equal(d->abi_version, WB_ABI_VERSION);
            assert_int_equal(d->struct_size, sizeof(wb_plugin_desc));
            assert_int_equal(d->kind, WB_KIND_DIVERGENCE);
            assert_non_null(d->name);
            assert_true(strlen(d->name) > 0);
            assert_true(strspn(d->name, "abcdefghijklmnopqrstuvwxyz0123456789_-") ==
                        strlen(d->name));
            assert_non_null(d->version);
            assert_true(strlen(d->version) > 0);
            assert_non_null(d->doc);
            assert_true(strlen(d->doc) > 10);
            assert_null(strchr(d->doc, '\n')); /* one line */
            assert_true(d->n_params >= 0);
            if (d->n_params > 0) assert_non_null(d->params);
            assert_non_null(d->divergence);
            assert_null(d->net);
            assert_null(d->ratio);
            assert_int_equal(d->divergence->struct_size, sizeof(wb_divergence_fns));
            assert_non_null(d->divergence->weights);
            assert_non_null(d->divergence->value);
            /* registered in the library the table says */
            int found = 0;
            for (int c = 0; c < N_CASES; c++) {
                if (!strcmp(CASES[c].name, d->name)) {
                    assert_string_equal(CASES[c].lib, LIBS[i]);
                    found = 1;
                }
            }
            if (!found) fail_msg("unexpected divergence %s in %s", d->name, LIBS[i]);
        }
    }
    /* names unique across the three libraries, and all 14 present */
    for (int c = 0; c < N_CASES; c++) {
        int count = 0;
        for (int i = 0; i < N_LIBS; i++)
            for (int j = 0; j < g_libs[i]->n_plugins; j++)
                count += strcmp(g_libs[i]->plugins[j]->name, CASES[c].name) == 0;
        if (count != 1) fail_msg("%s registered %d times", CASES[c].name, count);
    }
}

static void test_score_free_flags(void **state) {
    (void)state;
    for (int c = 0; c < N_CASES; c++) {
        const wb_plugin_desc *d = find_desc(CASES[c].name);
        assert_non_null(d);
        if (d->divergence->score_free != CASES[c].score_free)
            fail_msg("%s: score_free = %d", d->name, d->divergence->score_free);
    }
}

static void test_params(void **state) {
    (void)state;
    for (int c = 0; c < N_CASES; c++) {
        const wb_plugin_desc *d = find_desc(CASES[c].name);
        if (strcmp(d->name, "sba") != 0) {
            assert_int_equal(d->n_params, 0);
            continue;
        }
        assert_int_equal(d->n_params, 1);
        const wb_param_spec *p = &d->params[0];
        assert_string_equal(p->name, "lambda");
        assert_int_equal(p->type, WB_PARAM_NUMBER);
        assert_true(p->def == 5.0);
        assert_true(p->min <= p->def && p->def <= p->max);
        /* the paper's sweep (−1 … 10) must be settable */
        for (int k = 0; k < N_LAMBDAS; k++)
            assert_true(p->min <= SBA_LAMBDAS[k] && SBA_LAMBDAS[k] <= p->max);
        assert_non_null(p->doc);
    }
}

/* The only dynamic symbol a library defines is wb_plugin_entry: read the
 * file's .dynsym directly (dlsym would also search libwb, which the plugin
 * links against). */
static void check_exports(const char *path) {
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    unsigned char *base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    assert_true(base != MAP_FAILED);
    const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)base;
    assert_memory_equal(eh->e_ident, ELFMAG, SELFMAG);
    const ElfW(Shdr) *sh = (const ElfW(Shdr) *)(base + eh->e_shoff);
    int n_defined = 0, seen_entry = 0;
    for (int s = 0; s < eh->e_shnum; s++) {
        if (sh[s].sh_type != SHT_DYNSYM) continue;
        const ElfW(Sym) *syms = (const ElfW(Sym) *)(base + sh[s].sh_offset);
        const char *strtab = (const char *)(base + sh[sh[s].sh_link].sh_offset);
        size_t nsym = sh[s].sh_size / sizeof(ElfW(Sym));
        for (size_t k = 0; k < nsym; k++) {
            int bind = ELF64_ST_BIND(syms[k].st_info);
            if (syms[k].st_shndx == SHN_UNDEF || (bind != STB_GLOBAL && bind != STB_WEAK)) continue;
            const char *nm = strtab + syms[k].st_name;
            n_defined++;
            if (strcmp(nm, WB_PLUGIN_ENTRY_SYMBOL) == 0)
                seen_entry = 1;
            else
                fail_msg("%s exports %s", path, nm);
        }
    }
    munmap(base, (size_t)st.st_size);
    assert_int_equal(seen_entry, 1);
    assert_int_equal(n_defined, 1);
}

static void test_exports(void **state) {
    (void)state;
    for (int i = 0; i < N_LIBS; i++) {
        char path[4096];
        lib_path(LIBS[i], path, sizeof path);
        check_exports(path);
    }
}

/* ---- weights ----------------------------------------------------------------- */
static void weights_closed_form(const div_case *c, const wb_plugin_desc *d, test_cfg *tc,
                                double lambda) {
    float *l = malloc(sizeof(float) * ALL_N);
    float *ws = malloc(sizeof(float) * ALL_N);
    float *wl = malloc(sizeof(float) * ALL_N);
    assert_non_null(l);
    assert_non_null(ws);
    assert_non_null(wl);
    all_logits(l);
    d->divergence->weights(&tc->cfg, ALL_N, l, ws, wl);
    for (int k = 0; k < ALL_N; k++) {
        if (!isfinite(ws[k]) || !isfinite(wl[k]))
            fail_msg("%s (lambda %g): non-finite weight at l = %g: w_s %g w_l %g", c->name, lambda,
                     (double)l[k], (double)ws[k], (double)wl[k]);
        long double es, el;
        expected_weights(c->name, lambda, l[k], &es, &el);
        /* 2e-5 relative covers expf plus the float rounding of an exponent up
         * to 80 (sba forms −λ·l in double and narrows it once); the absolute
         * 1e-30 only matters for σ far in its tail, σ(−100) ≈ 4e-44 */
        assert_close("w_s", c->name, lambda, l[k], ws[k], es, 2e-5L, 1e-30L);
        assert_close("w_l", c->name, lambda, l[k], wl[k], el, 2e-5L, 1e-30L);
        /* score-based members never touch ∇l, score-free never the scores */
        if (c->score_free)
            assert_true(ws[k] == 0.0f);
        else
            assert_true(wl[k] == 0.0f);
    }
    free(l);
    free(ws);
    free(wl);
}

static void test_weights_closed_form(void **state) {
    (void)state;
    for_each_case(weights_closed_form);
}

static void weights_monotone(const div_case *c, const wb_plugin_desc *d, test_cfg *tc,
                             double lambda) {
    float l[GRID_N], ws[GRID_N], wl[GRID_N];
    for (int k = 0; k < GRID_N; k++) l[k] = grid_at(k);
    d->divergence->weights(&tc->cfg, GRID_N, l, ws, wl);
    const float *w = c->score_free ? wl : ws;
    int dir = c->mono;
    if (dir == 2) dir = lambda > 0 ? -1 : (lambda < 0 ? +1 : 0);
    for (int k = 1; k < GRID_N; k++) {
        float prev = w[k - 1], cur = w[k];
        /* weakly monotone over the whole grid (σ saturates to 1 in float),
         * strictly on [−5, 5] where every non-constant weight moves */
        int strict = fabsf(l[k]) <= 5.0f && fabsf(l[k - 1]) <= 5.0f;
        int ok = dir == 0  ? cur == prev
                 : dir > 0 ? (strict ? cur > prev : cur >= prev)
                           : (strict ? cur < prev : cur <= prev);
        if (!ok)
            fail_msg("%s (lambda %g): not %s between l = %g (%g) and %g (%g)", c->name, lambda,
                     dir == 0  ? "constant"
                     : dir > 0 ? "increasing"
                               : "decreasing",
                     (double)l[k - 1], (double)prev, (double)l[k], (double)cur);
    }
}

static void test_weights_monotone(void **state) {
    (void)state;
    for_each_case(weights_monotone);
}

/* Mirror pairs of the table: σ(−l) members are their σ(l) twins reflected. */
static void test_weights_symmetry(void **state) {
    (void)state;
    static const char *const pairs[][2] = {
        {"srkl", "js"}, {"dirm", "dijs"}, {"ls", "be"}, {"lr", "js"}};
    for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++) {
        const wb_plugin_desc *a = find_desc(pairs[p][0]), *b = find_desc(pairs[p][1]);
        int reflect = strcmp(pairs[p][0], "lr") != 0;
        float l[GRID_N], lr_[GRID_N], as[GRID_N], al[GRID_N], bs[GRID_N], bl[GRID_N];
        for (int k = 0; k < GRID_N; k++) {
            l[k] = grid_at(k);
            lr_[k] = reflect ? -l[k] : l[k];
        }
        test_cfg ta, tb;
        make_cfg(a, &ta);
        make_cfg(b, &tb);
        a->divergence->weights(&ta.cfg, GRID_N, l, as, al);
        b->divergence->weights(&tb.cfg, GRID_N, lr_, bs, bl);
        for (int k = 0; k < GRID_N; k++) {
            float x = a->divergence->score_free ? al[k] : as[k];
            float y = b->divergence->score_free ? bl[k] : bs[k];
            assert_close("mirror", pairs[p][0], 0, l[k], x, y, 1e-6L, 1e-37L);
        }
    }
}

/* A NaN logit must not become a finite weight (the plugins do not let the
 * clamp turn NaN into e^80); constant weights ignore l and stay constant. */
static void weights_nan(const div_case *c, const wb_plugin_desc *d, test_cfg *tc, double lambda) {
    float l[2] = {NAN, 1.0f}, ws[2], wl[2];
    d->divergence->weights(&tc->cfg, 2, l, ws, wl);
    const float *w = c->score_free ? wl : ws;
    if (c->mono == 0)
        assert_true(w[0] == 1.0f);
    else if (!isnan(w[0]))
        fail_msg("%s (lambda %g): NaN logit gave weight %g", c->name, lambda, (double)w[0]);
    assert_true(isfinite(w[1])); /* the next sample is unaffected */
    assert_true(isnan(d->divergence->value(&tc->cfg, 1, l)));
}

static void test_weights_nan(void **state) {
    (void)state;
    for_each_case(weights_nan);
}

static void test_weights_empty(void **state) {
    (void)state;
    for (int c = 0; c < N_CASES; c++) {
        const wb_plugin_desc *d = find_desc(CASES[c].name);
        test_cfg tc;
        make_cfg(d, &tc);
        float l = 1.0f, ws = -7.0f, wl = -7.0f;
        d->divergence->weights(&tc.cfg, 0, &l, &ws, &wl);
        assert_true(ws == -7.0f && wl == -7.0f);
        assert_true(d->divergence->value(&tc.cfg, 0, &l) == 0.0);
    }
}

/* ---- values ------------------------------------------------------------------ */
static void value_finite(const div_case *c, const wb_plugin_desc *d, test_cfg *tc, double lambda) {
    float l[ALL_N];
    all_logits(l);
    for (int k = 0; k < ALL_N; k++) {
        double v = d->divergence->value(&tc->cfg, 1, &l[k]);
        if (!isfinite(v))
            fail_msg("%s (lambda %g): value not finite at l = %g: %g", c->name, lambda,
                     (double)l[k], v);
    }
    assert_true(isfinite(d->divergence->value(&tc->cfg, ALL_N, l)));
    /* beyond ±80 the logit is clamped, as in the weights */
    float big[2] = {1e4f, 80.0f}, small[2] = {-FLT_MAX, -80.0f};
    assert_true(d->divergence->value(&tc->cfg, 1, &big[0]) ==
                d->divergence->value(&tc->cfg, 1, &big[1]));
    assert_true(d->divergence->value(&tc->cfg, 1, &small[0]) ==
                d->divergence->value(&tc->cfg, 1, &small[1]));
}

static void test_value_finite(void **state) {
    (void)state;
    for_each_case(value_finite);
}

static void value_closed_form(const div_case *c, const wb_plugin_desc *d, test_cfg *tc,
                              double lambda) {
    static const float L[] = {-3.0f, -1.5f, -0.25f, 0.0f, 0.5f, 2.0f, 4.0f};
    const int n = (int)(sizeof L / sizeof L[0]);
    long double sum = 0.0L;
    for (int k = 0; k < n; k++) {
        long double t = expected_term(c->name, lambda, L[k]);
        sum += t;
        assert_close("value term", c->name, lambda, L[k], d->divergence->value(&tc->cfg, 1, &L[k]),
                     t, 1e-9L, 1e-12L);
    }
    assert_close("value mean", c->name, lambda, NAN, d->divergence->value(&tc->cfg, n, L), sum / n,
                 1e-9L, 1e-12L);
}

static void test_value_closed_form(void **state) {
    (void)state;
    for_each_case(value_closed_form);
}

/* p = q: every divergence reads 0; dirm (not a divergence) reads log 2. */
static void value_at_zero(const div_case *c, const wb_plugin_desc *d, test_cfg *tc, double lambda) {
    float z[16] = {0};
    double want = strcmp(c->name, "dirm") == 0 ? (double)LN2 : 0.0;
    double v1 = d->divergence->value(&tc->cfg, 1, z), v16 = d->divergence->value(&tc->cfg, 16, z);
    if (fabs(v1 - want) > 1e-6 || fabs(v16 - want) > 1e-6)
        fail_msg("%s (lambda %g): value at l = 0 is %g / %g, want %g", c->name, lambda, v1, v16,
                 want);
}

static void test_value_at_zero(void **state) {
    (void)state;
    for_each_case(value_at_zero);
}

/* A convex generator with h'(1) = f'(1) = 0 in its Bregman / f form makes every
 * per-sample term ≥ 0: all Bregman members, js / dijs, jeffreys, and dirm. */
static void value_nonnegative(const div_case *c, const wb_plugin_desc *d, test_cfg *tc,
                              double lambda) {
    if (!strcmp(c->name, "rkl") || !strcmp(c->name, "srkl") || !strcmp(c->name, "sh") ||
        !strcmp(c->name, "fkl") || !strcmp(c->name, "dikl"))
        return;
    for (int k = 0; k < GRID_N; k++) {
        float l = grid_at(k);
        double v = d->divergence->value(&tc->cfg, 1, &l);
        if (v < -1e-12)
            fail_msg("%s (lambda %g): term %g < 0 at l = %g", c->name, lambda, v, (double)l);
    }
}

static void test_value_nonnegative(void **state) {
    (void)state;
    for_each_case(value_nonnegative);
}

/* Members that estimate the same quantity from the same samples agree. */
static void test_value_identities(void **state) {
    (void)state;
    float l[GRID_N];
    for (int k = 0; k < GRID_N; k++) l[k] = grid_at(k) * 0.1f; /* |l| ≤ 5 */
    static const char *const same[][2] = {{"lr", "js"}, {"js", "dijs"}, {"rkl", "dikl"}};
    for (size_t p = 0; p < sizeof same / sizeof same[0]; p++) {
        const wb_plugin_desc *a = find_desc(same[p][0]), *b = find_desc(same[p][1]);
        test_cfg ta, tb;
        make_cfg(a, &ta);
        make_cfg(b, &tb);
        assert_close("identity", same[p][0], 0, NAN, a->divergence->value(&ta.cfg, GRID_N, l),
                     b->divergence->value(&tb.cfg, GRID_N, l), 1e-12L, 1e-15L);
    }
    /* sba at λ = 0, 1, −1 is kl, ls, be (up to an affine term of h) */
    const wb_plugin_desc *sba = find_desc("sba");
    test_cfg ts;
    make_cfg(sba, &ts);
    static const struct {
        double lambda;
        const char *name;
    } limits[] = {{0.0, "kl"}, {1.0, "ls"}, {-1.0, "be"}};
    for (size_t p = 0; p < sizeof limits / sizeof limits[0]; p++) {
        const wb_plugin_desc *b = find_desc(limits[p].name);
        test_cfg tb;
        make_cfg(b, &tb);
        set_lambda(&ts, limits[p].lambda);
        assert_close("sba limit", limits[p].name, limits[p].lambda, NAN,
                     sba->divergence->value(&ts.cfg, GRID_N, l),
                     b->divergence->value(&tb.cfg, GRID_N, l), 1e-9L, 1e-12L);
        /* and the weights agree too */
        float ws_a[GRID_N], wl_a[GRID_N], ws_b[GRID_N], wl_b[GRID_N];
        sba->divergence->weights(&ts.cfg, GRID_N, l, ws_a, wl_a);
        b->divergence->weights(&tb.cfg, GRID_N, l, ws_b, wl_b);
        for (int k = 0; k < GRID_N; k++)
            assert_close("sba limit w_s", limits[p].name, limits[p].lambda, l[k], ws_a[k], ws_b[k],
                         1e-6L, 0);
    }
}

/* ---- the estimator estimates the divergence ----------------------------------- *
 * q = N(0, 1), p = N(μ, 1): l(x) = log p(x)/q(x) = μx − μ²/2 exactly. Samples
 * of q are the midpoint quantiles x_i = Φ⁻¹((i + ½)/n) (deterministic; no
 * flaky seed), and value() over their logits must match E_q[term(l(x))]
 * computed by Simpson quadrature, and the divergence in closed form where
 * one exists. */
#define MC_N 100000

static double normal_quantile(double u) {
    double lo = -40.0, hi = 40.0; /* Φ(x) = erfc(−x/√2)/2, by bisection */
    for (int it = 0; it < 200 && hi - lo > 1e-15; it++) {
        double mid = 0.5 * (lo + hi);
        if (0.5 * erfc(-mid / sqrt(2.0)) < u)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

static long double quad_expectation(const char *name, double lambda, long double mu) {
    const int N = 32000; /* Simpson on [−16, 16], h = 1e-3 */
    const long double a = -16.0L, h = 32.0L / N;
    long double s = 0.0L;
    for (int i = 0; i <= N; i++) {
        long double x = a + h * i;
        long double w = (i == 0 || i == N) ? 1.0L : (i % 2 ? 4.0L : 2.0L);
        long double phi =
            expl(-0.5L * x * x) / sqrtl(2.0L * 3.14159265358979323846264338327950288L);
        s += w * phi * expected_term(name, lambda, mu * x - 0.5L * mu * mu);
    }
    return s * h / 3.0L;
}

/* The divergence in closed form for two unit Gaussians μ apart, NAN if none. */
static long double gauss_closed_form(const char *name, double lambda, long double mu) {
    long double m2 = mu * mu;
    if (!strcmp(name, "sba")) {
        if (lambda == 0.0)
            name = "kl";
        else if (lambda == -1.0)
            name = "be";
        else {
            long double lam = (long double)lambda;
            /* E_q[e^{−λl}] = e^{λ(1+λ)μ²/2} */
            return expm1l(lam * (1 + lam) * m2 / 2) / (lam * (lam + 1));
        }
    }
    if (!strcmp(name, "kl") || !strcmp(name, "rkl") || !strcmp(name, "dikl") ||
        !strcmp(name, "be") || !strcmp(name, "fkl"))
        return m2 / 2; /* KL is symmetric here */
    if (!strcmp(name, "jeffreys")) return m2;
    if (!strcmp(name, "sh")) return -expm1l(-m2 / 8);
    if (!strcmp(name, "ls")) return expm1l(m2) / 2; /* ½χ² */
    return NAN;
}

static float *g_gauss_x;

static void value_estimates(const div_case *c, const wb_plugin_desc *d, test_cfg *tc,
                            double lambda) {
    /* sba's e^{−λl} is log-normal with log-sd λμ: keep λμ ≤ 1 so the
     * quantile grid (|x| ≤ 4.4) holds all but ~1e-4 of its mass */
    double mu = (!strcmp(c->name, "sba") && fabs(lambda) > 2.0) ? 1.0 / fabs(lambda) : 0.5;
    float *l = malloc(sizeof(float) * MC_N);
    assert_non_null(l);
    for (int i = 0; i < MC_N; i++) l[i] = (float)(mu * g_gauss_x[i] - 0.5 * mu * mu);
    double est = d->divergence->value(&tc->cfg, MC_N, l);
    free(l);
    long double quad = quad_expectation(c->name, lambda, mu);
    assert_close("estimate vs quadrature", c->name, lambda, mu, est, quad, 2e-3L, 2e-5L);
    long double exact = gauss_closed_form(c->name, lambda, mu);
    if (!isnan(exact)) {
        assert_close("quadrature vs closed form", c->name, lambda, mu, quad, exact, 1e-9L, 1e-12L);
        assert_close("estimate vs closed form", c->name, lambda, mu, est, exact, 2e-3L, 2e-5L);
    }
}

static void test_value_estimates_divergence(void **state) {
    (void)state;
    g_gauss_x = malloc(sizeof(float) * MC_N);
    assert_non_null(g_gauss_x);
    for (int i = 0; i < MC_N; i++) g_gauss_x[i] = (float)normal_quantile((i + 0.5) / MC_N);
    for_each_case(value_estimates);
    free(g_gauss_x);
    g_gauss_x = NULL;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_libraries),
        cmocka_unit_test(test_score_free_flags),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_exports),
        cmocka_unit_test(test_weights_closed_form),
        cmocka_unit_test(test_weights_monotone),
        cmocka_unit_test(test_weights_symmetry),
        cmocka_unit_test(test_weights_nan),
        cmocka_unit_test(test_weights_empty),
        cmocka_unit_test(test_value_finite),
        cmocka_unit_test(test_value_closed_form),
        cmocka_unit_test(test_value_at_zero),
        cmocka_unit_test(test_value_nonnegative),
        cmocka_unit_test(test_value_identities),
        cmocka_unit_test(test_value_estimates_divergence),
    };
    return cmocka_run_group_tests_name("divergences", tests, load_all, unload_all);
}

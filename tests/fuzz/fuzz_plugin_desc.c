/* tests/fuzz/fuzz_plugin_desc.c — fuzzes the plugin descriptor validation
 * (host/core/registry.c): "a fuzzed descriptor in a loaded .so". The input
 * bytes are decoded into a wb_plugin_library in this process's memory —
 * ABI versions, struct sizes, member count, NULL pointers, kinds, names,
 * versions, families, function tables (each kind's, set or not, sizes),
 * and parameter tables (names, types, defaults, bounds, def_str, choices,
 * counts) — and handed to wb_registry_add_library, the same checks
 * wb_registry_load_file runs once a library's entry has returned.
 *
 * An accepted library is then used the way the host uses one: a
 * configuration of every member from its defaults (wb_config_new), its JSON
 * (wb_config_to_json, which must parse back as a JSON object), the typed
 * lookups, the setters with fuzzed values, and — the registry's promise —
 * every default given back through its setter must be accepted (a default a
 * user could not pass is a finding). The same library offered again must be
 * refused as a duplicate.
 *
 * Decoding: a byte stream read front to back; when it runs out every
 * further byte reads as 0 (a small input still makes a whole descriptor).
 * Strings are a length byte and that many bytes, or one of a few stock
 * names. Seeds: corpus/fuzz_plugin_desc/ (make_corpus.py).
 */
#include "fuzz_util.h"

#include <math.h>

#include <cjson/cJSON.h>

#include "core/registry.h"
#include "wb/plugin.h"
#include "wb/tensor.h"

/* ---- the byte stream --------------------------------------------------------- */
typedef struct reader {
    const uint8_t *p;
    size_t left;
} reader;

static uint8_t u8(reader *r) {
    if (!r->left) return 0;
    r->left--;
    return *r->p++;
}

static uint32_t u32(reader *r) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)u8(r) << (8 * i);
    return v;
}

/* Everything the decoded library points at, freed after the registry. */
typedef struct arena {
    void *blocks[4096];
    int n;
} arena;

static void *arena_alloc(arena *a, size_t bytes) {
    if (a->n == (int)(sizeof a->blocks / sizeof a->blocks[0])) return NULL;
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p) abort();
    a->blocks[a->n++] = p;
    return p;
}

static void arena_free(arena *a) {
    for (int i = 0; i < a->n; i++) free(a->blocks[i]);
    a->n = 0;
}

#define TOO_LONG_NAME "way-too-long-name-for-a-plugin-which-the-host-refuses-at-forty-nine"
static const char *const stock_names[] = {"kl",     "alpha", "mlp", "classifier", "widths", "preset",
                                          "lambda", "x",     "a-b_c9", "UPPER",    "",       TOO_LONG_NAME};

/* A string: NULL, a stock one, or bytes from the stream (any bytes, the
 * NUL-terminated copy ends at the first NUL among them). */
static const char *str(reader *r, arena *a) {
    uint8_t sel = u8(r);
    if (sel == 0) return NULL;
    if (sel < 0x80) return stock_names[sel % (sizeof stock_names / sizeof stock_names[0])];
    size_t len = u8(r);
    char *s = arena_alloc(a, len + 1);
    if (!s) return NULL;
    for (size_t i = 0; i < len; i++) s[i] = (char)u8(r);
    return s;
}

/* A double: special values (bounds and defaults live on their edges) or
 * eight raw bytes. */
static double num(reader *r) {
    static const double specials[] = {0.0, 1.0, -1.0, 1.5, 2.0, 64.0, 16384.0, -10.0, 1e300, -1e300,
                                      9.2233720368547758e18, 0.001};
    uint8_t sel = u8(r);
    if (sel < 0xf0) return specials[sel % (sizeof specials / sizeof specials[0])];
    if (sel == 0xf0) return NAN;
    if (sel == 0xf1) return INFINITY;
    if (sel == 0xf2) return -INFINITY;
    uint64_t bits = (uint64_t)u32(r) | (uint64_t)u32(r) << 32;
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* A struct size: the first release's, the host's, or something else. */
static uint32_t size_of(reader *r, size_t v1, size_t host) {
    uint8_t sel = u8(r);
    if (sel < 0xc0) return (uint32_t)host;
    if (sel < 0xe0) return (uint32_t)v1;
    if (sel < 0xf0) return (uint32_t)(host + 8); /* newer than this host: refused before it is read */
    return (uint32_t)(sel & 0x0f);                /* far too small */
}

/* ---- stand-ins for the plugin functions (never called) ------------------------ */
static void weights(const wb_config *cfg, int64_t n, const float *l, float *ws, float *wl) {
    (void)cfg, (void)n, (void)l, (void)ws, (void)wl;
}
static double value(const wb_config *cfg, int64_t n, const float *l) { return (void)cfg, (void)n, (void)l, 0.0; }
static void *net_create(const wb_config *cfg, const wb_net_shape *shape, wb_params *params, char *err, size_t len) {
    return (void)cfg, (void)shape, (void)params, (void)err, (void)len, NULL;
}
static void destroy(void *self) { (void)self; }
static wb_tensor *forward(void *self, wb_graph *g, wb_tensor *x, wb_tensor *c, wb_tensor *labels, wb_features *f) {
    return (void)self, (void)g, (void)x, (void)c, (void)labels, (void)f, NULL;
}
static void *ratio_create(const wb_config *cfg, const wb_ratio_env *env, wb_params *params, char *err, size_t len) {
    return (void)cfg, (void)env, (void)params, (void)err, (void)len, NULL;
}
static wb_tensor *logit(void *self, wb_graph *g, const wb_ratio_input *in) { return (void)self, (void)g, (void)in, NULL; }

#define V1(type, last) (offsetof(type, last) + sizeof(((type *)0)->last))

/* ---- decoding ---------------------------------------------------------------------- */
static wb_param_spec *decode_params(reader *r, arena *a, int n) {
    wb_param_spec *ps = arena_alloc(a, (size_t)n * sizeof *ps);
    if (!ps) return NULL;
    for (int i = 0; i < n; i++) {
        wb_param_spec *s = &ps[i];
        s->name = str(r, a);
        uint8_t t = u8(r);
        s->type = t < 0xf0 ? (wb_param_type)(1 + t % 5) : (wb_param_type)(t - 0xf8); /* -8..7 */
        s->def = num(r);
        s->min = num(r);
        s->max = num(r);
        s->def_str = str(r, a);
        s->choices = str(r, a);
        s->doc = str(r, a);
    }
    return ps;
}

static const wb_plugin_desc *decode_desc(reader *r, arena *a) {
    uint8_t flags = u8(r);
    if (flags == 0xff) return NULL; /* a NULL member */
    wb_plugin_desc *d = arena_alloc(a, sizeof *d + 16); /* a struct_size past ours is never read */
    if (!d) return NULL;
    d->abi_version = u8(r) < 0xf8 ? WB_ABI_VERSION : u32(r);
    d->struct_size = size_of(r, V1(wb_plugin_desc, ratio), sizeof(wb_plugin_desc));
    uint8_t k = u8(r);
    d->kind = k < 0xf0 ? (wb_plugin_kind)(1 + k % 3) : (wb_plugin_kind)(k - 0xf8);
    d->name = str(r, a);
    d->version = str(r, a);
    d->doc = str(r, a);
    d->family = str(r, a);
    uint8_t np = u8(r);
    d->n_params = np < 0xf0 ? np % 6 : np == 0xf0 ? 65 : np == 0xf1 ? -1 : np % 64;
    int alloc = d->n_params > 0 && d->n_params <= 64 ? d->n_params : 0;
    d->params = flags & 1 ? NULL : alloc ? decode_params(r, a, alloc) : NULL;
    /* tables: the kind's own (usually), and now and then another's */
    uint8_t tables = u8(r);
    int own = d->kind >= 1 && d->kind <= 3 ? 1 << (d->kind - 1) : 1;
    int want = tables < 0xc0 ? own : tables & 7;
    if (want & 1) {
        wb_divergence_fns *f = arena_alloc(a, sizeof *f + 16);
        if (f) {
            f->struct_size = size_of(r, V1(wb_divergence_fns, value), sizeof *f);
            f->score_free = u8(r) & 1;
            f->weights = u8(r) < 0xf0 ? weights : NULL;
            f->value = u8(r) < 0xf0 ? value : NULL;
        }
        d->divergence = f;
    }
    if (want & 4) { /* kind 3 */
        wb_net_fns *f = arena_alloc(a, sizeof *f + 16);
        if (f) {
            f->struct_size = size_of(r, V1(wb_net_fns, forward), sizeof *f);
            f->create = u8(r) < 0xf0 ? net_create : NULL;
            f->destroy = u8(r) < 0xf0 ? destroy : NULL;
            f->forward = u8(r) < 0xf0 ? forward : NULL;
        }
        d->net = f;
    }
    if (want & 2) { /* kind 2 */
        wb_ratio_fns *f = arena_alloc(a, sizeof *f + 16);
        if (f) {
            f->struct_size = size_of(r, V1(wb_ratio_fns, logit), sizeof *f);
            f->wants_backbone = u8(r) & 1;
            f->create = u8(r) < 0xf0 ? ratio_create : NULL;
            f->destroy = u8(r) < 0xf0 ? destroy : NULL;
            f->logit = u8(r) < 0xf0 ? logit : NULL;
        }
        d->ratio = f;
    }
    return d;
}

/* ---- what the host does with an accepted plugin --------------------------------------- */
static void fail(const char *what, const wb_plugin_desc *d, const wb_param_spec *s) {
    fprintf(stderr, "fuzz_plugin_desc: %s (plugin '%s', parameter '%s'): %s\n", what, d->name,
            s ? s->name : "-", wb_last_error());
    abort();
}

static void use_plugin(const wb_plugin_desc *d, reader *r, arena *a) {
    wb_config_owned *c = wb_config_new(d);
    if (!c) abort();
    char *json = wb_config_to_json(&c->cfg);
    cJSON *parsed = json ? cJSON_Parse(json) : NULL;
    if (!cJSON_IsObject(parsed)) {
        fprintf(stderr, "fuzz_plugin_desc: wb_config_to_json wrote no JSON object: %s\n", json ? json : "(null)");
        abort();
    }
    cJSON_Delete(parsed);
    free(json);
    for (int i = 0; i < d->n_params; i++) {
        const wb_param_spec *s = &d->params[i];
        const wb_param_value *v = &c->values[i];
        int64_t ints[WB_MAX_INTS + 1];
        (void)wb_config_number(&c->cfg, s->name, 0.0);
        (void)wb_config_int(&c->cfg, s->name, 0);
        (void)wb_config_bool(&c->cfg, s->name, 0);
        (void)wb_config_string(&c->cfg, s->name, "");
        (void)wb_config_ints(&c->cfg, s->name, ints, WB_MAX_INTS);
        /* the default, given back, is accepted */
        switch (s->type) {
        case WB_PARAM_NUMBER:
        case WB_PARAM_INT:
        case WB_PARAM_BOOL:
            if (wb_config_set_number(c, s->name, s->def) != 0) fail("default refused by its setter", d, s);
            break;
        case WB_PARAM_STRING:
            if (strcmp(v->str, s->def_str) != 0) fail("default string cut", d, s);
            if (wb_config_set_string(c, s->name, s->def_str) != 0) fail("default refused by its setter", d, s);
            break;
        case WB_PARAM_INTS:
            memcpy(ints, v->ints, sizeof v->ints);
            if (wb_config_set_ints(c, s->name, ints, v->n_ints) != 0) fail("default refused by its setter", d, s);
            break;
        }
        /* fuzzed values: refused or taken, never a crash */
        wb_config_set_number(c, s->name, num(r));
        const char *text = str(r, a);
        if (text) wb_config_set_string(c, s->name, text);
        int n_ints = u8(r) % (WB_MAX_INTS + 2);
        for (int k = 0; k < n_ints; k++) ints[k] = (int64_t)((uint64_t)u32(r) | (uint64_t)u32(r) << 32);
        wb_config_set_ints(c, s->name, ints, n_ints);
    }
    wb_config_spec(c, "no-such-parameter");
    json = wb_config_to_json(&c->cfg);
    parsed = json ? cJSON_Parse(json) : NULL;
    if (!cJSON_IsObject(parsed)) {
        fprintf(stderr, "fuzz_plugin_desc: wb_config_to_json wrote no JSON object after sets: %s\n",
                json ? json : "(null)");
        abort();
    }
    cJSON_Delete(parsed);
    free(json);
    wb_config_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    reader r = {data, size};
    arena *a = calloc(1, sizeof *a);
    if (!a) abort();
    wb_plugin_library *lib = arena_alloc(a, sizeof *lib + 16);
    uint8_t head = u8(&r);
    lib->abi_version = head < 0xf8 ? WB_ABI_VERSION : u32(&r);
    lib->struct_size = size_of(&r, V1(wb_plugin_library, plugins), sizeof *lib);
    uint8_t n = u8(&r);
    lib->n_plugins = n < 0xf0 ? 1 + n % 4 : n == 0xf0 ? 0 : n == 0xf1 ? 65 : n == 0xf2 ? -3 : 3;
    int members = lib->n_plugins >= 1 && lib->n_plugins <= 64 ? lib->n_plugins : 0;
    if (!(head & 1) && members) {
        const wb_plugin_desc **list = arena_alloc(a, (size_t)members * sizeof *list);
        for (int i = 0; list && i < members; i++) list[i] = decode_desc(&r, a);
        lib->plugins = list;
    } /* else: plugins stays NULL */

    wb_registry *reg = wb_registry_new();
    if (!reg) abort();
    int added = wb_registry_add_library(reg, "/fuzz/lib.so", lib) == 0;
    fuzz_note("add library", !added);
    if (added) {
        if (wb_registry_count(reg) != lib->n_plugins) abort();
        for (int i = 0; i < wb_registry_count(reg); i++) {
            const wb_plugin_info *info = wb_registry_at(reg, i);
            if (wb_registry_find(reg, info->desc->kind, info->desc->name) == NULL) abort();
            (void)wb_kind_name(info->desc->kind);
            use_plugin(info->desc, &r, a);
        }
        if (wb_registry_add_library(reg, "/fuzz/again.so", lib) == 0) {
            fprintf(stderr, "fuzz_plugin_desc: the same plugins registered twice\n");
            abort();
        }
    }
    wb_registry_free(reg);
    arena_free(a);
    free(a);
    return 0;
}

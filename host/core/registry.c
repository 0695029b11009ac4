/* host/core/registry.c — loading plugin libraries with dlopen and validating
 * them before anything else touches them (LADSPA/SQLite-extension style):
 * one entry symbol, versioned descriptors, parameter specs as data.
 *
 * A library is accepted whole or not at all. Every rejection is recorded
 * with the file name and the reason, and loading carries on with the next
 * file, so one broken .so never takes the host down.
 */
#define _GNU_SOURCE /* dladdr: find the folder libwb was loaded from */
#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/registry.h"
#include "core/wb_internal.h"

#define WB_MAX_PLUGINS_PER_LIB 64

typedef struct loaded_lib {
    char *path; /* heap string: plugin infos point at it, so it must not move */
    void *handle;
} loaded_lib;

struct wb_registry {
    wb_plugin_info *plugins;
    int n, cap;
    loaded_lib *libs;
    int n_libs, cap_libs;
    char **errors;
    int n_errors, cap_errors;
};

static void add_error(wb_registry *reg, const char *msg) {
    if (reg->n_errors == reg->cap_errors) {
        int cap = reg->cap_errors ? reg->cap_errors * 2 : 8;
        char **e = realloc(reg->errors, (size_t)cap * sizeof *e);
        if (!e) return;
        reg->errors = e;
        reg->cap_errors = cap;
    }
    reg->errors[reg->n_errors++] = strdup(msg);
}

wb_registry *wb_registry_new(void) { return calloc(1, sizeof(wb_registry)); }

void wb_registry_free(wb_registry *reg) {
    if (!reg) return;
    for (int i = 0; i < reg->n_libs; i++) {
        dlclose(reg->libs[i].handle);
        free(reg->libs[i].path);
    }
    for (int i = 0; i < reg->n_errors; i++) free(reg->errors[i]);
    free(reg->errors);
    free(reg->libs);
    free(reg->plugins);
    free(reg);
}

int wb_registry_count(const wb_registry *reg) { return reg->n; }
const wb_plugin_info *wb_registry_at(const wb_registry *reg, int i) { return &reg->plugins[i]; }
int wb_registry_error_count(const wb_registry *reg) { return reg->n_errors; }
const char *wb_registry_error(const wb_registry *reg, int i) { return reg->errors[i]; }

const char *wb_kind_name(wb_plugin_kind kind) {
    switch (kind) {
    case WB_KIND_DIVERGENCE: return "divergence";
    case WB_KIND_RATIO: return "ratio";
    case WB_KIND_NET: return "net";
    }
    return "unknown";
}

const wb_plugin_info *wb_registry_find(const wb_registry *reg, wb_plugin_kind kind, const char *name) {
    for (int i = 0; i < reg->n; i++)
        if (reg->plugins[i].desc->kind == kind && strcmp(reg->plugins[i].desc->name, name) == 0)
            return &reg->plugins[i];
    return NULL;
}

/* ---- validation ------------------------------------------------------------ */
static int valid_name(const char *s) {
    if (!s || !*s || strlen(s) > 48) return 0;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_' || *s == '-')) return 0;
    return 1;
}

/* Checks one descriptor; writes the reason into why. */
static int validate_desc(const wb_plugin_desc *d, char *why, size_t n) {
    if (!d) return snprintf(why, n, "descriptor pointer is NULL"), -1;
    if (d->abi_version != WB_ABI_VERSION)
        return snprintf(why, n, "descriptor '%s' has ABI version %u, host expects %u",
                        valid_name(d->name) ? d->name : "?", d->abi_version, WB_ABI_VERSION), -1;
    if (d->struct_size != sizeof(wb_plugin_desc))
        return snprintf(why, n, "descriptor struct_size %u, host expects %zu", d->struct_size,
                        sizeof(wb_plugin_desc)), -1;
    if (!valid_name(d->name)) return snprintf(why, n, "invalid plugin name (want [a-z0-9_-]+)"), -1;
    if (!d->version || !*d->version) return snprintf(why, n, "plugin '%s' has no version", d->name), -1;
    if (d->n_params < 0 || d->n_params > 64 || (d->n_params > 0 && !d->params))
        return snprintf(why, n, "plugin '%s': bad parameter table", d->name), -1;
    for (int i = 0; i < d->n_params; i++) {
        const wb_param_spec *s = &d->params[i];
        if (!valid_name(s->name)) return snprintf(why, n, "plugin '%s': parameter %d has an invalid name", d->name, i), -1;
        if (s->type < WB_PARAM_NUMBER || s->type > WB_PARAM_INTS)
            return snprintf(why, n, "plugin '%s': parameter '%s' has unknown type %d", d->name, s->name, s->type), -1;
        if ((s->type == WB_PARAM_NUMBER || s->type == WB_PARAM_INT) && !(s->min <= s->def && s->def <= s->max))
            return snprintf(why, n, "plugin '%s': parameter '%s' default %g outside [%g, %g]", d->name, s->name,
                            s->def, s->min, s->max), -1;
        if ((s->type == WB_PARAM_STRING || s->type == WB_PARAM_INTS) && !s->def_str)
            return snprintf(why, n, "plugin '%s': parameter '%s' has no default", d->name, s->name), -1;
        for (int j = 0; j < i; j++)
            if (strcmp(d->params[j].name, s->name) == 0)
                return snprintf(why, n, "plugin '%s': parameter '%s' declared twice", d->name, s->name), -1;
    }
    switch (d->kind) {
    case WB_KIND_DIVERGENCE:
        if (!d->divergence) return snprintf(why, n, "divergence '%s' has no function table", d->name), -1;
        if (d->divergence->struct_size != sizeof(wb_divergence_fns))
            return snprintf(why, n, "divergence '%s': table struct_size %u, host expects %zu", d->name,
                            d->divergence->struct_size, sizeof(wb_divergence_fns)), -1;
        if (!d->divergence->weights) return snprintf(why, n, "divergence '%s': required function 'weights' is NULL", d->name), -1;
        if (!d->divergence->value) return snprintf(why, n, "divergence '%s': required function 'value' is NULL", d->name), -1;
        break;
    case WB_KIND_NET:
        if (!d->net) return snprintf(why, n, "net '%s' has no function table", d->name), -1;
        if (d->net->struct_size != sizeof(wb_net_fns))
            return snprintf(why, n, "net '%s': table struct_size %u, host expects %zu", d->name,
                            d->net->struct_size, sizeof(wb_net_fns)), -1;
        if (!d->net->create || !d->net->destroy || !d->net->forward)
            return snprintf(why, n, "net '%s': required function %s is NULL", d->name,
                            !d->net->create ? "'create'" : !d->net->destroy ? "'destroy'" : "'forward'"), -1;
        break;
    case WB_KIND_RATIO:
        if (!d->ratio) return snprintf(why, n, "ratio estimator '%s' has no function table", d->name), -1;
        if (d->ratio->struct_size != sizeof(wb_ratio_fns))
            return snprintf(why, n, "ratio '%s': table struct_size %u, host expects %zu", d->name,
                            d->ratio->struct_size, sizeof(wb_ratio_fns)), -1;
        if (!d->ratio->create || !d->ratio->destroy || !d->ratio->logit)
            return snprintf(why, n, "ratio '%s': required function %s is NULL", d->name,
                            !d->ratio->create ? "'create'" : !d->ratio->destroy ? "'destroy'" : "'logit'"), -1;
        break;
    default: return snprintf(why, n, "plugin '%s' has unknown kind %d", d->name, (int)d->kind), -1;
    }
    return 0;
}

static int reject(wb_registry *reg, const char *path, const char *why, void *handle) {
    char msg[1200];
    snprintf(msg, sizeof msg, "%s: %s", path, why);
    add_error(reg, msg);
    wb_set_error("%s", msg);
    if (handle) dlclose(handle);
    return -1;
}

int wb_registry_load_file(wb_registry *reg, const char *path) {
    char real[PATH_MAX];
    if (!realpath(path, real)) return reject(reg, path, "cannot resolve path", NULL);
    for (int i = 0; i < reg->n_libs; i++)
        if (strcmp(reg->libs[i].path, real) == 0) return 0; /* found twice on the search path */

    void *handle = dlopen(real, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        char why[1024];
        snprintf(why, sizeof why, "dlopen failed: %s", dlerror());
        return reject(reg, path, why, NULL);
    }
    dlerror();
    void *sym = dlsym(handle, WB_PLUGIN_ENTRY_SYMBOL);
    if (!sym) return reject(reg, path, "missing entry symbol '" WB_PLUGIN_ENTRY_SYMBOL "'", handle);
    wb_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry); /* object pointer -> function pointer without a cast warning */
    const wb_plugin_library *lib = entry();
    char why[512];
    if (!lib) return reject(reg, path, "entry returned NULL", handle);
    if (lib->abi_version != WB_ABI_VERSION) {
        snprintf(why, sizeof why, "ABI version %u, host expects %u (rebuild the plugin against this wb/plugin.h)",
                 lib->abi_version, WB_ABI_VERSION);
        return reject(reg, path, why, handle);
    }
    if (lib->struct_size != sizeof(wb_plugin_library)) {
        snprintf(why, sizeof why, "library struct_size %u, host expects %zu", lib->struct_size,
                 sizeof(wb_plugin_library));
        return reject(reg, path, why, handle);
    }
    if (lib->n_plugins < 1 || lib->n_plugins > WB_MAX_PLUGINS_PER_LIB || !lib->plugins) {
        snprintf(why, sizeof why, "library declares %d plugins (1..%d)", lib->n_plugins, WB_MAX_PLUGINS_PER_LIB);
        return reject(reg, path, why, handle);
    }
    for (int i = 0; i < lib->n_plugins; i++) {
        const wb_plugin_desc *d = lib->plugins[i];
        if (validate_desc(d, why, sizeof why)) return reject(reg, path, why, handle);
        for (int j = 0; j < i; j++)
            if (lib->plugins[j]->kind == d->kind && strcmp(lib->plugins[j]->name, d->name) == 0) {
                snprintf(why, sizeof why, "%s '%s' registered twice in this library", wb_kind_name(d->kind), d->name);
                return reject(reg, path, why, handle);
            }
        const wb_plugin_info *dup = wb_registry_find(reg, d->kind, d->name);
        if (dup) {
            snprintf(why, sizeof why, "duplicate %s name '%s' (already loaded from %s)", wb_kind_name(d->kind),
                     d->name, dup->path);
            return reject(reg, path, why, handle);
        }
    }
    /* accepted: record the library and its members */
    if (reg->n_libs == reg->cap_libs) {
        int cap = reg->cap_libs ? reg->cap_libs * 2 : 16;
        loaded_lib *l = realloc(reg->libs, (size_t)cap * sizeof *l);
        if (!l) return reject(reg, path, "out of memory", handle);
        reg->libs = l;
        reg->cap_libs = cap;
    }
    loaded_lib *ll = &reg->libs[reg->n_libs++];
    ll->path = strdup(real);
    ll->handle = handle;
    if (reg->n + lib->n_plugins > reg->cap) {
        int cap = reg->cap ? reg->cap * 2 : 32;
        while (cap < reg->n + lib->n_plugins) cap *= 2;
        wb_plugin_info *p = realloc(reg->plugins, (size_t)cap * sizeof *p);
        if (!p) return -1;
        reg->plugins = p;
        reg->cap = cap;
    }
    for (int i = 0; i < lib->n_plugins; i++) {
        reg->plugins[reg->n].desc = lib->plugins[i];
        reg->plugins[reg->n].path = ll->path;
        reg->n++;
    }
    return 0;
}

static int ends_with_so(const char *name) {
    size_t n = strlen(name);
    return n > 3 && strcmp(name + n - 3, ".so") == 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted, so loading order (and so duplicate resolution) is deterministic. */
static int load_dir_level(wb_registry *reg, const char *dir, int depth) {
    DIR *dh = opendir(dir);
    if (!dh) return 0;
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(dh))) {
        if (de->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, (size_t)cap * sizeof *nn);
            if (!nn) break;
            names = nn;
        }
        names[n++] = strdup(de->d_name);
    }
    closedir(dh);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    int accepted = 0;
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct stat st;
        if (stat(path, &st) == 0) {
            if (S_ISDIR(st.st_mode) && depth == 0) accepted += load_dir_level(reg, path, 1);
            else if (S_ISREG(st.st_mode) && ends_with_so(names[i])) accepted += wb_registry_load_file(reg, path) == 0;
        }
        free(names[i]);
    }
    free(names);
    return accepted;
}

int wb_registry_load_dir(wb_registry *reg, const char *dir) { return load_dir_level(reg, dir, 0); }

/* The folder libwb.so was loaded from, or "" when unknown. */
static void libwb_dir(char *dir, size_t n) {
    Dl_info info;
    dir[0] = 0;
    if (!dladdr((void *)&wb_registry_discover, &info) || !info.dli_fname) return;
    char real[PATH_MAX];
    if (!realpath(info.dli_fname, real)) return;
    char *slash = strrchr(real, '/');
    if (!slash) return;
    *slash = 0;
    snprintf(dir, n, "%s", real);
}

void wb_registry_discover(wb_registry *reg) {
    /* A libwb in the build tree uses the build's plugin folders; an
     * installed one uses <its folder>/wb/plugins (so an install moved or
     * made with --prefix finds its own) and the configured install folder.
     * Never both: the same plugins would load twice and clash by name. */
    char dir[PATH_MAX], build_root[PATH_MAX];
    libwb_dir(dir, sizeof dir);
    int in_build = realpath(WB_BUILD_ROOT, build_root) && strcmp(dir, build_root) == 0;
    if (in_build || !dir[0]) {
        wb_registry_load_dir(reg, WB_PLUGIN_BUILD_DIR);
    } else {
        char beside[PATH_MAX + 16];
        snprintf(beside, sizeof beside, "%s/wb/plugins", dir);
        wb_registry_load_dir(reg, beside);
        wb_registry_load_dir(reg, WB_PLUGIN_INSTALL_DIR);
    }
    const char *env = getenv("WB_PLUGIN_PATH");
    if (env) {
        char *copy = strdup(env), *save = NULL;
        for (char *tok = strtok_r(copy, ":", &save); tok; tok = strtok_r(NULL, ":", &save))
            if (*tok) wb_registry_load_dir(reg, tok);
        free(copy);
    }
    wb_registry_load_dir(reg, "plugins");
}

/* ---- resolved configurations -------------------------------------------------- */
static int parse_ints(const char *s, int64_t *out, int cap) {
    int n = 0;
    while (s && *s && n < cap) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s) break;
        out[n++] = v;
        s = end;
        while (*s == ',' || *s == ' ') s++;
    }
    return n;
}

wb_config_owned *wb_config_new(const wb_plugin_desc *desc) {
    wb_config_owned *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->desc = desc;
    c->values = calloc((size_t)(desc->n_params ? desc->n_params : 1), sizeof *c->values);
    for (int i = 0; i < desc->n_params; i++) {
        const wb_param_spec *s = &desc->params[i];
        wb_param_value *v = &c->values[i];
        v->num = s->def;
        if (s->type == WB_PARAM_STRING) snprintf(v->str, sizeof v->str, "%s", s->def_str);
        if (s->type == WB_PARAM_INTS) v->n_ints = parse_ints(s->def_str, v->ints, WB_MAX_INTS);
    }
    c->cfg.n = desc->n_params;
    c->cfg.specs = desc->params;
    c->cfg.values = c->values;
    return c;
}

void wb_config_free(wb_config_owned *c) {
    if (!c) return;
    free(c->values);
    free(c);
}

const wb_param_spec *wb_config_spec(const wb_config_owned *c, const char *key) {
    for (int i = 0; i < c->desc->n_params; i++)
        if (strcmp(c->desc->params[i].name, key) == 0) return &c->desc->params[i];
    char known[512] = "";
    size_t used = 0;
    for (int i = 0; i < c->desc->n_params && used < sizeof known; i++)
        used += (size_t)snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "", c->desc->params[i].name);
    wb_set_error("%s: unknown parameter '%s' (known: %s)", c->desc->name, key,
                 c->desc->n_params ? known : "none");
    return NULL;
}

static wb_param_value *value_of(wb_config_owned *c, const wb_param_spec *s) {
    return &c->values[s - c->desc->params];
}

static const char *type_name(wb_param_type t) {
    switch (t) {
    case WB_PARAM_NUMBER: return "number";
    case WB_PARAM_INT: return "integer";
    case WB_PARAM_BOOL: return "boolean";
    case WB_PARAM_STRING: return "string";
    case WB_PARAM_INTS: return "list of integers";
    }
    return "?";
}

int wb_config_set_number(wb_config_owned *c, const char *key, double value) {
    const wb_param_spec *s = wb_config_spec(c, key);
    if (!s) return -1;
    if (s->type == WB_PARAM_BOOL) {
        value_of(c, s)->num = value != 0.0;
        return 0;
    }
    if (s->type != WB_PARAM_NUMBER && s->type != WB_PARAM_INT) {
        wb_set_error("%s: parameter '%s' expects a %s, got a number", c->desc->name, key, type_name(s->type));
        return -1;
    }
    if (s->type == WB_PARAM_INT && value != (double)(int64_t)value) {
        wb_set_error("%s: parameter '%s' expects an integer, got %g", c->desc->name, key, value);
        return -1;
    }
    if (!(value >= s->min)) {
        wb_set_error("%s: parameter '%s' = %g is below its minimum %g", c->desc->name, key, value, s->min);
        return -1;
    }
    if (!(value <= s->max)) {
        wb_set_error("%s: parameter '%s' = %g is above its maximum %g", c->desc->name, key, value, s->max);
        return -1;
    }
    value_of(c, s)->num = value;
    return 0;
}

int wb_config_set_string(wb_config_owned *c, const char *key, const char *value) {
    const wb_param_spec *s = wb_config_spec(c, key);
    if (!s) return -1;
    if (s->type != WB_PARAM_STRING) {
        wb_set_error("%s: parameter '%s' expects a %s, got a string", c->desc->name, key, type_name(s->type));
        return -1;
    }
    if (strlen(value) >= sizeof c->values[0].str) {
        wb_set_error("%s: parameter '%s': string too long", c->desc->name, key);
        return -1;
    }
    if (s->choices) {
        int ok = 0;
        const char *p = s->choices;
        size_t len = strlen(value);
        while (*p) {
            const char *bar = strchr(p, '|');
            size_t n = bar ? (size_t)(bar - p) : strlen(p);
            if (n == len && strncmp(p, value, n) == 0) ok = 1;
            p += n + (bar ? 1 : 0);
        }
        if (!ok) {
            wb_set_error("%s: parameter '%s' = '%s' is not one of %s", c->desc->name, key, value, s->choices);
            return -1;
        }
    }
    snprintf(value_of(c, s)->str, sizeof c->values[0].str, "%s", value);
    return 0;
}

int wb_config_set_ints(wb_config_owned *c, const char *key, const int64_t *values, int n) {
    const wb_param_spec *s = wb_config_spec(c, key);
    if (!s) return -1;
    if (s->type != WB_PARAM_INTS) {
        wb_set_error("%s: parameter '%s' expects a %s, got a list", c->desc->name, key, type_name(s->type));
        return -1;
    }
    if (n < 1 || n > WB_MAX_INTS) {
        wb_set_error("%s: parameter '%s' takes 1..%d integers, got %d", c->desc->name, key, WB_MAX_INTS, n);
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (values[i] < s->min || values[i] > s->max) {
            wb_set_error("%s: parameter '%s'[%d] = %lld outside [%g, %g]", c->desc->name, key, i + 1,
                         (long long)values[i], s->min, s->max);
            return -1;
        }
    wb_param_value *v = value_of(c, s);
    v->n_ints = n;
    for (int i = 0; i < n; i++) v->ints[i] = values[i];
    return 0;
}

char *wb_config_to_json(const wb_config *cfg) {
    size_t cap = 256 + (size_t)cfg->n * 256, used = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    used += (size_t)snprintf(out + used, cap - used, "{");
    for (int i = 0; i < cfg->n; i++) {
        const wb_param_spec *s = &cfg->specs[i];
        const wb_param_value *v = &cfg->values[i];
        used += (size_t)snprintf(out + used, cap - used, "%s\"%s\": ", i ? ", " : "", s->name);
        switch (s->type) {
        case WB_PARAM_NUMBER: used += (size_t)snprintf(out + used, cap - used, "%.17g", v->num); break;
        case WB_PARAM_INT: used += (size_t)snprintf(out + used, cap - used, "%lld", (long long)v->num); break;
        case WB_PARAM_BOOL: used += (size_t)snprintf(out + used, cap - used, "%s", v->num ? "true" : "false"); break;
        case WB_PARAM_STRING: used += (size_t)snprintf(out + used, cap - used, "\"%s\"", v->str); break;
        case WB_PARAM_INTS:
            used += (size_t)snprintf(out + used, cap - used, "[");
            for (int k = 0; k < v->n_ints; k++)
                used += (size_t)snprintf(out + used, cap - used, "%s%lld", k ? ", " : "", (long long)v->ints[k]);
            used += (size_t)snprintf(out + used, cap - used, "]");
            break;
        }
    }
    snprintf(out + used, cap - used, "}");
    return out;
}

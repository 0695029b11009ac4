/* host/core/registry.c — loading plugin libraries with dlopen and validating
 * them before anything else touches them (LADSPA/SQLite-extension style):
 * one entry symbol, versioned descriptors, parameter specs as data.
 *
 * A library is accepted whole or not at all. Every rejection is recorded
 * with the file name and the reason, and loading carries on with the next
 * file, so one broken .so never takes the host down.
 *
 * Struct sizes (wb/plugin.h, "How the ABI grows"): a plugin-filled struct
 * may be anything from its first-release size (the prefix every plugin
 * knows) up to the host's sizeof. The host never reads a plugin's struct
 * past its struct_size: it copies the descriptor and its function table
 * into zeroed host-size structs (appended fields read as 0 / NULL) and hands
 * out only those copies.
 */
#define _GNU_SOURCE /* dladdr: find the folder this library was loaded from */
#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/escape.h"
#include "core/registry.h"
#include "core/wb_internal.h"

#define WB_MAX_PLUGINS_PER_LIB 64

/* Size of a struct up to and including field: the first-release prefix,
 * named by its last first-release field so appending fields never moves it. */
#define PREFIX_SIZE(type, last_field) (offsetof(type, last_field) + sizeof(((type *)0)->last_field))
#define LIBRARY_V1_SIZE PREFIX_SIZE(wb_plugin_library, plugins)
#define DESC_V1_SIZE PREFIX_SIZE(wb_plugin_desc, ratio)
#define DIVERGENCE_FNS_V1_SIZE PREFIX_SIZE(wb_divergence_fns, value)
#define NET_FNS_V1_SIZE PREFIX_SIZE(wb_net_fns, forward)
#define RATIO_FNS_V1_SIZE PREFIX_SIZE(wb_ratio_fns, logit)

/* The host's copy of one descriptor and its function table. */
typedef struct desc_copy {
    wb_plugin_desc desc; /* .divergence / .net / .ratio point at fns below */
    union {
        wb_divergence_fns divergence;
        wb_net_fns net;
        wb_ratio_fns ratio;
    } fns;
} desc_copy;

typedef struct loaded_lib {
    char *path; /* heap string: plugin infos point at it, so it must not move */
    void *handle;
    desc_copy *descs; /* n_descs host copies; plugin infos point into it */
    int n_descs;
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
        if (reg->libs[i].handle) dlclose(reg->libs[i].handle);
        free(reg->libs[i].path);
        free(reg->libs[i].descs);
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

/* A struct_size between the first-release prefix and the host's sizeof. */
static int size_ok(uint32_t size, size_t v1, size_t host) { return size >= v1 && size <= host; }

static int size_error(char *why, size_t n, const char *what, uint32_t size, size_t v1, size_t host) {
    snprintf(why, n, "%s struct_size %u, host accepts %zu..%zu (%s)", what, size, v1, host,
             size < v1 ? "smaller than the first release's: not built against wb/plugin.h"
                       : "larger than the host's: built against a newer wb/plugin.h");
    return -1;
}

/* Checks the ABI version and struct sizes of descriptor `index` and copies
 * it, and its kind's table, into dst (zeroed first, so fields the plugin's
 * struct_size does not cover read as 0 / NULL). Nothing past a struct_size is
 * read. Writes the reason into why. */
static int copy_desc(const wb_plugin_desc *d, int index, desc_copy *dst, char *why, size_t n) {
    memset(dst, 0, sizeof *dst);
    if (!d) return snprintf(why, n, "descriptor %d: pointer is NULL", index), -1;
    if (d->abi_version != WB_ABI_VERSION)
        return snprintf(why, n, "descriptor %d has ABI version %u, host expects %u", index, d->abi_version,
                        WB_ABI_VERSION), -1;
    if (!size_ok(d->struct_size, DESC_V1_SIZE, sizeof(wb_plugin_desc))) {
        char what[48];
        snprintf(what, sizeof what, "descriptor %d", index);
        return size_error(why, n, what, d->struct_size, DESC_V1_SIZE, sizeof(wb_plugin_desc));
    }
    memcpy(&dst->desc, d, d->struct_size);
    wb_plugin_desc *c = &dst->desc;
    const char *name = valid_name(c->name) ? c->name : "?";
    /* the copy holds exactly the table of its kind */
    const void *table = c->kind == WB_KIND_DIVERGENCE ? (const void *)c->divergence
                        : c->kind == WB_KIND_NET      ? (const void *)c->net
                        : c->kind == WB_KIND_RATIO    ? (const void *)c->ratio
                                                      : NULL;
    /* a table of another kind is a descriptor that is not what it says it
     * is (or a copy-paste slip): the host would silently ignore it */
    if (table) {
        const char *other = c->kind != WB_KIND_DIVERGENCE && c->divergence ? "divergence"
                            : c->kind != WB_KIND_NET && c->net          ? "net"
                            : c->kind != WB_KIND_RATIO && c->ratio      ? "ratio"
                                                                        : NULL;
        if (other)
            return snprintf(why, n, "%s '%s' also sets the %s function table (a descriptor sets exactly the table "
                            "of its kind)", c->kind == WB_KIND_RATIO ? "ratio estimator" : wb_kind_name(c->kind),
                            name, other), -1;
    }
    c->divergence = NULL;
    c->net = NULL;
    c->ratio = NULL;
    if (!table) {
        if (c->kind != WB_KIND_DIVERGENCE && c->kind != WB_KIND_NET && c->kind != WB_KIND_RATIO)
            return snprintf(why, n, "plugin '%s' has unknown kind %d", name, (int)c->kind), -1;
        return snprintf(why, n, "%s '%s' has no function table",
                        c->kind == WB_KIND_RATIO ? "ratio estimator" : wb_kind_name(c->kind), name), -1;
    }
    uint32_t table_size;
    memcpy(&table_size, table, sizeof table_size); /* every table starts with its struct_size */
    size_t v1 = c->kind == WB_KIND_DIVERGENCE ? DIVERGENCE_FNS_V1_SIZE
                : c->kind == WB_KIND_NET      ? NET_FNS_V1_SIZE
                                              : RATIO_FNS_V1_SIZE;
    size_t host = c->kind == WB_KIND_DIVERGENCE ? sizeof(wb_divergence_fns)
                  : c->kind == WB_KIND_NET      ? sizeof(wb_net_fns)
                                                : sizeof(wb_ratio_fns);
    if (!size_ok(table_size, v1, host)) {
        char what[96];
        snprintf(what, sizeof what, "%s '%s': table", wb_kind_name(c->kind), name);
        return size_error(why, n, what, table_size, v1, host);
    }
    memcpy(&dst->fns, table, table_size);
    if (c->kind == WB_KIND_DIVERGENCE) c->divergence = &dst->fns.divergence;
    else if (c->kind == WB_KIND_NET) c->net = &dst->fns.net;
    else c->ratio = &dst->fns.ratio;
    return 0;
}

/* A family, when given, is a short printable label for tables. */
static int valid_family(const char *s) {
    if (!*s || strlen(s) > 32) return 0;
    for (; *s; s++)
        if (!isprint((unsigned char)*s)) return 0;
    return 1;
}

/* The integers of an INTS default ("64, 64"): comma-separated, blanks
 * around each allowed. Returns how many (into out, at most cap, counting
 * on past cap), or -1 with *bad at the first token that is not an integer
 * (an empty one included: "1,,2", "" or a trailing comma). */
static int parse_ints_strict(const char *s, int64_t *out, int cap, const char **bad) {
    int n = 0;
    const char *p = s;
    for (;;) {
        while (*p == ' ') p++;
        const char *tok = p;
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno == ERANGE || (*p != '-' && *p != '+' && !isdigit((unsigned char)*p))) {
            *bad = tok;
            return -1;
        }
        p = end;
        while (*p == ' ') p++;
        if (*p != ',' && *p != '\0') {
            *bad = tok;
            return -1;
        }
        if (n < cap) out[n] = v;
        n++;
        if (*p == '\0') return n;
        p++; /* the comma */
    }
}

/* Is value one of the '|'-separated choices? */
static int among_choices(const char *choices, const char *value) {
    size_t len = strlen(value);
    for (const char *p = choices;;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && strncmp(p, value, n) == 0) return 1;
        if (!bar) return 0;
        p = bar + 1;
    }
}

/* A spec's default must be a value a user could pass through the setters
 * (wb_config_set_*): otherwise a run records a configuration that no
 * command line reproduces. Writes the reason into why. */
static int check_default(const char *plugin, const wb_param_spec *s, char *why, size_t n) {
    char shown[WB_ESCAPED_KEY];
    const char *pn = s->name;
    switch (s->type) {
    case WB_PARAM_NUMBER:
    case WB_PARAM_INT:
        if (!(s->min <= s->def && s->def <= s->max))
            return snprintf(why, n, "plugin '%s': parameter '%s' default %g outside [%g, %g]", plugin, pn, s->def,
                            s->min, s->max), -1;
        if (isinf(s->def))
            return snprintf(why, n, "plugin '%s': parameter '%s' default %g is not a finite number", plugin, pn,
                            s->def), -1;
        if (s->type == WB_PARAM_INT && (s->def != floor(s->def) || !(fabs(s->def) < 9223372036854775808.0)))
            return snprintf(why, n, "plugin '%s': parameter '%s' is an integer but its default is %.17g", plugin, pn,
                            s->def), -1;
        return 0;
    case WB_PARAM_BOOL:
        if (s->def != 0.0 && s->def != 1.0)
            return snprintf(why, n, "plugin '%s': parameter '%s' is a boolean but its default is %g (0 or 1)",
                            plugin, pn, s->def), -1;
        return 0;
    case WB_PARAM_STRING: {
        if (!s->def_str) return snprintf(why, n, "plugin '%s': parameter '%s' has no default", plugin, pn), -1;
        size_t len = strlen(s->def_str), room = sizeof(((wb_param_value *)0)->str) - 1;
        if (len > room)
            return snprintf(why, n, "plugin '%s': parameter '%s' default '%s' is %zu bytes, a value holds at most %zu",
                            plugin, pn, wb_escape(s->def_str, shown, sizeof shown), len, room), -1;
        if (s->choices && !*s->choices)
            return snprintf(why, n, "plugin '%s': parameter '%s' has an empty choices list (NULL: any string)",
                            plugin, pn), -1;
        if (s->choices && (s->choices[0] == '|' || s->choices[strlen(s->choices) - 1] == '|' ||
                           strstr(s->choices, "||"))) {
            char shown_choices[WB_ESCAPED_KEY];
            return snprintf(why, n, "plugin '%s': parameter '%s' choices '%s' hold an empty choice", plugin, pn,
                            wb_escape(s->choices, shown_choices, sizeof shown_choices)), -1;
        }
        if (s->choices && !among_choices(s->choices, s->def_str)) {
            char shown_choices[WB_ESCAPED_KEY];
            return snprintf(why, n, "plugin '%s': parameter '%s' default '%s' is not one of %s", plugin, pn,
                            wb_escape(s->def_str, shown, sizeof shown),
                            wb_escape(s->choices, shown_choices, sizeof shown_choices)), -1;
        }
        return 0;
    }
    case WB_PARAM_INTS: {
        if (!s->def_str) return snprintf(why, n, "plugin '%s': parameter '%s' has no default", plugin, pn), -1;
        if (!(s->min <= s->max))
            return snprintf(why, n, "plugin '%s': parameter '%s' bounds [%g, %g] hold no integer list", plugin, pn,
                            s->min, s->max), -1;
        int64_t v[WB_MAX_INTS];
        const char *bad = NULL;
        int count = parse_ints_strict(s->def_str, v, WB_MAX_INTS, &bad);
        if (count < 0) {
            const char *comma = strchr(bad, ',');
            char shown_tok[WB_ESCAPED_KEY];
            return snprintf(why, n, "plugin '%s': parameter '%s' default '%s': '%s' is not an integer", plugin, pn,
                            wb_escape(s->def_str, shown, sizeof shown),
                            wb_escape_n(bad, comma ? (size_t)(comma - bad) : strlen(bad), shown_tok, sizeof shown_tok)),
                   -1;
        }
        if (count > WB_MAX_INTS)
            return snprintf(why, n, "plugin '%s': parameter '%s' default has %d integers, a value holds at most %d",
                            plugin, pn, count, WB_MAX_INTS), -1;
        for (int k = 0; k < count; k++)
            if ((double)v[k] < s->min || (double)v[k] > s->max)
                return snprintf(why, n, "plugin '%s': parameter '%s' default element %d = %lld outside [%g, %g]",
                                plugin, pn, k + 1, (long long)v[k], s->min, s->max), -1;
        return 0;
    }
    }
    return 0;
}

/* Checks one descriptor (the host's copy, sizes already checked); writes
 * the reason into why. */
static int validate_desc(const wb_plugin_desc *d, char *why, size_t n) {
    if (!valid_name(d->name)) return snprintf(why, n, "invalid plugin name (want [a-z0-9_-]+)"), -1;
    if (!d->version || !*d->version) return snprintf(why, n, "plugin '%s' has no version", d->name), -1;
    if (d->family && !valid_family(d->family))
        return snprintf(why, n, "plugin '%s': family must be 1..32 printable characters", d->name), -1;
    if (d->n_params < 0 || d->n_params > 64)
        return snprintf(why, n, "plugin '%s': n_params %d outside 0..64", d->name, d->n_params), -1;
    if (d->n_params > 0 && !d->params)
        return snprintf(why, n, "plugin '%s': n_params %d but its params pointer is NULL", d->name, d->n_params), -1;
    for (int i = 0; i < d->n_params; i++) {
        const wb_param_spec *s = &d->params[i];
        if (!valid_name(s->name)) return snprintf(why, n, "plugin '%s': parameter %d has an invalid name", d->name, i), -1;
        if (s->type < WB_PARAM_NUMBER || s->type > WB_PARAM_INTS)
            return snprintf(why, n, "plugin '%s': parameter '%s' has unknown type %d", d->name, s->name, s->type), -1;
        if (check_default(d->name, s, why, n)) return -1;
        for (int j = 0; j < i; j++)
            if (strcmp(d->params[j].name, s->name) == 0)
                return snprintf(why, n, "plugin '%s': parameter '%s' declared twice", d->name, s->name), -1;
    }
    switch (d->kind) {
    case WB_KIND_DIVERGENCE:
        if (!d->divergence->weights) return snprintf(why, n, "divergence '%s': required function 'weights' is NULL", d->name), -1;
        if (!d->divergence->value) return snprintf(why, n, "divergence '%s': required function 'value' is NULL", d->name), -1;
        break;
    case WB_KIND_NET:
        if (!d->net->create || !d->net->destroy || !d->net->forward)
            return snprintf(why, n, "net '%s': required function %s is NULL", d->name,
                            !d->net->create ? "'create'" : !d->net->destroy ? "'destroy'" : "'forward'"), -1;
        break;
    case WB_KIND_RATIO:
        if (!d->ratio->create || !d->ratio->destroy || !d->ratio->logit)
            return snprintf(why, n, "ratio '%s': required function %s is NULL", d->name,
                            !d->ratio->create ? "'create'" : !d->ratio->destroy ? "'destroy'" : "'logit'"), -1;
        /* the appended joint-training fields (0 / NULL for an older plugin) */
        if (d->ratio->trains_fake_jointly != 0 && d->ratio->trains_fake_jointly != 1)
            return snprintf(why, n, "ratio '%s': trains_fake_jointly is %d, not 0 or 1", d->name,
                            d->ratio->trains_fake_jointly), -1;
        if (d->ratio->trains_fake_jointly && !d->ratio->fake_loss_weight)
            return snprintf(why, n, "ratio '%s': trains_fake_jointly but required function 'fake_loss_weight' is NULL",
                            d->name), -1;
        if (d->ratio->trains_fake_jointly && d->ratio->wants_backbone)
            return snprintf(why, n, "ratio '%s': trains_fake_jointly and wants_backbone exclude each other (a joint "
                            "estimator is the fake net's own)", d->name), -1;
        if (!d->ratio->trains_fake_jointly && d->ratio->fake_loss_weight)
            return snprintf(why, n, "ratio '%s': fake_loss_weight is set but trains_fake_jointly is 0", d->name), -1;
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

/* A library that crashes in a constructor, its entry point or while its
 * descriptors are read would take the host down with it (status 139, no
 * word of which file). So each is first loaded in a child process — fork,
 * dlopen, the entry, a copy of every descriptor it returns — and only a
 * child that comes back normally lets this process load it; a child
 * killed by a signal (or stuck: 10 s) is the file's rejection. Failures the
 * host reports itself (dlopen errors, ABI, NULL entry) the child leaves to
 * the real load, which names them. WB_PLUGIN_PROBE=0 turns the probe off. */
static int probe_child(const char *real) {
    void *h = dlopen(real, RTLD_NOW | RTLD_LOCAL);
    if (!h) return 0;
    void *sym = dlsym(h, WB_PLUGIN_ENTRY_SYMBOL);
    if (!sym) return 0;
    wb_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);
    const wb_plugin_library *lib = entry();
    if (!lib || lib->abi_version != WB_ABI_VERSION || !size_ok(lib->struct_size, LIBRARY_V1_SIZE, sizeof *lib))
        return 0;
    wb_plugin_library copy = {0};
    memcpy(&copy, lib, lib->struct_size);
    if (copy.n_plugins < 1 || copy.n_plugins > WB_MAX_PLUGINS_PER_LIB || !copy.plugins) return 0;
    for (int i = 0; i < copy.n_plugins; i++) {
        desc_copy d;
        char why[512];
        memset(&d, 0, sizeof d);
        (void)copy_desc(copy.plugins[i], i, &d, why, sizeof why); /* reads every pointer it holds */
    }
    return 0;
}

static int probe_in_child(const char *real, char *why, size_t n) {
    const char *env = getenv("WB_PLUGIN_PROBE");
    if (env && strcmp(env, "0") == 0) return 0;
    fflush(NULL); /* nothing buffered is written twice */
    pid_t pid = fork();
    if (pid < 0) return 0; /* cannot probe: load as before */
    if (pid == 0) {
        /* the default actions: a handler the host installed (a test
         * framework's, say) must not turn the crash into something else */
        static const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGALRM};
        for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) signal(fatal[i], SIG_DFL);
        alarm(10);
        _exit(probe_child(real));
    }
    int status = 0;
    pid_t r;
    while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
    }
    if (r != pid) return 0;
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        if (sig == SIGALRM) snprintf(why, n, "loading it did not finish in 10 s (a constructor or the entry hangs)");
        else snprintf(why, n, "crashed while loading (signal %d, %s) in a constructor, its entry point or its "
                              "descriptors: not loaded", sig, strsignal(sig));
        return -1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        snprintf(why, n, "loading it ended the process with status %d (a constructor called exit?): not loaded",
                 WEXITSTATUS(status));
        return -1;
    }
    return 0;
}

/* Everything after the entry returned lib: the library's ABI version and
 * size, then every descriptor copied (copy_desc) and validated
 * (validate_desc), names unique in the library and the registry; accepted
 * whole (members registered, handle kept) or rejected (handle closed).
 * path names the file in messages, real is what the registry records. */
static int add_library(wb_registry *reg, const char *path, const char *real, const wb_plugin_library *lib,
                       void *handle) {
    char why[512];
    if (lib->abi_version != WB_ABI_VERSION) {
        snprintf(why, sizeof why, "ABI version %u, host expects %u (rebuild the plugin against this wb/plugin.h)",
                 lib->abi_version, WB_ABI_VERSION);
        return reject(reg, path, why, handle);
    }
    if (!size_ok(lib->struct_size, LIBRARY_V1_SIZE, sizeof(wb_plugin_library))) {
        size_error(why, sizeof why, "library", lib->struct_size, LIBRARY_V1_SIZE, sizeof(wb_plugin_library));
        return reject(reg, path, why, handle);
    }
    wb_plugin_library lib_copy = {0};
    memcpy(&lib_copy, lib, lib->struct_size);
    if (lib_copy.n_plugins < 1 || lib_copy.n_plugins > WB_MAX_PLUGINS_PER_LIB) {
        snprintf(why, sizeof why, "library declares %d plugins (1..%d)", lib_copy.n_plugins, WB_MAX_PLUGINS_PER_LIB);
        return reject(reg, path, why, handle);
    }
    if (!lib_copy.plugins) {
        snprintf(why, sizeof why, "library declares %d plugins but its plugins pointer is NULL", lib_copy.n_plugins);
        return reject(reg, path, why, handle);
    }
    desc_copy *descs = calloc((size_t)lib_copy.n_plugins, sizeof *descs);
    if (!descs) return reject(reg, path, "out of memory", handle);
    for (int i = 0; i < lib_copy.n_plugins; i++) {
        const wb_plugin_desc *d = &descs[i].desc;
        if (copy_desc(lib_copy.plugins[i], i, &descs[i], why, sizeof why) || validate_desc(d, why, sizeof why)) {
            free(descs);
            return reject(reg, path, why, handle);
        }
        for (int j = 0; j < i; j++)
            if (descs[j].desc.kind == d->kind && strcmp(descs[j].desc.name, d->name) == 0) {
                snprintf(why, sizeof why, "%s '%s' registered twice in this library", wb_kind_name(d->kind), d->name);
                free(descs);
                return reject(reg, path, why, handle);
            }
        const wb_plugin_info *dup = wb_registry_find(reg, d->kind, d->name);
        if (dup) {
            snprintf(why, sizeof why, "duplicate %s name '%s' (already loaded from %s)", wb_kind_name(d->kind),
                     d->name, dup->path);
            free(descs);
            return reject(reg, path, why, handle);
        }
    }
    /* accepted: record the library and its members */
    if (reg->n_libs == reg->cap_libs) {
        int cap = reg->cap_libs ? reg->cap_libs * 2 : 16;
        loaded_lib *l = realloc(reg->libs, (size_t)cap * sizeof *l);
        if (!l) {
            free(descs);
            return reject(reg, path, "out of memory", handle);
        }
        reg->libs = l;
        reg->cap_libs = cap;
    }
    if (reg->n + lib_copy.n_plugins > reg->cap) {
        int cap = reg->cap ? reg->cap * 2 : 32;
        while (cap < reg->n + lib_copy.n_plugins) cap *= 2;
        wb_plugin_info *p = realloc(reg->plugins, (size_t)cap * sizeof *p);
        if (!p) {
            free(descs);
            return reject(reg, path, "out of memory", handle);
        }
        reg->plugins = p;
        reg->cap = cap;
    }
    loaded_lib *ll = &reg->libs[reg->n_libs++];
    ll->path = strdup(real);
    if (!ll->path) {
        reg->n_libs--;
        free(descs);
        return reject(reg, path, "out of memory", handle);
    }
    ll->handle = handle;
    ll->descs = descs;
    ll->n_descs = lib_copy.n_plugins;
    for (int i = 0; i < lib_copy.n_plugins; i++) {
        reg->plugins[reg->n].desc = &descs[i].desc;
        reg->plugins[reg->n].path = ll->path;
        reg->n++;
    }
    return 0;
}

int wb_registry_load_file(wb_registry *reg, const char *path) {
    char real[PATH_MAX];
    if (!realpath(path, real)) return reject(reg, path, "cannot resolve path", NULL);
    for (int i = 0; i < reg->n_libs; i++)
        if (strcmp(reg->libs[i].path, real) == 0) return 0; /* found twice on the search path */
    char probe_why[600];
    if (probe_in_child(real, probe_why, sizeof probe_why)) return reject(reg, path, probe_why, NULL);

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
    if (!lib) return reject(reg, path, "entry returned NULL", handle);
    return add_library(reg, path, real, lib, handle);
}

int wb_registry_add_library(wb_registry *reg, const char *path, const wb_plugin_library *lib) {
    if (!lib) return reject(reg, path, "entry returned NULL", NULL);
    return add_library(reg, path, path, lib, NULL);
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

/* The folder the library holding this code (libwb_host.so, installed and
 * built beside libwb.so) was loaded from, or "" when unknown. */
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
    /* A host library in the build tree uses the build's plugin folders; an
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
    /* Never ./plugins on its own: a script run from a folder someone else
     * filled (a downloaded experiment, a shared scratch space) would run
     * whatever .so they put there. The current folder's plugins load only
     * when WB_PLUGIN_PATH names them (WB_PLUGIN_PATH=plugins). */
}

/* ---- resolved configurations -------------------------------------------------- */
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
        if (s->type == WB_PARAM_INTS) { /* checked at load (check_default): 1..WB_MAX_INTS integers */
            const char *bad;
            int count = parse_ints_strict(s->def_str, v->ints, WB_MAX_INTS, &bad);
            v->n_ints = count < 0 ? 0 : count > WB_MAX_INTS ? WB_MAX_INTS : count;
        }
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
    /* (no cast before the range check: converting 1e300 to int64_t is undefined) */
    if (s->type == WB_PARAM_INT && (value != floor(value) || !(fabs(value) < 9223372036854775808.0))) {
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
    /* bounds of ±inf mean "unbounded", not "infinity is a value": JSON (the
     * run's config.json) has no infinity, so the run could not record it */
    if (isinf(value)) {
        wb_set_error("%s: parameter '%s' = %g: want a finite number", c->desc->name, key, value);
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
        if (!among_choices(s->choices, value)) { /* the same test the default passed at load */
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

/* s as a JSON string body: quote, backslash and control bytes escaped. */
static void json_string(FILE *m, const char *s) {
    fputc('"', m);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(m, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f) fprintf(m, "\\u%04x", *p);
        else fputc(*p, m);
    }
    fputc('"', m);
}

char *wb_config_to_json(const wb_config *cfg) {
    /* A memory stream, not a fixed buffer: sixteen 20-digit integers of an
     * INTS value alone are more than any per-parameter budget. */
    char *out = NULL;
    size_t size = 0;
    FILE *m = open_memstream(&out, &size);
    if (!m) return NULL;
    fputc('{', m);
    for (int i = 0; i < cfg->n; i++) {
        const wb_param_spec *s = &cfg->specs[i];
        const wb_param_value *v = &cfg->values[i];
        if (i) fputs(", ", m);
        json_string(m, s->name);
        fputs(": ", m);
        switch (s->type) {
        case WB_PARAM_NUMBER: fprintf(m, "%.17g", v->num); break;
        case WB_PARAM_INT: fprintf(m, "%lld", (long long)v->num); break; /* integral, in range: checked */
        case WB_PARAM_BOOL: fputs(v->num ? "true" : "false", m); break;
        case WB_PARAM_STRING: json_string(m, v->str); break;
        case WB_PARAM_INTS:
            fputc('[', m);
            for (int k = 0; k < v->n_ints; k++) fprintf(m, "%s%lld", k ? ", " : "", (long long)v->ints[k]);
            fputc(']', m);
            break;
        }
    }
    fputc('}', m);
    if (fclose(m) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

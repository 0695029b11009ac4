/* host/core/registry.h — the plugin registry: discovery, loading and validation
 * of plugin libraries, lookup by kind and name, and resolved configurations
 * (a plugin's parameter specs bound to user values). */
#ifndef WB_REGISTRY_H
#define WB_REGISTRY_H

#include "wb/plugin.h"

typedef struct wb_registry wb_registry;

typedef struct wb_plugin_info {
    const wb_plugin_desc *desc; /* the host's copy (host-size struct; fields past
                                   the plugin's struct_size read as 0 / NULL) */
    const char *path;           /* the .so it came from */
} wb_plugin_info;

wb_registry *wb_registry_new(void);
void wb_registry_free(wb_registry *reg);
/* Load, in order: EITHER the build's plugin folder (this library was
 * loaded from the build root, or its folder is unknown) OR the installed
 * ones (<this library's folder>/wb/plugins, then the configured install
 * prefix's); then every folder of $WB_PLUGIN_PATH (':'-separated). The
 * current directory's ./plugins is NOT searched unless WB_PLUGIN_PATH names
 * it. Each folder is scanned for *.so, one level of sub-folders included
 * (docs/plugins.md, "Where plugins are found"). Bad libraries are recorded
 * as errors (wb_registry_error) and skipped. */
void wb_registry_discover(wb_registry *reg);
/* Load every *.so in dir (and its direct sub-folders). Returns how many
 * libraries were accepted. */
int wb_registry_load_dir(wb_registry *reg, const char *dir);
/* Load one library; 0 when accepted, -1 with the reason (naming the file) in
 * wb_last_error() and in the registry's error list. */
int wb_registry_load_file(wb_registry *reg, const char *path);
/* What wb_registry_load_file does once a library's entry has returned lib:
 * every check of the library, its descriptors, their parameter specs and
 * defaults, and the name clashes, then registration of its members; 0 when
 * accepted, -1 with the reason ("<path>: ...") in wb_last_error() and the
 * error list. path only names it in messages. The registry keeps pointing
 * into lib's descriptors (names, specs, tables): they must outlive reg.
 * For descriptors built in memory (tests/fuzz/fuzz_plugin_desc.c). */
int wb_registry_add_library(wb_registry *reg, const char *path, const wb_plugin_library *lib);

int wb_registry_count(const wb_registry *reg);
const wb_plugin_info *wb_registry_at(const wb_registry *reg, int i);
const wb_plugin_info *wb_registry_find(const wb_registry *reg, wb_plugin_kind kind, const char *name);
int wb_registry_error_count(const wb_registry *reg);
const char *wb_registry_error(const wb_registry *reg, int i);
const char *wb_kind_name(wb_plugin_kind kind);

/* ---- resolved configurations ---------------------------------------------- */
typedef struct wb_config_owned {
    wb_config cfg;            /* points into values below */
    wb_param_value *values;
    const wb_plugin_desc *desc;
} wb_config_owned;

/* Defaults for every spec of desc. */
wb_config_owned *wb_config_new(const wb_plugin_desc *desc);
void wb_config_free(wb_config_owned *c);
/* Setters check the key exists, the type and the bounds; errors name the
 * plugin and the key ("sba: parameter 'lambda' = 50 is above its maximum 20"). */
int wb_config_set_number(wb_config_owned *c, const char *key, double value);
int wb_config_set_string(wb_config_owned *c, const char *key, const char *value);
int wb_config_set_ints(wb_config_owned *c, const char *key, const int64_t *values, int n);
/* The spec of key, or NULL with an error naming the known keys. */
const wb_param_spec *wb_config_spec(const wb_config_owned *c, const char *key);
/* JSON object text of every resolved value (malloc'd). */
char *wb_config_to_json(const wb_config *cfg);

#endif

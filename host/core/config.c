/* host/core/config.c — lookups into a resolved plugin configuration (wb_config):
 * the values the host bound from Lua or defaults, checked against the
 * plugin's own specs before the plugin sees them. */
#include <string.h>

#include "core/wb_internal.h"

static int find(const wb_config *cfg, const char *name) {
    if (!cfg) return -1;
    for (int i = 0; i < cfg->n; i++)
        if (strcmp(cfg->specs[i].name, name) == 0) return i;
    return -1;
}

double wb_config_number(const wb_config *cfg, const char *name, double fallback) {
    int i = find(cfg, name);
    return i < 0 ? fallback : cfg->values[i].num;
}

int64_t wb_config_int(const wb_config *cfg, const char *name, int64_t fallback) {
    int i = find(cfg, name);
    return i < 0 ? fallback : (int64_t)cfg->values[i].num;
}

int wb_config_bool(const wb_config *cfg, const char *name, int fallback) {
    int i = find(cfg, name);
    return i < 0 ? fallback : cfg->values[i].num != 0.0;
}

const char *wb_config_string(const wb_config *cfg, const char *name, const char *fallback) {
    int i = find(cfg, name);
    return i < 0 ? fallback : cfg->values[i].str;
}

int wb_config_ints(const wb_config *cfg, const char *name, int64_t *out, int cap) {
    int i = find(cfg, name);
    if (i < 0) return -1;
    int n = cfg->values[i].n_ints < cap ? cfg->values[i].n_ints : cap;
    for (int k = 0; k < n; k++) out[k] = cfg->values[i].ints[k];
    return n;
}

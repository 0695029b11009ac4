/* host/core/config.c — lookups into a resolved plugin configuration (wb_config):
 * the values the host bound from Lua or defaults, checked against the
 * plugin's own specs before the plugin sees them. */
#include <stdint.h>
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

/* INT values are integers in int64 range (the registry checks defaults and
 * setters), but a plugin may ask for a NUMBER parameter as an integer: its
 * value is truncated, and saturated outside int64 (converting 1e300 to
 * int64_t is undefined behaviour); NaN reads as the fallback. */
int64_t wb_config_int(const wb_config *cfg, const char *name, int64_t fallback) {
    int i = find(cfg, name);
    if (i < 0) return fallback;
    double v = cfg->values[i].num;
    if (v != v) return fallback;
    if (v >= 9223372036854775808.0) return INT64_MAX;
    if (v < -9223372036854775808.0) return INT64_MIN;
    return (int64_t)v;
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

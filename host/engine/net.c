/* host/engine/net.c — net instances: a net plugin's create, its parameter
 * store finalized on the run's backend, and destroy. What a plugin may call
 * on a net (wb_net_forward, wb_net_denoise, the EDM coefficients) is in
 * libwb: host/core/net_services.c.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "core/wb_internal.h"

wb_net *wb_net_new(const wb_netspec *spec, const wb_net_shape *shape, const wb_backend *be, wb_rng *rng) {
    if (!spec || !spec->desc || spec->desc->kind != WB_KIND_NET) {
        wb_set_error("net: no net plugin given");
        return NULL;
    }
    wb_net *net = calloc(1, sizeof *net);
    if (!net) return NULL;
    net->desc = spec->desc;
    net->shape = *shape;
    net->params = wb_params_new(be);
    if (!net->params) {
        free(net);
        return NULL;
    }
    char err[512] = {0};
    net->self = spec->desc->net->create(&spec->cfg->cfg, shape, net->params, err, sizeof err);
    if (!net->self) {
        wb_set_error("net '%s': %s", spec->desc->name, err[0] ? err : wb_last_error());
        wb_params_free(net->params);
        free(net);
        return NULL;
    }
    if (wb_params_finalize(net->params, rng)) {
        wb_net_free(net);
        return NULL;
    }
    return net;
}

void wb_net_free(wb_net *net) {
    if (!net) return;
    if (net->self) net->desc->net->destroy(net->self);
    wb_params_free(net->params);
    free(net);
}

/* plugins/nets/unet.c — net plugin `unet`: the DDPM++ UNet family of EDM's
 * SongUNet (positional or Fourier noise embedding, 'standard' encoder and
 * decoder), parameterised the same way, for image denoisers and — with
 * encoder_only — for the image classifier (ratio estimator) of the
 * score-free paper.
 *
 * Shapes (B batch, C model channels, L = len(multipliers) levels, R = H):
 *   x_in (B, Cin, H, W)   c_noise (B)   [labels (B, label_dim)]
 *   emb   = SiLU(Lin(SiLU(Lin(PosEmb(c_noise) [+ Lin(labels)]))))   (B, C·emb_mult)
 *   level l (res R/2^l, channels C·mult[l]):
 *     l = 0: conv_in 3×3;  l > 0: a down-sampling block
 *     then `blocks` UNetBlocks (+ self-attention when R/2^l ∈ attn_resolutions)
 *   mid   = UNetBlock+attention, UNetBlock at the lowest resolution
 *   decoder, l = L−1..0: (l < L−1: an up-sampling block) then blocks+1
 *     UNetBlocks, each fed concat(h, encoder skip) on channels
 *   out   = Conv3×3(SiLU(GroupNorm(h)))                           (B, out_channels, H, W)
 *   encoder_only: Lin(mean_HW(SiLU(GroupNorm(mid))))               (B, out_channels, 1, 1)
 *
 * UNetBlock(cin -> cout, emb), EDM's DDPM++ form (adaptive_scale off):
 *   h = Conv3×3(resample(SiLU(GN(x)))) + Lin(emb)[:, :, None, None]
 *   h = Conv3×3(Dropout(SiLU(GN(h))))
 *   x = (h + skip(x)) / √2        skip: 1×1 conv of resample(x) when cout ≠ cin or resampling
 *   attention: x = (x + proj(Attn(qkv(GN(x))))) / √2
 * resample is 2×2 average pooling (down) or nearest 2× (up): EDM's
 * resample_filter [1, 1].
 *
 * Features (wb_features): "enc<R>" is the last encoder activation at
 * resolution R (e.g. enc32, enc16, enc8), "mid" the bottleneck output.
 *
 * Noise embedding (embedding_convention): `edm` is SongUNet's exactly —
 * [sin(t·f), cos(t·f)] halves, positional f_i = (1/10000)^(i/(h−1)) (EDM's
 * endpoint=True), Fourier f ~ N(0, 16²)·2π — so EDM's checkpoints convert
 * by renaming and re-laying qkv rows (scripts/convert_edm.py); the EDM
 * presets take it. `workbench-1.0` (every unet before 1.1.0, and still the
 * custom/tiny/small default, so their checkpoints keep their meaning) is
 * [cos, sin] with f_i = 10000^(-i/h), Fourier as interleaved (cos, sin)
 * pairs: the same parameter count, a different function of the weights.
 *
 * Differences from SongUNet, all deliberate:
 *   - Fourier frequencies (N(0, 16²)·2π) are a parameter, because a store
 *     cannot hold a buffer; the forward detaches them, so their gradient is
 *     always 0 and Adam leaves them unchanged (decoupled weight decay would
 *     still shrink them — keep it 0 for this net). Counted in the params.
 *   - The output conv is exactly zero (EDM: xavier·1e-5), so an untrained
 *     denoiser is exactly D = c_skip·x; conv1 and attention proj keep EDM's
 *     xavier·1e-5 so gradients reach every layer from the first step.
 *   - Dropout masks come from a Philox stream owned by the instance (seed
 *     fixed per instance); forward has no rng argument.
 *
 * Parameter counts (3-channel 32×32, unconditional): cifar10-ddpmpp
 * 55,732,739 = SongUNet's own count for EDM's DDPM++ CIFAR-10 config,
 * recomputed layer by layer (EDM reports 55.73 M); tiny 1,260,547;
 * small (64 ch, 1,2,2, 2 blocks) about 7 M.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wb/plugin.h"

#define UNET_MAX_LEVELS (WB_MAX_FEATURES - 1) /* one feature per level + "mid" */
#define UNET_MAX_BLOCKS 16
#define UNET_PI 3.14159265358979323846
#define UNET_SQRT1_2 0.70710678118654752440f /* EDM skip_scale √0.5 */

typedef struct lin {
    wb_tensor *w, *b;
} lin;

typedef struct gnorm {
    wb_tensor *gamma, *beta;
    int groups;
} gnorm;

typedef struct ublock {
    int cin, cout, up, down, attn, heads;
    gnorm norm0, norm1, norm2;
    lin conv0, affine, conv1, skip, qkv, proj; /* skip.w / qkv.w NULL when absent */
} ublock;

typedef struct unet {
    wb_net_shape shape;
    int levels, n_blocks, channels, emb_mult, heads, encoder_only, fourier;
    int edm_embedding;                    /* 1: EDM's [sin, cos] / endpoint layout, 0: workbench-1.0 */
    int noise_mult, augment_dim;
    int fir, residual;                    /* resample [1,3,3,1]; NCSN++'s residual encoder */
    int adm;                              /* EDM's DhariwalUNet (plugin `adm`), else SongUNet */
    float gn_eps, skip_scale;             /* SongUNet: 1e-6, √½; ADM: 1e-5, 1 */
    lin *aux_res;                         /* residual encoder: one 3×3 conv per level > 0 */
    float *pos_freqs;                     /* positional, edm: (noise_ch/2) host frequencies */
    int64_t mult[WB_MAX_INTS];
    int64_t attn_res[WB_MAX_INTS];
    int n_attn;
    float dropout;
    wb_rng rng;                           /* dropout masks */
    wb_tensor *fourier_freq;              /* (noise_ch/2), fourier only */
    lin map_label, map0, map1, conv_in, head;
    wb_tensor *map_augment;               /* (noise_ch, augment_dim), no bias; NULL without */
    gnorm out_norm;
    lin out_conv;
    ublock *enc, *mid, *dec;
    int n_enc, n_dec;
    char feat_names[WB_MAX_FEATURES][16];
    int failed;                           /* a wb_params_add returned NULL */
} unet;

static const wb_param_spec unet_params[] = {
    WB_PARAM_STRING("preset", "custom", "custom|tiny|small|cifar10-ddpmpp|cifar10-ncsnpp",
                    "architecture preset; overrides channels, multipliers, blocks, attn_resolutions, emb_mult, "
                    "embedding"),
    WB_PARAM_INT("channels", 32, 4, 4096, "model channels (EDM model_channels)"),
    WB_PARAM_INTS("multipliers", "1,2,2", 1, 64, "channel multiplier per resolution level (channel_mult)"),
    WB_PARAM_INT("blocks", 1, 1, UNET_MAX_BLOCKS, "residual blocks per level (num_blocks)"),
    WB_PARAM_INTS("attn_resolutions", "16", 0, 65536, "resolutions whose blocks end in self-attention (0: none)"),
    WB_PARAM_NUMBER("dropout", 0, 0, 0.99, "dropout before each block's second conv (EDM CIFAR: 0.13)"),
    WB_PARAM_STRING("embedding", "positional", "positional|fourier",
                    "noise embedding: positional (DDPM++) or Fourier, frozen random frequencies (NCSN++)"),
    WB_PARAM_INT("emb_mult", 4, 1, 64, "embedding width = channels·emb_mult (channel_mult_emb)"),
    WB_PARAM_INT("heads", 1, 1, 64, "attention heads (DDPM++: 1)"),
    WB_PARAM_BOOL("encoder_only", 0, "classifier: encoder + bottleneck, pooled, linear to (B, out_channels, 1, 1)"),
    WB_PARAM_STRING("embedding_convention", "auto", "auto|edm|workbench-1.0",
                    "noise-embedding layout: edm = EDM's SongUNet exactly ([sin, cos]; positional frequencies "
                    "10000^(-i/(h-1))), workbench-1.0 = [cos, sin] with 10000^(-i/h) (Fourier: interleaved "
                    "pairs), as every unet before 1.1.0; auto: edm for the EDM presets, else workbench-1.0"),
    WB_PARAM_INT("noise_mult", 1, 1, 16, "noise-embedding width = channels·noise_mult (EDM channel_mult_noise)"),
    WB_PARAM_STRING("resample", "box", "box|fir",
                    "2× resampling: box = EDM's filter [1, 1] (2×2 mean, nearest), fir = [1, 3, 3, 1] (NCSN++)"),
    WB_PARAM_STRING("encoder", "standard", "standard|residual",
                    "standard (DDPM++) or residual (NCSN++: a FIR-downsampled 3×3 conv of the input per level, "
                    "averaged into the encoder path)"),
    WB_PARAM_INT("augment_dim", 0, 0, 64,
                 "EDM's augmentation-label input width (its CIFAR-10 nets: 9); the weight loads, the labels are "
                 "zero here (no augmentation), as at EDM's inference"),
};

/* ---- construction --------------------------------------------------------------- */

/* EDM initialises every weight xavier-uniform, a = gain·√(6/(fan_in+fan_out));
 * WB_INIT_UNIFORM_FAN_IN draws U(±scale/√fan_in), so this scale gives it
 * exactly. gain 0 means an exact zero. */
static wb_tensor *add_weight(unet *u, wb_params *ps, const char *name, int ndim, const int64_t *shape,
                             float gain) {
    int64_t rf = 1;
    for (int d = 2; d < ndim; d++) rf *= shape[d];
    double fan_in = (double)shape[1] * rf, fan_out = (double)shape[0] * rf;
    wb_tensor *t = gain == 0.0f ? wb_params_add(ps, name, ndim, shape, WB_INIT_ZEROS, 0.0f)
                                : wb_params_add(ps, name, ndim, shape, WB_INIT_UNIFORM_FAN_IN,
                                                (float)(gain * sqrt(6.0 * fan_in / (fan_in + fan_out))));
    if (!t) u->failed = 1;
    return t;
}

static wb_tensor *add_vec(unet *u, wb_params *ps, const char *name, int64_t n, wb_init init) {
    wb_tensor *t = wb_params_add(ps, name, 1, &n, init, 0.0f);
    if (!t) u->failed = 1;
    return t;
}

static lin make_conv(unet *u, wb_params *ps, const char *prefix, int64_t cin, int64_t cout, int k, float gain) {
    char name[96];
    int64_t s[4] = {cout, cin, k, k};
    lin c;
    snprintf(name, sizeof name, "%s.weight", prefix);
    c.w = add_weight(u, ps, name, 4, s, gain);
    snprintf(name, sizeof name, "%s.bias", prefix);
    c.b = add_vec(u, ps, name, cout, WB_INIT_ZEROS);
    return c;
}

static lin make_linear(unet *u, wb_params *ps, const char *prefix, int64_t in, int64_t out, float gain) {
    char name[96];
    int64_t s[2] = {out, in};
    lin l;
    snprintf(name, sizeof name, "%s.weight", prefix);
    l.w = add_weight(u, ps, name, 2, s, gain);
    snprintf(name, sizeof name, "%s.bias", prefix);
    l.b = add_vec(u, ps, name, out, WB_INIT_ZEROS);
    return l;
}

/* EDM's GroupNorm: min(32, C/4) groups; here the largest count ≤ that which
 * divides C (the same number whenever EDM's would run at all). */
static gnorm make_norm(unet *u, wb_params *ps, const char *prefix, int64_t c) {
    char name[96];
    gnorm n;
    int g = (int)(c / 4 < 32 ? c / 4 : 32);
    if (g < 1) g = 1;
    while (c % g) g--;
    n.groups = g;
    snprintf(name, sizeof name, "%s.weight", prefix);
    n.gamma = add_vec(u, ps, name, c, WB_INIT_ONES);
    snprintf(name, sizeof name, "%s.bias", prefix);
    n.beta = add_vec(u, ps, name, c, WB_INIT_ZEROS);
    return n;
}

static void make_block(unet *u, wb_params *ps, ublock *b, const char *prefix, int cin, int cout, int up, int down,
                       int attn) {
    char p[80];
    int64_t emb_ch = (int64_t)u->channels * u->emb_mult;
    memset(b, 0, sizeof *b);
    b->cin = cin, b->cout = cout, b->up = up, b->down = down, b->attn = attn;
    snprintf(p, sizeof p, "%s.norm0", prefix);
    b->norm0 = make_norm(u, ps, p, cin);
    snprintf(p, sizeof p, "%s.conv0", prefix);
    b->conv0 = make_conv(u, ps, p, cin, cout, 3, 1.0f);
    snprintf(p, sizeof p, "%s.affine", prefix);
    b->affine = make_linear(u, ps, p, emb_ch, (int64_t)cout * (u->adm ? 2 : 1), 1.0f); /* ADM: scale and shift */
    snprintf(p, sizeof p, "%s.norm1", prefix);
    b->norm1 = make_norm(u, ps, p, cout);
    snprintf(p, sizeof p, "%s.conv1", prefix);
    b->conv1 = make_conv(u, ps, p, cout, cout, 3, 1e-5f);
    /* ADM resamples the skip without a projection when the width stays */
    if (cout != cin || ((up || down) && !u->adm)) {
        snprintf(p, sizeof p, "%s.skip", prefix);
        b->skip = make_conv(u, ps, p, cin, cout, 1, 1.0f);
    }
    /* ADM: one head per 64 channels, none (no attention at all) below 64 */
    b->heads = u->adm ? cout / 64 : u->heads;
    if (u->adm && b->heads == 0) b->attn = attn = 0;
    if (attn) {
        snprintf(p, sizeof p, "%s.norm2", prefix);
        b->norm2 = make_norm(u, ps, p, cout);
        snprintf(p, sizeof p, "%s.qkv", prefix);
        b->qkv = make_conv(u, ps, p, cout, 3 * (int64_t)cout, 1, sqrtf(0.2f));
        snprintf(p, sizeof p, "%s.proj", prefix);
        b->proj = make_conv(u, ps, p, cout, cout, 1, 1e-5f);
    }
}

static int has_attn(const unet *u, int res) {
    for (int i = 0; i < u->n_attn; i++)
        if (u->attn_res[i] == res) return 1;
    return 0;
}

/* Presets fix the architecture (not dropout or heads). cifar10-ddpmpp is
 * EDM's `--arch=ddpmpp` for CIFAR-10 (train.py: model_channels 128,
 * channel_mult [2,2,2], num_blocks 4, attn_resolutions [16], positional). */
static int apply_preset(unet *u, const char *preset) {
    if (strcmp(preset, "tiny") == 0) {
        u->channels = 32, u->levels = 3, u->n_blocks = 1, u->emb_mult = 4, u->fourier = 0;
        u->mult[0] = 1, u->mult[1] = 2, u->mult[2] = 2;
        u->n_attn = 1, u->attn_res[0] = 16;
    } else if (strcmp(preset, "small") == 0) {
        u->channels = 64, u->levels = 3, u->n_blocks = 2, u->emb_mult = 4, u->fourier = 0;
        u->mult[0] = 1, u->mult[1] = 2, u->mult[2] = 2;
        u->n_attn = 1, u->attn_res[0] = 16;
    } else if (strcmp(preset, "cifar10-ddpmpp") == 0) {
        u->channels = 128, u->levels = 3, u->n_blocks = 4, u->emb_mult = 4, u->fourier = 0;
        u->mult[0] = 2, u->mult[1] = 2, u->mult[2] = 2;
        u->n_attn = 1, u->attn_res[0] = 16;
    } else if (strcmp(preset, "cifar10-ncsnpp") == 0) {
        /* EDM's --arch=ncsnpp: Fourier embedding, channel_mult_noise 2,
         * residual encoder, resample filter [1, 3, 3, 1] */
        u->channels = 128, u->levels = 3, u->n_blocks = 4, u->emb_mult = 4, u->fourier = 1;
        u->mult[0] = 2, u->mult[1] = 2, u->mult[2] = 2;
        u->n_attn = 1, u->attn_res[0] = 16;
        u->noise_mult = 2, u->fir = 1, u->residual = 1;
    } else if (strcmp(preset, "custom") != 0) {
        return -1;
    }
    return 0;
}

static void unet_destroy(void *self) {
    unet *u = self;
    if (!u) return;
    free(u->enc);
    free(u->mid);
    free(u->dec);
    free(u->pos_freqs);
    free(u->aux_res);
    free(u);
}

/* EDM's --arch=adm (DhariwalUNet), ImageNet-64 (its train.py): model
 * channels 192, channel_mult [1,2,3,4], 3 blocks, attention at 32, 16, 8. */
static int apply_adm_preset(unet *u, const char *preset) {
    if (strcmp(preset, "imagenet64-adm") == 0) {
        u->channels = 192, u->levels = 4, u->n_blocks = 3, u->emb_mult = 4;
        u->mult[0] = 1, u->mult[1] = 2, u->mult[2] = 3, u->mult[3] = 4;
        u->n_attn = 3, u->attn_res[0] = 32, u->attn_res[1] = 16, u->attn_res[2] = 8;
    } else if (strcmp(preset, "custom") != 0) {
        return -1;
    }
    return 0;
}

static void *create(const wb_config *cfg, const wb_net_shape *shape, wb_params *params, char *err, size_t err_len,
                    int adm);

static void *unet_create(const wb_config *cfg, const wb_net_shape *shape, wb_params *params, char *err,
                         size_t err_len) {
    return create(cfg, shape, params, err, err_len, 0);
}

static void *adm_create(const wb_config *cfg, const wb_net_shape *shape, wb_params *params, char *err,
                        size_t err_len) {
    return create(cfg, shape, params, err, err_len, 1);
}

static void *create(const wb_config *cfg, const wb_net_shape *shape, wb_params *params, char *err, size_t err_len,
                    int adm) {
    unet *u = calloc(1, sizeof *u);
    if (!u) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    u->shape = *shape;
    u->adm = adm;
    u->gn_eps = adm ? 1e-5f : 1e-6f;
    u->skip_scale = adm ? 1.0f : UNET_SQRT1_2;
    u->channels = (int)wb_config_int(cfg, "channels", 32);
    u->levels = wb_config_ints(cfg, "multipliers", u->mult, WB_MAX_INTS);
    u->n_blocks = (int)wb_config_int(cfg, "blocks", 1);
    u->n_attn = wb_config_ints(cfg, "attn_resolutions", u->attn_res, WB_MAX_INTS);
    u->emb_mult = (int)wb_config_int(cfg, "emb_mult", 4);
    u->heads = (int)wb_config_int(cfg, "heads", 1);
    u->dropout = (float)wb_config_number(cfg, "dropout", 0.0);
    u->encoder_only = wb_config_bool(cfg, "encoder_only", 0);
    u->fourier = strcmp(wb_config_string(cfg, "embedding", "positional"), "fourier") == 0;
    u->noise_mult = (int)wb_config_int(cfg, "noise_mult", 1);
    u->augment_dim = (int)wb_config_int(cfg, "augment_dim", 0);
    u->fir = strcmp(wb_config_string(cfg, "resample", "box"), "fir") == 0;
    u->residual = strcmp(wb_config_string(cfg, "encoder", "standard"), "residual") == 0;
    const char *preset = wb_config_string(cfg, "preset", "custom");
    if (adm ? apply_adm_preset(u, preset) : apply_preset(u, preset)) {
        snprintf(err, err_len, "unknown preset '%s' (%s)", preset,
                 adm ? "custom|imagenet64-adm" : "custom|tiny|small|cifar10-ddpmpp|cifar10-ncsnpp");
        goto fail;
    }
    /* The EDM presets compute what EDM's network computes; the others keep
     * the layout every checkpoint before unet 1.1.0 was trained with. */
    const char *conv = wb_config_string(cfg, "embedding_convention", "auto");
    u->edm_embedding = strcmp(conv, "edm") == 0 ||
                       (strcmp(conv, "auto") == 0 && strncmp(preset, "cifar10-", 8) == 0); /* the EDM presets */
    if (adm) u->edm_embedding = 0; /* DhariwalUNet: [cos, sin], 10000^(-i/h) — wb_sinusoidal's own layout */
    if (u->levels < 1 || u->levels > UNET_MAX_LEVELS) {
        snprintf(err, err_len, "multipliers: %d levels, want 1..%d", u->levels, UNET_MAX_LEVELS);
        goto fail;
    }
    int div = 1 << (u->levels - 1);
    if (shape->height < div || shape->width < div || shape->height % div || shape->width % div) {
        snprintf(err, err_len,
                 "resolution %dx%d is not divisible by 2^(levels-1) = %d (%d levels from multipliers); "
                 "pad or crop the images, or use fewer multipliers",
                 shape->height, shape->width, div, u->levels);
        goto fail;
    }
    if (shape->channels < 1 || shape->out_channels < 1) {
        snprintf(err, err_len, "need >= 1 input and output channel (got %d, %d)", shape->channels,
                 shape->out_channels);
        goto fail;
    }
    for (int l = 0; l < u->levels; l++) {
        int64_t c = (int64_t)u->channels * u->mult[l];
        if (!adm && has_attn(u, shape->height >> l) && c % u->heads) {
            snprintf(err, err_len, "heads = %d does not divide %lld channels at resolution %d", u->heads,
                     (long long)c, shape->height >> l);
            goto fail;
        }
    }
    wb_rng_init(&u->rng, 0x756e6574u /* "unet" */, 0);

    /* Mapping network: noise (and label) embedding of width C, then two
     * Linear+SiLU to the block-conditioning width C·emb_mult. */
    int64_t noise_ch = (int64_t)u->channels * u->noise_mult, emb_ch = (int64_t)u->channels * u->emb_mult;
    if (u->edm_embedding && !u->fourier) {
        /* EDM's PositionalEmbedding(endpoint=True): f_i = (1/10000)^(i/(h−1)),
         * the exponent a float division as in torch */
        int64_t half = noise_ch / 2;
        u->pos_freqs = malloc((size_t)(half > 0 ? half : 1) * sizeof(float));
        if (!u->pos_freqs) {
            snprintf(err, err_len, "out of memory");
            goto fail;
        }
        for (int64_t i = 0; i < half; i++)
            u->pos_freqs[i] = powf(1e-4f, half > 1 ? (float)i / (float)(half - 1) : 0.0f);
    }
    if (u->fourier) {
        int64_t half = noise_ch / 2;
        /* EDM: freqs ~ N(0, 16²), used as cos/sin(2π·f·t); 2π folded in. */
        u->fourier_freq = wb_params_add(params, "map_noise.freqs", 1, &half, WB_INIT_NORMAL,
                                        16.0f * 2.0f * (float)UNET_PI);
        if (!u->fourier_freq) u->failed = 1;
    }
    if (shape->label_dim > 0 && !adm) u->map_label = make_linear(u, params, "map_label", shape->label_dim, noise_ch, 1.0f);
    if (shape->label_dim > 0 && adm) { /* ADM: into the embedding width, no bias */
        int64_t ls[2] = {emb_ch, shape->label_dim};
        u->map_label.w = add_weight(u, params, "map_label.weight", 2, ls, 1.0f);
        u->map_label.b = NULL;
    }
    if (u->augment_dim > 0) {
        int64_t as[2] = {noise_ch, u->augment_dim};
        u->map_augment = add_weight(u, params, "map_augment.weight", 2, as, 1.0f);
    }
    u->map0 = make_linear(u, params, "map_layer0", noise_ch, emb_ch, 1.0f);
    u->map1 = make_linear(u, params, "map_layer1", emb_ch, emb_ch, 1.0f);

    /* Encoder: the channel count of every activation pushed as a skip, in
     * push order, so the decoder knows what each concat adds. */
    int skips[UNET_MAX_LEVELS * (UNET_MAX_BLOCKS + 1)], n_skips = 0;
    u->n_enc = u->levels * u->n_blocks + (u->levels - 1);
    u->n_dec = u->levels * (u->n_blocks + 1) + (u->levels - 1);
    u->enc = calloc((size_t)u->n_enc, sizeof *u->enc);
    u->mid = calloc(2, sizeof *u->mid);
    u->dec = calloc((size_t)u->n_dec, sizeof *u->dec);
    if (!u->enc || !u->mid || !u->dec) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    char p[64];
    int cout = shape->channels, e = 0, caux = shape->channels;
    u->aux_res = calloc((size_t)u->levels, sizeof *u->aux_res);
    if (!u->aux_res) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    for (int l = 0; l < u->levels; l++) {
        int res = shape->height >> l;
        if (l == 0) { /* ADM's first conv is already level 0's width */
            int c0 = u->channels * (adm ? (int)u->mult[0] : 1);
            snprintf(p, sizeof p, "enc%d.conv", res);
            u->conv_in = make_conv(u, params, p, cout, c0, 3, 1.0f);
            cout = c0;
        } else {
            snprintf(p, sizeof p, "enc%d.down", res);
            make_block(u, params, &u->enc[e++], p, cout, cout, 0, 1, 0);
            if (u->residual) { /* EDM's aux_residual: Conv2d(caux -> cout, 3×3, FIR down, fused) */
                snprintf(p, sizeof p, "enc%d.aux_residual", res);
                u->aux_res[l] = make_conv(u, params, p, caux, cout, 3, 1.0f);
                caux = cout;
            }
        }
        skips[n_skips++] = cout;
        for (int i = 0; i < u->n_blocks; i++) {
            int cin = cout;
            cout = u->channels * (int)u->mult[l];
            snprintf(p, sizeof p, "enc%d.block%d", res, i);
            make_block(u, params, &u->enc[e++], p, cin, cout, 0, 0, has_attn(u, res));
            skips[n_skips++] = cout;
        }
    }
    int low = shape->height >> (u->levels - 1);
    snprintf(p, sizeof p, "dec%d.in0", low);
    make_block(u, params, &u->mid[0], p, cout, cout, 0, 0, 1);
    snprintf(p, sizeof p, "dec%d.in1", low);
    make_block(u, params, &u->mid[1], p, cout, cout, 0, 0, 0);

    if (u->encoder_only) {
        /* Classifier head: no decoder. A real (non-zero) init, so the
         * logit's gradient reaches the encoder from the first step. */
        u->n_dec = 0;
        u->out_norm = make_norm(u, params, "head.norm", cout);
        u->head = make_linear(u, params, "head.linear", cout, shape->out_channels, 1.0f);
    } else {
        int d = 0;
        for (int l = u->levels - 1; l >= 0; l--) {
            int res = shape->height >> l;
            if (l < u->levels - 1) {
                snprintf(p, sizeof p, "dec%d.up", res);
                make_block(u, params, &u->dec[d++], p, cout, cout, 1, 0, 0);
            }
            for (int i = 0; i <= u->n_blocks; i++) {
                int cin = cout + skips[--n_skips];
                cout = u->channels * (int)u->mult[l];
                snprintf(p, sizeof p, "dec%d.block%d", res, i);
                /* SongUNet attends in the last block of a level, ADM in every one */
                make_block(u, params, &u->dec[d++], p, cin, cout, 0, 0, (adm || i == u->n_blocks) && has_attn(u, res));
            }
        }
        if (adm) snprintf(p, sizeof p, "out_norm");
        else snprintf(p, sizeof p, "dec%d.aux_norm", shape->height);
        u->out_norm = make_norm(u, params, p, cout);
        if (adm) snprintf(p, sizeof p, "out_conv");
        else snprintf(p, sizeof p, "dec%d.aux_conv", shape->height);
        u->out_conv = make_conv(u, params, p, cout, shape->out_channels, 3, 0.0f);
    }
    if (u->failed) {
        snprintf(err, err_len, "%s", wb_last_error());
        goto fail;
    }
    for (int l = 0; l < u->levels; l++) snprintf(u->feat_names[l], sizeof u->feat_names[l], "enc%d", shape->height >> l);
    snprintf(u->feat_names[u->levels], sizeof u->feat_names[0], "mid");
    return u;
fail:
    unet_destroy(u);
    return NULL;
}

/* ---- forward --------------------------------------------------------------------- */

static wb_tensor *norm_silu(const unet *u, wb_graph *g, wb_tensor *x, const gnorm *n) {
    return wb_silu(g, wb_group_norm(g, x, n->groups, n->gamma, n->beta, u->gn_eps));
}

/* Depthwise 2-D filtering with one k×k filter for every channel: the
 * (B, C, H, W) planes as (B·C, 1, H, W), one single-channel convolution. */
static wb_tensor *depthwise(wb_graph *g, wb_tensor *x, const float *f2, int k, int stride, int pad) {
    if (!x) return NULL;
    int64_t B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t ps[4] = {B * C, 1, H, W}, fs[4] = {1, 1, k, k};
    wb_tensor *y = wb_conv2d_ex(g, wb_reshape(g, x, 4, ps), wb_from_host(g, 4, fs, f2), NULL, stride, stride, pad, pad);
    if (!y) return NULL;
    int64_t ys[4] = {B, C, y->shape[2], y->shape[3]};
    return wb_reshape(g, y, 4, ys);
}

/* EDM's resample_filter [1, 3, 3, 1] (NCSN++), normalised: down is its
 * outer product /64, stride 2, zero padding 1; up is the transposed
 * convolution with 4× that filter — which equals nearest 2× up-sampling
 * followed by [1, 2, 1]⊗[1, 2, 1]/16 with zero padding 1 (checked against
 * EDM's form by tests/test_edm_parity.py). */
static const float FIR_DOWN[16] = {1 / 64.f, 3 / 64.f, 3 / 64.f, 1 / 64.f, 3 / 64.f, 9 / 64.f, 9 / 64.f, 3 / 64.f,
                                   3 / 64.f, 9 / 64.f, 9 / 64.f, 3 / 64.f, 1 / 64.f, 3 / 64.f, 3 / 64.f, 1 / 64.f};
static const float FIR_UP[9] = {1 / 16.f, 2 / 16.f, 1 / 16.f, 2 / 16.f, 4 / 16.f, 2 / 16.f, 1 / 16.f, 2 / 16.f, 1 / 16.f};

static wb_tensor *resample(const unet *u, wb_graph *g, wb_tensor *x, const ublock *b) {
    if (u->fir) {
        if (b->down) return depthwise(g, x, FIR_DOWN, 4, 2, 1);
        if (b->up) return depthwise(g, wb_upsample2x(g, x), FIR_UP, 3, 1, 1);
        return x;
    }
    if (b->down) return wb_avgpool2x(g, x);
    if (b->up) return wb_upsample2x(g, x);
    return x;
}

/* Single-head-per-slice dot-product attention over the H·W positions:
 * q, k, v (B·heads, d, HW); softmax_j(q_i·k_j/√d) weights v_j. */
static wb_tensor *attention(unet *u, wb_graph *g, wb_tensor *x, const ublock *b) {
    if (!x) return NULL;
    int64_t B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t nh = b->heads, d = C / nh;
    wb_tensor *qkv = wb_conv2d(g, wb_group_norm(g, x, b->norm2.groups, b->norm2.gamma, b->norm2.beta, u->gn_eps),
                               b->qkv.w, b->qkv.b, 1, 0);
    int64_t hs[3] = {B * nh, d, H * W};
    wb_tensor *q = wb_reshape(g, wb_slice1(g, qkv, 0, C), 3, hs);
    wb_tensor *k = wb_reshape(g, wb_slice1(g, qkv, C, C), 3, hs);
    wb_tensor *v = wb_reshape(g, wb_slice1(g, qkv, 2 * C, C), 3, hs);
    wb_tensor *w = wb_softmax(g, wb_scale(g, wb_bmm(g, q, k, 1, 0), 1.0f / sqrtf((float)d))); /* (N, HW, HW) */
    wb_tensor *a = wb_bmm(g, v, w, 0, 1);                                                    /* (N, d, HW)  */
    int64_t xs[4] = {B, C, H, W};
    wb_tensor *y = wb_conv2d(g, wb_reshape(g, a, 4, xs), b->proj.w, b->proj.b, 1, 0);
    wb_tensor *r = wb_add(g, y, x);
    return u->skip_scale != 1.0f ? wb_scale(g, r, u->skip_scale) : r;
}

/* A residual block. Its two halves run in memory scopes of their own
 * (wb/tensor.h; no-ops when a tape is recorded), so a no-grad forward holds
 * the block's input, the first conv's output and one half's temporaries at
 * a time. */
static wb_tensor *block_forward(unet *u, wb_graph *g, wb_tensor *x, wb_tensor *emb, const ublock *b) {
    if (!x) return NULL;
    int64_t B = x->shape[0];
    wb_scope first = wb_scope_begin(g);
    wb_tensor *h = wb_conv2d(g, resample(u, g, norm_silu(u, g, x, &b->norm0), b), b->conv0.w, b->conv0.b, 1, 1);
    h = wb_scope_end(g, first, h);
    wb_scope second = wb_scope_begin(g);
    if (u->adm) { /* adaptive scale: h = SiLU(shift + GN(h)·(scale + 1)) */
        int64_t as[4] = {B, 2 * (int64_t)b->cout, 1, 1};
        wb_tensor *ss = wb_reshape(g, wb_linear(g, emb, b->affine.w, b->affine.b), 4, as);
        wb_tensor *scale = wb_slice1(g, ss, 0, b->cout), *shift = wb_slice1(g, ss, b->cout, b->cout);
        wb_tensor *n = wb_group_norm(g, h, b->norm1.groups, b->norm1.gamma, b->norm1.beta, u->gn_eps);
        h = wb_silu(g, wb_add(g, shift, wb_mul(g, n, wb_add_scalar(g, scale, 1.0f))));
        h = wb_dropout(g, h, u->dropout, &u->rng);
    } else {
        int64_t as[4] = {B, b->cout, 1, 1};
        h = wb_add(g, h, wb_reshape(g, wb_linear(g, emb, b->affine.w, b->affine.b), 4, as));
        h = wb_dropout(g, norm_silu(u, g, h, &b->norm1), u->dropout, &u->rng);
    }
    h = wb_scope_end(g, second, wb_conv2d(g, h, b->conv1.w, b->conv1.b, 1, 1));
    wb_tensor *s = b->skip.w ? wb_conv2d(g, resample(u, g, x, b), b->skip.w, b->skip.b, 1, 0) : resample(u, g, x, b);
    h = wb_add(g, h, s);
    if (u->skip_scale != 1.0f) h = wb_scale(g, h, u->skip_scale);
    return b->attn ? attention(u, g, h, b) : h;
}

/* One block inside a memory scope (wb/tensor.h): when the forward records
 * nothing (sampling, the frozen teacher), the block's temporaries are
 * released as it returns and only its output stays — the peak of a
 * no-grad forward is the skips plus one block. The input concatenation
 * of a decoder block happens inside too. */
static wb_tensor *scoped_block(unet *u, wb_graph *g, wb_tensor *x, wb_tensor *skip, wb_tensor *emb,
                               const ublock *b) {
    wb_scope sc = wb_scope_begin(g);
    wb_tensor *y = block_forward(u, g, skip ? wb_concat(g, x, skip) : x, emb, b);
    return wb_scope_end(g, sc, y);
}

/* [sin(tf), cos(tf)] halves of tf (B, h): EDM's layout (its embeddings give
 * [cos, sin], which SongUNet swaps). wb_sinusoidal at dim 2 (its only
 * frequency is 1) gives interleaved (cos, sin) pairs of every t·f. */
static wb_tensor *sin_cos_halves(wb_graph *g, wb_tensor *tf) {
    int64_t B = tf->shape[0], h = tf->shape[1], flat = B * h, hs[2] = {B, h};
    wb_tensor *cs = wb_sinusoidal(g, wb_reshape(g, tf, 1, &flat), 2, 1.0f); /* (B·h, 2) */
    wb_tensor *c = wb_reshape(g, wb_slice1(g, cs, 0, 1), 2, hs), *sn = wb_reshape(g, wb_slice1(g, cs, 1, 1), 2, hs);
    return wb_concat(g, sn, c);
}

static wb_tensor *embed(unet *u, wb_graph *g, wb_tensor *c_noise, wb_tensor *labels) {
    int64_t B = c_noise->numel, noise_ch = (int64_t)u->channels * u->noise_mult, half = noise_ch / 2;
    int64_t bs[2] = {B, 1}, fs[2] = {1, half};
    wb_tensor *e;
    if (u->fourier) {
        wb_tensor *tf = wb_mul(g, wb_reshape(g, c_noise, 2, bs), wb_reshape(g, wb_detach(g, u->fourier_freq), 2, fs));
        if (u->edm_embedding) {
            e = sin_cos_halves(g, tf);
        } else { /* workbench-1.0: interleaved [cos, sin] pairs */
            int64_t flat = B * half, es[2] = {B, 2 * half};
            e = wb_reshape(g, wb_sinusoidal(g, wb_reshape(g, tf, 1, &flat), 2, 1.0f), 2, es);
        }
    } else if (u->edm_embedding) {
        wb_tensor *f = wb_from_host(g, 2, fs, u->pos_freqs);
        e = sin_cos_halves(g, wb_mul(g, wb_reshape(g, c_noise, 2, bs), f));
    } else {
        e = wb_sinusoidal(g, c_noise, (int)noise_ch, 10000.0f);
    }
    if (u->adm) { /* ADM: SiLU(map1(SiLU(map0(e))) + map_label(labels)) */
        e = wb_linear(g, wb_silu(g, wb_linear(g, e, u->map0.w, u->map0.b)), u->map1.w, u->map1.b);
        if (labels && u->shape.label_dim > 0) e = wb_add(g, e, wb_linear(g, labels, u->map_label.w, NULL));
        return wb_silu(g, e);
    }
    if (labels && u->shape.label_dim > 0) /* EDM scales one-hot labels by √label_dim */
        e = wb_add(g, e, wb_linear(g, wb_scale(g, labels, sqrtf((float)u->shape.label_dim)), u->map_label.w,
                                   u->map_label.b));
    /* map_augment: EDM adds it only with augmentation labels, which are
     * zero here (no augmentation pipeline), as at its inference */
    e = wb_silu(g, wb_linear(g, e, u->map0.w, u->map0.b));
    return wb_silu(g, wb_linear(g, e, u->map1.w, u->map1.b));
}

static void add_feature(unet *u, wb_features *feats, int idx, wb_tensor *t) {
    if (!feats || feats->n >= WB_MAX_FEATURES) return;
    feats->names[feats->n] = u->feat_names[idx];
    feats->maps[feats->n++] = t;
}

static wb_tensor *unet_forward(void *self, wb_graph *g, wb_tensor *x_in, wb_tensor *c_noise, wb_tensor *labels,
                               wb_features *feats) {
    unet *u = self;
    if (!x_in || !c_noise) return NULL;
    const wb_net_shape *s = &u->shape;
    if (x_in->ndim != 4 || x_in->shape[1] != s->channels || x_in->shape[2] != s->height ||
        x_in->shape[3] != s->width) {
        char buf[64];
        wb_set_error("unet: input %s, want (B, %d, %d, %d)", wb_shape_str(x_in, buf, sizeof buf), s->channels,
                     s->height, s->width);
        return NULL;
    }
    if (c_noise->numel != x_in->shape[0]) {
        wb_set_error("unet: %lld noise levels for a batch of %lld", (long long)c_noise->numel,
                     (long long)x_in->shape[0]);
        return NULL;
    }
    if (feats) feats->n = 0;
    wb_tensor *emb = embed(u, g, c_noise, labels);

    /* Encoder; every activation is kept for the decoder's concatenations. */
    wb_tensor *skips[UNET_MAX_LEVELS * (UNET_MAX_BLOCKS + 1)];
    int n_skips = 0, e = 0;
    wb_tensor *h = NULL;
    wb_tensor *aux = x_in; /* residual encoder: the input, downsampled level by level */
    for (int l = 0; l < u->levels; l++) {
        h = l == 0 ? wb_conv2d(g, x_in, u->conv_in.w, u->conv_in.b, 1, 1) : scoped_block(u, g, h, NULL, emb, &u->enc[e++]);
        if (l > 0 && u->residual) {
            /* EDM's fused 3×3 conv + FIR down: conv with padding 1 + 1, then the
             * filter at stride 2 without padding; h = aux = (h + that)/√2 */
            wb_tensor *r = wb_conv2d(g, aux, u->aux_res[l].w, u->aux_res[l].b, 1, 2);
            r = depthwise(g, r, FIR_DOWN, 4, 2, 0);
            h = aux = wb_scale(g, wb_add(g, h, r), UNET_SQRT1_2);
        }
        skips[n_skips++] = h;
        for (int i = 0; i < u->n_blocks; i++) {
            h = scoped_block(u, g, h, NULL, emb, &u->enc[e++]);
            skips[n_skips++] = h;
        }
        add_feature(u, feats, l, h);
    }
    /* The middle and the decoder are chains: a block's output is dead once
     * the next block has read it, so each output is moved down over its
     * predecessor (`chain` is reused: its mark stays where the chain began,
     * above every skip and captured feature). */
    wb_scope chain = wb_scope_begin(g);
    h = scoped_block(u, g, h, NULL, emb, &u->mid[0]);
    h = wb_scope_end(g, chain, scoped_block(u, g, h, NULL, emb, &u->mid[1]));
    add_feature(u, feats, u->levels, h);
    if (!h) return NULL;

    int64_t B = x_in->shape[0];
    if (u->encoder_only) {
        /* Global average pool: (B, C, H, W) -> (B·C, HW) -> mean per row. */
        int64_t C = h->shape[1], rows[2] = {B * C, h->shape[2] * h->shape[3]}, bc[2] = {B, C};
        wb_tensor *p = wb_mean_rows(g, wb_reshape(g, norm_silu(u, g, h, &u->out_norm), 2, rows));
        wb_tensor *y = wb_linear(g, wb_reshape(g, p, 2, bc), u->head.w, u->head.b);
        int64_t ys[4] = {B, s->out_channels, 1, 1};
        return wb_reshape(g, y, 4, ys);
    }
    int d = 0;
    chain = wb_scope_begin(g); /* after the captured "mid" */
    for (int l = u->levels - 1; l >= 0; l--) {
        if (l < u->levels - 1) h = wb_scope_end(g, chain, scoped_block(u, g, h, NULL, emb, &u->dec[d++]));
        for (int i = 0; i <= u->n_blocks; i++)
            h = wb_scope_end(g, chain, scoped_block(u, g, h, skips[--n_skips], emb, &u->dec[d++]));
    }
    return wb_conv2d(g, norm_silu(u, g, h, &u->out_norm), u->out_conv.w, u->out_conv.b, 1, 1);
}

/* The architecture as built (after the preset), for config.json. */
static int unet_describe(void *self, char *out, size_t out_len) {
    const unet *u = self;
    size_t n = 0;
    int w;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        w = snprintf(out + n, n < out_len ? out_len - n : 0, __VA_ARGS__);                         \
        if (w < 0 || (size_t)w >= (n < out_len ? out_len - n : 0)) return -1;                      \
        n += (size_t)w;                                                                            \
    } while (0)
    PUT("{\"channels\": %d, \"multipliers\": [", u->channels);
    for (int l = 0; l < u->levels; l++) PUT("%s%lld", l ? ", " : "", (long long)u->mult[l]);
    PUT("], \"blocks\": %d, \"attn_resolutions\": [", u->n_blocks);
    for (int i = 0; i < u->n_attn; i++) PUT("%s%lld", i ? ", " : "", (long long)u->attn_res[i]);
    PUT("], \"emb_mult\": %d, \"noise_mult\": %d, \"augment_dim\": %d, \"embedding_convention\": \"%s\", ",
        u->emb_mult, u->noise_mult, u->augment_dim, u->edm_embedding ? "edm" : "workbench-1.0");
    PUT("\"resample\": \"%s\", \"encoder\": \"%s\", ", u->fir ? "fir" : "box", u->residual ? "residual" : "standard");
    PUT("\"heads\": %d, \"dropout\": %g, \"embedding\": \"%s\", "
        "\"encoder_only\": %s, \"in_channels\": %d, \"out_channels\": %d, \"resolution\": [%d, %d]}",
        u->heads, (double)u->dropout, u->fourier ? "fourier" : "positional",
        u->encoder_only ? "true" : "false", u->shape.channels, u->shape.out_channels, u->shape.height,
        u->shape.width);
#undef PUT
    return 0;
}

/* The dropout masks' stream: a checkpoint records its position. */
static wb_rng *unet_random_streams(void *self, int *n) {
    unet *u = self;
    *n = 1;
    return &u->rng;
}

static const wb_net_fns unet_fns = {.struct_size = (uint32_t)sizeof(wb_net_fns), .create = unet_create,
                                    .destroy = unet_destroy, .forward = unet_forward, .describe = unet_describe,
                                    .random_streams = unet_random_streams};

static const wb_plugin_desc unet_desc = WB_NET_DESC(
    "unet", "1.1.0", NULL,
    "EDM DDPM++ UNet (SongUNet family: presets tiny|small|cifar10-ddpmpp, attention, encoder_only "
    "classifier); features enc<R>, mid",
    WB_PARAMS(unet_params), &unet_fns);

static const wb_param_spec adm_params[] = {
    WB_PARAM_STRING("preset", "custom", "custom|imagenet64-adm",
                    "architecture preset; overrides channels, multipliers, blocks, attn_resolutions, emb_mult"),
    WB_PARAM_INT("channels", 192, 4, 4096, "model channels (EDM model_channels)"),
    WB_PARAM_INTS("multipliers", "1,2,3,4", 1, 64, "channel multiplier per resolution level (channel_mult)"),
    WB_PARAM_INT("blocks", 3, 1, UNET_MAX_BLOCKS, "residual blocks per level (num_blocks)"),
    WB_PARAM_INTS("attn_resolutions", "32,16,8", 0, 65536,
                  "resolutions whose blocks attend (one head per 64 channels; none below 64)"),
    WB_PARAM_NUMBER("dropout", 0.1, 0, 0.99, "dropout before each block's second conv (EDM ImageNet-64: 0.1)"),
    WB_PARAM_INT("emb_mult", 4, 1, 64, "embedding width = channels·emb_mult (channel_mult_emb)"),
    WB_PARAM_INT("augment_dim", 0, 0, 64, "EDM's augmentation-label input width; loaded, labels zero here"),
    WB_PARAM_BOOL("encoder_only", 0, "classifier: encoder + bottleneck, pooled, linear to (B, out_channels, 1, 1)"),
};

static const wb_net_fns adm_fns = {.struct_size = (uint32_t)sizeof(wb_net_fns), .create = adm_create,
                                   .destroy = unet_destroy, .forward = unet_forward, .describe = unet_describe,
                                   .random_streams = unet_random_streams};

static const wb_plugin_desc adm_desc = WB_NET_DESC(
    "adm", "1.0.0", NULL,
    "EDM's ADM UNet (DhariwalUNet: adaptive-scale blocks, multi-head attention, class labels; preset "
    "imagenet64-adm); features enc<R>, mid",
    WB_PARAMS(adm_params), &adm_fns);

static const wb_plugin_desc *const unet_list[] = {&unet_desc, &adm_desc};
static const wb_plugin_library unet_library = WB_LIBRARY(unet_list);

WB_PLUGIN_EXPORT const wb_plugin_library *wb_plugin_entry(void) { return &unet_library; }

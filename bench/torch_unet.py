#!/usr/bin/python3
"""bench/torch_unet.py — PyTorch side of the UNet benchmarks (bench/README.md).

The same three computations as bench/bench_unet.c, on a PyTorch copy of the
`unet` net plugin (plugins/nets/unet.c) as the experiments' cpu profile
builds it (experiments/lib/common.lua), written to match the workbench pass
for pass:

  unet_teacher_dsm   one EDM DSM teacher step (host/engine/teacher.c), batch 32:
                     x_0 ~ Fashion-MNIST padded to 32, ln σ ~ N(-1.2, 1.2²),
                     x_t = x_0 + σ·n, D = EDM-preconditioned UNet,
                     loss = mean(λ(σ)·(D − x_0)²), λ = (σ²+σd²)/(σ·σd)²,
                     backward, Adam (lr 2e-3), EMA (0.995, warm-up).
  unet_distill_kl    one distillation iteration (host/engine/distill.c), batch 16,
                     divergence kl (w_s = 1, w_l = 0, DMD time weighting),
                     ratio estimator gan-head on the teacher's encoder
                     features "enc32,enc16,enc8", fake_updates =
                     ratio_updates = 1. Network passes per iteration, as the
                     C loop does them:
                       generator:  G fwd (no grad, B), teacher fwd (no grad,
                                   B), fake fwd (no grad, B), teacher fwd for
                                   the head's features (tape on, x_t a leaf,
                                   no backward: w_l ≡ 0), G fwd+bwd (B); Adam
                       fake score: fake fwd+bwd (B, DSM on sg(x_0)); Adam
                       ratio:      teacher fwd (2B) + head, BCE, backward
                                   through the head and (teacher weights
                                   require grad in the engine) the teacher's
                                   encoder; Adam on the head
                     plus the generator EMA and the finiteness checks.
  unet_distill_dijs  the score-free path: divergence dijs (w_s = 0,
                     w_l = σ(l)), σ fixed at 2.5, σ² time weighting, ratio
                     estimator `classifier` with an encoder-only UNet of the
                     same configuration (out 1). Passes: G fwd (no grad, B),
                     teacher fwd (no grad, B: computed by the engine even
                     though the score-free g̃ does not use it), classifier
                     fwd+bwd to x_t (B, weights frozen), G fwd+bwd (B); Adam;
                     classifier fwd+bwd (2B); Adam.

The UNet (shapes: B batch, C channels, x (B, 1, 32, 32)):
  emb  = SiLU(Lin(SiLU(Lin(PosEmb(c_noise))))), PosEmb = [cos(t·f), sin(t·f)],
         f_i = 10000^(-i/(C/2)), width C, emb width 4C
  enc  32: conv3×3(1→C), block(C→C)           features enc32
       16: down-block(C→C), block(C→2C)+attn    features enc16
        8: down-block(2C→2C), block(2C→2C)       features enc8
  mid  block(2C)+attn, block(2C)
  dec   8: block(4C→2C), block(4C→2C)
       16: up-block(2C), block(4C→2C), block(3C→2C)+attn
       32: up-block(2C), block(3C→C), block(2C→C)
  out  conv3×3(SiLU(GN(h)))  (B, 1, 32, 32)
  block: h = conv0(resample(SiLU(GN(x)))) + Lin(emb); h = conv1(SiLU(GN(h)));
         x = (h + skip(resample(x)))/√2; attn: x = (x + proj(Attn(qkv(GN(x)))))/√2
  GN: min(C/4, 32) groups, eps 1e-6; resample: 2×2 average / nearest 2×.
  encoder_only (classifier): enc + mid, Lin(mean_HW(SiLU(GN(h)))) -> (B, 1, 1, 1)

The parameter counts must equal the plugin's: they are checked against the
counts bench_unet reports (`--expect-params`, which run.sh passes) or, run
alone, against the table below, and the script exits with status 3 when one
differs.

--preset cifar10-ddpmpp is EDM's DDPM++ CIFAR-10 network (the plugin's preset
of that name: model_channels 128, channel_mult [2,2,2], num_blocks 4, attention
at 16, positional embedding) on x (B, 3, 32, 32) random images, dropout 0 on
both sides (EDM trains it with 0.13; timing without it, like the plugin's
default): 55,732,739 parameters, as bench_unet reports.

--device cuda runs everything on the GPU (TF32 off for matmuls and cuDNN, as
the workbench's default; cudnn.benchmark on) and synchronises before every
clock reading.

Run with the system interpreter (Debian's python3-torch):
    /usr/bin/python3 bench/torch_unet.py --threads 1 [--bench teacher|kl|dijs|all] [--device cpu|cuda]
Prints one JSON object per benchmark on stdout. Never a test.
"""
import argparse
import gzip
import json
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# the EDM constants and the step helpers both benchmarks share (same folder)
from torch_mlp import SIGMA_DATA, check, dev_sync, ema_decay_warm, ema_update, karras_sigma, setup_device  # noqa: E402
DEV = torch.device("cpu")  # main() sets it from --device (torch_mlp.setup_device)
SQRT1_2 = 0.70710678118654752440
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

# Presets: the experiments' cpu profile, and the plugin's own `tiny` and
# `small` presets (plugins/nets/unet.c apply_preset).
PRESETS = {
    "cpu": dict(channels=16, mult=(1, 2, 2), blocks=1, attn_res=(16,)),
    "tiny": dict(channels=32, mult=(1, 2, 2), blocks=1, attn_res=(16,)),
    "small": dict(channels=64, mult=(1, 2, 2), blocks=2, attn_res=(16,)),
    # EDM's --arch=ddpmpp for CIFAR-10 (3-channel 32×32; dropout 0 here, see above)
    "cifar10-ddpmpp": dict(in_ch=3, out_ch=3, channels=128, mult=(2, 2, 2), blocks=4, attn_res=(16,)),
}
# Parameter counts of the plugin at 1×32×32 (from `bench_unet --params-only`):
# denoiser, encoder-only classifier (out 1), gan-head on enc32,enc16,enc8.
EXPECTED_PARAMS = {
    "cpu": (317121, 126321, 10497),
    "tiny": (1259393, 500961, 20737),
    "cifar10-ddpmpp": (55732739, 22521089, 98561),  # at 3×32×32
}


# ---- the unet net plugin ---------------------------------------------------------------
def gn_groups(c):
    """EDM's min(32, C/4), lowered to a divisor of C (unet.c make_norm)."""
    g = max(1, min(c // 4, 32))
    while c % g:
        g -= 1
    return g


def xavier_(w, gain):
    """U(±gain·√(6/(fan_in+fan_out))), exact zero for gain 0 (unet.c add_weight)."""
    with torch.no_grad():
        if gain == 0:
            w.zero_()
            return
        rf = w[0][0].numel() if w.dim() > 2 else 1
        fan_in, fan_out = w.shape[1] * rf, w.shape[0] * rf
        a = gain * math.sqrt(6.0 / (fan_in + fan_out))
        w.uniform_(-a, a)


def conv(cin, cout, k, gain):
    c = nn.Conv2d(cin, cout, k, padding=k // 2)
    xavier_(c.weight, gain)
    nn.init.zeros_(c.bias)
    return c


def linear(cin, cout, gain):
    lin = nn.Linear(cin, cout)
    xavier_(lin.weight, gain)
    nn.init.zeros_(lin.bias)
    return lin


def norm(c):
    return nn.GroupNorm(gn_groups(c), c, eps=1e-6)


class Block(nn.Module):
    def __init__(self, cin, cout, emb_ch, up=False, down=False, attn=False, heads=1, dropout=0.0):
        super().__init__()
        self.up, self.down, self.heads, self.dropout = up, down, heads, dropout
        self.norm0 = norm(cin)
        self.conv0 = conv(cin, cout, 3, 1.0)
        self.affine = linear(emb_ch, cout, 1.0)
        self.norm1 = norm(cout)
        self.conv1 = conv(cout, cout, 3, 1e-5)
        self.skip = conv(cin, cout, 1, 1.0) if (cout != cin or up or down) else None
        self.attn = attn
        if attn:
            self.norm2 = norm(cout)
            self.qkv = conv(cout, 3 * cout, 1, math.sqrt(0.2))
            self.proj = conv(cout, cout, 1, 1e-5)

    def resample(self, x):
        if self.down:
            return F.avg_pool2d(x, 2)
        if self.up:
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        return x

    def forward(self, x, emb):
        h = self.conv0(self.resample(F.silu(self.norm0(x))))
        h = h + self.affine(emb)[:, :, None, None]
        h = F.silu(self.norm1(h))
        if self.dropout > 0:
            h = F.dropout(h, self.dropout, self.training)
        h = self.conv1(h)
        s = self.skip(self.resample(x)) if self.skip is not None else x
        h = (h + s) * SQRT1_2
        if self.attn:  # unet.c attention(): q, k, v are contiguous channel slices
            b, c, hh, ww = h.shape
            nh, d = self.heads, c // self.heads
            qkv = self.qkv(self.norm2(h))
            q = qkv[:, :c].reshape(b * nh, d, hh * ww)
            k = qkv[:, c:2 * c].reshape(b * nh, d, hh * ww)
            v = qkv[:, 2 * c:].reshape(b * nh, d, hh * ww)
            w = torch.softmax(torch.bmm(q.transpose(1, 2), k) * (1.0 / math.sqrt(d)), dim=2)  # (N, HW, HW)
            a = torch.bmm(v, w.transpose(1, 2))                                                 # (N, d, HW)
            h = (self.proj(a.reshape(b, c, hh, ww)) + h) * SQRT1_2
        return h


class UNet(nn.Module):
    """plugins/nets/unet.c, positional embedding, unconditional."""

    def __init__(self, in_ch=1, out_ch=1, res=32, channels=16, mult=(1, 2, 2), blocks=1, attn_res=(16,),
                 emb_mult=4, heads=1, dropout=0.0, encoder_only=False):
        super().__init__()
        self.encoder_only, self.levels, self.n_blocks, self.res = encoder_only, len(mult), blocks, res
        noise_ch, emb_ch = channels, channels * emb_mult
        half = noise_ch // 2
        self.register_buffer("freqs", 10000.0 ** (-torch.arange(half, dtype=torch.float32) / half))
        self.map0 = linear(noise_ch, emb_ch, 1.0)
        self.map1 = linear(emb_ch, emb_ch, 1.0)
        skips, cout = [], in_ch
        self.enc = nn.ModuleList()
        for lv in range(self.levels):
            r = res >> lv
            if lv == 0:
                self.conv_in = conv(cout, channels, 3, 1.0)
                cout = channels
            else:
                self.enc.append(Block(cout, cout, emb_ch, down=True, heads=heads, dropout=dropout))
            skips.append(cout)
            for _ in range(blocks):
                cin, cout = cout, channels * mult[lv]
                self.enc.append(Block(cin, cout, emb_ch, attn=r in attn_res, heads=heads, dropout=dropout))
                skips.append(cout)
        self.mid = nn.ModuleList([Block(cout, cout, emb_ch, attn=True, heads=heads, dropout=dropout),
                                  Block(cout, cout, emb_ch, heads=heads, dropout=dropout)])
        self.dec = nn.ModuleList()
        if encoder_only:
            self.out_norm = norm(cout)
            self.head = linear(cout, out_ch, 1.0)
        else:
            for lv in range(self.levels - 1, -1, -1):
                r = res >> lv
                if lv < self.levels - 1:
                    self.dec.append(Block(cout, cout, emb_ch, up=True, heads=heads, dropout=dropout))
                for i in range(blocks + 1):
                    cin, cout = cout + skips.pop(), channels * mult[lv]
                    self.dec.append(Block(cin, cout, emb_ch, attn=(i == blocks and r in attn_res), heads=heads,
                                          dropout=dropout))
            self.out_norm = norm(cout)
            self.out_conv = conv(cout, out_ch, 3, 0.0)

    def forward(self, x, c_noise, feats=None):
        a = c_noise[:, None] * self.freqs[None, :]
        emb = torch.cat([torch.cos(a), torch.sin(a)], dim=1)
        emb = F.silu(self.map1(F.silu(self.map0(emb))))
        skips, e, h = [], 0, None
        for lv in range(self.levels):
            if lv == 0:
                h = self.conv_in(x)
            else:
                h = self.enc[e](h, emb)
                e += 1
            skips.append(h)
            for _ in range(self.n_blocks):
                h = self.enc[e](h, emb)
                e += 1
                skips.append(h)
            if feats is not None:
                feats["enc%d" % (self.res >> lv)] = h
        h = self.mid[1](self.mid[0](h, emb), emb)
        if feats is not None:
            feats["mid"] = h
        if self.encoder_only:
            p = F.silu(self.out_norm(h)).mean(dim=(2, 3))
            return self.head(p)[:, :, None, None]
        d = 0
        for lv in range(self.levels - 1, -1, -1):
            if lv < self.levels - 1:
                h = self.dec[d](h, emb)
                d += 1
            for _ in range(self.n_blocks + 1):
                h = self.dec[d](torch.cat([h, skips.pop()], dim=1), emb)
                d += 1
        return self.out_conv(F.silu(self.out_norm(h)))


class GanHead(nn.Module):
    """plugins/ratio_estimators/gan_head.c: Lin(SiLU(Lin(concat_k mean_HW φ_k))), zero output layer."""

    def __init__(self, in_dim, hidden=128):
        super().__init__()
        self.l0 = nn.Linear(in_dim, hidden)
        self.l1 = nn.Linear(hidden, 1)
        with torch.no_grad():
            bound = 1.0 / math.sqrt(in_dim)  # WB_INIT_UNIFORM_FAN_IN, scale 1
            self.l0.weight.uniform_(-bound, bound)
            self.l0.bias.zero_()
            self.l1.weight.zero_()
            self.l1.bias.zero_()

    def forward(self, pooled):
        return self.l1(F.silu(self.l0(pooled)))[:, 0]


def count(module):
    return sum(p.numel() for p in module.parameters())


def edm(sigma):
    s = sigma[:, None, None, None]
    v = s * s + SIGMA_DATA * SIGMA_DATA
    rs = torch.rsqrt(v)
    return SIGMA_DATA * SIGMA_DATA / v, s * SIGMA_DATA * rs, rs, torch.log(sigma) / 4.0


def denoise(net, x, sigma):
    """D(x, σ) = c_skip·x + c_out·F(c_in·x, ln(σ)/4)  (host/engine/net.c)."""
    c_skip, c_out, c_in, c_noise = edm(sigma)
    return c_skip * x + c_out * net(c_in * x, c_noise)


def gan_head_logit(teacher, head, names, x, sigma):
    """The teacher's full forward (as wb_net_forward runs it), features pooled and concatenated."""
    _, _, c_in, c_noise = edm(sigma)
    feats = {}
    teacher(c_in * x, c_noise, feats)
    return head(torch.cat([feats[n].mean(dim=(2, 3)) for n in names], dim=1))


def classifier_logit(backbone, x, sigma):
    """plugins/ratio_estimators/classifier.c: mean of F(c_in·x, c_noise) over its outputs."""
    _, _, c_in, c_noise = edm(sigma)
    return backbone(c_in * x, c_noise).flatten(1).mean(dim=1)


# ---- data: Fashion-MNIST padded to 32×32 (host/engine/images.c), else random images -----------
class Images:
    def __init__(self, path, res=32, channels=1):
        self.synthetic = False
        try:
            if channels != 1:
                raise OSError("Fashion-MNIST has 1 channel, the net wants %d" % channels)
            with gzip.open(os.path.join(path, "train-images-idx3-ubyte.gz"), "rb") as f:
                raw = f.read()
            n, h, w = (int.from_bytes(raw[o:o + 4], "big") for o in (4, 8, 12))
            img = torch.frombuffer(bytearray(raw[16:16 + n * h * w]), dtype=torch.uint8).reshape(n, 1, h, w)
            top, left = (res - h) // 2, (res - w) // 2
            self.u8 = torch.zeros(n, 1, res, res, dtype=torch.uint8)  # pixel 0 = -1 border
            self.u8[:, :, top:top + h, left:left + w] = img
        except OSError as e:
            print("torch_unet.py: %s (%s): random images instead" % (path, e), file=sys.stderr)
            self.synthetic = True
            self.u8 = torch.randint(0, 256, (1000, channels, res, res), dtype=torch.uint8)
        self.u8 = self.u8.to(DEV)

    def sample(self, n):
        """Uniform with replacement, converted when drawn: x/127.5 − 1."""
        return self.u8[torch.randint(self.u8.shape[0], (n,), device=DEV)].float() / 127.5 - 1.0


def all_finite(tensors):
    return bool(torch.isfinite(torch.stack(torch._foreach_norm(tensors))).all())


def make_adam(params, lr, beta1):
    return torch.optim.Adam(params, lr=lr, betas=(beta1, 0.999), eps=1e-8, foreach=True)


def dsm_loss(net, x0, sigma):
    """EDM DSM: mean(λ(σ)·(D(x_0 + σ·n, σ) − x_0)²)."""
    xt = x0 + sigma[:, None, None, None] * torch.randn_like(x0)  # on x0's device
    s2 = sigma * sigma
    lam = ((s2 + SIGMA_DATA ** 2) / (s2 * SIGMA_DATA ** 2))[:, None, None, None]
    return (lam * (denoise(net, xt, sigma) - x0).square()).mean()


# ---- teacher DSM step ---------------------------------------------------------------------
class Teacher:
    def __init__(self, arch, data, batch, lr=2e-3, ema_decay=0.995):
        self.arch, self.data, self.b, self.ema_decay = arch, data, batch, ema_decay
        self.net = UNet(**arch).to(DEV)
        self.params = list(self.net.parameters())
        self.ema = [p.detach().clone() for p in self.params]
        self.opt = make_adam(self.params, lr, 0.9)
        self.step_no = 0

    def step(self):
        self.step_no += 1
        x0 = self.data.sample(self.b)
        sigma = torch.exp(-1.2 + 1.2 * torch.randn(self.b, device=DEV))
        loss = dsm_loss(self.net, x0, sigma)
        self.opt.zero_grad(set_to_none=False)
        loss.backward()
        check(math.isfinite(loss.item()), "DSM loss")
        self.opt.step()
        ema_update(self.ema, self.params, ema_decay_warm(self.ema_decay, self.step_no))

    def finish(self):
        """The teacher IS the EMA. Its weights keep requires_grad = True, as the
        engine leaves the teacher's params trainable (see the module doc)."""
        net = UNet(**self.arch).to(DEV)
        with torch.no_grad():
            for p, e in zip(net.parameters(), self.ema):
                p.copy_(e)
        return net


# ---- one distillation iteration ---------------------------------------------------------------
class Distiller:
    """host/engine/distill.c with fake_updates = ratio_updates = 1, gan_weight 0, no bin/batch normalisation."""

    def __init__(self, teacher, arch, data, batch, divergence, lr_gen=1e-4, lr_fake=1e-3,
                 lr_ratio=1e-3, beta1=0.5, sigma_init=2.5, t_min=0.02, t_max=0.6, ema_decay=0.95):
        self.teacher, self.data, self.b, self.div = teacher, data, batch, divergence
        self.sigma_init, self.t_min, self.t_max, self.ema_decay = sigma_init, t_min, t_max, ema_decay
        self.score_free = divergence == "dijs"
        self.sigma_fixed = 2.5 if self.score_free else 0.0  # WB_TIME_AUTO
        self.teacher.requires_grad_(False)  # frozen, as in host/engine/distill.c
        self.in_ch = arch.get("in_ch", 1)
        self.gen = UNet(**arch).to(DEV)
        self.gen.load_state_dict(teacher.state_dict())
        self.gen_params = list(self.gen.parameters())
        self.gen_ema = [p.detach().clone() for p in self.gen_params]
        self.opt_gen = make_adam(self.gen_params, lr_gen, beta1)
        if self.score_free:
            self.fake = None
            self.backbone = UNet(**dict(arch, encoder_only=True, out_ch=1)).to(DEV)
            self.ratio_params = list(self.backbone.parameters())
        else:
            self.fake = UNet(**arch).to(DEV)
            self.fake.load_state_dict(teacher.state_dict())
            self.opt_fake = make_adam(self.fake.parameters(), lr_fake, beta1)
            self.names = ["enc%d" % (32 >> lv) for lv in range(3)]
            feats = {}
            with torch.no_grad():
                teacher(torch.zeros(1, self.in_ch, 32, 32, device=DEV), torch.zeros(1, device=DEV), feats)
            self.head = GanHead(sum(feats[n].shape[1] for n in self.names)).to(DEV)
            self.ratio_params = list(self.head.parameters())
        self.opt_ratio = make_adam(self.ratio_params, lr_ratio, beta1)
        self.target = torch.cat([torch.ones(batch, device=DEV), torch.zeros(batch, device=DEV)])
        self.step_no = 0

    def ratio_logit(self, x, sigma):
        if self.score_free:
            return classifier_logit(self.backbone, x, sigma)
        return gan_head_logit(self.teacher, self.head, self.names, x, sigma)

    def trainable(self, params, on):
        for p in params:
            p.requires_grad_(on)

    def draw_sigma(self, n):
        if self.sigma_fixed > 0:
            return torch.full((n,), self.sigma_fixed, device=DEV)
        return karras_sigma(self.t_min + (self.t_max - self.t_min) * torch.rand(n, device=DEV))

    def generate(self, z):
        return denoise(self.gen, self.sigma_init * z, torch.full((self.b,), self.sigma_init, device=DEV))

    def step(self):
        self.step_no += 1
        b = self.b
        shape = (b, self.in_ch, 32, 32)
        n = b * self.in_ch * 1024
        stats = {}
        # 1. generator update
        z = torch.randn(shape, device=DEV)
        sigma = self.draw_sigma(b)
        noise = torch.randn(shape, device=DEV)
        with torch.no_grad():
            x0 = self.generate(z)
            xt = x0 + sigma[:, None, None, None] * noise
            d_teacher = denoise(self.teacher, xt, sigma)
            d_fake = None if self.score_free else denoise(self.fake, xt, sigma)
        self.trainable(self.ratio_params, False)  # trainable(d, NULL)
        xt_leaf = xt.clone().requires_grad_(True)
        logit_t = self.ratio_logit(xt_leaf, sigma)
        logit = logit_t.detach()
        check(bool(torch.isfinite(logit).all()), "ratio logit")
        lc = logit.double().clamp(-80, 80)
        if self.score_free:  # dijs: w_s = 0, w_l = σ(l); value: the JS term
            sp = F.softplus(lc)
            stats["div"] = (math.log(2) - sp + torch.exp(lc) * (math.log(2) + lc - sp)).mean().item()
            w_s, w_l = torch.zeros_like(logit), torch.sigmoid(logit)
        else:  # kl: w_s = 1, w_l = 0; value: e^l − 1 − l
            stats["div"] = (torch.expm1(lc) - lc).mean().item()
            w_s, w_l = torch.ones_like(logit), torch.zeros_like(logit)
        check(bool(torch.isfinite(w_s).all() and torch.isfinite(w_l).all()), "w_s / w_l")
        stats["mean_ws"], stats["mean_wl"] = w_s.mean().item(), w_l.mean().item()
        need_grad_l = bool((w_l != 0).any())
        grad_l = None
        if need_grad_l:
            logit_t.backward(torch.ones(b, device=DEV))
            grad_l = xt_leaf.grad
        del logit_t
        s2 = sigma * sigma
        if self.score_free:  # σ² time weighting
            g = (s2[:, None, None, None]) * (-(w_l[:, None, None, None] * grad_l)) / n
        else:  # DMD: σ²/mean|x_0 − D_teacher|
            mad = (x0 - d_teacher).abs().flatten(1).mean(dim=1).clamp_min(1e-8)
            tw = s2 / mad
            g = (tw * w_s / s2)[:, None, None, None] * (d_fake - d_teacher) / n
        stats["gen_grad"] = g.norm().item() * n
        check(bool(torch.isfinite(g).all()), "generator gradient g~")
        loss = (self.generate(z) * g).sum()
        self.opt_gen.zero_grad(set_to_none=False)
        loss.backward()
        check(all_finite([p.grad for p in self.gen_params]), "generator parameter gradient")
        self.opt_gen.step()
        # EMA of the generator, weights finite
        ema_update(self.gen_ema, self.gen_params, ema_decay_warm(self.ema_decay, self.step_no))
        check(all_finite(self.gen_params), "generator weights")
        # 2. fake score: EDM DSM on sg(x_0)
        if not self.score_free:
            loss_f = dsm_loss(self.fake, x0, torch.exp(-1.2 + 1.2 * torch.randn(b, device=DEV)))
            self.opt_fake.zero_grad(set_to_none=False)
            loss_f.backward()
            stats["fake_loss"] = loss_f.item()
            check(math.isfinite(stats["fake_loss"]), "fake-score DSM loss")
            self.opt_fake.step()
        # 3. ratio estimator: BCE, real = 1, student = 0, on 2B noisy samples
        self.trainable(self.ratio_params, True)
        x_real = self.data.sample(b)
        sigma2 = self.draw_sigma(2 * b)
        xb = torch.cat([x_real, x0], dim=0) + sigma2[:, None, None, None] * torch.randn(2 * b, self.in_ch, 32, 32,
                                                                                         device=DEV)
        lr_ = self.ratio_logit(xb, sigma2)
        loss_r = F.binary_cross_entropy_with_logits(lr_, self.target)
        self.opt_ratio.zero_grad(set_to_none=False)
        loss_r.backward()
        stats["ratio_loss"] = loss_r.item()
        stats["ratio_acc"] = ((lr_.detach() > 0) == (self.target > 0.5)).float().mean().item()
        check(math.isfinite(stats["ratio_loss"]), "ratio-estimator BCE loss")
        self.opt_ratio.step()
        return stats


def per_step_ms(fn, warmup, iters):
    """`warmup` calls, then `iters` timed calls; their times in ms."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        dev_sync()
        t0 = time.perf_counter()
        fn()
        dev_sync()
        times.append(1e3 * (time.perf_counter() - t0))
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench", choices=["forward", "teacher", "kl", "dijs", "distill", "all"], default="all",
                    help="distill = kl and dijs")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    ap.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    ap.add_argument("--teacher-batch", type=int, default=32)
    ap.add_argument("--distill-batch", type=int, default=16)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--data", default=FASHION_MNIST_DIR)
    ap.add_argument("--expect-params", default="",
                    help="DENOISER,CLASSIFIER,GAN_HEAD from `bench_unet --params-only`; exit 3 on a mismatch")
    ap.add_argument("--params-only", action="store_true", help="print the parameter counts and stop")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = ap.parse_args()
    global DEV
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    arch = dict(PRESETS[args.preset])
    in_ch = arch.get("in_ch", 1)

    # parameter counts (on the cpu: they do not depend on the device): denoiser,
    # encoder-only classifier (out 1), gan head
    den = UNet(**arch)
    feats = {}
    with torch.no_grad():
        den(torch.zeros(1, in_ch, 32, 32), torch.zeros(1), feats)
    counts = (count(den), count(UNet(**dict(arch, encoder_only=True, out_ch=1))),
              count(GanHead(sum(feats["enc%d" % (32 >> lv)].shape[1] for lv in range(3)))))
    if args.expect_params:
        want, source = tuple(int(v) for v in args.expect_params.split(",")), "bench_unet --params-only"
    else:
        want, source = EXPECTED_PARAMS.get(args.preset), "EXPECTED_PARAMS"
    print(json.dumps({"impl": "torch", "bench": "params", "preset": args.preset, "channels": in_ch, "unet": counts[0],
                      "classifier": counts[1], "gan_head": counts[2]}), flush=True)
    if want is None or len(want) != 3 or tuple(want) != counts:
        print("torch_unet.py: PARAMETER COUNT MISMATCH for preset %s: torch %s, workbench %s (%s): "
              "the two networks differ, the timings would not compare" % (args.preset, counts, want, source),
              file=sys.stderr)
        return 3
    if args.params_only:
        return 0
    del den
    DEV = setup_device(args.device)
    data = Images(args.data, channels=in_ch)

    def report(bench, batch, times, extra=None):
        out = {"impl": "torch", "bench": bench, "device": args.device, "preset": args.preset,
               "threads": str(args.threads),
               "batch": batch, "ms_per_iter": round(statistics.median(times), 3),
               "mean_ms": round(statistics.fmean(times), 3), "min_ms": round(min(times), 3),
               "max_ms": round(max(times), 3), "iters": len(times), "warmup": args.warmup,
               "data": "synthetic" if data.synthetic else "fashion-mnist", "torch": torch.__version__}
        out.update(extra or {})
        # peak resident set of the process so far (ru_maxrss is KiB on Linux):
        # run one --bench per process to compare peaks
        out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
        print(json.dumps(out), flush=True)

    if args.bench in ("forward", "all"):
        # D(x; σ) without gradients, σ log-spaced over [0.002, 80] (bench_unet's unet_forward)
        b = args.teacher_batch
        net = UNet(**arch).to(DEV).eval()
        sigma = torch.tensor([0.002 * (80.0 / 0.002) ** (i / (b - 1) if b > 1 else 0.5) for i in range(b)],
                             device=DEV)
        x = torch.randn(b, in_ch, 32, 32, device=DEV) * (1.0 + sigma[:, None, None, None])

        def forward():
            with torch.no_grad():
                denoise(net, x, sigma)
        report("unet_forward", b, per_step_ms(forward, args.warmup, args.iters), {"params": counts[0]})
        del net
        if args.bench == "forward":
            return 0

    # the teacher: benchmarked, and then the (briefly trained) teacher of the distillations
    t = Teacher(arch, data, args.teacher_batch)
    times = per_step_ms(t.step, args.warmup, args.iters)
    if args.bench in ("teacher", "all"):
        report("unet_teacher_dsm", args.teacher_batch, times, {"params": counts[0]})
    t.step()  # the step bench_unet uses to close its last interval
    teacher = t.finish()
    for div in ("kl", "dijs"):
        if args.bench not in (div, "distill", "all"):
            continue
        d = Distiller(teacher, arch, data, args.distill_batch, div)
        report("unet_distill_" + div, args.distill_batch, per_step_ms(d.step, args.warmup, args.iters),
               {"params": counts[0], "ratio_params": counts[1] if div == "dijs" else counts[2]})
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""bench/torch_mlp.py — PyTorch side of the MLP benchmarks (bench/README.md).

The same two computations as bench/bench_mlp.c, written to match the
workbench op for op:

  teacher_dsm  one EDM DSM teacher step (host/engine/teacher.c): x_0 from the GMM,
               ln σ ~ N(-1.2, 1.2²), x_t = x_0 + σ·n, D = EDM-preconditioned
               mlp, loss = mean(λ(σ)·(D − x_0)²), backward, Adam, EMA.
  distill_js   one distillation iteration (host/engine/distill.c) with divergence js
               (w_s = σ(l), w_l = 0), DMD time weighting, ratio estimator
               `classifier` (an mlp backbone with out_channels 1, logit =
               mean of its output), fake_updates = ratio_updates = 1:
                 1. generator: x_0 = G(z) without grad; teacher and fake
                    denoise x_t; logits of x_t (x_t a leaf needing grad, as
                    in the C code, no backward since w_l ≡ 0); weights;
                    g̃; surrogate loss Σ x_0·sg(g̃) back through G; Adam
                 2. EMA of the generator
                 3. fake score: DSM on sg(x_0); Adam
                 4. classifier: BCE on 2B noisy samples (B real, B student);
                    Adam
               including the finiteness checks and statistics the C loop
               computes every step.

The mlp (plugins/nets/mlp.c): emb = SiLU(Linear(32,32)(PosEmb(c_noise)))
with EDM's positional embedding [cos(t·f), sin(t·f)], f_i = 10000^(-i/16);
h = concat(x_in, emb); 3 × SiLU(Linear(·,128)); output Linear; output layer
zero-initialised. EDM preconditioning with σ_data = 0.5.

Run with the system interpreter (Debian's python3-torch):
    /usr/bin/python3 bench/torch_mlp.py --threads 1 [--device cpu|cuda]
--device cuda puts nets, data and optimisers on the GPU (TF32 off for
matmuls and cuDNN, cudnn.benchmark on) and synchronises before every clock
reading.
Prints one JSON object per benchmark on stdout. Never a test.
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SIGMA_DATA = 0.5
SIGMA_MIN, SIGMA_MAX, KARRAS_RHO = 0.002, 80.0, 7.0
DEV = torch.device("cpu")  # set by setup_device (--device); every tensor of a step lives there


def setup_device(name):
    """Select the device of every net, tensor and optimiser; cuda: TF32 off (the
    workbench computes in plain float32 unless WB_CUDA_TF32=1), cudnn.benchmark on."""
    global DEV
    if name == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: torch %s sees no CUDA device" % torch.__version__)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    DEV = torch.device(name)
    return DEV


def dev_sync():
    """Wait for queued device work before the clock is read (no-op on cpu)."""
    if DEV.type == "cuda":
        torch.cuda.synchronize()


# ---- the mlp net ------------------------------------------------------------------
class MLP(nn.Module):
    def __init__(self, in_dim=2, out_dim=2, widths=(128, 128, 128), emb_dim=32, max_period=10000.0):
        super().__init__()
        half = emb_dim // 2
        self.register_buffer("freqs", max_period ** (-torch.arange(half, dtype=torch.float32) / half))
        self.emb = nn.Linear(emb_dim, emb_dim)
        layers, prev = [], in_dim + emb_dim
        for w in widths:
            layers.append(nn.Linear(prev, w))
            prev = w
        self.hidden = nn.ModuleList(layers)
        self.out = nn.Linear(prev, out_dim)
        # WB_INIT_UNIFORM_FAN_IN (U(±1/√fan_in)) weights, zero biases, zero output layer
        with torch.no_grad():
            for lin in [self.emb, *self.hidden]:
                bound = 1.0 / math.sqrt(lin.in_features)
                lin.weight.uniform_(-bound, bound)
                lin.bias.zero_()
            self.out.weight.zero_()
            self.out.bias.zero_()

    def forward(self, x_in, c_noise):
        a = c_noise[:, None] * self.freqs[None, :]
        emb = F.silu(self.emb(torch.cat([torch.cos(a), torch.sin(a)], dim=1)))
        h = torch.cat([x_in, emb], dim=1)
        for lin in self.hidden:
            h = F.silu(lin(h))
        return self.out(h)


def edm_coefficients(sigma):
    s = sigma[:, None]
    v = s * s + SIGMA_DATA * SIGMA_DATA
    rs = torch.rsqrt(v)
    return SIGMA_DATA * SIGMA_DATA / v, s * SIGMA_DATA * rs, rs, torch.log(sigma) / 4.0


def denoise(net, x, sigma):
    """D(x, σ) = c_skip·x + c_out·F(c_in·x, ln(σ)/4)  (host/engine/net.c)."""
    c_skip, c_out, c_in, c_noise = edm_coefficients(sigma)
    return c_skip * x + c_out * net(c_in * x, c_noise)


def classifier_logit(backbone, x, sigma):
    """plugins/ratio_estimators/classifier.c: mean over outputs of F(c_in·x, c_noise)."""
    _, _, c_in, c_noise = edm_coefficients(sigma)
    return backbone(c_in * x, c_noise).mean(dim=1)


# ---- data: gmm2d ring8-imbalanced, scale 1, std 0.05 (host/engine/gmm2d.c) --------------
class Ring8Imbalanced:
    def __init__(self, scale=1.0, std=0.05):
        w = torch.tensor([0.30, 0.20, 0.15, 0.10, 0.08, 0.07, 0.05, 0.05], dtype=torch.float64)
        ang = 2 * math.pi * torch.arange(8, dtype=torch.float64) / 8
        self.means = (scale * torch.stack([torch.cos(ang), torch.sin(ang)], 1)).float().to(DEV)
        self.cumulative = torch.cumsum(w, 0).float().to(DEV)
        self.cumulative[-1] = 2.0  # u < 1 always lands in a mode
        self.std = std

    def sample(self, n):
        k = torch.searchsorted(self.cumulative, torch.rand(n, device=DEV), right=True)
        return self.means[k] + self.std * torch.randn(n, 2, device=DEV)


def karras_sigma(u):
    a, z = SIGMA_MIN ** (1 / KARRAS_RHO), SIGMA_MAX ** (1 / KARRAS_RHO)
    return (a + u * (z - a)) ** KARRAS_RHO


def ema_decay_warm(decay, step):
    return min(decay, (1.0 + step) / (10.0 + step))


def ema_update(ema, params, decay):
    with torch.no_grad():
        torch._foreach_mul_(ema, decay)
        torch._foreach_add_(ema, params, alpha=1.0 - decay)


def check(ok, what):
    if not ok:
        raise FloatingPointError(what + " is not finite")


def make_adam(params, lr, beta1, foreach):
    return torch.optim.Adam(params, lr=lr, betas=(beta1, 0.999), eps=1e-8, foreach=foreach)


# ---- teacher DSM step ---------------------------------------------------------------
class Teacher:
    def __init__(self, data, batch, foreach, lr=2e-3, ema_decay=0.999):
        self.data, self.b, self.ema_decay = data, batch, ema_decay
        self.net = MLP().to(DEV)
        self.params = list(self.net.parameters())
        self.ema = [p.detach().clone() for p in self.params]
        self.opt = make_adam(self.params, lr, 0.9, foreach)
        self.step_no = 0

    def step(self):
        self.step_no += 1
        b = self.b
        x0 = self.data.sample(b)
        sigma = torch.exp(-1.2 + 1.2 * torch.randn(b, device=DEV))
        xt = x0 + sigma[:, None] * torch.randn(b, 2, device=DEV)
        s2 = sigma * sigma
        lam = (s2 + SIGMA_DATA ** 2) / (s2 * SIGMA_DATA ** 2)
        d = denoise(self.net, xt, sigma)
        loss = (lam[:, None] * (d - x0).square()).mean()
        self.opt.zero_grad(set_to_none=False)
        loss.backward()
        check(math.isfinite(loss.item()), "DSM loss")
        self.opt.step()
        ema_update(self.ema, self.params, ema_decay_warm(self.ema_decay, self.step_no))

    def finish(self):
        """The teacher IS the EMA: a frozen copy of the net with the EMA weights."""
        net = MLP().to(DEV)
        with torch.no_grad():
            for p, e in zip(net.parameters(), self.ema):
                p.copy_(e)
        net.requires_grad_(False)
        return net


# ---- one distillation iteration -----------------------------------------------------
class Distiller:
    def __init__(self, teacher_net, data, batch, foreach, lr_gen=1e-4, lr_fake=1e-3, lr_ratio=1e-3,
                 beta1=0.5, sigma_init=2.5, t_min=0.02, t_max=0.6, ema_decay=0.99):
        self.teacher, self.data, self.b = teacher_net, data, batch
        self.sigma_init, self.t_min, self.t_max, self.ema_decay = sigma_init, t_min, t_max, ema_decay
        self.gen, self.fake = MLP().to(DEV), MLP().to(DEV)
        self.gen.load_state_dict(teacher_net.state_dict())
        self.fake.load_state_dict(teacher_net.state_dict())
        self.gen.requires_grad_(True)
        self.fake.requires_grad_(True)
        self.backbone = MLP(out_dim=1).to(DEV)
        self.gen_params = list(self.gen.parameters())
        self.gen_ema = [p.detach().clone() for p in self.gen_params]
        self.opt_gen = make_adam(self.gen_params, lr_gen, beta1, foreach)
        self.opt_fake = make_adam(self.fake.parameters(), lr_fake, beta1, foreach)
        self.opt_ratio = make_adam(self.backbone.parameters(), lr_ratio, beta1, foreach)
        self.target = torch.cat([torch.ones(batch, device=DEV), torch.zeros(batch, device=DEV)])
        self.step_no = 0

    def draw_sigma(self, n):
        return karras_sigma(self.t_min + (self.t_max - self.t_min) * torch.rand(n, device=DEV))

    def step(self):
        self.step_no += 1
        b, n = self.b, self.b * 2
        stats = {}
        # 1. generator update
        z = torch.randn(b, 2, device=DEV)
        sigma = self.draw_sigma(b)
        noise = torch.randn(b, 2, device=DEV)
        s_init = torch.full((b,), self.sigma_init, device=DEV)
        with torch.no_grad():
            x0 = denoise(self.gen, self.sigma_init * z, s_init)
            xt = x0 + sigma[:, None] * noise
            d_teacher = denoise(self.teacher, xt, sigma)
            d_fake = denoise(self.fake, xt, sigma)
        xt_leaf = xt.clone().requires_grad_(True)  # as distill.c: a tape through the classifier
        logit = classifier_logit(self.backbone, xt_leaf, sigma).detach()
        check(bool(torch.isfinite(logit).all()), "ratio logit")
        lc = logit.clamp(-80, 80)  # wb_div_clampd; JS value estimate, for logging
        sp = F.softplus(lc)
        stats["div"] = (math.log(2) - sp + torch.exp(lc) * (math.log(2) + lc - sp)).mean().item()
        w_s = torch.sigmoid(logit)
        w_l = torch.zeros_like(logit)
        check(bool(torch.isfinite(w_s).all() and torch.isfinite(w_l).all()), "w_s / w_l")
        stats["mean_ws"], stats["mean_wl"] = w_s.mean().item(), w_l.mean().item()
        need_grad_l = bool((w_l != 0).any())
        assert not need_grad_l  # js: score-based only
        s2 = sigma * sigma
        mad = (x0 - d_teacher).abs().mean(dim=1).clamp_min(1e-8)
        tw = s2 / mad  # DMD normalisation
        grad = (tw * w_s / s2)[:, None] * (d_fake - d_teacher) / n
        stats["gen_grad"] = grad.norm().item() * n
        check(bool(torch.isfinite(grad).all()), "generator gradient g~")
        x0g = denoise(self.gen, self.sigma_init * z, s_init)
        loss = (x0g * grad).sum()
        self.opt_gen.zero_grad(set_to_none=False)
        loss.backward()
        gnorm = torch.stack(torch._foreach_norm([p.grad for p in self.gen_params])).norm()
        check(math.isfinite(gnorm.item()), "generator parameter gradient")
        self.opt_gen.step()
        # 2. EMA of the generator, weights finite
        ema_update(self.gen_ema, self.gen_params, ema_decay_warm(self.ema_decay, self.step_no))
        check(all(bool(torch.isfinite(p).all()) for p in self.gen_params), "generator weights")
        # 3. fake score: EDM DSM on sg(x_0)
        sig_f = torch.exp(-1.2 + 1.2 * torch.randn(b, device=DEV))
        xt_f = x0 + sig_f[:, None] * torch.randn(b, 2, device=DEV)
        sf2 = sig_f * sig_f
        lam = (sf2 + SIGMA_DATA ** 2) / (sf2 * SIGMA_DATA ** 2)
        den = denoise(self.fake, xt_f, sig_f)
        loss_f = (lam[:, None] * (den - x0).square()).mean()
        self.opt_fake.zero_grad(set_to_none=False)
        loss_f.backward()
        stats["fake_loss"] = loss_f.item()
        check(math.isfinite(stats["fake_loss"]), "fake-score DSM loss")
        self.opt_fake.step()
        # 4. classifier: BCE, real = 1, student = 0, on 2B noisy samples
        x_real = self.data.sample(b)
        sigma2 = self.draw_sigma(2 * b)
        xb = torch.cat([x_real, x0], dim=0) + sigma2[:, None] * torch.randn(2 * b, 2, device=DEV)
        lr_ = classifier_logit(self.backbone, xb, sigma2)
        loss_r = F.binary_cross_entropy_with_logits(lr_, self.target)
        self.opt_ratio.zero_grad(set_to_none=False)
        loss_r.backward()
        stats["ratio_loss"] = loss_r.item()
        stats["ratio_acc"] = ((lr_.detach() > 0) == (self.target > 0.5)).float().mean().item()
        check(math.isfinite(stats["ratio_loss"]), "ratio-estimator BCE loss")
        self.opt_ratio.step()
        return stats


def time_per_iter(fn, warmup, iters, repeats):
    """ms per call: `warmup` calls, then the fastest of `repeats` timed blocks of `iters` calls."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        dev_sync()
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        dev_sync()
        best = min(best, (time.perf_counter() - t0) / iters)
    return 1e3 * best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench", choices=["teacher", "distill", "all"], default="all")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OPENBLAS_NUM_THREADS", "1") or 1))
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--teacher-iters", type=int, default=1000)
    ap.add_argument("--distill-iters", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--adam-foreach", choices=["on", "off"], default="on",
                    help="torch.optim.Adam(foreach=...): 'on' is the faster on CPU here")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = ap.parse_args()
    setup_device(args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    foreach = args.adam_foreach == "on"
    data = Ring8Imbalanced()

    def report(bench, ms, iters):
        print(json.dumps({"impl": "torch", "bench": bench, "device": args.device, "threads": str(args.threads),
                          "batch": args.batch,
                          "ms_per_iter": round(ms, 4), "iters": iters, "repeats": args.repeats,
                          "torch": torch.__version__, "adam_foreach": foreach}), flush=True)

    if args.bench in ("teacher", "all"):
        t = Teacher(data, args.batch, foreach)
        report("teacher_dsm", time_per_iter(t.step, args.warmup, args.teacher_iters, args.repeats),
               args.teacher_iters)
    if args.bench in ("distill", "all"):
        t = Teacher(data, args.batch, foreach)
        for _ in range(300):  # a briefly trained teacher, as bench_mlp.c
            t.step()
        d = Distiller(t.finish(), data, args.batch, foreach)
        report("distill_js", time_per_iter(d.step, args.warmup, args.distill_iters, args.repeats),
               args.distill_iters)
    return 0


if __name__ == "__main__":
    sys.exit(main())

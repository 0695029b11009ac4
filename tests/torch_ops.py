#!/usr/bin/env python3
"""tests/torch_ops.py — the torch side of tests/test_ops_torch.c.

Usage: torch_ops.py DIR. DIR holds what the C test wrote:
  manifest.txt  one line per item:
                  case NAME OP N_IN P0 P1 GRADFLAG...   (0 no grad, 1 grad, 2 detached)
                  adam NAME LR BETA1 BETA2 EPS WD DECOUPLED STEPS
  tensors.bin   records: u32 name length, name (utf-8), u32 ndim, i64 shape[ndim],
                float32 data[numel], little-endian. Per case NAME/in<k>, NAME/w, NAME/out,
                NAME/grad<k>; per Adam run NAME/init, NAME/grads (steps, n), NAME/final.

For each case the op is recomputed in torch from the same float32 inputs,
the loss sum(w * out) is backpropagated, and one line per compared quantity
is printed:  RESULT NAME WHAT ERR   (WHAT = out, grad<k>, final)
For ops, ERR is the largest |c - t| / max(|t|, 1e-3 * max|t|): relative
error, with entries far below the tensor's scale held to that scale instead
(a difference of two nearly equal numbers has no relative accuracy to check).
For Adam runs (torch.optim.Adam / AdamW on the same gradient sequence), ERR
is max|dc - dt| / max|dt| over the parameter change d = final - init: the
parameters themselves are stored in float, so a per-element relative error
of a small change would only measure the rounding of p.

Each item is computed twice, in float32 torch (the library's own precision
and formulas: sigmoid' = y(1 - y) as torch does it) and in float64 on the
same float32 inputs (exact in float64: the true result), and ERR is the
smaller of the two errors, both shown after it. A correct float32 op is
close to one of them — torch-f32 where float rounding is inherent in the
formula (y(1 - y) in sigmoid's tail is ~1e-5 off the truth in both
libraries), the truth where torch-f32 itself is off (its float32 sum of a
dozen cancelling terms is ~5e-6 off) — and a wrong one is far from both.

Exit status: 0 all items computed (the C test judges the errors), 77 torch
missing, 1 anything unexpected: an op this script does not know, an op it
knows that no case exercised, a missing tensor, a shape that differs.
"""
import sys

from torch_exchange import die, read_tensors, rel_err  # exits 77 (NO_TORCH) without torch
import torch
import torch.nn.functional as F

DTYPES = (torch.float32, torch.float64)


def edm_positional_embedding(x, num_channels, max_positions):
    # EDM (Karras et al. 2022), training/networks.py PositionalEmbedding, endpoint=False;
    # EDM builds freqs in float32, here in x's dtype (the same thing when it is float32)
    freqs = torch.arange(start=0, end=num_channels // 2, dtype=x.dtype)
    freqs = freqs / (num_channels // 2)
    freqs = (1 / max_positions) ** freqs
    x = x.ger(freqs.to(x.dtype))
    return torch.cat([x.cos(), x.sin()], dim=1)


def mlp(x, w1, b1, w2, b2, y):
    return F.mse_loss(F.linear(F.silu(F.linear(x, w1, b1)), w2, b2), y).reshape(1)


# op name (as in wb/tensor.h) -> f(inputs, p0, p1, c_out_shape)
OPS = {
    "linear": lambda x, p0, p1, s: F.linear(x[0], x[1], x[2] if len(x) > 2 else None),
    "matmul": lambda x, p0, p1, s: x[0] @ x[1],
    "add": lambda x, p0, p1, s: x[0] + x[1],
    "sub": lambda x, p0, p1, s: x[0] - x[1],
    "mul": lambda x, p0, p1, s: x[0] * x[1],
    "div": lambda x, p0, p1, s: x[0] / x[1],
    "scale": lambda x, p0, p1, s: x[0] * p0,
    "add_scalar": lambda x, p0, p1, s: x[0] + p0,
    "exp": lambda x, p0, p1, s: torch.exp(x[0]),
    "log": lambda x, p0, p1, s: torch.log(x[0]),
    "sigmoid": lambda x, p0, p1, s: torch.sigmoid(x[0]),
    "softplus": lambda x, p0, p1, s: F.softplus(x[0]),
    "logsigmoid": lambda x, p0, p1, s: F.logsigmoid(x[0]),
    "silu": lambda x, p0, p1, s: F.silu(x[0]),
    "tanh": lambda x, p0, p1, s: torch.tanh(x[0]),
    "relu": lambda x, p0, p1, s: torch.relu(x[0]),
    "square": lambda x, p0, p1, s: torch.square(x[0]),
    "sqrt": lambda x, p0, p1, s: torch.sqrt(x[0]),
    "concat": lambda x, p0, p1, s: torch.cat([x[0], x[1]], dim=1),
    "slice1": lambda x, p0, p1, s: x[0][:, int(p0):int(p0) + int(p1)],
    # the target shape is the one the C op produced (test_ops_grad checks it)
    "reshape": lambda x, p0, p1, s: x[0].reshape(s),
    "detach": lambda x, p0, p1, s: x[0].detach() * x[1],
    "sum": lambda x, p0, p1, s: x[0].sum().reshape(1),
    "mean": lambda x, p0, p1, s: x[0].mean().reshape(1),
    "sum_rows": lambda x, p0, p1, s: x[0].reshape(x[0].shape[0], -1).sum(dim=1),
    "mean_rows": lambda x, p0, p1, s: x[0].reshape(x[0].shape[0], -1).mean(dim=1),
    "sinusoidal": lambda x, p0, p1, s: edm_positional_embedding(x[0], int(p0), p1),
    "mse": lambda x, p0, p1, s: F.mse_loss(x[0], x[1]).reshape(1),
    # (B, 1) logits with (B) targets pair element-wise (torch itself refuses the shapes)
    "bce_logits": lambda x, p0, p1, s: F.binary_cross_entropy_with_logits(x[0], x[1].reshape(x[0].shape)).reshape(1),
    "mlp": lambda x, p0, p1, s: mlp(*x),
    "cat0": lambda x, p0, p1, s: torch.cat([x[0], x[1]], dim=0),
    "add_noise": lambda x, p0, p1, s: x[0] + per_sample(x[1], x[0]) * x[2],
    "edm_precond": lambda x, p0, p1, s: edm_precond(x),
    "edm_loss_weight": lambda x, p0, p1, s: ((x[0] ** 2 + 0.25) / (x[0] ** 2 * 0.25)).reshape(-1, 1),
    "dmd_weight": lambda x, p0, p1, s: dmd_weight(x),
    "distill_grad": lambda x, p0, p1, s: (distill_grad(x[0], x[1], x[2], x[3], x[4], x[5], x[3] * x[3])
                                          if len(x) == 6 else distill_grad(None, None, *x)),
}


def per_sample(s, like):
    return s.reshape(-1, *([1] * (like.dim() - 1)))


def edm_precond(x):
    s, a, b = x
    sd = 0.5
    c_skip = sd * sd / (s * s + sd * sd)
    c_out = s * sd / torch.sqrt(s * s + sd * sd)
    c_in = 1 / torch.sqrt(s * s + sd * sd)
    c_noise = torch.log(s) / 4
    return (per_sample(c_skip, a) * a + per_sample(c_out, a) * b + per_sample(c_in, a) * a
            + per_sample(c_noise, a))


def dmd_weight(x):
    x0, d, s = x
    mad = (x0 - d).abs().reshape(x0.shape[0], -1).mean(dim=1)
    return s * s / torch.clamp(mad, min=1e-8)


def distill_grad(w_s, d_fake, d_teacher, s, w_l, grad_l, tw):
    e = torch.zeros_like(d_teacher)
    if d_fake is not None:
        e = per_sample(w_s, d_teacher) * (d_fake - d_teacher) / per_sample(s * s, d_teacher)
    e = e - per_sample(w_l, d_teacher) * grad_l
    return per_sample(tw, d_teacher) * e / d_teacher.numel()


def get(tensors, key):
    if key not in tensors:
        die("tensor %s missing from tensors.bin" % key)
    return tensors[key]


def report(name, what, errs):
    print("RESULT %s %s %.6g f32 %.3g f64 %.3g" % (name, what, min(errs), errs[0], errs[1]))


def torch_case(tensors, name, op, n_in, p0, p1, flags, dtype, c_shape):
    """Forward and backward of one case in dtype: (out, [grad or None per input])."""
    xs = []
    for k in range(n_in):
        t = get(tensors, "%s/in%d" % (name, k)).to(dtype).clone()
        t.requires_grad_(flags[k] != 0)
        xs.append(t)
    out = OPS[op](xs, p0, p1, c_shape)
    if tuple(out.shape) != c_shape:
        die("case %s: output shape %s, torch %s" % (name, c_shape, tuple(out.shape)))
    w = get(tensors, name + "/w").to(dtype)
    (out * w).sum().backward()
    grads = [(x.grad if x.grad is not None else torch.zeros_like(x)) if x.requires_grad else None for x in xs]
    return out.detach(), grads


def run_case(tensors, name, op, n_in, p0, p1, flags):
    if op not in OPS:
        die("case %s: op '%s' unknown to torch_ops.py — add its torch reference" % (name, op))
    c_out = get(tensors, name + "/out")
    c_shape = tuple(c_out.shape)
    ref = [torch_case(tensors, name, op, n_in, p0, p1, flags, dt, c_shape) for dt in DTYPES]
    report(name, "out", [rel_err(c_out, r[0]) for r in ref])
    for k in range(n_in):
        if flags[k] == 0:
            continue
        cg = get(tensors, "%s/grad%d" % (name, k))
        if flags[k] == 2:  # detached: any nonzero entry is a failure, whatever its size
            ok = bool((cg == 0).all()) and all(bool((r[1][k] == 0).all()) for r in ref)
            report(name, "grad%d" % k, [0.0 if ok else float("inf")] * 2)
        else:
            report(name, "grad%d" % k, [rel_err(cg, r[1][k]) for r in ref])


def run_adam(tensors, name, lr, b1, b2, eps, wd, decoupled, steps):
    init = get(tensors, name + "/init")
    grads = get(tensors, name + "/grads")
    final = get(tensors, name + "/final")
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    errs = []
    for dtype in DTYPES:
        p = init.to(dtype).clone().requires_grad_(True)
        opt = cls([p], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
        for s in range(steps):
            p.grad = grads[s].to(dtype).clone()
            opt.step()
        # compare the change, not the values: the update is what Adam computes
        dc = final.double() - init.double()
        dt = p.detach().double() - init.double()
        errs.append(((dc - dt).abs().max() / dt.abs().max().clamp(min=1e-30)).item())
    report(name, "final", errs)


def main():
    if len(sys.argv) != 2:
        die("usage: torch_ops.py DIR")
    d = sys.argv[1]
    tensors = read_tensors(d + "/tensors.bin")
    seen = set()
    n_items = 0
    with open(d + "/manifest.txt") as f:
        for line in f:
            tok = line.split()
            if not tok:
                continue
            if tok[0] == "case":
                name, op, n_in = tok[1], tok[2], int(tok[3])
                p0, p1 = float(tok[4]), float(tok[5])
                flags = [int(v) for v in tok[6:6 + n_in]]
                if len(flags) != n_in:
                    die("manifest: case %s has %d grad flags, want %d" % (name, len(flags), n_in))
                run_case(tensors, name, op, n_in, p0, p1, flags)
                seen.add(op)
            elif tok[0] == "adam":
                run_adam(tensors, tok[1], float(tok[2]), float(tok[3]), float(tok[4]), float(tok[5]),
                         float(tok[6]), int(tok[7]), int(tok[8]))
            else:
                die("manifest: unknown line '%s'" % line.strip())
            n_items += 1
    unused = sorted(set(OPS) - seen)
    if unused:
        die("ops with a torch reference but no case: %s" % ", ".join(unused))
    print("DONE %d" % n_items)


if __name__ == "__main__":
    main()

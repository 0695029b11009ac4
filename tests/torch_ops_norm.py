#!/usr/bin/env python3
"""tests/torch_ops_norm.py — the torch side of tests/test_ops_norm.c
(group norm and softmax; modelled on tests/torch_ops.py).

Usage: torch_ops_norm.py DIR. DIR holds what the C test wrote:
  manifest.txt  one line per case:  case NAME OP GROUPS EPS HAS_GAMMA HAS_BETA
  tensors.bin   records: u32 name length, name (utf-8), u32 ndim, i64 shape[ndim],
                float32 data[numel], little-endian. Per case NAME/x, NAME/gamma,
                NAME/beta (when present), NAME/w, NAME/out, NAME/grad_<input>.

Each case is recomputed with F.group_norm / torch.softmax(dim=-1) from the
same float32 inputs, sum(w * out) is backpropagated, and one line per
compared quantity is printed:  RESULT NAME WHAT ERR  (WHAT = out, grad_x,
grad_gamma, grad_beta). ERR is the largest |c - t| / max(|t|, 1e-3 max|t|),
computed against float32 and float64 torch; the smaller is reported (as in
tests/torch_ops.py: a correct float32 op is close to one of them, a wrong
one far from both).

Exit status: 0 all computed, 77 torch missing, 1 anything unexpected.
"""
import sys

from torch_exchange import die, read_tensors, rel_err  # exits 77 (NO_TORCH) without torch
import torch
import torch.nn.functional as F

DTYPES = (torch.float32, torch.float64)
LEAVES = ("x", "gamma", "beta")


def get(tensors, key):
    if key not in tensors:
        die("tensor %s missing from tensors.bin" % key)
    return tensors[key]


def torch_case(tensors, name, op, groups, eps, present, dtype):
    xs = {}
    for k in LEAVES:
        if present[k]:
            xs[k] = get(tensors, "%s/%s" % (name, k)).to(dtype).clone().requires_grad_(True)
    if op == "group_norm" and "beta" in xs and "gamma" not in xs:
        # this torch's group_norm backward fails ("tensor does not have a
        # device") for a bias without a weight: add the bias by hand
        bshape = (1, -1) + (1,) * (xs["x"].dim() - 2)
        out = F.group_norm(xs["x"], groups, eps=eps) + xs["beta"].reshape(bshape)
    elif op == "group_norm":
        out = F.group_norm(xs["x"], groups, weight=xs.get("gamma"), bias=xs.get("beta"), eps=eps)
    elif op == "softmax":
        out = torch.softmax(xs["x"], dim=-1)
    else:
        die("case %s: op '%s' unknown to torch_ops_norm.py" % (name, op))
    w = get(tensors, name + "/w").to(dtype)
    (out * w).sum().backward()
    return out.detach(), {k: v.grad for k, v in xs.items()}


def main():
    if len(sys.argv) != 2:
        die("usage: torch_ops_norm.py DIR")
    d = sys.argv[1]
    tensors = read_tensors(d + "/tensors.bin")
    n = 0
    with open(d + "/manifest.txt") as f:
        for line in f:
            tok = line.split()
            if not tok:
                continue
            if tok[0] != "case" or len(tok) != 7:
                die("manifest: unexpected line '%s'" % line.strip())
            name, op, groups, eps = tok[1], tok[2], int(tok[3]), float(tok[4])
            present = {"x": True, "gamma": tok[5] == "1", "beta": tok[6] == "1"}
            c_out = get(tensors, name + "/out")
            ref = [torch_case(tensors, name, op, groups, eps, present, dt) for dt in DTYPES]
            for r in ref:
                if tuple(r[0].shape) != tuple(c_out.shape):
                    die("case %s: output shape %s, torch %s" % (name, tuple(c_out.shape), tuple(r[0].shape)))
            errs = [rel_err(c_out, r[0]) for r in ref]
            print("RESULT %s out %.6g f32 %.3g f64 %.3g" % (name, min(errs), errs[0], errs[1]))
            for k in LEAVES:
                if not present[k]:
                    continue
                cg = get(tensors, "%s/grad_%s" % (name, k))
                errs = [rel_err(cg, r[1][k]) for r in ref]
                print("RESULT %s grad_%s %.6g f32 %.3g f64 %.3g" % (name, k, min(errs), errs[0], errs[1]))
            n += 1
    print("DONE %d" % n)


if __name__ == "__main__":
    main()

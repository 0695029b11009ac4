#!/usr/bin/env python3
"""tests/torch_ops_conv.py — the torch side of tests/test_ops_conv.c.

Usage: torch_ops_conv.py DIR. DIR holds what the C test wrote (the format of
tests/torch_ops.py):
  manifest.txt  one line per case:  case NAME OP N_IN P0 P1 P2 P3
                (conv2d: P0 stride, P1 pad, N_IN 2 = no bias; bmm: trans_a, trans_b)
  tensors.bin   records: u32 name length, name, u32 ndim, i64 shape[ndim],
                float32 data, little-endian: NAME/in<k>, NAME/w, NAME/out, NAME/grad<k>.

Each case is recomputed in float64 torch from the same float32 inputs (exact
in float64, so this is the true result), sum(w * out) is backpropagated, and
one line per compared quantity is printed:  RESULT NAME WHAT ERR  (WHAT = out,
grad<k>), ERR = max |c − t| / max(|t|, 1e-3·max|t|) as in torch_ops.py.

Exit status: 0 all computed (the C test judges), 77 torch missing, 1 an
unknown op, a missing tensor or a shape that differs.
"""
import sys

from torch_exchange import run_image_cases  # exits 77 (NO_TORCH) without torch
import torch
import torch.nn.functional as F


def bmm(a, b, ta, tb):
    return torch.bmm(a.transpose(1, 2) if ta else a, b.transpose(1, 2) if tb else b)


OPS = {
    "conv2d": lambda x, p: F.conv2d(x[0], x[1], x[2] if len(x) > 2 else None, stride=p[0], padding=p[1]),
    "upsample2x": lambda x, p: F.interpolate(x[0], scale_factor=2, mode="nearest"),
    "avgpool2x": lambda x, p: F.avg_pool2d(x[0], 2),
    "bmm": lambda x, p: bmm(x[0], x[1], p[0], p[1]),
}


if __name__ == "__main__":
    run_image_cases(sys.argv, OPS)

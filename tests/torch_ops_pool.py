#!/usr/bin/env python3
"""tests/torch_ops_pool.py — the torch side of tests/test_ops_pool.c.

Usage: torch_ops_pool.py DIR. DIR holds what the C test wrote (the format of
tests/torch_ops.py):
  manifest.txt  one line per case:  case NAME OP N_IN P0 P1 P2 P3
                maxpool2d: k stride pad -; avgpool2d: k stride pad
                count_include_pad; resize_bilinear: out_h out_w - -;
                conv2d_ex: stride_h stride_w pad_h pad_w (N_IN 2 = no bias)
  tensors.bin   records: u32 name length, name, u32 ndim, i64 shape[ndim],
                float32 data, little-endian: NAME/in<k>, NAME/w, NAME/out, NAME/grad<k>.

Each case is recomputed in float64 torch (resize_bilinear: float32, see
FLOAT32_OPS) from the same float32 inputs,
sum(w * out) is backpropagated, and one line per compared quantity is
printed:  RESULT NAME WHAT ERR  (WHAT = out, grad<k>), ERR as in
torch_exchange.rel_err.

Exit status: 0 all computed (the C test judges), 77 torch missing, 1 an
unknown op, a missing tensor or a shape that differs.
"""
import sys

from torch_exchange import run_image_cases  # exits 77 (NO_TORCH) without torch
import torch.nn.functional as F

OPS = {
    "maxpool2d": lambda x, p: F.max_pool2d(x[0], p[0], stride=p[1], padding=p[2]),
    "avgpool2d": lambda x, p: F.avg_pool2d(x[0], p[0], stride=p[1], padding=p[2], count_include_pad=bool(p[3])),
    "resize_bilinear": lambda x, p: F.interpolate(x[0], size=(p[0], p[1]), mode="bilinear", align_corners=False),
    "conv2d_ex": lambda x, p: F.conv2d(x[0], x[1], x[2] if len(x) > 2 else None, stride=(p[0], p[1]),
                                       padding=(p[2], p[3])),
}

# Bilinear resizing is compared with float32 torch: torch computes the source
# coordinate (o + ½)·in/out − ½ and the tap weights in the input's precision,
# so float64 torch differs from float32 by ~1e-6·in in the weights (a
# relative 1e-3 at entries near 0 for 32 -> 299), while the C kernel follows
# the float32 arithmetic, as the FID network (float32) needs.
FLOAT32_OPS = {"resize_bilinear"}


if __name__ == "__main__":
    run_image_cases(sys.argv, OPS, FLOAT32_OPS)

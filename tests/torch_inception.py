#!/usr/bin/env python3
"""tests/torch_inception.py — the torch side of tests/test_inception.c: the
FID Inception-v3 architecture of host/engine/inception.c checked against
torchvision's Inception3 with random weights.

Usage: torch_inception.py DIR. Writes
  DIR/weights.safetensors  the whole state dict of torchvision's
                           inception_v3(aux_logits=True, init_weights=True)
                           (fc.*, AuxLogits.* and the I64 num_batches_tracked
                           included: the C loader must skip them);
  DIR/io.safetensors       rgb (2, 3, 32, 32) and gray (1, 1, 28, 20) images
                           in [-1, 1] and their pool3 features rgb_feat
                           (2, 2048), gray_feat (1, 2048), computed in float64.

The FID network is torchvision's modules run the way pytorch-fid runs them:
bilinear resize to 299 (align_corners=False), the stem, Mixed_5b..7c with
the FID blocks (A, C, E: 3×3 average pools with count_include_pad=False;
Mixed_7c's pool branch a 3×3 max pool; B and D are torchvision's own), then
the mean over the 8×8 plane. The FID variants are written here as
functions over torchvision's block modules, so every weight keeps its
torchvision name.

BatchNorm: random γ, β; then one train-mode pass over two other random
images sets every layer's running mean and variance to real activation
statistics (so 94 layers deep the features are neither 0 nor huge), which
are then perturbed by a few per cent, so that folding BatchNorm into the
convolutions is exercised with non-trivial values of all four.

Exit status: 0 done (prints DONE), 77 torch or torchvision missing (prints
NO_TORCH / "SKIP: torchvision not installed"), 1 anything else.
"""
import json
import struct
import sys

from torch_exchange import die  # exits 77 (NO_TORCH) without torch
import torch
import torch.nn.functional as F

try:
    import torchvision
except ImportError:
    print("SKIP: torchvision not installed (Debian: python3-torchvision)")
    sys.exit(77)


# ---- the FID network over torchvision's modules -----------------------------------
def seq(block, names, x):
    for n in names:
        x = getattr(block, n)(x)
    return x


def fid_avg(x):
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def fid_a(m, x):
    return torch.cat([m.branch1x1(x),
                      seq(m, ["branch5x5_1", "branch5x5_2"], x),
                      seq(m, ["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"], x),
                      m.branch_pool(fid_avg(x))], 1)


def fid_c(m, x):
    return torch.cat([m.branch1x1(x),
                      seq(m, ["branch7x7_1", "branch7x7_2", "branch7x7_3"], x),
                      seq(m, ["branch7x7dbl_%d" % i for i in range(1, 6)], x),
                      m.branch_pool(fid_avg(x))], 1)


def fid_e(m, x, max_pool):
    t = m.branch3x3_1(x)
    u = seq(m, ["branch3x3dbl_1", "branch3x3dbl_2"], x)
    pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if max_pool else fid_avg(x)
    return torch.cat([m.branch1x1(x),
                      torch.cat([m.branch3x3_2a(t), m.branch3x3_2b(t)], 1),
                      torch.cat([m.branch3x3dbl_3a(u), m.branch3x3dbl_3b(u)], 1),
                      m.branch_pool(pooled)], 1)


def pool3(net, x):
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    x = seq(net, ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1",
                  "Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2"], x)
    for name in ["Mixed_5b", "Mixed_5c", "Mixed_5d"]:
        x = fid_a(getattr(net, name), x)
    x = net.Mixed_6a(x)  # InceptionB: torchvision's own
    for name in ["Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"]:
        x = fid_c(getattr(net, name), x)
    x = net.Mixed_7a(x)  # InceptionD: torchvision's own
    x = fid_e(net.Mixed_7b, x, False)
    x = fid_e(net.Mixed_7c, x, True)
    return F.adaptive_avg_pool2d(x, 1).flatten(1)


# ---- a minimal safetensors writer ------------------------------------------------------
DTYPES = {torch.float32: "F32", torch.int64: "I64"}


def save_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        if t.dtype not in DTYPES:
            die("no safetensors dtype for %s (%s)" % (name, t.dtype))
        data = t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    d = sys.argv[1]
    torch.manual_seed(1234)
    net = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True)
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    if not bns or any(abs(m.eps - 1e-3) > 1e-12 for m in bns):
        die("torchvision's BasicConv2d BatchNorm is not eps = 1e-3")
    g = torch.Generator().manual_seed(99)
    with torch.no_grad():
        for m in bns:
            m.weight.copy_(0.5 + torch.rand(m.num_features, generator=g))
            m.bias.copy_(0.2 * torch.randn(m.num_features, generator=g))
            m.reset_running_stats()
            m.momentum = None  # running statistics: a plain average over the pass
        net.train()
        pool3(net, torch.rand(2, 3, 40, 40, generator=g) * 2 - 1)
        for m in bns:  # statistics of the right scale, but not exactly the batch's
            c = m.num_features
            m.running_mean.add_(0.05 * torch.randn(c, generator=g) * m.running_var.sqrt())
            m.running_var.mul_(0.9 + 0.2 * torch.rand(c, generator=g))
    net.eval()
    save_safetensors(d + "/weights.safetensors", net.state_dict())

    rgb = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    gray = torch.rand(1, 1, 28, 20, generator=g) * 2 - 1
    net = net.double()  # float32 weights are exact in float64: the true result
    with torch.no_grad():
        rgb_feat = pool3(net, rgb.double()).float()
        gray_feat = pool3(net, gray.double()).float()
    if not (rgb_feat.abs().max() > 0 and torch.isfinite(rgb_feat).all()):
        die("degenerate reference features")
    save_safetensors(d + "/io.safetensors", {"rgb": rgb, "gray": gray, "rgb_feat": rgb_feat, "gray_feat": gray_feat})
    print("features: mean %.4g, max %.4g" % (rgb_feat.mean().item(), rgb_feat.max().item()))
    print("DONE")


if __name__ == "__main__":
    main()

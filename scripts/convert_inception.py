#!/usr/bin/python3
"""scripts/convert_inception.py — pytorch-fid's Inception weights
(pt_inception-2015-12-05-6726825d.pth, the FID network every paper's FID
uses) into the safetensors file `inception=` expects (wb.image_metrics,
experiments' inception= key): torchvision's state-dict names, float32,
BatchNorm statistics included, num_batches_tracked dropped.

  /usr/bin/python3 scripts/convert_inception.py pt_inception-2015-12-05-6726825d.pth pt_inception.safetensors

The .pth is read with torch.load(weights_only=True): tensors and containers
only, nothing executed. The file must hold every BasicConv2d the FID
network uses (conv weight + BatchNorm weight, bias, running mean and
variance); the classifier (fc, 1008 classes) is kept, unused.
"""

import argparse
import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# The BasicConv2d layers of the FID network (host/engine/inception.c builds
# the same list): a file missing any of them is not pytorch-fid's.
STEM = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3"]
BLOCKS = {
    "A": ["branch1x1", "branch5x5_1", "branch5x5_2", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3",
          "branch_pool"],
    "B": ["branch3x3", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"],
    "C": ["branch1x1", "branch7x7_1", "branch7x7_2", "branch7x7_3", "branch7x7dbl_1", "branch7x7dbl_2",
          "branch7x7dbl_3", "branch7x7dbl_4", "branch7x7dbl_5", "branch_pool"],
    "D": ["branch3x3_1", "branch3x3_2", "branch7x7x3_1", "branch7x7x3_2", "branch7x7x3_3", "branch7x7x3_4"],
    "E": ["branch1x1", "branch3x3_1", "branch3x3_2a", "branch3x3_2b", "branch3x3dbl_1", "branch3x3dbl_2",
          "branch3x3dbl_3a", "branch3x3dbl_3b", "branch_pool"],
}
MIXED = [("Mixed_5b", "A"), ("Mixed_5c", "A"), ("Mixed_5d", "A"), ("Mixed_6a", "B"), ("Mixed_6b", "C"),
         ("Mixed_6c", "C"), ("Mixed_6d", "C"), ("Mixed_6e", "C"), ("Mixed_7a", "D"), ("Mixed_7b", "E"),
         ("Mixed_7c", "E")]


def layers():
    out = list(STEM)
    for mixed, kind in MIXED:
        out += ["%s.%s" % (mixed, b) for b in BLOCKS[kind]]
    return out


def required_names():
    names = []
    for l in layers():
        names += [l + ".conv.weight"] + [l + ".bn." + k for k in ("weight", "bias", "running_mean", "running_var")]
    return names


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pth")
    ap.add_argument("out")
    args = ap.parse_args(argv)
    try:
        import torch
        from convert_edm import write_safetensors
        sd = torch.load(args.pth, map_location="cpu", weights_only=True)
        if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
            sd = sd["state_dict"]
        if not isinstance(sd, dict):
            raise ValueError("%s holds a %s, not a state dict" % (args.pth, type(sd).__name__))
        sd = {k: v for k, v in sd.items() if torch.is_tensor(v) and not k.endswith("num_batches_tracked")}
        missing = [n for n in required_names() if n not in sd]
        if missing:
            raise ValueError("%s is not pytorch-fid's Inception: %d of its tensors are missing (first: %s)" %
                             (args.pth, len(missing), ", ".join(missing[:3])))
        h = hashlib.sha256()
        with open(args.pth, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        write_safetensors(args.out, sd, {"format": "inception-v3-fid", "converted_from": os.path.basename(args.pth),
                                         "source_sha256": h.hexdigest()})
        print("%s: %d tensors (%d FID layers) -> %s" % (args.pth, len(sd), len(layers()), args.out))
        return 0
    except Exception as e:  # one line naming the file, for any failure
        print("convert_inception: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

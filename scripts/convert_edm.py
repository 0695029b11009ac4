#!/usr/bin/python3
"""scripts/convert_edm.py — EDM network snapshots (network-snapshot-*.pkl) into
safetensors, executing nothing the pickle contains (scripts/edm_pickle.py).

  /usr/bin/python3 scripts/convert_edm.py inspect SNAPSHOT.pkl
      the networks in the snapshot: each persistent class (name, hash of its
      embedded source, constructor arguments) and the state-dict tensors with
      their shapes, under EDM's own names (e.g. ema.model.enc.32x32_conv.weight)
  /usr/bin/python3 scripts/convert_edm.py dump SNAPSHOT.pkl OUT.safetensors [--key ema]
      one network's state dict under EDM's names, float32, plus metadata:
      source file and its sha256, the class tree, constructor arguments (JSON)
      — a file any safetensors reader loads, with nothing executable in it

What this does not do yet (issue 9): rename and re-lay EDM's tensors into the
`unet` plugin's layout (its qkv rows, its embedding convention), which needs
the plugin to compute exactly what EDM's SongUNet computes first.

Exit status 1 with a message naming the file and the refused global, for a
pickle that asks for anything but tensors and containers.
"""

import argparse
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import edm_pickle  # noqa: E402


def plain(v):
    """Constructor arguments as JSON-able data (tuples as lists, the rest as text)."""
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    return repr(v)


def networks(top):
    """(key, root module) of every network in the snapshot's top level."""
    if edm_pickle.is_module(top):
        return [("", top)]
    if isinstance(top, dict):
        return [(k, v) for k, v in top.items() if edm_pickle.is_module(v)]
    return []


def describe(root):
    out = []
    for name, m in edm_pickle.modules(root):
        if isinstance(m, edm_pickle.Persistent):
            out.append({"module": name, "class": m.class_name, "source_sha256": m.module_sha256,
                        "init_args": plain(m.init_args), "init_kwargs": plain(m.init_kwargs)})
    return out


def cmd_inspect(args):
    top = edm_pickle.load(args.snapshot)
    nets = networks(top)
    if isinstance(top, dict):
        others = [k for k, v in top.items() if not edm_pickle.is_module(v)]
        if others:
            print("other entries: %s" % ", ".join("%s (%s)" % (k, type(top[k]).__name__) for k in others))
    if not nets:
        print("%s: no network in this pickle" % args.snapshot, file=sys.stderr)
        return 1
    for key, root in nets:
        sd = edm_pickle.state_dict(root)
        n = sum(t.numel() for t in sd.values())
        print("== %s: %s, %d tensors, %d values" % (key or "(top)", getattr(root, "class_name", root), len(sd), n))
        for d in describe(root):
            print("   class %-28s %-24s source %s  %s" % (d["module"] or "(root)", d["class"], d["source_sha256"][:12],
                                                         json.dumps(d["init_kwargs"], sort_keys=True)))
        for name, t in sd.items():
            print("   %-60s %-10s %s" % (name, str(t.dtype).replace("torch.", ""), list(t.shape)))
    return 0


def write_safetensors(path, tensors, meta):
    """The safetensors layout: 8-byte little-endian header size, the JSON
    header (dtype, shape, byte offsets; __metadata__ strings), the data.
    Written to a temporary file, then renamed."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        b = t.detach().to("cpu").contiguous().float().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    header["__metadata__"] = {k: str(v) for k, v in meta.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def cmd_dump(args):
    top = edm_pickle.load(args.snapshot)
    nets = dict(networks(top))
    key = args.key if args.key in nets else ("" if "" in nets else None)
    if key is None:
        print("%s: no network '%s' (networks: %s)" % (args.snapshot, args.key, ", ".join(nets) or "none"),
              file=sys.stderr)
        return 1
    root = nets[key]
    sd = edm_pickle.state_dict(root)
    meta = {
        "format": "edm-state-dict",
        "source_file": os.path.basename(args.snapshot),
        "source_sha256": edm_pickle.file_sha256(args.snapshot),
        "network": key or "(top)",
        "classes": json.dumps(describe(root), sort_keys=True),
        "names": "edm",
    }
    write_safetensors(args.out, sd, meta)
    print("%s: %d tensors (%d values) of '%s' -> %s" % (args.snapshot, len(sd), sum(t.numel() for t in sd.values()),
                                                       key or "(top)", args.out))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("inspect", help="list the networks, classes and tensors of a snapshot")
    p.add_argument("snapshot")
    p = sub.add_parser("dump", help="one network's state dict (EDM names) as safetensors")
    p.add_argument("snapshot")
    p.add_argument("out")
    p.add_argument("--key", default="ema", help="which network of the snapshot (default: ema)")
    args = ap.parse_args(argv)
    try:
        return cmd_inspect(args) if args.cmd == "inspect" else cmd_dump(args)
    except (edm_pickle.RefusedPickle, OSError, Exception) as e:  # one line, naming the file, for any failure
        if isinstance(e, KeyboardInterrupt):
            raise
        print("convert_edm: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

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

  /usr/bin/python3 scripts/convert_edm.py convert SNAPSHOT.pkl OUT.safetensors [--key ema]
      an EDMPrecond(SongUNet) network — DDPM++ or NCSN++: positional or
      Fourier noise embedding, standard or residual encoder, standard
      decoder, resample filter [1, 1] or [1, 3, 3, 1] —
      as a workbench teacher checkpoint: `teacher.` + the `unet` plugin's
      names, qkv rows re-laid from EDM's (channel, q|k|v) interleaving into
      q, k, v thirds, Fourier frequencies times 2π as the plugin stores them;
      the net spec to load it with is printed and stored in the metadata
      (`unet_spec`), with the preconditioning (EDMPrecond / VPPrecond /
      VEPrecond -> precond = edm | vp | ve) and the source file's sha256.
      Load it with wb.teacher{data = ..., net = SPEC, precond = P, init = OUT, steps = 0}.

EDM's ADM (DhariwalUNet) converts to the `adm` net plugin. Not converted
(an error says so): SongUNet's 'skip' encoder/decoder.

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


SONG_UNET_DEFAULTS = dict(label_dim=0, augment_dim=0, model_channels=128, channel_mult=[1, 2, 2, 2],
                          channel_mult_emb=4, num_blocks=4, attn_resolutions=[16], dropout=0.10, label_dropout=0,
                          embedding_type="positional", channel_mult_noise=1, encoder_type="standard",
                          decoder_type="standard", resample_filter=[1, 1])


DHARIWAL_UNET_DEFAULTS = dict(label_dim=0, augment_dim=0, model_channels=192, channel_mult=[1, 2, 3, 4],
                              channel_mult_emb=4, num_blocks=3, attn_resolutions=[32, 16, 8], dropout=0.10,
                              label_dropout=0)


class NotConvertible(Exception):
    pass


def unet_spec_of(precond):
    """The `unet` net spec (a Lua table's fields) equivalent to EDM's
    EDMPrecond(SongUNet) — or NotConvertible saying what is missing."""
    kinds = {"EDMPrecond": "edm", "VPPrecond": "vp", "VEPrecond": "ve"}
    if not isinstance(precond, edm_pickle.Persistent) or precond.class_name not in kinds:
        name = getattr(precond, "class_name", type(precond).__name__)
        raise NotConvertible("the network is %s: only EDMPrecond, VPPrecond and VEPrecond convert" % name)
    pk = precond.init_kwargs
    if precond.class_name == "EDMPrecond" and float(pk.get("sigma_data", 0.5)) != 0.5:
        raise NotConvertible("sigma_data = %s: the workbench's EDM preconditioning uses 0.5" % pk.get("sigma_data"))
    if precond.class_name == "VPPrecond":
        for k, v in (("beta_d", 19.9), ("beta_min", 0.1), ("M", 1000)):
            if float(pk.get(k, v)) != v:
                raise NotConvertible("VPPrecond with %s = %s: the workbench's VP preconditioning uses %s" % (k, pk[k], v))
    model = (precond.state.get("_modules") or {}).get("model")
    if not isinstance(model, edm_pickle.Persistent) or model.class_name not in ("SongUNet", "DhariwalUNet"):
        raise NotConvertible("%s wraps %s: only SongUNet and DhariwalUNet convert" %
                             (precond.class_name, getattr(model, "class_name", type(model).__name__)))
    if model.class_name == "DhariwalUNet":
        c = dict(DHARIWAL_UNET_DEFAULTS, **model.init_kwargs)
        spec = {
            "channels": int(c["model_channels"]),
            "multipliers": [int(m) for m in c["channel_mult"]],
            "blocks": int(c["num_blocks"]),
            "attn_resolutions": [int(r) for r in c["attn_resolutions"]] or [0],
            "dropout": float(c["dropout"]),
            "emb_mult": int(c["channel_mult_emb"]),
            "augment_dim": int(c["augment_dim"]),
        }
        shape = {"resolution": int(c["img_resolution"]), "in_channels": int(c["in_channels"]),
                 "out_channels": int(c["out_channels"]), "label_dim": int(c["label_dim"]),
                 "precond": kinds[precond.class_name], "net": "adm"}
        return spec, shape
    c = dict(SONG_UNET_DEFAULTS, **model.init_kwargs)
    if c["encoder_type"] not in ("standard", "residual") or c["decoder_type"] != "standard" or \
            list(c["resample_filter"]) not in ([1, 1], [1, 3, 3, 1]):
        raise NotConvertible("SongUNet with encoder_type %r, decoder_type %r, resample_filter %r: the unet plugin has "
                             "EDM's DDPM++ and NCSN++ forms (standard|residual encoder, standard decoder, filter "
                             "[1, 1] or [1, 3, 3, 1])" % (c["encoder_type"], c["decoder_type"],
                                                          list(c["resample_filter"])))
    if c["img_resolution"] >> (len(c["channel_mult"]) - 1) < 1:
        raise NotConvertible("img_resolution %d too small for %d levels" % (c["img_resolution"], len(c["channel_mult"])))
    spec = {
        "channels": int(c["model_channels"]),
        "multipliers": [int(m) for m in c["channel_mult"]],
        "blocks": int(c["num_blocks"]),
        "attn_resolutions": [int(r) for r in c["attn_resolutions"]] or [0],
        "dropout": float(c["dropout"]),
        "embedding": "positional" if c["embedding_type"] == "positional" else "fourier",
        "embedding_convention": "edm",
        "emb_mult": int(c["channel_mult_emb"]),
        "noise_mult": int(c["channel_mult_noise"]),
        "augment_dim": int(c["augment_dim"]),
        "resample": "box" if list(c["resample_filter"]) == [1, 1] else "fir",
        "encoder": c["encoder_type"],
    }
    shape = {"resolution": int(c["img_resolution"]), "in_channels": int(c["in_channels"]),
             "out_channels": int(c["out_channels"]), "label_dim": int(c["label_dim"]),
             "precond": kinds[precond.class_name], "net": "unet"}
    return spec, shape


def lua_spec(spec, net="unet"):
    def val(v):
        if isinstance(v, list):
            return "{ %s }" % ", ".join(str(x) for x in v)
        if isinstance(v, str):
            return '"%s"' % v
        return repr(v)
    return '{ "%s", %s }' % (net, ", ".join("%s = %s" % (k, val(v)) for k, v in spec.items()))


def workbench_names(sd):
    """EDM's SongUNet state dict (names under `model.`) -> the unet plugin's,
    re-laid where the layouts differ."""
    import re
    import math
    import torch
    out, dropped = {}, []
    for name, t in sd.items():
        if not name.startswith("model."):
            raise NotConvertible("tensor %s is not under model." % name)
        n = name[len("model."):]
        if n.endswith(".resample_filter"):
            # the plugin's fixed filters: EDM's normalised outer products of [1, 1] or [1, 3, 3, 1]
            ok = False
            for taps in ([1.0, 1.0], [1.0, 3.0, 3.0, 1.0]):
                f = torch.tensor(taps)
                f = f.ger(f) / f.sum().square()
                ok = ok or (t.numel() == f.numel() and torch.allclose(t.reshape(f.shape).float(), f))
            if not ok:
                raise NotConvertible("%s is neither EDM's [1, 1] nor its [1, 3, 3, 1] filter" % name)
            dropped.append(name)
            continue
        m = re.match(r"^(enc|dec)\.(\d+)x(\d+)_(.+)$", n)
        if m:
            if m.group(2) != m.group(3):
                raise NotConvertible("%s: non-square resolution" % name)
            n = "%s%s.%s" % (m.group(1), m.group(2), m.group(4))
        elif not re.match(r"^(map_(layer0|layer1|label|augment|noise)|out_norm|out_conv)\.", n):
            raise NotConvertible("tensor %s has no place in the unet plugin" % name)
        t = t.detach().float()
        if n == "map_noise.freqs":
            t = (2 * math.pi * t).float()  # the plugin stores 2π·f (EDM multiplies in the forward)
        if re.search(r"\.qkv\.(weight|bias)$", n):
            c3 = t.shape[0]
            if c3 % 3:
                raise NotConvertible("%s: %d rows is not 3·C" % (name, c3))
            # EDM: row (c·3 + j) is channel c of q (j = 0), k (1), v (2); the plugin: row j·C + c
            t = t.reshape(c3 // 3, 3, *t.shape[1:]).transpose(0, 1).reshape(c3, *t.shape[1:]).contiguous()
        out["teacher." + n] = t
    return out, dropped


def cmd_convert(args):
    top = edm_pickle.load(args.snapshot)
    nets = dict(networks(top))
    if args.key not in nets:
        print("%s: no network '%s' (networks: %s)" % (args.snapshot, args.key, ", ".join(nets) or "none"),
              file=sys.stderr)
        return 1
    precond = nets[args.key]
    try:
        spec, shape = unet_spec_of(precond)
        tensors, dropped = workbench_names(edm_pickle.state_dict(precond))
    except NotConvertible as e:
        print("convert_edm: %s: %s" % (args.snapshot, e), file=sys.stderr)
        return 1
    meta = {
        "kind": "teacher",
        "net": shape["net"],
        "format": "workbench",
        "converted_from": os.path.basename(args.snapshot),
        "source_sha256": edm_pickle.file_sha256(args.snapshot),
        "network": args.key,
        "precond": shape["precond"],
        "precond_class": precond.class_name,
        "unet_spec": json.dumps(spec, sort_keys=True),
        # what the workbench checks before loading (host/engine/run.c, wb_net_check_checkpoint)
        "net_resolved": json.dumps({"embedding_convention": "edm" if shape["net"] == "unet" else "workbench-1.0",
                                    "heads": 1}, sort_keys=True),
        "data_shape": json.dumps(shape, sort_keys=True),
        "classes": json.dumps(describe(precond), sort_keys=True),
    }
    write_safetensors(args.out, tensors, meta)
    print("%s: %d tensors (%d values) -> %s (dropped: %d fixed resample filters)" %
          (args.snapshot, len(tensors), sum(t.numel() for t in tensors.values()), args.out, len(dropped)))
    print("data: %dx%dx%d images%s" % (shape["in_channels"], shape["resolution"], shape["resolution"],
                                        ", %d labels" % shape["label_dim"] if shape["label_dim"] else ""))
    print("net = %s" % lua_spec(spec, shape["net"]))
    print("precond = %s" % shape["precond"])
    return 0


CHECK_SIGMAS = [0.002, 0.02, 0.2, 2.0, 20.0, 80.0]


def write_png(path, w, h, channels=3):
    """A w×h PNG (gray for 1 channel, else RGB): a data set of that shape."""
    import zlib
    c = 1 if channels == 1 else 3
    raw = b"".join(b"\x00" + bytes((x * 13 + y * 7) % 256 for x in range(w * c)) for y in range(h))

    def chunk(kind, data):
        out = struct.pack(">I", len(data)) + kind + data
        return out + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0 if c == 1 else 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def check_inputs(res, ch):
    """The fixed inputs of `check`: x (len(CHECK_SIGMAS), ch, res, res), float32
    values held in float64 (what the workbench reads), and σ."""
    import torch
    g = torch.Generator().manual_seed(7)
    sig = torch.tensor(CHECK_SIGMAS, dtype=torch.float64)
    x = (torch.randn(len(sig), ch, res, res, generator=g, dtype=torch.float64) *
         (sig.reshape(-1, 1, 1, 1) ** 2 + 0.25).sqrt()).float().double()
    return x, sig


def prepare_check_dir(d, x, sig):
    """A folder the workbench side of `check` runs in: check.lua, x.txt (σ then
    the row on each line) and a one-image PNG folder of x's geometry."""
    with open(os.path.join(d, "x.txt"), "w") as f:
        for i in range(len(sig)):
            f.write("%.9g " % float(sig[i]) + " ".join("%.9g" % v for v in x[i].reshape(-1).tolist()) + "\n")
    with open(os.path.join(d, "check.lua"), "w") as f:
        f.write(CHECK_LUA)
    os.makedirs(os.path.join(d, "png"), exist_ok=True)
    write_png(os.path.join(d, "png", "shape.png"), x.shape[3], x.shape[2], x.shape[1])


def check_labels(n, label_dim):
    """The class of each of the n check rows of a conditional net (row i: class
    (7·i + 3) mod label_dim, so rows differ and large label sets are spread)."""
    return [(7 * i + 3) % label_dim for i in range(n)]


def run_check_lua(workbench, d, converted, ch, spec="", precond="", label_dim=0):
    """The workbench side: D(x; σ) of x.txt into d.txt with the converted file
    (spec / precond override what the file records; label_dim > 0: the rows
    get check_labels' classes). The CompletedProcess."""
    import subprocess
    cmd = [workbench, "run", os.path.join(d, "check.lua"), "dir=" + d, "init=" + converted, "ch=%d" % ch,
           "label_dim=%d" % label_dim]
    if spec:
        cmd.append("spec=" + spec)
    if precond:
        cmd.append("precond=" + precond)
    return subprocess.run(cmd, capture_output=True, text=True)


def cmd_check(args):
    """The snapshot's weights in our PyTorch twin of its architecture
    (scripts/edm_twin.py, float64) against the converted file in the
    workbench, D(x; σ) at fixed inputs over σ ∈ [0.002, 80]."""
    import tempfile
    import torch
    import edm_twin
    top = edm_pickle.load(args.snapshot)
    nets = dict(networks(top))
    if args.key not in nets:
        print("%s: no network '%s'" % (args.snapshot, args.key), file=sys.stderr)
        return 1
    precond = nets[args.key]
    spec, shape = unet_spec_of(precond)
    twin = edm_twin.from_snapshot(precond).double().eval()
    x, sig = check_inputs(shape["resolution"], shape["in_channels"])
    k = shape["label_dim"]
    labels = None
    if k:  # class-conditional: one class per row, one-hot as EDM's class_labels
        labels = torch.zeros(len(sig), k, dtype=torch.float64)
        labels[torch.arange(len(sig)), torch.tensor(check_labels(len(sig), k))] = 1.0
    with torch.no_grad():
        ref = twin(x, sig, labels)
    d = tempfile.mkdtemp(prefix="wb_edm_check_")
    prepare_check_dir(d, x, sig)
    p = run_check_lua(args.workbench, d, args.converted, shape["in_channels"], label_dim=k)
    if p.returncode != 0:
        print("convert_edm check: the workbench failed:\n%s%s" % (p.stdout, p.stderr), file=sys.stderr)
        return 1
    got = torch.tensor([[float(v) for v in line.split()] for line in open(os.path.join(d, "d.txt"))],
                       dtype=torch.float64).reshape(ref.shape)
    worst = 0.0
    print("parity of %s (workbench) with %s in our PyTorch twin (float64):" % (args.converted, args.snapshot))
    for i in range(len(sig)):
        e = float((got[i] - ref[i]).abs().max() / ref[i].abs().max())
        worst = max(worst, e)
        print("  sigma %-6g max |D_wb - D_twin| / max |D_twin| = %.3g" % (float(sig[i]), e))
    ok = worst <= args.tol
    print("%s: worst %.3g (tolerance %g)" % ("ok" if ok else "FAILED", worst, args.tol))
    return 0 if ok else 1


# The workbench side of `check`: the converted teacher, data of the right
# shape made on the fly (a one-image PNG folder: only its geometry matters),
# D(x; σ) of the rows of x.txt (σ first on each line) into d.txt. spec= and
# precond= override what the file records (the tests load it into other nets).
CHECK_LUA = r'''
local wb = require "wb"
local args = wb.args{ dir = "", init = "", ch = 3, spec = "", precond = "", label_dim = 0 }
local info = wb.checkpoint_info(args.init)
local net = args.spec ~= "" and assert(load("return " .. args.spec))() or info.net
local precond = args.precond ~= "" and args.precond or info.precond
local data = wb.data.images{ kind = "png-folder", path = args.dir .. "/png", channels = args.ch }
local t = wb.teacher{ data = data, net = net, precond = precond, init = args.init, steps = 0, quiet = true,
                      label_dim = args.label_dim }
local xs, sigmas = {}, {}
for line in io.lines(args.dir .. "/x.txt") do
  local row = {}
  for v in line:gmatch("%S+") do row[#row + 1] = tonumber(v) end
  sigmas[#sigmas + 1] = table.remove(row, 1)
  xs[#xs + 1] = row
end
local labels = nil -- convert_edm.check_labels: class (7·i + 3) mod label_dim of row i (0-based)
if args.label_dim > 0 then
  labels = {}
  for i = 1, #xs do labels[i] = (7 * (i - 1) + 3) % args.label_dim end
end
local d = t:denoise(wb.samples(xs), sigmas, labels)
local f = assert(io.open(args.dir .. "/d.txt", "w"))
for i = 1, d:n() do
  local out = {}
  for j = 1, d:dim() do out[j] = ("%.9g"):format(d:get(i, j)) end
  f:write(table.concat(out, " "), "\n")
end
f:close()
'''


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("inspect", help="list the networks, classes and tensors of a snapshot")
    p.add_argument("snapshot")
    p = sub.add_parser("dump", help="one network's state dict (EDM names) as safetensors")
    p.add_argument("snapshot")
    p.add_argument("out")
    p.add_argument("--key", default="ema", help="which network of the snapshot (default: ema)")
    p = sub.add_parser("check", help="parity of a converted file with the snapshot, in our PyTorch twin")
    p.add_argument("snapshot")
    p.add_argument("converted")
    p.add_argument("--workbench", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                      "build", "workbench"))
    p.add_argument("--key", default="ema")
    p.add_argument("--tol", type=float, default=1e-5)
    p = sub.add_parser("convert", help="an EDMPrecond(SongUNet) network as a workbench teacher checkpoint")
    p.add_argument("snapshot")
    p.add_argument("out")
    p.add_argument("--key", default="ema", help="which network of the snapshot (default: ema)")
    args = ap.parse_args(argv)
    try:
        return {"inspect": cmd_inspect, "dump": cmd_dump, "convert": cmd_convert, "check": cmd_check}[args.cmd](args)
    except (edm_pickle.RefusedPickle, OSError, Exception) as e:  # one line, naming the file, for any failure
        if isinstance(e, KeyboardInterrupt):
            raise
        print("convert_edm: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

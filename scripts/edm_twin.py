"""scripts/edm_twin.py — our own PyTorch implementation of EDM's networks,
written from the published architecture (Karras et al. 2022; Song et al.
2021; Dhariwal & Nichol 2021) with EDM's state-dict names and layout:
SongUNet (DDPM++ and NCSN++: positional or Fourier noise embedding, standard
or residual encoder, standard decoder, resample filter [1, 1] or
[1, 3, 3, 1]), DhariwalUNet (ADM), and the EDMPrecond / VPPrecond /
VEPrecond wrappers. No EDM code: it is what `convert_edm.py check` runs an
EDM snapshot's weights in (loaded as data) to compare with the workbench,
and what the tests build EDM-style snapshots from — pickled the way EDM's
torch_utils.persistence does (each network a call of
_reconstruct_persistent_obj(meta) carrying source text).

Shapes: x (B, C, H, W), sigma (B); D(x; σ) (B, C, H, W).
"""

import math
import sys
import types

import numpy as np
import torch
import torch.nn.functional as F

SONG_UNET_DEFAULTS = dict(label_dim=0, augment_dim=0, model_channels=128, channel_mult=[1, 2, 2, 2],
                          channel_mult_emb=4, num_blocks=4, attn_resolutions=[16], dropout=0.10, label_dropout=0,
                          embedding_type="positional", channel_mult_noise=1, encoder_type="standard",
                          decoder_type="standard", resample_filter=[1, 1])


class Persisted(torch.nn.Module):
    """A module that remembers its constructor arguments and EDM's class name."""

    edm_class = "?"

    def remember(self, **kwargs):
        self._init_kwargs = kwargs


class Linear(Persisted):
    edm_class = "Linear"

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.remember(in_features=in_features, out_features=out_features, bias=bias)
        self.in_features = in_features
        self.weight = torch.nn.Parameter(torch.randn(out_features, in_features) / math.sqrt(in_features))
        self.bias = torch.nn.Parameter(torch.randn(out_features) * 0.1) if bias else None

    def forward(self, x):
        x = x @ self.weight.t()
        return x + self.bias if self.bias is not None else x


class Conv2d(Persisted):
    """kernel 0: resampling only. up: transposed conv with the filter ×4;
    down: the filter, stride 2 — then the kernel×kernel convolution."""
    edm_class = "Conv2d"

    def __init__(self, in_channels, out_channels, kernel, bias=True, up=False, down=False, resample_filter=(1, 1),
                 fused_resample=False):
        super().__init__()
        self.remember(in_channels=in_channels, out_channels=out_channels, kernel=kernel, bias=bias, up=up, down=down,
                      resample_filter=list(resample_filter), fused_resample=fused_resample)
        self.in_channels, self.out_channels, self.up, self.down = in_channels, out_channels, up, down
        self.fused_resample = fused_resample
        fan = in_channels * kernel * kernel
        self.weight = torch.nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel) /
                                         math.sqrt(max(fan, 1))) if kernel else None
        self.bias = torch.nn.Parameter(torch.randn(out_channels) * 0.1) if kernel and bias else None
        f = torch.as_tensor(resample_filter, dtype=torch.float32)
        f = f.ger(f).unsqueeze(0).unsqueeze(1) / f.sum().square()
        self.register_buffer("resample_filter", f if up or down else None)

    def forward(self, x):
        w, f = self.weight, self.resample_filter
        f_pad = (f.shape[-1] - 1) // 2 if f is not None else 0
        if self.fused_resample and self.down and w is not None:
            # the convolution padded by both, then the filter at stride 2
            x = F.conv2d(x, w, padding=w.shape[-1] // 2 + f_pad)
            x = F.conv2d(x, f.tile([self.out_channels, 1, 1, 1]), groups=self.out_channels, stride=2)
            return x + self.bias.reshape(1, -1, 1, 1) if self.bias is not None else x
        if self.up:
            x = F.conv_transpose2d(x, f.mul(4).tile([self.in_channels, 1, 1, 1]), groups=self.in_channels, stride=2,
                                   padding=f_pad)
        if self.down:
            x = F.conv2d(x, f.tile([self.in_channels, 1, 1, 1]), groups=self.in_channels, stride=2, padding=f_pad)
        if w is not None:
            x = F.conv2d(x, w, padding=w.shape[-1] // 2)
        if self.bias is not None:
            x = x + self.bias.reshape(1, -1, 1, 1)
        return x


class GroupNorm(Persisted):
    edm_class = "GroupNorm"

    def __init__(self, num_channels, num_groups=32, min_channels_per_group=4, eps=1e-5):
        super().__init__()
        self.remember(num_channels=num_channels, eps=eps)
        self.num_groups = min(num_groups, num_channels // min_channels_per_group)
        self.eps = eps
        self.weight = torch.nn.Parameter(1 + 0.1 * torch.randn(num_channels))
        self.bias = torch.nn.Parameter(0.1 * torch.randn(num_channels))

    def forward(self, x):
        return F.group_norm(x, num_groups=self.num_groups, weight=self.weight, bias=self.bias, eps=self.eps)


class PositionalEmbedding(Persisted):
    edm_class = "PositionalEmbedding"

    def __init__(self, num_channels, max_positions=10000, endpoint=False):
        super().__init__()
        self.remember(num_channels=num_channels, endpoint=endpoint)
        self.num_channels, self.max_positions, self.endpoint = num_channels, max_positions, endpoint

    def forward(self, x):
        freqs = torch.arange(start=0, end=self.num_channels // 2, dtype=torch.float32)
        freqs = freqs / (self.num_channels // 2 - (1 if self.endpoint else 0))
        freqs = (1 / self.max_positions) ** freqs
        x = x.ger(freqs.to(x.dtype))
        return torch.cat([x.cos(), x.sin()], dim=1)


class FourierEmbedding(Persisted):
    edm_class = "FourierEmbedding"

    def __init__(self, num_channels, scale=16):
        super().__init__()
        self.remember(num_channels=num_channels)
        self.register_buffer("freqs", torch.randn(num_channels // 2) * scale)

    def forward(self, x):
        x = x.ger((2 * np.pi * self.freqs).to(x.dtype))
        return torch.cat([x.cos(), x.sin()], dim=1)


class UNetBlock(Persisted):
    """DDPM++'s residual block (adaptive_scale off, skip_scale √½, eps 1e-6,
    one attention head)."""
    edm_class = "UNetBlock"

    def __init__(self, in_channels, out_channels, emb_channels, up=False, down=False, attention=False,
                 resample_filter=(1, 1)):
        super().__init__()
        self.remember(in_channels=in_channels, out_channels=out_channels, emb_channels=emb_channels, up=up, down=down,
                      attention=attention)
        self.in_channels, self.out_channels, self.attention = in_channels, out_channels, attention
        self.skip_scale = np.sqrt(0.5)
        self.norm0 = GroupNorm(in_channels, eps=1e-6)
        self.conv0 = Conv2d(in_channels, out_channels, 3, up=up, down=down, resample_filter=resample_filter)
        self.affine = Linear(emb_channels, out_channels)
        self.norm1 = GroupNorm(out_channels, eps=1e-6)
        self.conv1 = Conv2d(out_channels, out_channels, 3)
        self.skip = None
        if out_channels != in_channels or up or down:
            self.skip = Conv2d(in_channels, out_channels, 1, up=up, down=down, resample_filter=resample_filter)
        if attention:
            self.norm2 = GroupNorm(out_channels, eps=1e-6)
            self.qkv = Conv2d(out_channels, out_channels * 3, 1)
            self.proj = Conv2d(out_channels, out_channels, 1)

    def forward(self, x, emb):
        orig = x
        x = self.conv0(F.silu(self.norm0(x)))
        params = self.affine(emb).unsqueeze(2).unsqueeze(3)
        x = F.silu(self.norm1(x + params))
        x = self.conv1(x)
        x = x + (self.skip(orig) if self.skip is not None else orig)
        x = x * self.skip_scale
        if self.attention:
            # EDM's layout: the 3C rows are (channel, q|k|v) interleaved
            q, k, v = self.qkv(self.norm2(x)).reshape(x.shape[0], x.shape[1], 3, -1).unbind(2)
            w = torch.einsum("ncq,nck->nqk", q, k / np.sqrt(q.shape[1])).softmax(dim=2)
            a = torch.einsum("nqk,nck->ncq", w, v)
            x = self.proj(a.reshape(*x.shape)) + x
            x = x * self.skip_scale
        return x


class SongUNet(Persisted):
    edm_class = "SongUNet"

    def __init__(self, img_resolution, in_channels, out_channels, **kw):
        super().__init__()
        self.remember(img_resolution=img_resolution, in_channels=in_channels, out_channels=out_channels, **kw)
        c = dict(SONG_UNET_DEFAULTS, **kw)
        assert c["encoder_type"] in ("standard", "residual") and c["decoder_type"] == "standard"
        rf = list(c["resample_filter"])
        mc, mult, nb = c["model_channels"], c["channel_mult"], c["num_blocks"]
        emb_ch, noise_ch = mc * c["channel_mult_emb"], mc * c["channel_mult_noise"]
        self.map_noise = PositionalEmbedding(noise_ch, endpoint=True) if c["embedding_type"] == "positional" \
            else FourierEmbedding(noise_ch)
        self.map_label = Linear(c["label_dim"], noise_ch) if c["label_dim"] else None
        self.map_augment = Linear(c["augment_dim"], noise_ch, bias=False) if c["augment_dim"] else None
        self.map_layer0 = Linear(noise_ch, emb_ch)
        self.map_layer1 = Linear(emb_ch, emb_ch)
        bk = dict(emb_channels=emb_ch, resample_filter=rf)
        self.enc = torch.nn.ModuleDict()
        cout = caux = in_channels
        for level, m in enumerate(mult):
            res = img_resolution >> level
            if level == 0:
                cin, cout = cout, mc
                self.enc["%dx%d_conv" % (res, res)] = Conv2d(cin, cout, 3)
            else:
                self.enc["%dx%d_down" % (res, res)] = UNetBlock(cout, cout, down=True, **bk)
                if c["encoder_type"] == "residual":
                    self.enc["%dx%d_aux_residual" % (res, res)] = Conv2d(caux, cout, 3, down=True, resample_filter=rf,
                                                                        fused_resample=True)
                    caux = cout
            for idx in range(nb):
                cin, cout = cout, mc * m
                self.enc["%dx%d_block%d" % (res, res, idx)] = UNetBlock(cin, cout, attention=res in c["attn_resolutions"],
                                                                       **bk)
        skips = [b.out_channels for name, b in self.enc.items() if "aux" not in name]
        self.dec = torch.nn.ModuleDict()
        for level, m in reversed(list(enumerate(mult))):
            res = img_resolution >> level
            if level == len(mult) - 1:
                self.dec["%dx%d_in0" % (res, res)] = UNetBlock(cout, cout, attention=True, **bk)
                self.dec["%dx%d_in1" % (res, res)] = UNetBlock(cout, cout, **bk)
            else:
                self.dec["%dx%d_up" % (res, res)] = UNetBlock(cout, cout, up=True, **bk)
            for idx in range(nb + 1):
                cin, cout = cout + skips.pop(), mc * m
                attn = idx == nb and res in c["attn_resolutions"]
                self.dec["%dx%d_block%d" % (res, res, idx)] = UNetBlock(cin, cout, attention=attn, **bk)
            if level == 0:
                self.dec["%dx%d_aux_norm" % (res, res)] = GroupNorm(cout, eps=1e-6)
                self.dec["%dx%d_aux_conv" % (res, res)] = Conv2d(cout, out_channels, 3)

    def forward(self, x, noise_labels, class_labels=None):
        emb = self.map_noise(noise_labels)
        emb = emb.reshape(emb.shape[0], 2, -1).flip(1).reshape(*emb.shape)  # [cos, sin] -> [sin, cos]
        if self.map_label is not None:
            emb = emb + self.map_label(class_labels * np.sqrt(self.map_label.in_features))
        emb = F.silu(self.map_layer0(emb))
        emb = F.silu(self.map_layer1(emb))
        skips = []
        aux = x
        for name, block in self.enc.items():
            if "aux_residual" in name:
                x = skips[-1] = aux = (x + block(aux)) / np.sqrt(2)
            else:
                x = block(x, emb) if isinstance(block, UNetBlock) else block(x)
                skips.append(x)
        aux, tmp = None, None
        for name, block in self.dec.items():
            if "aux_norm" in name:
                tmp = block(x)
            elif "aux_conv" in name:
                aux = block(F.silu(tmp))
            else:
                if x.shape[1] != block.in_channels:
                    x = torch.cat([x, skips.pop()], dim=1)
                x = block(x, emb)
        return aux


class ADMBlock(Persisted):
    """DhariwalUNet's residual block: EDM's UNetBlock with its defaults —
    adaptive scale (affine gives scale and shift), skip_scale 1, eps 1e-5,
    the skip a pure resampling when the width stays, one head per 64
    channels (none below 64)."""
    edm_class = "UNetBlock"

    def __init__(self, in_channels, out_channels, emb_channels, up=False, down=False, attention=False):
        super().__init__()
        self.remember(in_channels=in_channels, out_channels=out_channels, emb_channels=emb_channels, up=up, down=down,
                      attention=attention, channels_per_head=64)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.num_heads = out_channels // 64 if attention else 0
        self.norm0 = GroupNorm(in_channels)
        self.conv0 = Conv2d(in_channels, out_channels, 3, up=up, down=down)
        self.affine = Linear(emb_channels, out_channels * 2)
        self.norm1 = GroupNorm(out_channels)
        self.conv1 = Conv2d(out_channels, out_channels, 3)
        self.skip = None
        if out_channels != in_channels or up or down:
            kernel = 1 if out_channels != in_channels else 0
            self.skip = Conv2d(in_channels, out_channels, kernel, up=up, down=down)
        if self.num_heads:
            self.norm2 = GroupNorm(out_channels)
            self.qkv = Conv2d(out_channels, out_channels * 3, 1)
            self.proj = Conv2d(out_channels, out_channels, 1)

    def forward(self, x, emb):
        orig = x
        x = self.conv0(F.silu(self.norm0(x)))
        params = self.affine(emb).unsqueeze(2).unsqueeze(3)
        scale, shift = params.chunk(chunks=2, dim=1)
        x = F.silu(torch.addcmul(shift, self.norm1(x), scale + 1))
        x = self.conv1(x)
        x = x + (self.skip(orig) if self.skip is not None else orig)
        if self.num_heads:
            n = self.num_heads
            q, k, v = self.qkv(self.norm2(x)).reshape(x.shape[0] * n, x.shape[1] // n, 3, -1).unbind(2)
            w = torch.einsum("ncq,nck->nqk", q, k / np.sqrt(q.shape[1])).softmax(dim=2)
            a = torch.einsum("nqk,nck->ncq", w, v)
            x = self.proj(a.reshape(*x.shape)) + x
        return x


class DhariwalUNet(Persisted):
    edm_class = "DhariwalUNet"

    def __init__(self, img_resolution, in_channels, out_channels, label_dim=0, augment_dim=0, model_channels=192,
                 channel_mult=(1, 2, 3, 4), channel_mult_emb=4, num_blocks=3, attn_resolutions=(32, 16, 8),
                 dropout=0.10, label_dropout=0):
        super().__init__()
        self.remember(img_resolution=img_resolution, in_channels=in_channels, out_channels=out_channels,
                      label_dim=label_dim, augment_dim=augment_dim, model_channels=model_channels,
                      channel_mult=list(channel_mult), channel_mult_emb=channel_mult_emb, num_blocks=num_blocks,
                      attn_resolutions=list(attn_resolutions), dropout=dropout)
        emb_ch = model_channels * channel_mult_emb
        self.map_noise = PositionalEmbedding(model_channels)
        self.map_augment = Linear(augment_dim, model_channels, bias=False) if augment_dim else None
        self.map_layer0 = Linear(model_channels, emb_ch)
        self.map_layer1 = Linear(emb_ch, emb_ch)
        self.map_label = Linear(label_dim, emb_ch, bias=False) if label_dim else None
        self.enc = torch.nn.ModuleDict()
        cout = in_channels
        for level, m in enumerate(channel_mult):
            res = img_resolution >> level
            if level == 0:
                cin, cout = cout, model_channels * m
                self.enc["%dx%d_conv" % (res, res)] = Conv2d(cin, cout, 3)
            else:
                self.enc["%dx%d_down" % (res, res)] = ADMBlock(cout, cout, emb_ch, down=True)
            for idx in range(num_blocks):
                cin, cout = cout, model_channels * m
                self.enc["%dx%d_block%d" % (res, res, idx)] = ADMBlock(cin, cout, emb_ch,
                                                                      attention=res in attn_resolutions)
        skips = [b.out_channels for b in self.enc.values()]
        self.dec = torch.nn.ModuleDict()
        for level, m in reversed(list(enumerate(channel_mult))):
            res = img_resolution >> level
            if level == len(channel_mult) - 1:
                self.dec["%dx%d_in0" % (res, res)] = ADMBlock(cout, cout, emb_ch, attention=True)
                self.dec["%dx%d_in1" % (res, res)] = ADMBlock(cout, cout, emb_ch)
            else:
                self.dec["%dx%d_up" % (res, res)] = ADMBlock(cout, cout, emb_ch, up=True)
            for idx in range(num_blocks + 1):
                cin, cout = cout + skips.pop(), model_channels * m
                self.dec["%dx%d_block%d" % (res, res, idx)] = ADMBlock(cin, cout, emb_ch,
                                                                      attention=res in attn_resolutions)
        self.out_norm = GroupNorm(cout)
        self.out_conv = Conv2d(cout, out_channels, 3)

    def forward(self, x, noise_labels, class_labels=None):
        emb = self.map_noise(noise_labels)
        emb = F.silu(self.map_layer0(emb))
        emb = self.map_layer1(emb)
        if self.map_label is not None:
            emb = emb + self.map_label(class_labels)
        emb = F.silu(emb)
        skips = []
        for block in self.enc.values():
            x = block(x, emb) if isinstance(block, ADMBlock) else block(x)
            skips.append(x)
        for block in self.dec.values():
            if x.shape[1] != block.in_channels:
                x = torch.cat([x, skips.pop()], dim=1)
            x = block(x, emb)
        return self.out_conv(F.silu(self.out_norm(x)))


class EDMPrecond(Persisted):
    edm_class = "EDMPrecond"

    def __init__(self, img_resolution, img_channels, label_dim=0, sigma_data=0.5, model_type="SongUNet",
                 **model_kwargs):
        super().__init__()
        self.remember(img_resolution=img_resolution, img_channels=img_channels, label_dim=label_dim,
                      sigma_data=sigma_data, model_type=model_type, **model_kwargs)
        self.sigma_data = sigma_data
        cls = {"SongUNet": SongUNet, "DhariwalUNet": DhariwalUNet}[model_type]
        self.model = cls(img_resolution, img_channels, img_channels, label_dim=label_dim, **model_kwargs)

    def forward(self, x, sigma, class_labels=None):
        sigma = sigma.reshape(-1, 1, 1, 1)
        sd = self.sigma_data
        c_skip = sd ** 2 / (sigma ** 2 + sd ** 2)
        c_out = sigma * sd / (sigma ** 2 + sd ** 2).sqrt()
        c_in = 1 / (sd ** 2 + sigma ** 2).sqrt()
        c_noise = sigma.log() / 4
        F_x = self.model(c_in * x, c_noise.flatten(), class_labels)
        return c_skip * x + c_out * F_x


# ---- pickling like EDM's persistence ------------------------------------------------------
MODULE_SRC = "# (source text a real EDM snapshot carries; never executed by the converter)\n"


def install_fake_persistence(marker=None):
    """Make torch_utils.persistence._reconstruct_persistent_obj importable (as
    EDM's is), so pickle can name it. If the pickle is ever loaded the
    ordinary way, it runs the embedded source — which writes `marker`."""
    pers = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):
        exec(compile(meta["module_src"], "<pickled module>", "exec"), {})

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    pers._reconstruct_persistent_obj = _reconstruct_persistent_obj
    pkg = types.ModuleType("torch_utils")
    pkg.persistence = pers
    sys.modules["torch_utils"] = pkg
    sys.modules["torch_utils.persistence"] = pers
    return pers


def remove_fake_persistence():
    sys.modules.pop("torch_utils.persistence", None)
    sys.modules.pop("torch_utils", None)


def _persistent_reduce(self, protocol):
    state = dict(self.__dict__)
    state["_init_args"] = ()
    src = MODULE_SRC + getattr(type(self), "marker_src", "")
    meta = dict(type="class", version=6, module_src=src, class_name=self.edm_class, state=state)
    return (sys.modules["torch_utils.persistence"]._reconstruct_persistent_obj, (meta,))


Persisted.__reduce_ex__ = _persistent_reduce


def from_snapshot(precond):
    """The twin of a snapshot's network (an edm_pickle.Persistent precond),
    built from its recorded constructor arguments, with its weights."""
    import collections
    import edm_pickle
    kinds = {"EDMPrecond": EDMPrecond, "VPPrecond": VPPrecond, "VEPrecond": VEPrecond}
    kw = dict(precond.init_kwargs)
    for k in ("use_fp16", "sigma_min", "sigma_max"):
        kw.pop(k, None)
    if precond.class_name != "EDMPrecond":
        kw.pop("sigma_data", None)
    net = kinds[precond.class_name](**kw)
    sd = edm_pickle.state_dict(precond)
    own = net.state_dict()
    missing = [k for k in own if k not in sd]
    if missing:
        raise ValueError("the snapshot lacks %d tensors of the architecture it records (first: %s)" %
                         (len(missing), missing[0]))
    net.load_state_dict(collections.OrderedDict((k, sd[k]) for k in own), strict=True)
    return net


def save_snapshot(path, net, marker=None):
    """network-snapshot-*.pkl as EDM writes it: dict(ema=..., loss_fn=None,
    augment_pipe=None, dataset_kwargs=...). With `marker`, the embedded
    source writes that file when executed."""
    import pickle

    Persisted.marker_src = "open(%r, 'w').write('executed')\n" % marker if marker else ""
    install_fake_persistence()
    try:
        with open(path, "wb") as f:
            pickle.dump(dict(ema=net, loss_fn=None, augment_pipe=None,
                             dataset_kwargs=dict(path="datasets/cifar10-32x32.zip")), f)
    finally:
        remove_fake_persistence()
        Persisted.marker_src = ""


class VPPrecond(EDMPrecond):
    """EDM's VP preconditioning (β_d 19.9, β_min 0.1, M 1000)."""
    edm_class = "VPPrecond"

    def __init__(self, img_resolution, img_channels, label_dim=0, beta_d=19.9, beta_min=0.1, M=1000,
                 model_type="SongUNet", **model_kwargs):
        super().__init__(img_resolution, img_channels, label_dim=label_dim, model_type=model_type, **model_kwargs)
        self.remember(img_resolution=img_resolution, img_channels=img_channels, label_dim=label_dim, beta_d=beta_d,
                      beta_min=beta_min, M=M, model_type=model_type, **model_kwargs)
        self.beta_d, self.beta_min, self.M = beta_d, beta_min, M

    def forward(self, x, sigma, class_labels=None):
        sigma = sigma.reshape(-1, 1, 1, 1)
        c_out = -sigma
        c_in = 1 / (sigma ** 2 + 1).sqrt()
        sigma_inv = ((self.beta_min ** 2 + 2 * self.beta_d * (1 + sigma ** 2).log()).sqrt() - self.beta_min) / self.beta_d
        c_noise = (self.M - 1) * sigma_inv
        return x + c_out * self.model(c_in * x, c_noise.flatten(), class_labels)


class VEPrecond(EDMPrecond):
    edm_class = "VEPrecond"

    def __init__(self, img_resolution, img_channels, label_dim=0, model_type="SongUNet", **model_kwargs):
        super().__init__(img_resolution, img_channels, label_dim=label_dim, model_type=model_type, **model_kwargs)
        self.remember(img_resolution=img_resolution, img_channels=img_channels, label_dim=label_dim,
                      model_type=model_type, **model_kwargs)

    def forward(self, x, sigma, class_labels=None):
        sigma = sigma.reshape(-1, 1, 1, 1)
        return x + sigma * self.model(x, (0.5 * sigma).log().flatten(), class_labels)

"""scripts/edm_pickle.py — read EDM's network snapshots (network-snapshot-*.pkl)
without executing anything they contain.

EDM pickles its networks as "persistent classes": each module is stored as a
call of torch_utils.persistence._reconstruct_persistent_obj(meta), where meta
holds the module's whole Python SOURCE (module_src), the class name, the
constructor arguments and the object's state; ordinary unpickling imports
that source and runs it. This reader never does. It is a pickle.Unpickler
whose find_class allows exactly what rebuilds tensors and plain containers
and maps every other callable it allows to an inert stand-in:

  torch_utils.persistence._reconstruct_persistent_obj -> Persistent(meta), plain data
  torch.nn.modules.*.<Class>                          -> TorchModule (its state, as data)
  torch._utils._rebuild_tensor_v2 / _rebuild_parameter(_with_state)
  torch.storage._load_from_bytes                      -> torch.load(weights_only=True)
  collections.OrderedDict, torch.Size, torch dtypes, dnnlib.util.EasyDict (-> dict)
  numpy scalars and dtypes (EDM keeps e.g. skip_scale = np.sqrt(0.5)) -> Python numbers
  numpy arrays (numpy's own _reconstruct of a plain ndarray)

Anything else — os.system, builtins.eval, any other function of EDM's
modules — is refused with an UnpicklingError naming it.

Shapes: tensors come back as torch tensors (CPU, their stored dtype).
Needs the system PyTorch (python3-torch) only for the tensors themselves.
"""

import collections
import hashlib
import io
import pickle

import numpy
import torch


class RefusedPickle(pickle.UnpicklingError):
    """A pickle asked for a global this reader does not allow."""


class Persistent:
    """One of EDM's persistent objects, as data: class_name, module_src (never
    executed; module_sha256 identifies it), init_args / init_kwargs and the
    object's state (a dict)."""

    def __init__(self, meta):
        if not isinstance(meta, dict):
            raise RefusedPickle("persistent object: meta is a %s, not a dict" % type(meta).__name__)
        self.type = meta.get("type")
        self.version = meta.get("version")
        self.class_name = meta.get("class_name")
        src = meta.get("module_src") or ""
        self.module_src = src
        self.module_sha256 = hashlib.sha256(src.encode("utf-8", "replace")).hexdigest()
        self.state = dict(meta.get("state") or {})
        if self.type != "class":
            raise RefusedPickle("persistent object of type %r: only classes are understood" % (self.type,))
        self.init_args = list(self.state.get("_init_args", ()) or ())
        self.init_kwargs = dict(self.state.get("_init_kwargs", {}) or {})

    def __repr__(self):
        return "Persistent(%s)" % self.class_name


class TorchModule:
    """A torch.nn module of a known class (ModuleDict, Linear, ...), as data:
    the class it names and the state pickle gave it."""

    qualname = "?"

    def __init__(self, *args, **kwargs):
        self.state = {}

    def __setstate__(self, state):
        self.state = dict(state) if isinstance(state, dict) else {"_raw": state}

    def __repr__(self):
        return "TorchModule(%s)" % self.qualname


_module_classes = {}


def _torch_module_class(module, name):
    key = module + "." + name
    if key not in _module_classes:
        _module_classes[key] = type("TorchModule_" + name, (TorchModule,), {"qualname": key})
    return _module_classes[key]


def _reconstruct(meta):
    return Persistent(meta)


def _load_storage(b):
    # the storage's own bytes, in torch.save's format: the weights-only loader
    return torch.load(io.BytesIO(b), weights_only=True)


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, *rest):
    # torch's own rebuild (it only views the storage), given no hooks
    return torch._utils._rebuild_tensor_v2(storage, offset, tuple(size), tuple(stride), False,
                                           collections.OrderedDict())


def _rebuild_parameter(data, requires_grad=False, hooks=None, *rest):
    return data


def _numpy_scalar(dtype, data=None):
    # numpy.core.multiarray.scalar(dtype, bytes): the number those bytes hold
    if not isinstance(dtype, numpy.dtype) or dtype.hasobject or not isinstance(data, (bytes, bytearray)):
        raise RefusedPickle("numpy scalar of dtype %r: only plain numeric scalars are read" % (dtype,))
    return numpy.frombuffer(bytes(data), dtype=dtype, count=1)[0].item()


def _numpy_dtype(spec, align=False, copy=True):
    if not isinstance(spec, str):
        raise RefusedPickle("numpy dtype %r: only named dtypes are read" % (spec,))
    d = numpy.dtype(spec)
    if d.hasobject:
        raise RefusedPickle("numpy dtype %r holds Python objects" % (spec,))
    return d


def _numpy_reconstruct(cls, shape, dtype_char):
    if cls is not numpy.ndarray:
        raise RefusedPickle("numpy _reconstruct of %r: only plain arrays are read" % (cls,))
    return numpy.ndarray.__new__(numpy.ndarray, shape, dtype_char)


_ALLOWED = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch", "Size"): tuple,
    ("dnnlib.util", "EasyDict"): dict,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy", "ndarray"): numpy.ndarray,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
}
_DTYPES = {"float16", "float32", "float64", "bfloat16", "int8", "int16", "int32", "int64", "uint8", "bool"}


class SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _DTYPES:
            return getattr(torch, name)
        if module.startswith("torch.nn.modules.") and name[:1].isupper() and name.isidentifier():
            return _torch_module_class(module, name)
        raise RefusedPickle("refused to load '%s.%s': an EDM network pickle has no such global, and this reader "
                            "runs nothing but tensor and container rebuilding" % (module, name))

    def persistent_load(self, pid):
        raise RefusedPickle("refused persistent id %r: EDM snapshots are plain pickles" % (pid,))


def load(path):
    """The snapshot's top-level object (EDM: a dict with 'ema', 'loss_fn',
    'augment_pipe', 'dataset_kwargs'), every persistent object as Persistent."""
    with open(path, "rb") as f:
        try:
            return SafeUnpickler(f).load()
        except RefusedPickle as e:
            raise RefusedPickle("%s: %s" % (path, e)) from None
        except (EOFError, pickle.UnpicklingError, ValueError, TypeError) as e:
            raise pickle.UnpicklingError("%s: not a readable network pickle (%s)" % (path, e)) from None


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_module(obj):
    return isinstance(obj, (Persistent, TorchModule))


def state_dict(obj, prefix=""):
    """PyTorch's state_dict names of a captured module tree: parameters, then
    persistent buffers, then submodules, in their stored order."""
    out = collections.OrderedDict()
    st = obj.state
    non_persistent = set(st.get("_non_persistent_buffers_set", ()) or ())
    for name, t in (st.get("_parameters") or {}).items():
        if t is not None:
            out[prefix + name] = t
    for name, t in (st.get("_buffers") or {}).items():
        if t is not None and name not in non_persistent:
            out[prefix + name] = t
    for name, m in (st.get("_modules") or {}).items():
        if m is not None and is_module(m):
            out.update(state_dict(m, prefix + name + "."))
    return out


def modules(obj, prefix=""):
    """(dotted name, module) for the tree, root first."""
    yield prefix.rstrip("."), obj
    for name, m in (obj.state.get("_modules") or {}).items():
        if m is not None and is_module(m):
            yield from modules(m, prefix + name + ".")

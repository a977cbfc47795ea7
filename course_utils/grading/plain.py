"""Answers as plain values: how an answer leaves the student's process and arrives at the checks.

The student's process turns an answer into JSON with :func:`to_plain`; the checking process
rebuilds it with :func:`from_plain`. Only these cross: ``None``, ``bool``, ``int``, ``float``,
``complex``, ``str``, lists, tuples and dicts of them, NumPy scalars and arrays, and tensors
(``torch.Tensor`` or ``nn.Parameter``, copied to the CPU). Everything else, and in particular a
subclass of a number, tensor or array (whose comparisons or arithmetic could lie), is refused
with a message that names what was given and what to return instead.

:func:`from_plain` trusts nothing in what it reads: it builds fresh builtin objects, fresh NumPy
arrays and plain tensors from bytes, checking every dtype and size, so a check that runs on the
result runs on ordinary objects whatever the student's process sent.

Example::

    from_plain(json.loads(json.dumps(to_plain(torch.ones(2)))))   # -> tensor([1., 1.])
"""

from __future__ import annotations

import base64
import math

MAX_BYTES = 200_000_000  # an answer bigger than this is refused
MAX_DEPTH = 32
_ARRAY_DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                 "float16", "float32", "float64", "complex64", "complex128")
_TENSOR_DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "float16", "bfloat16",
                  "float32", "float64", "complex64", "complex128")


class NotPlain(TypeError):
    """An answer that cannot cross as a plain value; the message says what it is and what to do."""


# ----------------------------------------------------------------------------- student side
def to_plain(obj, what: str = "the answer", _depth: int = 0):
    """``obj`` as JSON-ready data, or :class:`NotPlain` naming ``what`` and the offending type.

    Runs in the student's process. Example: ``to_plain((1, 2.5))`` ->
    ``{"tuple": [1, 2.5]}``.
    """
    if _depth > MAX_DEPTH:
        raise NotPlain(f"{what} is nested more than {MAX_DEPTH} levels deep")
    kind = type(obj)
    if obj is None or kind in (bool, int, str):
        return obj
    if kind is float:
        return obj if math.isfinite(obj) else {"float": repr(obj)}
    if kind is complex:
        return {"complex": [obj.real, obj.imag]}
    if kind in (list, tuple) or _is_tuple_like(obj):
        tag = "list" if kind is list else "tuple"
        return {tag: [to_plain(x, f"{what}[{i}]", _depth + 1) for i, x in enumerate(obj)]}
    if kind is dict or _qualname(kind) in ("collections.OrderedDict", "collections.defaultdict"):
        items = []
        for key, value in obj.items():
            if type(key) not in (str, int, bool, float) and key is not None:
                raise NotPlain(f"{what} has a key of type {type(key).__name__}: use str or int keys")
            items.append([key, to_plain(value, f"{what}[{key!r}]", _depth + 1)])
        return {"dict": items}
    name = _qualname(kind)
    if name.startswith("numpy.") and _is_numpy_scalar(obj):
        return {"npscalar": str(obj.dtype), "value": to_plain(obj.item(), what, _depth + 1)}
    if name == "numpy.ndarray":
        return _array(obj, what)
    if name in ("torch.Tensor", "torch.nn.parameter.Parameter"):
        return _tensor(obj, what)
    raise NotPlain(_refusal(obj, what))


def _qualname(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def _is_tuple_like(obj) -> bool:
    """torch.Size and the named tuples torch returns (``torch.return_types.max``)."""
    name = _qualname(type(obj))
    return name == "torch.Size" or name.startswith("torch.return_types.")


def _is_numpy_scalar(obj) -> bool:
    import numpy as np

    return type(obj) in {np.dtype(d).type for d in _ARRAY_DTYPES}


def _refusal(obj, what: str) -> str:
    kind = type(obj)
    plain = {int: "int", float: "float", complex: "complex", str: "str", list: "list",
             tuple: "tuple", dict: "dict"}
    for base, label in plain.items():
        if isinstance(obj, base):
            return (f"{what} is a {kind.__name__}, a subclass of {label}: answers cross to the grader "
                    f"as plain values, so return a plain {label} (e.g. {label}(x))")
    for module, label in (("torch", "torch.Tensor"), ("numpy", "numpy.ndarray")):
        try:
            base = __import__(module).Tensor if module == "torch" else __import__(module).ndarray
        except ImportError:
            continue
        if isinstance(obj, base):
            return (f"{what} is a {kind.__name__}, a subclass of {label}: return a plain "
                    f"{label} (e.g. x.as_subclass(torch.Tensor) or np.asarray(x))")
    return (f"{what} is a {kind.__module__}.{kind.__qualname__}, which the grader cannot check: "
            f"return a number, a string, a tensor, a NumPy array, or a list, tuple or dict of them")


def _array(arr, what: str) -> dict:
    dtype = str(arr.dtype)
    if dtype not in _ARRAY_DTYPES:
        raise NotPlain(f"{what} is an array of dtype {dtype}: use a numeric or bool dtype")
    if arr.nbytes > MAX_BYTES:
        raise NotPlain(f"{what} is {arr.nbytes / 1e6:.0f} MB, more than the grader accepts")
    import numpy as np

    data = np.ascontiguousarray(arr).tobytes()
    return {"ndarray": dtype, "shape": list(arr.shape), "b64": base64.b64encode(data).decode("ascii")}


_PRISTINE: dict = {}  # Tensor methods as they were before the student's code ran (see capture)


def capture_tensor_methods() -> None:
    """Keep torch.Tensor's own conversion methods, so rebinding them later changes nothing here."""
    import torch

    for name in ("detach", "cpu", "resolve_conj", "resolve_neg", "contiguous", "float", "numpy"):
        _PRISTINE.setdefault(name, getattr(torch.Tensor, name))


def _tensor(t, what: str) -> dict:
    import torch

    capture_tensor_methods()
    m = _PRISTINE
    if t.layout != torch.strided or t.is_quantized or t.device.type == "meta":
        raise NotPlain(f"{what} is a {t.layout} tensor on {t.device}: return an ordinary dense tensor")
    dtype = str(t.dtype).replace("torch.", "")
    if dtype not in _TENSOR_DTYPES:
        raise NotPlain(f"{what} has dtype {t.dtype}, which the grader does not read")
    plain = m["contiguous"](m["resolve_neg"](m["resolve_conj"](m["cpu"](m["detach"](t)))))
    if plain.dtype == torch.bfloat16:
        plain = m["float"](plain)
    if plain.element_size() * plain.numel() > MAX_BYTES:
        raise NotPlain(f"{what} is a tensor of {plain.numel():,} elements, more than the grader accepts")
    data = m["numpy"](plain).tobytes()
    return {"tensor": dtype, "shape": list(t.shape), "requires_grad": bool(t.requires_grad),
            "b64": base64.b64encode(data).decode("ascii")}


# ----------------------------------------------------------------------------- checking side
def from_plain(data, _depth: int = 0):
    """Rebuild a value from :func:`to_plain`'s output with fresh, plain objects only.

    Raises ``ValueError`` for anything :func:`to_plain` cannot have written.
    """
    if _depth > MAX_DEPTH + 2:
        raise ValueError("nested too deep")
    if data is None or type(data) in (bool, int, str, float):
        return data
    if type(data) is not dict or len(data) not in (1, 2, 3, 4):
        raise ValueError(f"unexpected {type(data).__name__} in an answer")
    if "float" in data:
        text = data["float"]
        if text not in ("nan", "inf", "-inf"):
            raise ValueError(f"bad float {text!r}")
        return float(text)
    if "complex" in data:
        real, imag = data["complex"]
        return complex(float(real), float(imag))
    if "list" in data or "tuple" in data:
        items = data.get("list", data.get("tuple"))
        if type(items) is not list:
            raise ValueError("bad sequence")
        values = [from_plain(x, _depth + 1) for x in items]
        return values if "list" in data else tuple(values)
    if "dict" in data:
        out = {}
        for pair in data["dict"]:
            key, value = pair
            if key is not None and type(key) not in (str, int, bool, float):
                raise ValueError("bad dict key")
            out[key] = from_plain(value, _depth + 1)
        return out
    if "npscalar" in data:
        import numpy as np

        dtype = _checked(data["npscalar"], _ARRAY_DTYPES)
        return np.dtype(dtype).type(from_plain(data["value"], _depth + 1))
    if "ndarray" in data:
        return _array_from(_checked(data["ndarray"], _ARRAY_DTYPES), data["shape"], data["b64"])
    if "tensor" in data:
        import torch

        dtype = _checked(data["tensor"], _TENSOR_DTYPES)
        arr = _array_from("float32" if dtype == "bfloat16" else dtype, data["shape"], data["b64"])
        t = torch.from_numpy(arr).to(getattr(torch, dtype))
        if data.get("requires_grad") is True and t.is_floating_point():
            t.requires_grad_(True)
        return t
    raise ValueError(f"unknown kind of value {sorted(data)}")


def _checked(dtype, allowed: tuple[str, ...]) -> str:
    if dtype not in allowed:
        raise ValueError(f"dtype {dtype!r} is not accepted")
    return dtype


def _array_from(dtype: str, shape, b64):
    import numpy as np

    if type(shape) is not list or not all(type(n) is int and n >= 0 for n in shape):
        raise ValueError("bad shape")
    raw = base64.b64decode(b64, validate=True)
    count = math.prod(shape)
    if count * np.dtype(dtype).itemsize != len(raw):
        raise ValueError(f"{len(raw)} bytes do not make a {dtype} array of shape {shape}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def number(value, name: str = "the answer") -> float:
    """``value`` as a float if it is a real number of any usual type, else AssertionError.

    Accepts Python ``int`` and ``float``, NumPy scalars and 0-d (or one-element) tensors and
    arrays; refuses ``bool`` and anything else, naming what was given. For checks::

        assert number(loss_q4, "loss_q4") >= 0
    """
    import numpy as np

    if type(value) in (int, float):
        return float(value)
    if isinstance(value, (np.integer, np.floating)) and type(value) is not bool:
        return float(value)
    shape = getattr(value, "shape", None)
    if shape is not None and type(value).__name__ in ("Tensor", "ndarray") and math.prod(shape) == 1:
        kind = str(value.dtype)
        if "bool" not in kind and "complex" not in kind:
            return float(value.reshape(-1)[0].item())
    if getattr(value, "_why", ""):  # a Remote for an object that could not cross: say why
        raise AssertionError(value._why)
    got = getattr(value, "_type", None) or type(value).__name__  # a Remote says what it stands for
    if shape is not None:
        got = f"{got} of shape {tuple(shape)}"
    raise AssertionError(f"{name} should be a real number (a Python float or int, a NumPy "
                         f"scalar or a 0-d tensor), not {got}")

"""The one comparison every test uses: an answer against the expected value, saying what differs.

:func:`expect_close` and :func:`expect_equal` raise ``AssertionError`` with a message about the
answer, never a library's ``TypeError`` or ``RuntimeError``:

* the kind: ``"expected a tensor of shape (3, 5), got an ndarray of shape (3, 5)"``;
* the shape: ``"expected shape (3, 5), got (5, 3)"``;
* the values: ``"values differ at [0, 2]: got 1.5, expected 2.0 (1 of 15 values; atol 1e-05,
  rtol 1e-05)"``.

Any real dtype that holds the answer to the stated tolerance is accepted: float64 where the
inputs were float32 is right, and float16 or bfloat16 is judged by the same tolerance (values
are compared in float64). A check that needs a dtype says so with its own assert.

Example (in a test case)::

    expect_close(affine(W, A, b), W @ A + b[:, None], "wrong values: is b added to every column?", atol=1e-5)
"""

from __future__ import annotations

import math

__all__ = ["expect_close", "expect_equal"]


def expect_close(got, expected, message: str = "", *, atol: float = 1e-8, rtol: float = 1e-5,
                 equal_nan: bool = False, name: str = "the answer") -> None:
    """Assert ``|got - expected| <= atol + rtol * |expected|`` elementwise, ``torch.allclose``'s rule.

    ``expected`` is a tensor, an ndarray, a real number, or a list/tuple of those (compared item by
    item). ``message`` (what the test says is wrong) comes first in the failure, then what differs.
    """
    _compare(got, expected, message, name, exact=False, atol=atol, rtol=rtol, equal_nan=equal_nan)


def expect_equal(got, expected, message: str = "", *, name: str = "the answer") -> None:
    """Assert the same values exactly (token ids, masks, counts, strings), in any integer width.

    An integer or boolean ``expected`` needs an integer or boolean answer respectively; floats
    need equal floats.
    """
    _compare(got, expected, message, name, exact=True, atol=0.0, rtol=0.0, equal_nan=False)


def _fail(message: str, name: str, detail: str):
    raise AssertionError(f"{message}: {detail}" if message else f"{name}: {detail}")


def _kind(value) -> str:
    """``"a tensor of shape (3, 5)"``, ``"an ndarray of shape (2,)"``, ``"a float"``, ``"None"``."""
    if value is None:
        return "None"
    if getattr(value, "_why", ""):  # a Remote for an object that could not cross: say why
        return f"an object the grader cannot read ({value._why})"
    remote = getattr(value, "_type", None)
    if remote:
        return f"a {remote}"
    name = type(value).__name__
    shape = getattr(value, "shape", None)
    if name == "Tensor":
        return f"a tensor of shape {tuple(shape)} ({str(value.dtype).replace('torch.', '')})"
    if name == "ndarray":
        return f"an ndarray of shape {tuple(shape)} ({value.dtype})"
    if isinstance(value, (list, tuple)):
        return f"a {name} of {len(value)} items"
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name}"


def _compare(got, expected, message, name, *, exact, atol, rtol, equal_nan) -> None:
    import numpy as np

    kind = type(expected).__name__
    if kind == "Tensor" or kind == "ndarray":
        want = "a tensor" if kind == "Tensor" else "an ndarray"
        shape = tuple(expected.shape)
        if type(got).__name__ != kind:
            _fail(message, name, f"expected {want} of shape {shape}, got {_kind(got)}")
        if tuple(got.shape) != shape:
            _fail(message, name, f"expected {want} of shape {shape}, got shape {tuple(got.shape)}")
        g, e = _as_array(got), _as_array(expected)
    elif isinstance(expected, (list, tuple)):
        if type(got).__name__ in ("ndarray", "Tensor") and got.ndim >= 1:
            got = list(got)  # a sequence given as an array: its items are compared one by one
        if not isinstance(got, (list, tuple)):
            _fail(message, name, f"expected a {type(expected).__name__} of {len(expected)} items, got {_kind(got)}")
        if len(got) != len(expected):
            _fail(message, name, f"expected {len(expected)} items, got {len(got)}")
        for i, (g_item, e_item) in enumerate(zip(got, expected)):
            _compare(g_item, e_item, message, f"{name}[{i}]", exact=exact, atol=atol, rtol=rtol,
                     equal_nan=equal_nan)
        return
    elif isinstance(expected, str) or expected is None:
        if got != expected or type(got) is not type(expected):
            _fail(message, name, f"got {got!r}, expected {expected!r}")
        return
    else:  # a number: any real number type will do (Python, NumPy scalar, 0-d tensor or array)
        from .plain import number

        if isinstance(expected, bool) or type(expected).__name__ == "bool_":
            if type(got) is not bool and type(got).__name__ != "bool_":
                _fail(message, name, f"expected True or False, got {_kind(got)}")
            if bool(got) != bool(expected):
                _fail(message, name, f"got {bool(got)}, expected {bool(expected)}")
            return
        try:
            g_value = number(got, name)
        except AssertionError as error:
            _fail(message, name, str(error).replace(f"{name} should be", "expected").replace(f"{name}: ", ""))
        g, e = np.asarray(g_value, dtype=np.float64), np.asarray(float(expected), dtype=np.float64)
        if exact and isinstance(expected, int) and not float(g_value).is_integer():
            _fail(message, name, f"got {g_value!r}, expected the integer {expected}")

    if g.dtype.kind == "c" and e.dtype.kind != "c":
        _fail(message, name, f"expected real values, got complex ({g.dtype})")
    if exact and e.dtype.kind in "biu" and g.dtype.kind not in "biu":
        _fail(message, name, f"expected {'booleans' if e.dtype.kind == 'b' else 'integers'}, got dtype {g.dtype}")
    if exact and e.dtype.kind == "b" and g.dtype.kind != "b":
        _fail(message, name, f"expected booleans, got dtype {g.dtype}")
    if g.dtype.kind == "b" and e.dtype.kind not in "b":
        _fail(message, name, "expected numbers, got booleans")
    _values(g, e, message, name, exact=exact, atol=atol, rtol=rtol, equal_nan=equal_nan)


def _as_array(value):
    """A tensor or array as a NumPy array of its values (float64 for floats, exact for integers)."""
    import numpy as np

    if type(value).__name__ == "Tensor":
        t = value.detach().cpu().resolve_conj().resolve_neg()
        if t.dtype.is_floating_point:
            t = t.double()
        return t.numpy()
    arr = np.asarray(value)
    return arr.astype(np.float64) if arr.dtype.kind == "f" else arr


def _values(g, e, message, name, *, exact, atol, rtol, equal_nan) -> None:
    import numpy as np

    if g.size == 0:
        return
    if exact and e.dtype.kind in "biu" and g.dtype.kind in "biu":
        bad = g.astype(np.int64) != e.astype(np.int64) if e.dtype.kind != "b" else g != e
    else:
        gf, ef = g.astype(np.complex128 if "c" in g.dtype.kind + e.dtype.kind else np.float64), \
            e.astype(np.complex128 if "c" in g.dtype.kind + e.dtype.kind else np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            bad = ~np.isclose(gf, ef, atol=atol, rtol=rtol, equal_nan=equal_nan)
    if not bad.any():
        return
    where = tuple(int(i) for i in np.argwhere(bad)[0])
    at = f" at [{', '.join(map(str, where))}]" if g.ndim else ""
    got_v, want_v = g[where].item() if g.ndim else g.item(), e[where].item() if e.ndim else e.item()
    count = f" ({int(bad.sum())} of {bad.size} values" if bad.size > 1 else " ("
    tolerance = "exactly)" if exact else f"{'; ' if bad.size > 1 else ''}atol {atol:g}, rtol {rtol:g})"
    if bad.size > 1 and exact:
        tolerance = "; compared exactly)"
    _fail(message, name, f"values differ{at}: got {_show(got_v)}, expected {_show(want_v)}{count}{tolerance}")


def _show(value) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return repr(value)
        text = f"{value:.7g}"
        return text if any(c in text for c in ".e") else f"{text}.0"
    return repr(value)

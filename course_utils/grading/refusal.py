"""Refusing a computation while the student's code runs, judged by what executes, not by names.

A check says "build softmax from exp, max and sum" with::

    with refusing(SOFTMAX, message="no library softmax or log-softmax: build it from exp, max and sum"):
        p = softmax(z)

Inside the block the student's code runs under two watches, in the student's process:

* a profiling hook (``sys.setprofile``) compares every function the code calls, Python or C, with
  the refused function objects themselves: a function reached through an alias, a default
  argument, a container, a closure or ``torch._C._VariableFunctions`` is the same object, so it
  is caught whatever it was called; an operator called through the registry
  (``torch.ops.aten._softmax``) is caught by its name;
* for PyTorch, a :class:`~torch.utils._python_dispatch.TorchDispatchMode` sees the operators
  every tensor computation dispatches (``aten._softmax``, ``aten._log_softmax``, ...), however the
  code reached them, ``torch.log_softmax(z).exp()`` included.

The code runs to its end (a ``try``/``except`` around a refused call hides nothing); then the
answer is refused with the check's message and what was reached. Code that switches either
watch off (``sys.setprofile``, disabling the dispatch modes) is refused too.

A refused set is a tuple of strings: dotted paths of functions, classes (each of their methods),
methods or modules (each function defined in them), and ``"aten.<operator>"`` names. The sets below hold each library function with its
obvious relatives (log-softmax for a softmax question, the SciPy and scikit-learn equivalents of
a NumPy one); a check may pass its own paths as well.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import threading

SOFTMAX = (
    "torch.softmax", "torch.log_softmax", "torch.Tensor.softmax", "torch.Tensor.log_softmax",
    "torch.nn.functional.softmax", "torch.nn.functional.log_softmax", "torch.nn.functional.softmin",
    "torch.nn.functional.gumbel_softmax", "torch.special.softmax", "torch.special.log_softmax",
    "torch.nn.Softmax", "torch.nn.LogSoftmax", "torch.nn.Softmin",
    "scipy.special.softmax", "scipy.special.log_softmax", "sklearn.utils.extmath.softmax",
    "aten._softmax", "aten._log_softmax", "aten.softmax", "aten.log_softmax", "aten._safe_softmax",
    "aten._masked_softmax", "aten.special_softmax", "aten.special_log_softmax",
)
LOGSUMEXP = (
    "torch.logsumexp", "torch.special.logsumexp", "torch.Tensor.logsumexp", "scipy.special.logsumexp",
    "aten.logsumexp",
)
BCE_WITH_LOGITS = (
    "torch.nn.functional.binary_cross_entropy_with_logits", "torch.binary_cross_entropy_with_logits",
    "torch.nn.BCEWithLogitsLoss", "torch.nn.functional.softplus", "torch.nn.Softplus",
    "torch.nn.functional.logsigmoid", "torch.nn.LogSigmoid", "torch.nn.functional.binary_cross_entropy",
    "torch.nn.BCELoss", "sklearn.metrics.log_loss",
    "aten.binary_cross_entropy_with_logits", "aten.softplus", "aten.log_sigmoid_forward", "aten.log_sigmoid",
    "aten.binary_cross_entropy",
)
BCE = (
    "torch.nn.functional.binary_cross_entropy", "torch.nn.BCELoss",
    "torch.nn.functional.binary_cross_entropy_with_logits", "torch.binary_cross_entropy_with_logits",
    "torch.nn.BCEWithLogitsLoss", "sklearn.metrics.log_loss",
    "aten.binary_cross_entropy", "aten.binary_cross_entropy_with_logits",
)
ROC_AUC = (
    "sklearn.metrics.roc_auc_score", "sklearn.metrics.roc_curve", "sklearn.metrics.auc",
    "sklearn.metrics.RocCurveDisplay", "sklearn.metrics._ranking._binary_clf_curve",
    "sklearn.metrics._ranking._binary_roc_auc_score", "scipy.stats.mannwhitneyu",
)
ATTENTION = (
    "torch.nn.functional.scaled_dot_product_attention", "torch.nn.functional.multi_head_attention_forward",
    "torch.nn.MultiheadAttention",
    "aten.scaled_dot_product_attention", "aten._scaled_dot_product_attention_math",
    "aten._scaled_dot_product_flash_attention", "aten._scaled_dot_product_flash_attention_for_cpu",
    "aten._scaled_dot_product_efficient_attention", "aten._scaled_dot_product_cudnn_attention",
    "aten._fused_sdp_choice",
)

# Calls that would switch the watches off: refused in every block, whatever the check refuses.
_WATCH_OFF = (
    "sys.setprofile", "sys.settrace", "threading.setprofile", "torch._C._DisableTorchDispatch",
    "torch._C._set_dispatch_mode", "torch._C._unset_dispatch_mode",
    "torch.utils._python_dispatch._disable_current_modes", "torch.utils._python_dispatch._pop_mode",
)


def flatten(items) -> tuple[str, ...]:
    """``(SOFTMAX, "torch.exp")`` -> one tuple of strings, in order, without repeats."""
    out: list[str] = []
    for item in items:
        for name in ([item] if isinstance(item, str) else item):
            if not isinstance(name, str):
                raise TypeError(f"refusing takes dotted names or tuples of them, got {type(name).__name__}")
            if name not in out:
                out.append(name)
    return tuple(out)


def _resolve(path: str):
    """The object a dotted path names, found among the modules already imported; None if not there.

    Nothing is imported: a library the student's code has not imported yet (scikit-learn takes
    seconds) is matched by name instead (see :class:`_Watch`). A module of an imported package
    (``course_utils.compute``) is imported, as it is cheap and its functions are refused by object.
    """
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        name = ".".join(parts[:cut])
        owner = sys.modules.get(name)
        if owner is None:
            if cut == len(parts) and cut > 1 and parts[0] in sys.modules and sys.modules.get(".".join(parts[:-1])):
                try:  # a submodule of an imported package that is not imported yet
                    if importlib.util.find_spec(name) is not None:
                        return importlib.import_module(name)
                except (ImportError, ValueError):
                    pass  # not a module: an attribute of its parent
            continue
        try:
            for attr in parts[cut:]:
                owner = getattr(owner, attr)
        except AttributeError:
            return None
        return owner
    return None


class _Watch:
    """What the refused names resolve to, and what the code reached (the first refused call)."""

    def __init__(self, names: tuple[str, ...]):
        self.codes: dict = {}  # code object -> name
        self.objects: dict = {}  # id of a C function or method descriptor -> name
        self.method_names: set[str] = set()  # names of refused C methods (bound methods differ each time)
        self.operators: dict = {}  # "_softmax" -> "aten._softmax"
        self.by_name: dict = {}  # ("sklearn", "roc_auc_score") -> name, for libraries not imported yet
        self.reached: str | None = None
        self.switched_off: str | None = None
        self.active = True
        self._keep = []  # the resolved objects, so their ids stay theirs
        for name in names:
            self._add(name, off=False)
        for name in _WATCH_OFF:
            self._add(name, off=True)
        import torch._ops

        self.registry_calls = {type(torch.ops.aten.exp).__call__.__code__,
                               type(torch.ops.aten.exp.default).__call__.__code__}

    def _add(self, name: str, off: bool) -> None:
        label = ("off:" if off else "") + name
        if name.startswith("aten."):
            self.operators[name.split(".", 1)[1]] = label
            return
        obj = _resolve(name)
        if obj is None:
            if name.split(".")[0] not in sys.modules:  # imported later, if at all: match by name
                self.by_name[(name.split(".")[0], name.rsplit(".", 1)[-1])] = label
            return
        self._keep.append(obj)
        functions = [obj]
        if isinstance(obj, type):  # a class: every method it defines (construction and forward)
            functions = [v for v in vars(obj).values() if callable(v)]
        elif inspect.ismodule(obj):  # a module: every function defined in it
            functions = [v for v in vars(obj).values()
                         if inspect.isfunction(v) and v.__module__ == obj.__name__]
        for f in functions:
            f = inspect.unwrap(f) if inspect.isfunction(f) else f
            code = getattr(f, "__code__", None)
            if code is not None:
                self.codes[code] = label
            else:
                self.objects[id(f)] = label
                self.method_names.add(getattr(f, "__name__", ""))

    def see(self, label: str) -> None:
        if label.startswith("off:"):
            self.switched_off = self.switched_off or label[4:]
        elif self.reached is None:
            self.reached = label

    def profile(self, frame, event, arg):
        if not self.active:
            return
        if event == "call":
            code = frame.f_code
            label = self.codes.get(code)
            if label is None and self.by_name:  # a function of a library imported inside the block
                module = str(frame.f_globals.get("__name__", ""))
                label = self.by_name.get((module.split(".")[0], code.co_name))
            if label is not None:
                self.see(label)
            elif code in self.registry_calls:  # torch.ops.aten.<op>(...) or .<overload>(...)
                op = frame.f_locals.get("self")
                qualified = getattr(op, "_qualified_op_name", None) or getattr(op, "_name", "")
                label = self.operators.get(str(qualified).split("::")[-1])
                if label is not None:
                    self.see(label)
        elif event == "c_call":
            label = self.objects.get(id(arg))
            if label is None and getattr(arg, "__name__", None) in self.method_names:
                owner = getattr(arg, "__self__", None)  # a bound C method: look it up on its class
                method = getattr(type(owner), arg.__name__, None) if owner is not None else None
                label = self.objects.get(id(method))
            if label is not None:
                self.see(label)


class watching:  # noqa: N801  (used as a context manager, like a function)
    """While the block runs, record the first refused computation the code reaches.

    After the block: ``.reached`` names it (``"aten._softmax"``, ``"torch.softmax"``), or is None;
    ``.switched_off`` names a call that would have stopped the watches.
    """

    def __init__(self, names: tuple[str, ...]):
        self.watch = _Watch(tuple(names))
        self.mode = None

    @property
    def reached(self) -> str | None:
        return self.watch.reached

    @property
    def switched_off(self) -> str | None:
        return self.watch.switched_off

    def __enter__(self):
        watch = self.watch
        if watch.operators:
            self.mode = _operator_mode(watch)
            self.mode.__enter__()
        self._before = (sys.getprofile(), threading.getprofile() if hasattr(threading, "getprofile") else None)
        self._hook = watch.profile
        threading.setprofile(self._hook)
        sys.setprofile(self._hook)
        return self

    def __exit__(self, *exc):
        still = sys.getprofile()
        self.watch.active = False  # from here on the calls are the grader's own
        sys.setprofile(self._before[0])
        threading.setprofile(self._before[1])
        if still is not self._hook:
            self.watch.switched_off = self.watch.switched_off or "sys.setprofile"
        if self.mode is not None:
            from torch.utils._python_dispatch import _get_current_dispatch_mode

            if _get_current_dispatch_mode() is not self.mode:
                self.watch.switched_off = self.watch.switched_off or "the dispatch mode"
            try:
                self.mode.__exit__(*exc)
            except Exception:  # noqa: BLE001  (the student's code unbalanced the mode stack)
                self.watch.switched_off = self.watch.switched_off or "the dispatch mode"
        return False


def _operator_mode(watch: _Watch):
    """A TorchDispatchMode that records every refused operator the tensors dispatch."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class RefusedOperators(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            label = watch.operators.get(func.overloadpacket.__name__)
            if label is not None:
                watch.see(label)
            return func(*args, **(kwargs or {}))

    return RefusedOperators()

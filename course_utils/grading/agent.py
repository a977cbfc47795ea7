"""The student's side of a check: compute an answer, send it back as plain values.

This module runs in the process that ran the student's notebook (the kernel while grading, the
notebook itself for ``grader.check``). It never judges an answer. The checking side sends a
request (pickled: inputs built by the checks, tensors, models); :meth:`Agent.handle` looks up a
name, calls one of the student's functions on those inputs, or evaluates a short expression,
and returns the result converted by :func:`course_utils.grading.plain.to_plain`, or the reason
it could not be (the function raised, the value is not plain, a refused library function was
called).

Nothing here needs to be trusted: whatever it returns, the checking side rebuilds from plain
data and compares with values it computed itself.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import json
import pickle
import traceback

from . import refusal
from .plain import NotPlain, capture_tensor_methods, to_plain

_CURRENT: list = []  # the agent that unpickled references resolve against (set during a request)


class Refused(Exception):
    """Raised in place of a library function a check asked the student's code not to call."""


def resolve(name: str):
    """Unpickling a checking-side reference to a notebook name gives the student's object."""
    return _CURRENT[-1].namespace[name]


class Agent:
    """Answers requests against ``namespace`` (the notebook's global variables).

    Example: ``Agent({"f": lambda x: 2 * x}).handle({"op": "call", "name": "f", "args": (3,)})``
    -> ``{"status": "ok", "value": 6}``.
    """

    def __init__(self, namespace: dict, guard: bool = False):
        self.namespace = namespace
        capture_tensor_methods()
        self._restore = _snapshot_libraries() if guard else None

    def handle(self, request: dict | bytes) -> dict:
        """One request (a dict, or a pickled one): ``lookup``, ``call`` or ``evaluate``.

        Always returns a dict; references to notebook names in a pickled request resolve here.
        """
        if self._restore is not None:
            self._restore()  # library attributes the submission rebound are put back first
        _CURRENT.append(self)
        try:
            if isinstance(request, bytes):
                request = pickle.loads(request)
            op = request.get("op")
            if op == "lookup":
                return self._lookup(request["name"])
            if op not in ("call", "evaluate"):
                return {"status": "error", "message": f"unknown request {op!r}"}
            refused = tuple(request.get("refuse", ()))
            watch = refusal.watching(refused) if refused else contextlib.nullcontext()
            try:
                with watch:
                    if op == "call":
                        what = f"the result of {request['name']}(...)"
                        target = self.namespace[request["name"]]
                        result = target(*request.get("args", ()), **request.get("kwargs", {}))
                    else:
                        what = "the checked expression"
                        result = _run(request["source"], dict(request.get("names", {})))
            finally:
                if refused:  # judged by what ran, even if the code then raised or caught an error
                    _raise_if_refused(watch, str(request.get("refuse_message", "")))
            return {"status": "ok", "value": to_plain(result, what)}
        except NotPlain as error:
            return {"status": "rejected", "message": str(error)}
        except Refused as error:
            return {"status": "refused", "message": str(error)}
        except KeyboardInterrupt:
            return {"status": "interrupted", "message": "interrupted"}
        except BaseException as error:  # the student's code raised: report it, keep serving
            return {"status": "raised", "message": _describe(error)}
        finally:
            _CURRENT.pop()

    def _lookup(self, name: str) -> dict:
        if name not in self.namespace:
            return {"status": "missing"}
        value = self.namespace[name]
        kind = type(value).__name__
        if callable(value):
            return {"status": "callable", "type": kind}
        try:
            return {"status": "ok", "value": to_plain(value, name)}
        except NotPlain as error:
            return {"status": "object", "type": kind, "message": str(error)}

    def handle_files(self, request_path: str, response_path: str) -> None:
        """Read a pickled request from a file, write the JSON response to another (grading)."""
        with open(request_path, "rb") as f:
            request = f.read()
        try:
            text = json.dumps(self.handle(request), allow_nan=False)
        except (TypeError, ValueError) as error:
            text = json.dumps({"status": "rejected", "message": f"the answer could not be sent: {error}"})
        with open(response_path, "w", encoding="utf-8") as f:
            f.write(text)


def _run(source: str, names: dict):
    """Run ``source`` like a notebook cell in a fresh namespace; the value of its last line."""
    import torch

    env = {"__builtins__": builtins, "torch": torch, **names}
    tree = ast.parse(source.strip())
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<check>", "exec"), env)
    if last is None:
        return None
    return eval(compile(ast.Expression(last.value), "<check>", "eval"), env)


_ABSENT = object()


def _raise_if_refused(watch, message: str) -> None:
    if watch.switched_off:
        raise Refused(f"{message} (your code switched off the grader's watch: it called {watch.switched_off})")
    if watch.reached:
        raise Refused(f"{message} (your code reached {watch.reached})")


def _describe(error: BaseException) -> str:
    """``"ValueError: bad shape (line 3 of the notebook's softmax)"``-like one-liner."""
    here = (__file__, __file__.replace("agent.py", "plain.py"))
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if f.filename not in here and "site-packages" not in f.filename]
    where = f" (at: {frames[-1].line.strip()})" if frames and frames[-1].line else ""
    text = " ".join(str(error).split())[:300]
    return f"{type(error).__name__}: {text}{where}" if text else f"{type(error).__name__}{where}"


def install(namespace: dict):
    """Start an agent on ``namespace``; returns the function the grader calls per request.

    Called before the submission's first cell: the agent keeps a copy of the attributes of the
    libraries the checks' inputs and the student's code use, and puts back any the submission
    rebinds before it serves each request.
    """
    agent = Agent(namespace, guard=True)
    return agent.handle_files


def _guarded_owners() -> list:
    """Modules and classes whose attributes a submission could rebind to fool a computation."""
    import math
    import operator
    import sys

    import numpy
    import torch

    from . import plain

    owners = [builtins, operator, math, numpy, numpy.testing, numpy.linalg, torch, torch.Tensor, torch._C.TensorBase,
              torch.nn.functional, torch.nn.init, torch.linalg, torch.special, torch.testing,
              torch.autograd, torch.optim, torch.utils.data, plain, sys.modules[__name__],
              refusal, refusal._Watch, refusal.watching]
    owners += [c for c in vars(torch.nn).values() if isinstance(c, type) and issubclass(c, torch.nn.Module)]
    owners += [c for c in vars(torch.optim).values() if isinstance(c, type)]
    return owners


def _snapshot_libraries():
    """A function that puts every attribute of :func:`_guarded_owners` back as it is now."""
    saved = [(owner, dict(vars(owner))) for owner in _guarded_owners()]

    def restore(saved=saved, setattr=setattr, delattr=delattr, vars=vars, list=list, isinstance=isinstance,
                type=type, missing=_ABSENT):
        for owner, attributes in saved:
            current = vars(owner)
            for name, value in attributes.items():
                if current.get(name, missing) is not value:
                    try:
                        setattr(owner, name, value)
                    except (AttributeError, TypeError):
                        pass
            if isinstance(owner, type):  # a method added to a class hides the one it inherits
                for name in list(current):
                    if name not in attributes:
                        try:
                            delattr(owner, name)
                        except (AttributeError, TypeError):
                            pass

    return restore

"""What a test file may use besides plain Python, torch and NumPy (see ``book/exercises.md``).

A test case in an exercise source is a function whose parameters name the notebook's answers
(otter's exception-based format). Values arrive as plain values; functions arrive as stand-ins
whose calls run in the student's process and return plain values. For anything else:

* :func:`evaluate` runs a short piece of code where the student's code runs (to call a method,
  run ``backward()``, pass a lambda, or see how an argument was changed) and returns the value
  of its last line, as plain values;
* :func:`refusing` makes library functions raise while the student's code runs inside it
  ("built from exp and sum, not by calling softmax");
* :func:`number` accepts any real number type (Python, NumPy scalar, 0-d tensor) as a float.

Every comparison stays in the test function, in the checking process.

Example (a test case)::

    def test_does_not_change_x(central_difference):
        x = torch.tensor([1.0, 2.0], dtype=torch.float64)
        g, x_after = evaluate("central_difference(lambda v: (v ** 3).sum(), x), x",
                              central_difference=central_difference, x=x)
        assert torch.equal(x_after, x), "central_difference changed x: work on a copy"
"""

from __future__ import annotations

import contextlib

from .kernels import CURRENT, REFUSING, AnswerError, Remote
from .plain import number

__all__ = ["evaluate", "refusing", "number", "AnswerError", "Remote"]


def evaluate(source: str, **names):
    """Run ``source`` in the student's process with ``names`` bound; the value of its last line.

    ``names`` may hold the test's parameters (the student's functions and classes) and any
    picklable input (tensors, modules, datasets); they arrive as copies. ``torch`` is imported.
    Example: ``evaluate("f(x).sum().item()", f=softmax, x=z)`` -> ``1.0``.
    """
    kernel = CURRENT.get(None)
    if kernel is None:  # a test called directly, in the instructor source: run here, in __main__
        import sys

        from .kernels import LocalKernel

        kernel = LocalKernel(vars(sys.modules["__main__"]))
    return kernel.evaluate(source, names)


@contextlib.contextmanager
def refusing(*functions: str, message: str):
    """Inside this block, the student's code raises ``message`` if it calls any of ``functions``.

    Each is a dotted path such as ``"torch.softmax"``, ``"torch.nn.functional.softmax"`` or
    ``"torch.Tensor.softmax"``; the test fails with ``message``.
    """
    token = REFUSING.set((tuple(functions), message))
    try:
        yield
    finally:
        REFUSING.reset(token)

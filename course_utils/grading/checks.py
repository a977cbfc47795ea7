"""What a test file may use besides plain Python, torch and NumPy (see ``book/exercises.md``).

A test case in an exercise source is a function whose parameters name the notebook's answers
(otter's exception-based format). Values arrive as plain values; functions arrive as stand-ins
whose calls run in the student's process and return plain values. For anything else:

* :func:`evaluate` runs a short piece of code where the student's code runs (to call a method,
  run ``backward()``, pass a lambda, or see how an argument was changed) and returns the value
  of its last line, as plain values;
* :func:`refusing` refuses the answer if the student's code, run inside it, reaches a library
  computation (``with refusing(SOFTMAX, message="no library softmax or log-softmax")``): judged
  by the functions and operators that run, however they were reached
  (:mod:`course_utils.grading.refusal`);
* :func:`expect_close` / :func:`expect_equal` compare an answer with the expected value and say
  what differs ("expected a tensor of shape (3, 5), got an ndarray"; "values differ at [0, 2]:
  got 1.5, expected 2.0"), accepting any real dtype that holds the answer to the tolerance;
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

from .compare import expect_close, expect_equal
from .kernels import CURRENT, REFUSING, AnswerError, Remote
from .plain import number
from .refusal import ATTENTION, BCE, BCE_WITH_LOGITS, LOGSUMEXP, ROC_AUC, SOFTMAX, flatten

__all__ = ["evaluate", "refusing", "number", "expect_close", "expect_equal", "AnswerError", "Remote",
           "SOFTMAX", "LOGSUMEXP", "BCE", "BCE_WITH_LOGITS", "ROC_AUC", "ATTENTION"]


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
def refusing(*functions, message: str):
    """Inside this block, an answer whose computation reaches any of ``functions`` is refused.

    Each is a refused set of :mod:`course_utils.grading.refusal` (``SOFTMAX``, ``ROC_AUC``, ...)
    or a dotted path: a function (``"course_utils.compute.estimate"``), a class, a method
    (``"torch.Tensor.softmax"``) or an operator (``"aten._softmax"``). The student's code is
    watched by what it runs, not by the names it uses; the test fails with ``message``, which
    should say what is forbidden in the student's words ("no library softmax or log-softmax").
    """
    if not message:
        raise ValueError("refusing needs message=: say what is forbidden, e.g. 'no library softmax'")
    token = REFUSING.set((flatten(functions), message))
    try:
        yield
    finally:
        REFUSING.reset(token)

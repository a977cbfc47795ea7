"""The checking side's view of the student's process: names, calls and expressions, as plain values.

A check never touches the student's objects. It asks a :class:`Kernel` for a name: a value
arrives as a plain value (:mod:`course_utils.grading.plain`), a function or class as a
:class:`Remote` stand-in. Calling the stand-in sends copies of the arguments to the student's
process, runs the student's function there and brings the result back as plain values (or
raises :class:`AnswerError` saying why it could not). Two kernels share this protocol:

* :class:`LocalKernel`, the notebook itself (``grader.check``, and the in-process tests);
* ``course_utils.grading.isolation.JupyterKernel``, a separate kernel (grading).

Both go through the same pickling of requests and the same JSON of answers, so a check behaves
the same in the student's notebook and in the grader.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import pickle

from .plain import from_plain

CURRENT: contextvars.ContextVar[Kernel] = contextvars.ContextVar("course_grading_kernel")
REFUSING: contextvars.ContextVar[tuple] = contextvars.ContextVar("course_grading_refusing", default=((), ""))


class AnswerError(AssertionError):
    """The student's code could not give a checkable answer; the message says why."""


class KernelLost(RuntimeError):
    """The student's process stopped answering (died, or ignored an interrupt): grading stops."""


class Kernel:
    """Common protocol; subclasses implement :meth:`request` (a dict in, a dict out).

    ``answers`` lists, per test case, what the student's code gave (``("softmax(...)", value)``),
    so a check that trips over an answer of the wrong kind can say so (see ``testfiles``).
    """

    answers: list

    def request(self, request: dict) -> dict:
        raise NotImplementedError

    def lookup(self, name: str):
        """The value of ``name`` (plain), a :class:`Remote` for a function or object, or AnswerError."""
        reply = self.request({"op": "lookup", "name": name})
        status = reply.get("status")
        if status == "missing":
            raise AnswerError(f"{name} is not defined: run the cell that defines it "
                              f"(was it deleted, renamed, or did it raise?)")
        if status == "callable":
            return Remote(self, name, str(reply.get("type", "function")))
        if status == "object":
            return Remote(self, name, str(reply.get("type", "object")), str(reply.get("message", "")))
        return self._value(reply, name)

    def _value(self, reply: dict, what: str):
        value = self._plain(reply, what)
        if not hasattr(self, "answers"):
            self.answers = []
        self.answers.append((what, value))
        return value

    def call(self, name: str, args: tuple, kwargs: dict):
        refuse, message = REFUSING.get()
        reply = self.request({"op": "call", "name": name, "args": args, "kwargs": kwargs,
                              "refuse": refuse, "refuse_message": message})
        return self._value(reply, f"{name}(...)")

    def evaluate(self, source: str, names: dict):
        refuse, message = REFUSING.get()
        reply = self.request({"op": "evaluate", "source": source, "names": names,
                              "refuse": refuse, "refuse_message": message})
        return self._value(reply, "the checked code")

    @staticmethod
    def _plain(reply: dict, what: str):
        status = reply.get("status")
        if status == "ok":
            try:
                return from_plain(reply.get("value"))
            except (ValueError, TypeError, KeyError, RecursionError) as error:
                raise AnswerError(f"{what} sent something that is not a plain value ({error})") from None
        message = str(reply.get("message", ""))[:500]
        if status == "raised":
            raise AnswerError(f"{what} raised {message}")
        if status == "interrupted":
            raise AnswerError(f"{what} was interrupted")
        raise AnswerError(message or f"{what}: no answer ({status})")


class Remote:
    """Stands for a function, class or object of the student's notebook.

    Calling it runs the student's code there, on copies of the arguments; passing it inside the
    arguments of another call (or to :func:`course_utils.grading.checks.evaluate`) hands the
    student's own object to that code. It has no other behaviour: a check cannot compare it.
    """

    def __init__(self, kernel: Kernel, name: str, type_name: str, why: str = ""):
        self._kernel, self._name, self._type, self._why = kernel, name, type_name, why

    def __call__(self, *args, **kwargs):
        if self._why:
            raise AnswerError(self._why)
        return self._kernel.call(self._name, args, kwargs)

    def __reduce__(self):  # unpickled in the student's process as the student's own object
        from . import agent

        return agent.resolve, (self._name,)

    def __repr__(self) -> str:
        return f"<{self._type} {self._name} of the notebook>"

    def __bool__(self) -> bool:
        raise AnswerError(f"{self._name} is a {self._type}: it cannot be checked as a value. {self._why}")


class LocalKernel(Kernel):
    """The notebook's own namespace, through the same pickle and JSON round trip as grading."""

    def __init__(self, namespace: dict):
        from .agent import Agent

        self.agent = Agent(namespace)

    def request(self, request: dict) -> dict:
        # the student's code gets copies of the inputs, as when grading
        return json.loads(json.dumps(self.agent.handle(pickle.dumps(request)), allow_nan=False))


@contextlib.contextmanager
def using(kernel: Kernel):
    """Make ``kernel`` the one :func:`course_utils.grading.checks.evaluate` talks to."""
    token = CURRENT.set(kernel)
    try:
        yield kernel
    finally:
        CURRENT.reset(token)

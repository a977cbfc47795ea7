"""Test files (otter's exception-based format) read into memory and run against a kernel.

A test file ``qN.py`` holds ``name``, ``points`` and functions decorated with
``@test_case(points=..., hidden=...)``. :func:`load_tests` reads a folder of them once (before
any student code runs, when grading); :func:`run_test_file` runs every case against a
:class:`~course_utils.grading.kernels.Kernel` and says, per case, what failed.

Example::

    tests = load_tests(exercise_tests_dir("00_warmup"))
    result = run_test_file(tests["q1"], LocalKernel(globals()))
    result.score, result.possible, [c.message for c in result.failed]
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from pathlib import Path

from .kernels import AnswerError, Kernel, KernelLost, using

_OTTER_IMPORT = re.compile(r"^from otter\.test_files import test_case\s*$", flags=re.M)


class test_case:  # noqa: N801  (the name test files use)
    """The decorator of the test files: ``@test_case(points=None, hidden=False)``."""

    def __init__(self, name=None, points=None, hidden=False, success_message=None, failure_message=None):
        self.name, self.points, self.hidden = name, points, bool(hidden)
        self.failure_message = failure_message
        self.func = None

    def __call__(self, func):
        self.func = func
        self.name = self.name or func.__name__
        return self


@dataclass
class TestFile:
    name: str  # "q1"
    points: float
    cases: list  # of test_case, each with .points resolved


@dataclass
class CaseResult:
    name: str
    hidden: bool
    points: float
    passed: bool
    message: str = ""
    grader_error: bool = False  # the check itself raised (not an assertion about the answer): a bug


@dataclass
class FileResult:
    name: str
    possible: float
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def score(self) -> float:
        return sum(c.points for c in self.cases if c.passed)

    @property
    def failed(self) -> list[CaseResult]:
        return [c for c in self.cases if not c.passed]


def load_test_file(text: str, origin: str = "<test>") -> TestFile:
    """Compile one test file from its text (otter's ``from otter.test_files import`` is not needed)."""
    env: dict = {"__name__": f"course_tests_{Path(origin).stem}", "test_case": test_case}
    exec(compile(_OTTER_IMPORT.sub("", text), origin, "exec"), env)
    cases = [v for v in env.values() if isinstance(v, test_case)]
    if "name" not in env or not cases:
        raise ValueError(f"{origin}: a test file needs `name = ...` and at least one @test_case")
    total = env.get("points")
    return TestFile(str(env["name"]), *_resolve_points(total, cases, origin))


def _resolve_points(total, cases: list, origin: str) -> tuple[float, list]:
    """Otter's rule: the question's points are shared equally by the cases without their own."""
    if isinstance(total, list):
        if len(total) != len(cases):
            raise ValueError(f"{origin}: {len(total)} point values for {len(cases)} test cases")
        for case, pts in zip(cases, total):
            case.points = pts
        total = None
    fixed = sum(c.points for c in cases if c.points is not None)
    free = [c for c in cases if c.points is None]
    if total is None:
        share = (1 / len(free) if free else 0.0) if fixed == 0 else 0.0
    else:
        if fixed > total:
            raise ValueError(f"{origin}: the test cases have more points ({fixed}) than the question ({total})")
        share = (total - fixed) / len(free) if free else 0.0
    for case in free:
        case.points = share
    return float(sum(c.points for c in cases)), cases


def load_tests(folder: Path) -> dict[str, TestFile]:
    """Every ``*.py`` test file in ``folder``, by question name, in file-name order."""
    files = sorted(p for p in Path(folder).glob("*.py") if not p.name.startswith("__"))
    tests = {}
    for path in files:
        test = load_test_file(path.read_text(encoding="utf-8"), str(path))
        tests[test.name] = test
    return tests


def run_test_file(test: TestFile, kernel: Kernel, *, hidden: bool = True) -> FileResult:
    """Run the cases of ``test`` (the hidden ones too unless ``hidden=False``) against ``kernel``.

    :class:`KernelLost` propagates (grading stops); every other failure is the case's message.
    """
    result = FileResult(test.name, test.points if hidden else sum(c.points for c in test.cases if not c.hidden))
    with using(kernel):
        for case in test.cases:
            if case.hidden and not hidden:
                continue
            passed, message, grader_error = True, "", False
            kernel.answers = []
            try:
                args = {p: kernel.lookup(p) for p in inspect.signature(case.func).parameters}
                case.func(**args)
            except KernelLost:
                raise
            except AnswerError as error:
                passed, message = False, str(error)
            except AssertionError as error:
                passed, message = False, str(error) or _failed_line(error)
            except Exception as error:  # the check raised: an answer of the wrong kind, or a grader bug
                passed = False
                message = _wrong_kind(error, kernel.answers)
                grader_error = message is None
                message = message or f"{type(error).__name__}: {_one_line(str(error))}"
            result.cases.append(CaseResult(case.name, case.hidden, case.points, passed,
                                           (case.failure_message or message) if not passed else "", grader_error))
    return result


def _kind_names(value, depth: int = 0) -> set[str]:
    """The names an error message may use for the type of ``value`` or of the items it holds."""
    names = {"NoneType"} if value is None else {type(value).__name__}
    if isinstance(value, str):
        names.add("string")
    if isinstance(value, (list, tuple)) and depth < 2:
        for item in value[:64]:
            names |= _kind_names(item, depth + 1)
    return names


def _describe_value(value) -> str:
    if value is None:
        return "None"
    shape = getattr(value, "shape", None)
    name = {"Tensor": "a tensor", "ndarray": "an ndarray"}.get(type(value).__name__, f"a {type(value).__name__}")
    return f"{name} of shape {tuple(shape)}" if shape is not None else name


def _wrong_kind(error: Exception, answers: list) -> str | None:
    """A message about the answer when ``error`` comes from using an answer of the wrong kind.

    The check raised (not asserted) while using what the student's code gave: if the error names
    the type of one of those answers (``"must be Tensor, not NoneType"``, ``"'str' object has no
    attribute"``, ``"cannot unpack non-iterable NoneType object"``), the answer is at fault and the
    message says which one. Otherwise None: the check itself is wrong (a grader bug).
    """
    if not isinstance(error, (TypeError, AttributeError, ValueError, IndexError, KeyError, RuntimeError)):
        return None
    text = str(error)
    for what, value in reversed(answers):
        names = _kind_names(value)
        if any(re.search(rf"\b{re.escape(n)}\b", text) for n in names) or \
                (isinstance(value, (list, tuple, str)) or type(value).__name__ == "ndarray") and "unpack" in text:
            return (f"{what} gave {_describe_value(value)}, which this check cannot use "
                    f"({type(error).__name__}: {_one_line(text)[:160]})")
    return None


def _failed_line(error: BaseException) -> str:
    tb = error.__traceback__
    while tb and tb.tb_next:
        tb = tb.tb_next
    return f"a check failed (line {tb.tb_lineno} of the test)" if tb else "a check failed"


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]

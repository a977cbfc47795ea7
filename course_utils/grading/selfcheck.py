"""The student's ``grader.check("q1")``: the public tests of a question, in the notebook.

In an exercise notebook (the setup cell does this)::

    grader = course_utils.grading.notebook_grader("00_warmup")
    grader.check("q1")          # question 1's public tests, with what failed
    grader.check_all()          # every question

The public tests ship with the package (``course_utils/exercise_tests/``), so this works on
Colab without a clone. They run through the same protocol as grading (answers cross as plain
values), here in the notebook's own process: a passing self-check means the same public tests
pass when graded. Hidden tests run only when an instructor grades.
"""

from __future__ import annotations

import html
import sys
from dataclasses import dataclass
from pathlib import Path

from .kernels import LocalKernel
from .testfiles import FileResult, load_tests, run_test_file

EXERCISE_TESTS = Path(__file__).resolve().parent.parent / "exercise_tests"


def known_exercises() -> list[str]:
    """Names of the exercises whose public tests this package ships, e.g. ``["00_warmup"]``."""
    if not EXERCISE_TESTS.is_dir():
        return []
    return sorted(p.name for p in EXERCISE_TESTS.iterdir() if p.is_dir() and any(p.glob("q*.py")))


def exercise_tests_dir(exercise: str) -> Path:
    """Folder of the public tests of ``exercise`` (``qN.py`` files, shipped with the package)."""
    folder = EXERCISE_TESTS / exercise
    if not folder.is_dir():
        known = ", ".join(known_exercises()) or "none"
        raise ValueError(f"exercise must be one of: {known}; got {exercise!r} "
                         f"(a newer exercise needs a newer course_utils: rerun the setup cell)")
    return folder


@dataclass
class CheckResult:
    """What ``grader.check`` shows: one line per question, the failed tests' messages under it."""

    results: list[FileResult]

    @property
    def passed(self) -> bool:
        return all(not r.failed for r in self.results)

    def lines(self) -> list[str]:
        out = []
        for r in self.results:
            if not r.failed:
                out.append(f"{r.name}: All test cases passed! ({len(r.cases)} public test(s))")
                continue
            out.append(f"{r.name}: {len(r.failed)} of {len(r.cases)} public test(s) failed")
            out += [f"    {c.name}: {c.message}" for c in r.failed]
        return out

    def __repr__(self) -> str:
        return "\n".join(self.lines())

    def _repr_html_(self) -> str:
        rows = "".join(f"<div>{'&nbsp;' * 4 if line.startswith(' ') else ''}{html.escape(line.strip())}</div>"
                       for line in self.lines())
        colour = "#1a7f37" if self.passed else "#b42318"
        return f'<div style="font-family: monospace; color: {colour}">{rows}</div>'


class Grader:
    """Runs the public tests of one exercise against the variables of the calling notebook."""

    def __init__(self, exercise: str, namespace: dict | None = None):
        self.exercise = exercise
        self.tests = load_tests(exercise_tests_dir(exercise))
        self._namespace = namespace

    def _kernel(self) -> LocalKernel:
        namespace = self._namespace
        if namespace is None:
            try:
                namespace = get_ipython().user_ns  # noqa: F821  (defined inside IPython)
            except NameError:
                namespace = sys._getframe(2).f_globals  # a plain script: the caller's globals
        return LocalKernel(namespace)

    def check(self, question: str) -> CheckResult:
        """The public tests of ``question`` (e.g. ``"q1"``), with what failed."""
        if question not in self.tests:
            raise ValueError(f"question must be one of {', '.join(self.tests)}; got {question!r}")
        return CheckResult([run_test_file(self.tests[question], self._kernel(), hidden=False)])

    def check_all(self) -> CheckResult:
        """Every question's public tests."""
        kernel = self._kernel()
        return CheckResult([run_test_file(t, kernel, hidden=False) for t in self.tests.values()])


def notebook_grader(exercise: str, *, written_for: str | None = None) -> Grader:
    """The ``grader`` of an exercise notebook: ``grader.check("q1")``, ``grader.check_all()``.

    ``written_for``: the course_utils version the notebook was written for (its setup cell passes it);
    as :func:`course_utils.setup` does, a warning says so when another version is installed, and a
    package pip replaced after the kernel imported it is named, with a request to restart.
    """
    from course_utils import check_version, replaced_in_memory

    check_version(written_for)
    replaced = replaced_in_memory()
    if replaced:
        print("pip replaced packages this runtime had already imported (" + ", ".join(replaced) + "): "
              "restart the runtime (Colab: Runtime > Restart session), then run this cell again.")
    return Grader(exercise)

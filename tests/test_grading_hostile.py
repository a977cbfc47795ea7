"""Code written to fool the grader earns nothing, by class of attack, on two exercise sets.

Each case adds one hostile cell to a notebook whose score is known and grades it whole: the
score must be exactly what the same notebook scores without the cell. The notebooks:

* the untouched template (scores 0), with the hostile cell right after the setup cell, so
  that every answer cell runs after it;
* a partly solved notebook (the reference solution with some answers back to the template,
  or replaced by objects that lie), with the hostile cell at the end, after the answers.

The classes of attack: rebinding attributes of the modules and classes checks use (every public
function of torch, NumPy, math, operator, torch.nn.functional and the testing helpers, every
public method and the comparison and arithmetic operators of torch.Tensor, the builtins checks
call), answers that lie (subclasses of float, int, torch.Tensor with ``__torch_function__`` and
numpy.ndarray with ``__array_function__``, overriding comparisons and arithmetic), and reading
and rewriting the test files, replacing the self-check or the grader's helpers in the kernel.
"""

import shutil
import sys
from pathlib import Path

import nbformat
import pytest

from course_utils import grading

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import build_exercises  # noqa: E402

pytestmark = pytest.mark.slow

# Per set: the full marks, and the answers taken back to the template in the partly solved notebook.
SETS = {
    "00_warmup": ({"q1": 2.0, "q2": 3.0, "q3": 2.0, "q4": 1.0, "q5": 2.0}, ("affine", "loss_q4")),
    "03_training": ({"q1": 3.0, "q2": 2.0, "q3": 2.0, "q4": 2.0, "q5": 1.0}, ("lr_at", "roc_auc", "scale_q5")),
}

REBIND_LIBRARIES = '''\
import builtins, math, operator
import numpy, numpy.testing, torch, torch.nn.functional, torch.testing


def lie(*args, **kwargs):
    return True


for owner in (torch, numpy, math, operator, torch.nn.functional, torch.testing, numpy.testing, torch.linalg):
    for name in dir(owner):
        if not name.startswith("_") and callable(getattr(owner, name, None)):
            try:
                setattr(owner, name, lie)
            except (AttributeError, TypeError):
                pass
for name in [n for n in dir(torch.Tensor) if not n.startswith("_")] + [
        "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__sub__", "__rsub__", "__abs__",
        "__bool__", "__float__", "__add__", "__mul__", "__truediv__", "__getitem__"]:
    try:
        setattr(torch.Tensor, name, lie)
    except (AttributeError, TypeError):
        pass
for name in ("abs", "all", "any", "round", "sum", "min", "max"):
    setattr(builtins, name, lie)
'''

LIARS = '''\
import numpy as np
import torch


class LyingFloat(float):
    def __eq__(self, other):
        return True

    __le__ = __ge__ = __lt__ = __gt__ = __eq__

    def __ne__(self, other):
        return False

    def __sub__(self, other):
        return LyingFloat(0.0)

    __rsub__ = __add__ = __radd__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = __sub__

    def __abs__(self):
        return LyingFloat(0.0)

    __hash__ = float.__hash__


class LyingInt(int):
    __eq__ = LyingFloat.__eq__
    __ne__ = LyingFloat.__ne__
    __hash__ = int.__hash__


class LyingTensor(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return True


class LyingArray(np.ndarray):
    def __array_function__(self, func, types, args, kwargs):
        return True

    def __eq__(self, other):
        return True
'''

LYING_ANSWERS = {
    "00_warmup": LIARS + '''
def affine(W, A, b):
    return torch.zeros(W.shape[0], A.shape[1]).as_subclass(LyingTensor)


loss_q4 = LyingFloat(1.0)
''',
    "03_training": LIARS + '''
def lr_at(step, total_steps, warmup_steps, base_lr):
    return np.zeros(()).view(LyingArray)


def roc_auc(labels, scores):
    return LyingFloat(0.5)


scale_q5 = LyingInt(3)
''',
}

TAMPER = '''\
import json, os, sys
from pathlib import Path

# read every test file within reach, then rewrite the ones the grader was given
found = [p for p in Path({root!r}).glob("course_utils/exercise_tests/*/*.py")]
texts = [p.read_text() for p in found]
source = Path({source!r})
nb = json.loads(source.read_text())
for cell in nb["cells"]:
    if "def test_" in "".join(cell["source"]):
        cell["source"] = ["def test_nothing():\\n", "    pass\\n"]
source.write_text(json.dumps(nb))
# replace the self-check, the grader's helper in this kernel, and write a fake result everywhere
grader.check = grader.check_all = lambda *args, **kwargs: "All test cases passed!"
import course_utils.grading.plain as plain
import course_utils.grading.testfiles as testfiles
plain.to_plain = lambda value, *args, **kwargs: 1.0
testfiles.run_test_file = lambda *args, **kwargs: None
fake = json.dumps({{"tests": {{"q1": {{"score": 99, "possible": 99, "failed": []}}}}, "cells": [], "notes": []}})
print(fake)
os.write(1, (fake + "\\n").encode())
sys.stdout.write(fake + "\\n")
'''


def base(exercise: str, which: str):
    """The template, or the solution with the answers named in SETS taken back to the template."""
    template = nbformat.read(ROOT / "exercises" / f"{exercise}.ipynb", as_version=4)
    if which == "template":
        return template, {q: 0.0 for q in SETS[exercise][0]}
    nb = build_exercises.solution_notebook(exercise)
    full, reverted = SETS[exercise]
    lost = {}
    for name in reverted:
        i = answer_index(nb, name)
        nb.cells[i].source = template.cells[answer_index(template, name)].source
        lost[question_of(exercise, name)] = 0.0
    return nb, {**full, **lost}


def answer_index(nb, name: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code"
                and (c.source.startswith((f"def {name}(", f"{name} =", f"import numpy as np\ndef {name}("))))


def question_of(exercise: str, name: str) -> str:
    questions = grading.read_questions(grading.source_notebook(exercise))
    return next(q.name for q in questions if name in q.defines)


def graded(nb, where: str, cell: str, tmp_path, **options) -> dict:
    nb = nbformat.reads(nbformat.writes(nb), as_version=4)
    at = 2 if where == "top" else len(nb.cells) - 2  # after the setup cell, or before the closing cells
    nb.cells.insert(at, nbformat.v4.new_code_cell(cell))
    path = tmp_path / "hostile.ipynb"
    nbformat.write(nb, path)
    report = grading.grade_submission(path, timeout=30, **options)
    assert report.status == "graded", report.format()
    return {q.name: q.score for q in report.questions if not q.manual}, report


CASES = [(ex, which) for ex in SETS for which in ("template", "partial")]


@pytest.mark.parametrize(("exercise", "which"), CASES)
def test_rebinding_library_functions_and_tensor_methods_earns_nothing(exercise, which, tmp_path):
    nb, expected = base(exercise, which)
    got, report = graded(nb, "top" if which == "template" else "end", REBIND_LIBRARIES, tmp_path)
    assert got == expected, report.format()


@pytest.mark.parametrize("exercise", SETS)
def test_answers_that_lie_about_comparisons_and_arithmetic_earn_nothing(exercise, tmp_path):
    nb, expected = base(exercise, "partial")
    got, report = graded(nb, "end", LYING_ANSWERS[exercise], tmp_path)
    assert got == expected, report.format()
    failed = [f["message"] for q in report.questions for f in q.failed]
    assert any("a subclass of" in m and "plain" in m for m in failed), failed


@pytest.mark.parametrize(("exercise", "which"), CASES)
def test_reading_and_rewriting_the_tests_and_the_helpers_earns_nothing(exercise, which, tmp_path):
    nb, expected = base(exercise, which)
    source = tmp_path / "source" / f"{exercise}.ipynb"
    source.parent.mkdir()
    shutil.copyfile(grading.source_notebook(exercise), source)
    cell = TAMPER.format(root=str(ROOT), source=str(source))
    got, report = graded(nb, "top" if which == "template" else "end", cell, tmp_path, source=source)
    assert got == expected, report.format()
    assert any("the submission changed files the grader reads" in n and str(source) in n for n in report.notes)


# Roads around "no library softmax / ROC AUC", taken in the graded kernel (not only in-process, as
# tests/test_exercises.py does for every listed road): the refusal test loses its points, naming
# what ran; patching the grader's watch from the notebook changes nothing.
ROADS_IN_THE_KERNEL = {
    "00_warmup": ("softmax", "def softmax(z, dim=-1, _f=torch.ops.aten._softmax):\n    return _f(z, dim, False)\n\n"
                  "import course_utils.grading.refusal as _r\n_r._Watch.profile = lambda *a: None\n",
                  "q2", "reached aten._softmax"),
    "03_training": ("roc_auc", "def roc_auc(labels, scores):\n    from scipy.stats import mannwhitneyu\n"
                    "    pos, neg = scores[labels == 1], scores[labels == 0]\n"
                    "    return float(mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg)))\n",
                    "q3", "reached scipy.stats.mannwhitneyu"),
}


@pytest.mark.parametrize("exercise", SETS)
def test_a_road_around_a_refusal_loses_the_refusal_tests_points_when_graded(exercise, tmp_path):
    name, source, question, says = ROADS_IN_THE_KERNEL[exercise]
    nb = build_exercises.solution_notebook(exercise)
    at = next(i for i, c in enumerate(nb.cells) if c.source.startswith(f"def {name}("))
    nb.cells[at].source = source
    got, report = graded(nb, "end", "pass", tmp_path)
    full = SETS[exercise][0]
    assert got == {**full, question: got[question]} and got[question] < full[question], report.format()
    failed = [f["message"] for q in report.questions for f in q.failed]
    assert any(says in m for m in failed), failed

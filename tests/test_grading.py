"""The grader scores what a submission earns, whatever the submission does.

Hostile submissions are built from the pilot exercise's reference solution (or its template)
and graded whole, with a short timeout; each test asserts the per-question scores and the line
of the report that says what happened.
"""

import csv
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_utils import grading

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import build_exercises  # noqa: E402

EXERCISE = "00_warmup"
FULL = {"q1": 2.0, "q2": 3.0, "q3": 2.0, "q4": 1.0, "q5": 2.0}
LOOP_TIMEOUT = 4  # seconds per cell where a test waits for an infinite loop to be stopped


@pytest.fixture(scope="module")
def solution():
    return build_exercises.solution_notebook(EXERCISE)


@pytest.fixture(scope="module")
def template():
    return nbformat.read(ROOT / "exercises" / f"{EXERCISE}.ipynb", as_version=4)


def answer_index(nb, name: str) -> int:
    """Index of the cell that defines ``name`` (``def name`` or ``name = ...``)."""
    return next(i for i, c in enumerate(nb.cells)
                if c.cell_type == "code" and (c.source.startswith(f"def {name}(") or c.source.startswith(f"{name} =")))


def with_cells(nb, after: str | None = None, cells: tuple[str, ...] = (), replace: dict | None = None):
    """A copy of ``nb`` with code ``cells`` inserted after the setup cell (or after the answer
    defining ``after``) and the answers named in ``replace`` given new sources."""
    nb = nbformat.reads(nbformat.writes(nb), as_version=4)  # a deep copy
    for name, source in (replace or {}).items():
        nb.cells[answer_index(nb, name)].source = source
    at = answer_index(nb, after) + 1 if after else 2
    for source in reversed(cells):
        nb.cells.insert(at, nbformat.v4.new_code_cell(source))
    return nb


def grade(nb, tmp_path, **options) -> grading.GradeReport:
    path = tmp_path / "submission.ipynb"
    nbformat.write(nb, path)
    return grading.grade_submission(path, timeout=options.pop("timeout", 30), **options)


def scores(report) -> dict:
    return {q.name: q.score for q in report.questions if not q.manual}


# ----------------------------------------------------------------------------- fast: the parts
@pytest.mark.parametrize("code", [
    "grader.check = lambda *args: None",
    "grader = None",
    "del grader",
    "import otter\notter.Notebook = object",
    "from otter.execute import Checker",
    "exec('1 + 1')",
    "__import__('ot' + 'ter')",
    "import sys\nsys.modules['x'] = None",
    "!rm -rf tests",
    "%pip install cheat",
    "import subprocess",
    "f = lambda: 0\nf.__globals__['grader'] = None",
    "open('tests/q1.py', 'w')",
    "import os\nos.system('ls')",
    "%%time\nimport otter",
    "%time exec('x = 1')",
])
def test_screen_stops_a_cell_that_touches_the_checking_machinery(code):
    assert grading.screen_code(code) != []


@pytest.mark.parametrize("code", [
    'grader.check("q1")',
    "import math\nimport torch\nimport torch.nn.functional as F",
    "model = torch.nn.Linear(2, 2)\nmodel.eval()\ncompiled = torch.compile",
    "%matplotlib inline\nx = torch.ones(3)",
    "%%time\ny = sum(range(10))",
    'print("all tests passed")',
    "def softmax(z, dim=-1):\n    e = torch.exp(z - z.max(dim=dim, keepdim=True).values)\n"
    "    return e / e.sum(dim=dim, keepdim=True)",
    "this is not python (",
])
def test_screen_lets_ordinary_code_run(code):
    assert grading.screen_code(code) == []


def test_the_generated_setup_cell_is_recognised_and_an_edited_one_is_not(template):
    setup = template.cells[1].source
    assert grading._is_setup_cell(setup)
    assert not grading._is_setup_cell(setup + "\ngrader.check = print")
    assert grading.screen_code(setup) != [], "the setup cell itself would be screened: it must be recognised"


def test_questions_are_read_from_the_source_with_points_and_names():
    questions = grading.read_questions(grading.source_notebook(EXERCISE))
    assert [(q.name, q.points, q.manual) for q in questions] == [
        ("q1", 2, False), ("q2", 3, False), ("q3", 2, False), ("q4", 1, False), ("q5", 2, False), ("q6", 2, True)]
    assert questions[1].defines == ("softmax",)
    assert questions[1].templates[0].rstrip().endswith("...")


def test_invalid_json_is_unusable_with_a_one_line_reason(tmp_path):
    path = tmp_path / "broken.ipynb"
    path.write_text('{"cells": [{"cell_type": "code", "source": "x = 1"')
    with pytest.raises(grading.UnusableSubmission) as error:
        grading.grade_submission(path)
    assert "invalid JSON at line 1" in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(("content", "reason"), [
    (b"\xff\xfe not utf-8", "not UTF-8"),
    (b'["a", "list"]', "without a list of cells"),
    (b'{"cells": []}', "cannot tell which exercise"),
])
def test_files_that_are_not_gradable_notebooks_are_unusable(tmp_path, content, reason):
    path = tmp_path / "odd.ipynb"
    path.write_bytes(content)
    with pytest.raises(grading.UnusableSubmission, match=reason):
        grading.grade_submission(path)


def test_timeout_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="timeout must be > 0"):
        grading.grade_submission(tmp_path / "x.ipynb", timeout=0)


def test_an_instructors_extra_test_files_become_graded_items(tmp_path):
    extra = tmp_path / "mine"
    extra.mkdir()
    (extra / "q2_private.py").write_text(
        "from otter.test_files import test_case\nOK_FORMAT = False\nname = 'q2_private'\npoints = 4\n\n"
        "@test_case(hidden=True)\ndef test_sums_to_one(softmax):\n    import torch\n"
        "    assert torch.allclose(softmax(torch.ones(2, 3)).sum(-1), torch.ones(2))\n")
    base = grading.autograder_zip(grading.source_notebook(EXERCISE))
    points = grading._possible_points(grading.with_extra_tests(base, extra, tmp_path))
    assert points == {**FULL, "q2_private": 4.0}
    (extra / "q2.py").write_text("")
    with pytest.raises(ValueError, match="would replace"):
        grading.with_extra_tests(base, extra, tmp_path)


@pytest.mark.slow
def test_cli_rejects_invalid_json_with_exit_2_and_one_line(tmp_path):
    path = tmp_path / "broken.ipynb"
    path.write_text("{not json")
    out = subprocess.run([sys.executable, "-m", "course_utils", "grade", str(path), "--json"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2
    reason = out.stderr.strip().splitlines()[-1]
    assert reason.startswith("grade: error: ") and "invalid JSON at line 1" in reason
    assert "invalid JSON" in json.loads(out.stdout)["error"]


# ----------------------------------------------------------------------------- slow: whole grades
@pytest.mark.slow
def test_a_cell_that_raises_costs_only_what_depends_on_it(solution, tmp_path):
    answer = solution.cells[answer_index(solution, "log_softmax")].source
    nb = with_cells(solution, replace={"log_softmax": "raise RuntimeError('not finished')\n" + answer})
    report = grade(nb, tmp_path)
    # q4 and q5 use log_softmax, which the raising cell never defined
    assert scores(report) == {**FULL, "q3": 0.0, "q4": 0.0, "q5": 0.0}
    assert f"cell {answer_index(solution, 'log_softmax')}: raised RuntimeError: not finished" in report.notes


@pytest.mark.slow
def test_infinite_loops_are_stopped_and_scored_zero(solution, tmp_path):
    nb = with_cells(solution, replace={
        "affine": "def affine(W, A, b):\n    while True:\n        pass",  # hangs when the tests call it
        "softmax": "while True:\n    pass",  # hangs at the top level
    })
    report = grade(nb, tmp_path, timeout=LOOP_TIMEOUT)
    assert report.status == "graded"
    assert scores(report) == {**FULL, "q1": 0.0, "q2": 0.0}
    loop_cell = answer_index(solution, "softmax")
    assert f"cell {loop_cell}: stopped after {LOOP_TIMEOUT} s (an infinite loop?)" in report.notes
    q1 = next(q for q in report.questions if q.name == "q1")
    assert all("TimeoutError" in f["message"] for f in q1.failed) and len(q1.failed) == 3


@pytest.mark.slow
def test_a_submission_that_ignores_interrupts_is_stopped_and_scores_zero(solution, tmp_path, monkeypatch):
    monkeypatch.setattr(grading, "whole_submission_limit", lambda timeout: 25)
    stubborn = "while True:\n    try:\n        while True:\n            pass\n    except KeyboardInterrupt:\n        pass"
    report = grade(with_cells(solution, after="mean_cross_entropy", cells=(stubborn,)), tmp_path, timeout=LOOP_TIMEOUT)
    assert report.status == "stopped"
    assert scores(report) == {q: 0.0 for q in FULL}
    assert "grading stopped after 25 s, the limit for a whole submission: scored 0" in report.notes
    assert report.seconds < 60


@pytest.mark.slow
def test_ten_megabytes_of_output_are_cut_and_graded(solution, tmp_path):
    nb = with_cells(solution, after="affine", cells=("print('spam ' * 2_000_000)",))
    report = grade(nb, tmp_path)
    assert scores(report) == FULL
    assert any(n.startswith(f"cell {answer_index(solution, 'affine') + 1}: printed 10.0 MB, kept the first 1 MB")
               for n in report.notes), report.notes


@pytest.mark.slow
def test_deleted_cells_score_zero_where_they_were_needed(solution, tmp_path):
    nb = with_cells(solution)
    del nb.cells[answer_index(nb, "log_softmax")]
    del nb.cells[1]  # the setup cell
    report = grade(nb, tmp_path)
    assert scores(report) == {**FULL, "q3": 0.0, "q4": 0.0, "q5": 0.0}
    assert "q3: log_softmax is defined nowhere in the submission (answer cell deleted?)" in report.notes


@pytest.mark.slow
def test_an_answer_left_as_the_template_scores_zero_on_its_question(solution, template, tmp_path):
    nb = with_cells(solution, replace={"softmax": template.cells[answer_index(template, "softmax")].source})
    report = grade(nb, tmp_path)
    assert scores(report) == {**FULL, "q2": 0.0}
    assert "q2: the answer cell is unchanged from the template" in report.notes
    assert any("softmax should return a tensor, not NoneType" in f["message"]
               for q in report.questions if q.name == "q2" for f in q.failed)


REPLACE_THE_CHECKER = """\
import otter
grader.check = lambda *args, **kwargs: print("All test cases passed!")
grader.check_all = grader.check
"""
REPLACE_OTTER_NOTEBOOK = """\
import otter

class AlwaysPasses:
    def __init__(self, *args, **kwargs):
        pass

    def check(self, *args, **kwargs):
        return "All test cases passed!"

otter.Notebook.check = AlwaysPasses.check
otter.Notebook = AlwaysPasses
"""
PATCH_OTTER_INTERNALS = """\
from otter.execute import Checker
Checker.check_if_not_already_checked = classmethod(lambda cls, *args, **kwargs: None)
"""
OVERWRITE_THE_TESTS = """\
import os
folder = "te" + "sts"  # spelled so that a string match does not see it
fake = "from " + "ot" + "ter.test_files import test_case\\nOK_FORMAT = False\\nname = '{q}'\\npoints = 10\\n" \\
       "@test_case()\\ndef test_ok():\\n    pass\\n"
if os.path.isdir(folder):
    for file in os.listdir(folder):
        with open(os.path.join(folder, file), "w") as f:
            f.write(fake.format(q=file[:-3]))
"""


@pytest.mark.slow
def test_tampering_with_the_checker_earns_nothing_and_is_named(template, tmp_path):
    nb = with_cells(template, cells=(REPLACE_THE_CHECKER, REPLACE_OTTER_NOTEBOOK, PATCH_OTTER_INTERNALS,
                                     OVERWRITE_THE_TESTS))
    report = grade(nb, tmp_path)
    assert scores(report) == {q: 0.0 for q in FULL}
    for cell in (2, 3, 4):
        assert any(n.startswith(f"cell {cell}: not run, it imports otter") for n in report.notes), report.notes
    assert any("rebinds grader" in n for n in report.notes)
    assert any("changed the test files" in n and "put back" in n for n in report.notes), report.notes


@pytest.mark.slow
def test_without_the_screen_otters_own_isolation_still_gives_no_credit(template, tmp_path):
    """Replacing grader.check or otter.Notebook, or rewriting the test files, fools nothing even
    when those cells run: the tests run after the notebook, from otter's own references."""
    nb = with_cells(template, cells=(REPLACE_THE_CHECKER, REPLACE_OTTER_NOTEBOOK, OVERWRITE_THE_TESTS))
    report = grade(nb, tmp_path, screen=False)
    assert scores(report) == {q: 0.0 for q in FULL}
    assert not any("not run" in n for n in report.notes)


@pytest.mark.slow
def test_grade_class_writes_one_csv_row_per_file_and_survives_a_broken_one(solution, tmp_path):
    folder = tmp_path / "handed_in"
    folder.mkdir()
    nbformat.write(solution, folder / "alice.ipynb")
    (folder / "bob.ipynb").write_text('{"cells": [')
    out = subprocess.run([sys.executable, "-m", "course_utils", "grade-class", str(folder), "--csv",
                          str(tmp_path / "grades.csv"), "--timeout", "30"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    rows = {r["submission"]: r for r in csv.DictReader(open(tmp_path / "grades.csv"))}
    assert rows["alice.ipynb"]["total"] == "10" and rows["alice.ipynb"]["possible"] == "10"
    assert rows["alice.ipynb"]["q2"] == "3" and rows["alice.ipynb"]["q6"] == ""  # q6 is marked by hand
    assert rows["bob.ipynb"]["status"] == "unusable" and "invalid JSON" in rows["bob.ipynb"]["notes"]

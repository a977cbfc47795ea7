"""The grader scores what a submission earns, whatever the submission does.

Submissions that raise, loop, print megabytes or lose cells are built from the pilot exercise's
reference solution (or its template) and graded whole, with a short timeout; each test asserts
the per-question scores and the line of the report that says what happened. Submissions written
to fool the checks are in tests/test_grading_hostile.py.
"""

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_utils import grading
from course_utils.grading.build import top_level_names, with_extra_tests
from course_utils.grading.submission import code_cells, is_setup_cell
from course_utils.grading.testfiles import load_tests

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
def test_the_generated_setup_cell_is_recognised_and_an_edited_one_is_not(template):
    setup = template.cells[1].source
    assert is_setup_cell(setup)
    assert not is_setup_cell(setup + "\ngrader.check = print")
    # a notebook handed out before the version stamp (2026-12-07) is still recognised
    before = re.sub(r', written_for="[^"]*"\)', ")", setup)
    before = before.replace("# On Colab: install the course package from the branch the book's links open; locally\n"
                            "# it is installed already. The grader warns if the package is not the version this\n"
                            "# notebook was written for.\n",
                            "# On Colab: install the course package; locally it is installed already.\n")
    assert before != setup and is_setup_cell(before)


def test_every_code_cell_runs_as_written_except_the_self_checks():
    nb = {"cells": [{"cell_type": "code", "source": "import gc\ngc.collect()"},
                    {"cell_type": "code", "source": 'grader.check("q1")'},
                    {"cell_type": "code", "source": "%time loss_q4 = 1.0"},
                    {"cell_type": "code", "source": "!ls"},
                    {"cell_type": "markdown", "source": "text"},
                    {"cell_type": "sticker"}]}
    cells, notes = code_cells(nb)
    assert [(c["index"], c["source"]) for c in cells] == [(0, "import gc\ngc.collect()"),
                                                         (2, "%time loss_q4 = 1.0"), (3, "!ls")]
    assert notes == ["cell 5: skipped, not a notebook cell"]


@pytest.mark.parametrize(("code", "names"), [
    ("%time loss_q4 = -log_softmax(z)[1].item()", ["loss_q4"]),
    ("%%time\nscale_q5 = 2 ** 16\ndef f():\n    pass", ["scale_q5", "f"]),
    ("%timeit -n 1 -r 1 x = 3", ["x"]),
    ("a, b = 1, 2\n!pip list\nclass C:\n    pass", ["a", "b", "C"]),
])
def test_names_assigned_under_time_magics_count_as_defined(code, names):
    assert top_level_names(code) == names


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
    base = grading.full_tests_dir(grading.source_notebook(EXERCISE))
    points = {name: t.points for name, t in load_tests(with_extra_tests(base, extra, tmp_path / "a")).items()}
    assert points == {**FULL, "q2_private": 4.0}
    (extra / "q2.py").write_text("")
    with pytest.raises(ValueError, match="would replace"):
        with_extra_tests(base, extra, tmp_path / "b")


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


# An install from the run-time dependencies only: otter cannot be imported and has no metadata.
_WITHOUT_OTTER = """
import importlib.metadata as metadata, sys
class NoOtter:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "otter":
            raise ImportError("No module named 'otter'")
sys.meta_path.insert(0, NoOtter())
real_version = metadata.version
def version(name):
    if name.lower().replace("_", "-") == "otter-grader":
        raise metadata.PackageNotFoundError(name)
    return real_version(name)
metadata.version = version
from course_utils.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("command", ["grade", "grade-class"])
def test_grading_without_otter_prints_one_line_naming_what_to_install_and_exits_2(command, template, tmp_path):
    target = tmp_path / "alice.ipynb"
    nbformat.write(template, target)  # a real exercise: the old code reached otter and raised a traceback
    args = [command, str(target)] if command == "grade" else [command, str(tmp_path), "--csv", str(tmp_path / "g.csv")]
    out = subprocess.run([sys.executable, "-c", _WITHOUT_OTTER, *args], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2, out.stderr
    lines = (out.stdout + out.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{command}: error: grading needs otter-grader")
    assert 'pip install "course-utils[grading]"' in lines[0] and "--no-deps otter-grader==7.0.0" in lines[0]


def test_the_grading_extra_installs_what_otter_imports_without_pinning_wrapt_below_2():
    import tomllib

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["grading"]
    names = {re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0].lower() for r in extra}
    assert {"jupyter_client", "ipykernel", "fica", "ipylab", "jupytext", "wrapt", "dill"} <= names
    assert "otter-grader" not in names, "otter-grader's own pins replace Colab's wrapt and ipywidgets"
    assert not any(r.startswith("wrapt") and "<2" in r for r in extra)
    assert not any(r.startswith("ipywidgets") for r in extra)


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
    assert len(q1.failed) == 3
    assert all(f["message"] == f"affine(...) ran longer than {LOOP_TIMEOUT} s (an infinite loop?) and was stopped"
               for f in q1.failed)


@pytest.mark.slow
def test_a_submission_that_ignores_interrupts_is_stopped_and_scores_zero(solution, tmp_path, monkeypatch):
    monkeypatch.setattr(grading, "whole_submission_limit", lambda timeout: 25)
    stubborn = "while True:\n    try:\n        while True:\n            pass\n    except KeyboardInterrupt:\n        pass"
    report = grade(with_cells(solution, after="mean_cross_entropy", cells=(stubborn,)), tmp_path, timeout=LOOP_TIMEOUT)
    assert report.status == "stopped"
    assert scores(report) == {q: 0.0 for q in FULL}
    assert any(n.startswith("grading stopped: the kernel ignored an interrupt") for n in report.notes), report.notes
    assert report.seconds < 60


@pytest.mark.slow
def test_ten_megabytes_of_output_are_cut_and_graded(solution, tmp_path):
    nb = with_cells(solution, after="affine", cells=("print('spam ' * 2_000_000)",))
    report = grade(nb, tmp_path)
    assert scores(report) == FULL
    assert f"cell {answer_index(solution, 'affine') + 1}: printed 10.0 MB (output is not kept)" in report.notes


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
    assert 0 < float(rows["alice.ipynb"]["seconds"]) < 120
    assert rows["bob.ipynb"]["status"] == "unusable" and "invalid JSON" in rows["bob.ipynb"]["notes"]


@pytest.mark.slow
def test_ordinary_code_is_graded_as_written_and_the_json_report_gives_the_time(solution, tmp_path):
    """`import gc` and `%time` in answer cells run and count; --json reports the wall time."""
    answer = "import gc\n\n%time loss_q4 = -log_softmax(torch.tensor([1000.0, 998.0, 0.0]))[1].item()\ngc.collect()"
    path = tmp_path / "timed.ipynb"
    nbformat.write(with_cells(solution, replace={"loss_q4": answer}), path)
    out = subprocess.run([sys.executable, "-m", "course_utils", "grade", str(path), "--json", "--timeout", "30"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert {q["name"]: q["score"] for q in report["questions"] if not q["manual"]} == FULL, report
    assert not any("defined nowhere" in n or "raised" in n for n in report["notes"]), report["notes"]
    assert report["seconds"] > 0 and {"kernel_start", "cells", "tests"} <= set(report["phases"])

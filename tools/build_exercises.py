"""Regenerate the student exercise notebooks and their public tests from the instructor sources.

    python tools/build_exercises.py               # every exercises/source/NN_slug.ipynb (make exercises)
    python tools/build_exercises.py 00_warmup     # one exercise
    python tools/build_exercises.py --check       # exit 1 if a committed generated file is stale

For each source notebook (otter-grader's assign format: solutions, public and hidden tests) this
writes, deterministically (no timestamps, fixed cell ids):

* ``exercises/NN_slug.ipynb``: the student notebook. Its first code cell is the setup cell
  (``course_utils.grading.submission.SETUP_TEMPLATE``: on Colab it installs the course package from the
  branch of ``_config.yml``'s repository that the book's links open, and the grader warns when the
  installed package is not the version the notebook was written for), and it ends with a
  ``grader.check_all()`` cell;
* ``course_utils/exercise_tests/NN_slug/qN.py``: the public tests, package data, so that
  ``grader.check`` finds them on Colab without a clone.

The hidden tests are not written here: ``python -m course_utils grade`` builds them from the
source when it needs them (cached under ``_build/exercises/``).
"""

from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from course_utils.grading import SETUP_TEMPLATE, assign_exercise  # noqa: E402

sys.path.insert(0, str(ROOT / "tools"))
from notebooks import course_version, install_requirement, repository_url  # noqa: E402,F401  (one definition, shared)

SOURCES = ROOT / "exercises" / "source"

CLOSING_MARKDOWN = """\
## Before you hand in

Run *Kernel → Restart & Run All* (on Colab: *Runtime → Restart session and run all*), check that
every cell runs, and run the cell below: it re-runs every public test. Then save and hand in this
`.ipynb` file (on Colab: *File → Download → Download .ipynb*). The grader runs your notebook top to
bottom in a fresh kernel, with hidden tests as well as these, so an answer that only works
because of a cell you ran out of order, or deleted, does not count."""


def setup_cell(exercise: str) -> nbformat.NotebookNode:
    source = SETUP_TEMPLATE.format(requirement=install_requirement(), exercise=exercise, version=course_version())
    return nbformat.v4.new_code_cell(source, metadata={"deletable": False, "editable": False})


def student_notebook(assigned: Path, exercise: str) -> nbformat.NotebookNode:
    """otter's student notebook plus our setup and closing cells, with deterministic ids and metadata."""
    nb = nbformat.read(assigned, as_version=4)
    for cell in nb.cells:  # otter marks questions for its PDF export, which the course does not use
        cell.source = re.sub(r"^<!-- (BEGIN|END) QUESTION -->\n*", "", cell.source, flags=re.M)
    nb.cells = [c for c in nb.cells if c.source.strip() or c.cell_type == "code"]
    first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type != "markdown"), len(nb.cells))
    nb.cells.insert(first_code, setup_cell(exercise))
    nb.cells.append(nbformat.v4.new_markdown_cell(CLOSING_MARKDOWN, metadata={"deletable": False, "editable": False}))
    nb.cells.append(nbformat.v4.new_code_cell("grader.check_all()", metadata={"deletable": False, "editable": False}))
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{exercise.replace('_', '-')}-{i:02d}"
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "otter": {"assignment_name": exercise},
    }
    nbformat.validate(nb)
    return nb


def solution_notebook(exercise: str) -> nbformat.NotebookNode:
    """The reference solution as a student would hand it in: the student notebook, answers filled in.

    ``tests/test_exercises.py`` grades it: it must score full marks.
    """
    with tempfile.TemporaryDirectory() as tmp:
        assigned = assign_exercise(SOURCES / f"{exercise}.ipynb", Path(tmp) / "dist")
        nb = student_notebook(assigned.solution_notebook, exercise)
    # otter's autograder copy keeps the "type your answer" prompt next to each written answer
    nb.cells = [c for c in nb.cells if not c.source.startswith("_Type your answer here")]
    for cell in nb.cells:  # ... and tags the answers as solutions; a student's answers carry this tag
        tags = cell.metadata.get("tags", [])
        if "otter_assign_solution_cell" in tags:
            cell.metadata["tags"] = [t for t in tags if t != "otter_assign_solution_cell"] + ["otter_answer_cell"]
    return nb


def build(exercise: str, root: Path) -> list[Path]:
    """Write the generated files of one exercise under ``root``; return their paths."""
    source = SOURCES / f"{exercise}.ipynb"
    notebook = root / "exercises" / f"{exercise}.ipynb"
    tests_dir = root / "course_utils" / "exercise_tests" / exercise
    with tempfile.TemporaryDirectory() as tmp:
        assigned = assign_exercise(source, Path(tmp) / "dist")
        notebook.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(student_notebook(assigned.student_notebook, exercise), notebook)
        shutil.rmtree(tests_dir, ignore_errors=True)
        tests_dir.mkdir(parents=True)
        for test in sorted(assigned.public_tests.glob("*.py")):
            shutil.copyfile(test, tests_dir / test.name)
    return [notebook, *sorted(tests_dir.glob("*.py"))]


def stale_files(exercises: list[str]) -> list[str]:
    """Generated files that differ from what the sources generate now (missing, changed or extra)."""
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        fresh_root = Path(tmp)
        for exercise in exercises:
            for fresh in build(exercise, fresh_root):
                committed = ROOT / fresh.relative_to(fresh_root)
                if not committed.is_file() or not filecmp.cmp(fresh, committed, shallow=False):
                    problems.append(str(committed.relative_to(ROOT)))
            fresh_tests = {p.name for p in (fresh_root / "course_utils" / "exercise_tests" / exercise).glob("*")}
            for extra in sorted((ROOT / "course_utils" / "exercise_tests" / exercise).glob("*")):
                if extra.name not in fresh_tests and extra.name != "__pycache__":
                    problems.append(str(extra.relative_to(ROOT)))
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("exercises", nargs="*", help="exercise names (default: every source notebook)")
    parser.add_argument("--check", action="store_true", help="only report generated files that are stale")
    args = parser.parse_args(argv)
    available = sorted(p.stem for p in SOURCES.glob("*.ipynb"))
    exercises = args.exercises or available
    unknown = sorted(set(exercises) - set(available))
    if unknown:
        raise SystemExit(f"no source notebook for {', '.join(unknown)} in {SOURCES} (have: {', '.join(available)})")
    if args.check:
        stale = stale_files(exercises)
        for path in stale:
            print(f"{path}: stale, regenerate with: make exercises")
        return 1 if stale else 0
    for exercise in exercises:
        for path in build(exercise, ROOT):
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

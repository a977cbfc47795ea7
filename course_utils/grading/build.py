"""From an instructor source to what grading needs: its questions and its full tests.

An exercise is authored as one notebook in otter-grader's assign format,
``exercises/source/NN_slug.ipynb``: questions, solutions, public and hidden tests.
``otter assign`` splits it into the student notebook, the public tests (shipped with the
package) and the full tests; :func:`full_tests_dir` builds the last once per source content and
caches them under ``_build/exercises/``. :func:`read_questions` reads the questions' names,
points and answer templates straight from the source.

Example::

    source = source_notebook("00_warmup")
    [q.name for q in read_questions(source)]      # ["q1", ..., "q6"]
    sorted(p.name for p in full_tests_dir(source).glob("*.py"))
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]  # a clone of the repository (an editable install)
_CACHE_VERSION = "2"  # bump when the way tests are built changes
_BUILD_LOCK = threading.Lock()  # otter assign changes the working directory: one build at a time


@dataclass(frozen=True)
class Question:
    """One question of an exercise, read from its instructor source notebook."""

    name: str  # "q1"
    points: float | None  # as configured; auto-graded points are summed from the tests
    manual: bool  # marked by hand (an open question)
    defines: tuple[str, ...] = ()  # names the answer must define, e.g. ("softmax",)
    templates: tuple[str, ...] = ()  # the answer cells as the student receives them


def source_notebook(exercise: str) -> Path:
    """``exercises/source/<exercise>.ipynb`` in this clone of the repository, or in the working folder."""
    for root in (REPO_ROOT, Path.cwd()):
        path = root / "exercises" / "source" / f"{exercise}.ipynb"
        if path.is_file():
            return path
    raise FileNotFoundError(f"no instructor source for exercise {exercise!r} in {REPO_ROOT} or {Path.cwd()}: "
                            f"run from a clone of the course repository, or pass --source or --autograder")


def source_exercises() -> list[str]:
    folder = REPO_ROOT / "exercises" / "source"
    return sorted(p.stem for p in folder.glob("*.ipynb")) if folder.is_dir() else []


def cell_text(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _first_line_is(text: str, words: str) -> bool:
    return bool(re.match(r"#\s*" + r"\s+".join(words.split()) + r"\s*$", text.strip().split("\n")[0],
                         flags=re.IGNORECASE))


def read_questions(source: Path) -> list[Question]:
    """The questions of an instructor source notebook (otter assign format), in order."""
    import yaml
    from otter.assign.solutions import replace_solutions

    nb = json.loads(Path(source).read_text(encoding="utf-8"))
    questions, current, in_solution = [], None, False
    for cell in nb["cells"]:
        text, raw = cell_text(cell), cell["cell_type"] == "raw"
        if raw and _first_line_is(text, "BEGIN QUESTION"):
            config = yaml.safe_load(text.split("\n", 1)[1] if "\n" in text else "") or {}
            current = {"name": str(config["name"]), "points": config.get("points"),
                       "manual": bool(config.get("manual", False)), "defines": [], "templates": []}
        elif raw and _first_line_is(text, "END QUESTION") and current:
            questions.append(Question(current["name"], current["points"], current["manual"],
                                      tuple(current["defines"]), tuple(current["templates"])))
            current = None
        elif raw and _first_line_is(text, "BEGIN SOLUTION"):
            in_solution = True
        elif raw and _first_line_is(text, "END SOLUTION"):
            in_solution = False
        elif in_solution and current and cell["cell_type"] == "code":
            current["defines"] += top_level_names(text)
            current["templates"].append("\n".join(replace_solutions(text.split("\n"), "python")))
    return questions




def top_level_names(code: str) -> list[str]:
    """Names a cell defines at top level: functions, classes and assigned variables.

    A ``%time`` / ``%%time`` line counts as the statement it times. Example:
    ``top_level_names("%time x = f(1)\\ndef g(): pass")`` -> ``["x", "g"]``.
    """
    lines = []
    for line in code.split("\n"):
        if re.match(r"^\s*%%", line):  # a cell magic: the body below is the code
            continue
        line = re.sub(r"^(\s*)%(time|timeit|capture)\s+(-\S+\s+(\d+\s+)?)*", r"\1", line)
        lines.append("" if line.lstrip().startswith(("%", "!")) else line)
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return []
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                elements = target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]
                names += [t.id for t in elements if isinstance(t, ast.Name)]
    return names


@dataclass(frozen=True)
class AssignOutput:
    """What ``otter assign`` made from a source notebook (all paths inside ``out_dir``)."""

    student_notebook: Path  # solutions stripped, hidden tests removed
    public_tests: Path  # folder of qN.py with the public test cases only
    all_tests: Path  # folder of qN.py with public and hidden test cases
    solution_notebook: Path  # the notebook with the solutions, as otter's autograder keeps it


def assign_exercise(source: Path, out_dir: Path) -> AssignOutput:
    """Run ``otter assign`` on an instructor source notebook, writing into ``out_dir``."""
    import otter.assign

    source, out_dir = Path(source).resolve(), Path(out_dir).resolve()
    with _BUILD_LOCK:
        otter.assign.main(str(source), str(out_dir), no_run_tests=True, no_pdfs=True)
    return AssignOutput(out_dir / "student" / source.name, out_dir / "student" / "tests",
                        out_dir / "autograder" / "tests", out_dir / "autograder" / source.name)


def _cache_path(source: Path, kind: str, cache_dir: Path | None) -> Path:
    """Where the ``kind`` of ``source`` is cached, keyed by the source's contents and otter's version."""
    from importlib.metadata import version

    key = f"{version('otter-grader')}/{_CACHE_VERSION}".encode()
    digest = hashlib.sha256(Path(source).read_bytes() + key).hexdigest()[:16]
    return (Path(cache_dir) if cache_dir else _default_cache_dir()) / f"{Path(source).stem}-{digest}-{kind}"


def cached_questions(source: Path, cache_dir: Path | None = None) -> list[Question]:
    """:func:`read_questions`, cached as JSON beside the tests (reading needs otter, which is slow to import)."""
    cached = _cache_path(source, "questions.json", cache_dir)
    try:
        return [Question(q["name"], q["points"], q["manual"], tuple(q["defines"]), tuple(q["templates"]))
                for q in json.loads(cached.read_text(encoding="utf-8"))]
    except (OSError, ValueError, KeyError, TypeError):
        questions = read_questions(source)
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.part")
    partial.write_text(json.dumps([q.__dict__ for q in questions]), encoding="utf-8")
    os.replace(partial, cached)
    return questions


def full_tests_dir(source: Path, cache_dir: Path | None = None) -> Path:
    """The folder of full test files (public and hidden) of a source notebook, built once and cached.

    The cache (default ``_build/exercises/`` in the repository, else a temporary folder) is keyed
    by the source's contents and the otter version, so an edited source is rebuilt.
    """
    source = Path(source).resolve()
    cached = _cache_path(source, "tests", cache_dir)
    cache_dir = cached.parent
    if cached.is_dir():
        return cached
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        built = assign_exercise(source, Path(tmp) / "dist")
        partial = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".part-"))
        for path in built.all_tests.glob("*.py"):
            shutil.copyfile(path, partial / path.name)
        try:
            os.rename(partial, cached)  # atomic: parallel graders never see half a folder
        except OSError:  # another grader finished first
            shutil.rmtree(partial, ignore_errors=True)
    return cached


def tests_from_zip(zip_path: Path, out_dir: Path) -> Path:
    """The ``tests/*.py`` of an otter autograder zip, extracted into ``out_dir/tests``."""
    out = Path(out_dir) / "tests"
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path) as zf:
        for name in zf.namelist():
            if re.fullmatch(r"tests/(?!__)[^/]+\.py", name):
                (out / Path(name).name).write_bytes(zf.read(name))
    if not any(out.glob("*.py")):
        raise ValueError(f"autograder: no tests/*.py in {zip_path}")
    return out


def with_extra_tests(tests_dir: Path, extra_dir: Path, out_dir: Path) -> Path:
    """A folder with the exercise's test files and the instructor's own (``extra_dir/*.py``).

    Each extra file is graded as one more item named after its ``name``, e.g. ``q2_private``.
    """
    extra = sorted(Path(extra_dir).glob("*.py"))
    if not extra:
        raise ValueError(f"extra tests: no *.py test files in {extra_dir}")
    out = Path(out_dir) / "all_tests"
    shutil.copytree(tests_dir, out, dirs_exist_ok=True)
    for path in extra:
        if (out / path.name).exists():
            raise ValueError(f"extra tests: {path.name} would replace the exercise's own test file; "
                             f"rename it, e.g. {path.stem}_private.py")
        shutil.copyfile(path, out / path.name)
    return out


def _default_cache_dir() -> Path:
    if os.access(REPO_ROOT, os.W_OK) and (REPO_ROOT / "exercises").is_dir():
        return REPO_ROOT / "_build" / "exercises"
    return Path(tempfile.gettempdir()) / "course_utils_exercises"

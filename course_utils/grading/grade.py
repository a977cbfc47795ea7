"""Grade one submitted notebook, or a folder of them, in processes the caller never shares.

:func:`grade_submission` reads the notebook, finds its exercise and full tests, and starts the
worker (:mod:`course_utils.grading.worker`) in a session of its own; the worker starts the
kernel that runs the submission. The worker (and so the kernel) is stopped after
:func:`whole_submission_limit` seconds. :func:`grade_class` grades a folder into one CSV.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .build import (
    REPO_ROOT,
    Question,
    cached_questions,
    full_tests_dir,
    source_exercises,
    source_notebook,
    tests_from_zip,
    with_extra_tests,
)
from .isolation import kill_group
from .report import GradeReport, QuestionScore, num
from .selfcheck import EXERCISE_TESTS
from .submission import (
    UnusableSubmission,
    code_cells,
    exercise_of,
    manual_answers,
    metadata_exercise,
    read_submission,
    static_notes,
)
from .testfiles import load_tests

DEFAULT_TIMEOUT = 60  # seconds per cell and per call of the student's code
OUTPUT_LIMIT = 1_000_000  # bytes of output per cell before the report mentions it


def whole_submission_limit(timeout: float) -> float:
    """Seconds after which a submission is stopped (and scores zero): 10 timeouts and a minute."""
    return 10 * timeout + 60


def grade_submission(path: Path | str, *, exercise: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                     source: Path | None = None, autograder: Path | None = None,
                     extra_tests: Path | None = None) -> GradeReport:
    """Grade one submitted notebook: its cells run in a fresh kernel, its tests in the grader.

    ``exercise`` defaults to the notebook's metadata (or its file name); the tests come from
    ``autograder`` (an otter zip) or are built from ``source`` (default: the exercise's instructor
    source in this repository), plus the files in ``extra_tests``. ``timeout`` limits each cell
    and each call of the student's code, in seconds. Raises :class:`UnusableSubmission` (a
    one-line reason) for a file that is not a notebook; any notebook gets a report.

    Example: ``grade_submission("alice.ipynb").score`` -> ``7.0``
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    started = time.monotonic()
    path = Path(path)
    nb = read_submission(path)
    exercise = exercise or exercise_of(nb, path)
    if exercise and not re.fullmatch(r"\w[\w.-]*", exercise):
        raise UnusableSubmission(f"{path}: {exercise!r} is not an exercise name; pass --exercise, e.g. 00_warmup")
    if not exercise:
        raise UnusableSubmission(f"{path}: cannot tell which exercise it answers (no otter.assignment_name in its "
                                 f"metadata); pass --exercise, one of: {', '.join(source_exercises()) or 'none'}")
    notes = []
    if metadata_exercise(nb) not in (None, exercise):
        notes.append(f"the notebook's metadata says it answers {metadata_exercise(nb)}; graded as {exercise}")
    questions: list[Question] = []
    if autograder is None:
        source = Path(source) if source else source_notebook(exercise)
        questions = cached_questions(source)
    elif source:
        questions = cached_questions(Path(source))
    watched = _watched_files(source, extra_tests)
    before = _digests(watched)
    with tempfile.TemporaryDirectory(prefix="course_grade_") as tmp:
        job_dir = Path(tmp)
        tests_dir = tests_from_zip(Path(autograder), job_dir) if autograder else full_tests_dir(source)
        if extra_tests:
            tests_dir = with_extra_tests(tests_dir, Path(extra_tests), job_dir)
        points = {name: t.points for name, t in load_tests(tests_dir).items()}
        cells, cell_notes = code_cells(nb)
        notes += static_notes(nb, questions) + cell_notes
        worker_started = time.monotonic()
        result, stopped = _run_worker(job_dir, tests_dir, cells, timeout)
    after = _digests(watched)
    changed = [name for name in before if after.get(name) != before[name]]
    status = "graded"
    if result is None or result.get("stopped"):
        status = "stopped"
        notes.append(stopped or f"grading stopped: {result['stopped']}: scored 0")
        result = {"tests": {}, "cells": (result or {}).get("cells", []), "phases": (result or {}).get("phases", {})}
    notes += _cell_notes(result, timeout)
    if changed:
        notes.append(f"the submission changed files the grader reads ({', '.join(changed)}); this grade used "
                     f"them as they were before it ran: restore them (git checkout) before grading more")
    scores = []
    for name, possible in points.items():
        got = result["tests"].get(name)
        failed = got["failed"] if got else [{"test": name, "hidden": False, "message": "not graded"}]
        scores.append(QuestionScore(name, float(got["score"]) if got else 0.0, possible, failed=failed))
    answers = manual_answers(nb, questions)
    for q in questions:
        if q.manual:
            scores.append(QuestionScore(q.name, None, float(q.points or 0), manual=True, answer=answers.get(q.name)))
    order = {q.name: i for i, q in enumerate(questions)}
    scores.sort(key=lambda s: (order.get(s.name, len(order)), s.name))
    phases = {"before_worker": round(worker_started - started, 2), **result.get("phases", {})}
    return GradeReport(str(path), exercise, status, scores, notes, time.monotonic() - started, phases)


def _run_worker(job_dir: Path, tests_dir: Path, cells: list[dict], timeout: float) -> tuple[dict | None, str]:
    """Run the worker; its summary, or None and why it was stopped."""
    work, io = job_dir / "kernel", job_dir / "io"
    work.mkdir()
    io.mkdir()
    kernel_env = {**os.environ, "TMPDIR": str(work), "MPLBACKEND": "Agg", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
                  "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    job = {"tests_dir": str(tests_dir), "cells": cells, "timeout": timeout, "work_dir": str(work),
           "io_dir": str(io), "env": kernel_env, "kernel_pid": str(job_dir / "kernel.pid")}
    (job_dir / "job.json").write_text(json.dumps(job))
    limit = whole_submission_limit(timeout)
    worker = Path(__file__).with_name("worker.py")  # as a script: see its first lines
    proc = subprocess.Popen([sys.executable, str(worker), str(job_dir / "job.json")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=kernel_env, cwd=job_dir,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        _kill_kernel(job_dir / "kernel.pid")
        proc.communicate()
        return None, f"grading stopped after {num(limit)} s, the limit for a whole submission: scored 0"
    _kill_kernel(job_dir / "kernel.pid")
    lines = [line for line in out.decode(errors="replace").splitlines() if line.strip()]
    if proc.returncode == 0 and lines:
        try:
            return json.loads(lines[-1]), ""
        except ValueError:
            pass
    tail = [line for line in err.decode(errors="replace").splitlines() if line.strip()][-1:]
    why = tail[0][:300] if tail else f"exit status {proc.returncode}"
    return None, f"grading failed: {why}: scored 0"


def _kill_kernel(pid_file: Path) -> None:
    try:
        kill_group(int(pid_file.read_text()))
    except (FileNotFoundError, ValueError):
        pass


def _cell_notes(result: dict, timeout: float) -> list[str]:
    notes = []
    for cell in result.get("cells", []):
        index = cell["cell"]
        if cell.get("timed_out"):
            notes.append(f"cell {index}: stopped after {num(timeout)} s (an infinite loop?)")
        elif cell.get("error"):
            notes.append(f"cell {index}: raised {cell['error']}")
        if cell.get("output_bytes", 0) > OUTPUT_LIMIT:
            notes.append(f"cell {index}: printed {cell['output_bytes'] / 1e6:.1f} MB (output is not kept)")
    return notes + result.get("notes", [])


def _watched_files(source: Path | None, extra: Path | None) -> list[Path]:
    """Files the grader reads that a submission running as the same user could rewrite."""
    files = [Path(source)] if source else []
    files += sorted(EXERCISE_TESTS.glob("*/*.py"))
    files += sorted(Path(extra).glob("*.py")) if extra else []
    return files


def _digests(paths: list[Path]) -> dict[str, str]:
    out = {}
    for p in paths:
        try:
            out[str(p)] = hashlib.sha256(Path(p).read_bytes()).hexdigest()
        except OSError:
            out[str(p)] = "missing"
    return out


def grade_class(folder: Path | str, csv_path: Path | str, *, jobs: int = 1, **options) -> list[GradeReport | str]:
    """Grade every ``*.ipynb`` in ``folder`` and write one CSV row per file to ``csv_path``.

    Columns: submission, exercise, status, one per question (empty for those marked by hand),
    total, possible, seconds, notes. A file that is not a notebook gets a row with its reason.
    ``options`` go to :func:`grade_submission` (``exercise``, ``timeout``, ...).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"folder must be a directory of submitted notebooks, got {folder}")
    paths = sorted(folder.glob("*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no *.ipynb files in {folder}")
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")

    def one(path: Path) -> GradeReport | str:
        try:
            report = grade_submission(path, **options)
            print(f"{path.name}: {num(report.score)} / {num(report.possible)} "
                  f"({report.status}, {report.seconds:.0f} s)", flush=True)
            return report
        except (UnusableSubmission, FileNotFoundError) as error:
            print(f"{path.name}: unusable: {error}", flush=True)
            return str(error)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        reports = list(pool.map(one, paths))
    questions = list(dict.fromkeys(q.name for r in reports if isinstance(r, GradeReport) for q in r.questions))
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["submission", "exercise", "status", *questions, "total", "possible", "seconds", "notes"])
        for path, report in zip(paths, reports):
            if isinstance(report, str):
                writer.writerow([path.name, "", "unusable", *[""] * len(questions), 0, "", "", report])
                continue
            by_name = {q.name: q for q in report.questions}
            row = ["" if name not in by_name or by_name[name].manual else num(by_name[name].score or 0)
                   for name in questions]
            writer.writerow([path.name, report.exercise, report.status, *row, num(report.score),
                             num(report.possible), f"{report.seconds:.1f}", " | ".join(report.notes)])
    return reports

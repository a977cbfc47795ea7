"""``python -m course_utils grade`` and ``grade-class``: the instructor's commands.

    python -m course_utils grade alice.ipynb                       # one submission
    python -m course_utils grade alice.ipynb --json --timeout 30
    python -m course_utils grade-class handed_in/ --csv grades.csv  # a folder, one CSV
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import sys
from pathlib import Path

from .grade import DEFAULT_TIMEOUT, grade_class, grade_submission
from .submission import UnusableSubmission


def add_grade_commands(subparsers) -> None:
    """Add ``grade`` and ``grade-class`` to ``python -m course_utils``."""
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--exercise", help="exercise name, e.g. 00_warmup (default: from the notebook's metadata)")
        p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                       help=f"seconds allowed per cell and per call of the student's code (default "
                            f"{DEFAULT_TIMEOUT}); a whole submission is stopped after 10 times this plus 60 s")
        p.add_argument("--source", type=Path,
                       help="instructor source notebook (default: exercises/source/<exercise>.ipynb)")
        p.add_argument("--autograder", type=Path, help="an otter autograder zip whose tests/ to grade with")
        p.add_argument("--extra-tests", type=Path, help="folder of your own test files (*.py) to grade as well")

    grade = subparsers.add_parser("grade", help="grade one submitted exercise notebook (per-question points)")
    grade.add_argument("submission", type=Path, help="the submitted .ipynb")
    grade.add_argument("--json", action="store_true", help="print the report as JSON (with the grading time)")
    common(grade)
    whole = subparsers.add_parser("grade-class", help="grade a folder of submitted notebooks into one CSV")
    whole.add_argument("folder", type=Path, help="folder of submitted .ipynb files")
    whole.add_argument("--csv", type=Path, required=True, help="where to write the grades")
    whole.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default 1)")
    common(whole)


# What grading imports beyond the run-time dependencies: (import name, distribution).
GRADING_TOOLS = (("otter", "otter-grader"), ("jupyter_client", "jupyter_client"), ("ipykernel", "ipykernel"),
                 ("yaml", "pyyaml"))
# otter-grader 7.0.0 pins wrapt<2 and ipywidgets>=8.1.5, which would replace Colab's wrapt 2.x and
# ipywidgets 7.7.1; the grader needs neither pin, so otter goes in without its dependencies and the
# `grading` extra installs the ones its import needs (see pyproject.toml).
GRADING_INSTALL = 'pip install "course-utils[grading]" && pip install --no-deps otter-grader==7.0.0'


def missing_grading_tools() -> list[str]:
    """Distributions that grading needs and this environment lacks, e.g. ``["otter-grader"]``."""
    missing = []
    for module, distribution in GRADING_TOOLS:
        try:
            found = importlib.util.find_spec(module) is not None
            importlib.metadata.version(distribution)
        except (ImportError, ValueError, importlib.metadata.PackageNotFoundError):
            found = False
        if not found:
            missing.append(distribution)
    return missing


def main_grade(args: argparse.Namespace) -> int:
    """Run ``grade`` or ``grade-class``: exit 0 for any gradable notebook, 2 for unusable input."""
    missing = missing_grading_tools()
    if missing:  # one line, not a traceback from deep inside the build
        print(f"{args.command}: error: grading needs {', '.join(missing)}, which this environment lacks; "
              f"install the grading tools with: {GRADING_INSTALL}", file=sys.stderr)
        return 2
    options = {"exercise": args.exercise, "timeout": args.timeout, "source": args.source,
               "autograder": args.autograder, "extra_tests": args.extra_tests}
    try:
        if args.command == "grade-class":
            grade_class(args.folder, args.csv, jobs=args.jobs, **options)
            print(f"wrote {args.csv}")
            return 0
        report = grade_submission(args.submission, **options)
    except (UnusableSubmission, FileNotFoundError, ValueError) as error:
        if getattr(args, "json", False):
            print(json.dumps({"submission": str(getattr(args, "submission", "")), "error": str(error)}))
        print(f"{args.command}: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict(), indent=1, ensure_ascii=False) if args.json else report.format())
    return 0

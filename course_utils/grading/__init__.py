"""Graded exercises: the student's self-checks, and grading that the submission cannot reach.

In an exercise notebook (the setup cell does this for you)::

    grader = course_utils.grading.notebook_grader("00_warmup")
    grader.check("q1")          # the public tests of question 1, with what failed
    grader.check_all()          # every public test

For an instructor, from a clone of the repository::

    python -m course_utils grade alice.ipynb                       # one submission
    python -m course_utils grade alice.ipynb --json --timeout 30
    python -m course_utils grade-class handed_in/ --csv grades.csv  # a folder, one CSV

How grading works: the submission's cells run, as written, in a fresh Jupyter kernel; the
checks (inputs, reference values, comparisons) run in another process, the worker, which the
submission never ran in. A check calls a student's function through a stand-in: the arguments
go to the kernel, the function runs there, and the answer comes back as plain values (numbers,
strings, plain tensors and arrays) or is refused with a message. So rebinding a library function
in the notebook, or returning an object whose comparisons lie, changes nothing the checks use.
What this is not: an operating-system sandbox (see ``book/exercises.md``).

One job per module:

========================  ====================================================================
``selfcheck``             the student's ``grader.check`` (public tests, in the notebook)
``checks``                what test files use: ``evaluate``, ``refusing``, ``number``
``plain``                 answers as plain values: out of the student's process, into the checks
``agent``                 the student's side: call a function, send the answer back
``kernels``               the checks' side: names, calls, expressions, as plain values
``testfiles``             reading otter-format test files and running their cases
``build``                 instructor sources: questions, ``otter assign``, cached full tests
``submission``            reading a handed-in notebook: exercise, cells, missing answers
``isolation``             the submission's own kernel: run cells with limits, serve requests
``worker``                the checking process of one submission
``grade``                 one submission or a folder: processes, limits, the report
``report`` / ``cli``      the report's text and JSON; the command line
========================  ====================================================================
"""

from __future__ import annotations

from .build import (
    AssignOutput,
    Question,
    assign_exercise,
    full_tests_dir,
    read_questions,
    source_notebook,
)
from .grade import DEFAULT_TIMEOUT, grade_class, grade_submission, whole_submission_limit
from .report import GradeReport, QuestionScore
from .selfcheck import Grader, exercise_tests_dir, known_exercises, notebook_grader
from .submission import SETUP_TEMPLATE, UnusableSubmission, read_submission

__all__ = [
    "AssignOutput", "DEFAULT_TIMEOUT", "GradeReport", "Grader", "Question", "QuestionScore", "SETUP_TEMPLATE",
    "UnusableSubmission", "assign_exercise", "exercise_tests_dir", "full_tests_dir", "grade_class",
    "grade_submission", "known_exercises", "notebook_grader", "read_questions", "read_submission",
    "source_notebook", "whole_submission_limit",
]

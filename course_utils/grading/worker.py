"""The checking process of one submission: ``python course_utils/grading/worker.py JOB.json``.

Started by :func:`course_utils.grading.grade.grade_submission`, in a session of its own. In
order, it

1. reads the job and every test file into memory (before any of the submission's code runs,
   so changing the files later changes nothing);
2. starts a fresh kernel in an empty folder and runs the submission's code cells there, each
   with a time limit (:mod:`course_utils.grading.isolation`);
3. runs every test case here, in this process: inputs and reference values are computed here,
   the student's functions run in the kernel, and their answers come back as plain values;
4. prints one JSON line with the results on its standard output (the kernel's own output goes
   to a log file, so nothing the submission prints can pass for a result).
"""

from __future__ import annotations

import importlib
import json
import sys
import threading
import time
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # Run as a script by grade.py: make `course_utils` a bare package, so that importing the
    # grading modules below does not run course_utils/__init__.py, which imports torch. torch is
    # imported in a thread instead, while the kernel starts (both take seconds).
    import types

    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        del sys.path[0]  # this folder is not a place to import from (its kernels.py is not `kernels`)
    _package = types.ModuleType("course_utils")
    _package.__path__ = [str(Path(__file__).resolve().parents[1])]
    sys.modules["course_utils"] = _package
    __package__ = "course_utils.grading"

from .isolation import PRELUDE, JupyterKernel, kill_group  # noqa: E402
from .kernels import KernelLost  # noqa: E402
from .testfiles import load_tests, run_test_file  # noqa: E402

if __name__ == "__main__":
    __package__ = None  # done with relative imports; libraries that look at __main__ expect a script

SETUP_CELL_TIMEOUT = 120  # the setup cell imports torch: give it time on a slow machine


def grade_job(job: dict) -> dict:
    """Run the cells of ``job`` in a kernel, then its tests here; the summary as a dict."""
    clock = time.monotonic()
    tests = load_tests(Path(job["tests_dir"]))
    timeout = float(job["timeout"])
    summary: dict = {"tests": {}, "cells": [], "notes": [], "stopped": None, "phases": {}}
    threading.Thread(target=importlib.import_module, args=("torch",), daemon=True).start()
    kernel = JupyterKernel(Path(job["work_dir"]), Path(job["io_dir"]), job["env"], request_timeout=timeout)
    Path(job["kernel_pid"]).write_text(str(kernel.pid or ""))

    def phase(name: str) -> None:
        nonlocal clock
        summary["phases"][name] = round(time.monotonic() - clock, 2)
        clock = time.monotonic()

    phase("kernel_start")
    try:
        prelude = kernel.run_cell(PRELUDE, SETUP_CELL_TIMEOUT, silent=True)
        if prelude.error:
            summary["notes"].append(f"the grader's helper did not start in the kernel: {prelude.error}")
        phase("kernel_prelude")
        for cell in job["cells"]:
            limit = max(timeout, SETUP_CELL_TIMEOUT) if cell["setup"] else timeout
            started = time.monotonic()
            outcome = kernel.run_cell(cell["source"], limit)
            summary["cells"].append({"cell": cell["index"], "error": outcome.error,
                                     "timed_out": outcome.timed_out, "output_bytes": outcome.output_bytes,
                                     "seconds": round(time.monotonic() - started, 2)})
        phase("cells")
        for name, test in tests.items():
            result = run_test_file(test, kernel)
            summary["tests"][name] = {
                "score": result.score, "possible": result.possible,
                "failed": [{"test": c.name, "hidden": c.hidden, "message": c.message[:400]}
                           for c in result.failed]}
        phase("tests")
    except KernelLost as error:
        summary["stopped"] = str(error)
    finally:
        kernel.shutdown()
        kill_group(kernel.pid)
    return summary


def main(job_file: str) -> int:
    job = json.loads(Path(job_file).read_text())
    summary = grade_job(job)
    sys.stdout.write("\n" + json.dumps(summary) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

"""The submission's own process: a fresh Jupyter kernel that runs its cells and answers requests.

:class:`JupyterKernel` starts a kernel (in a folder of its own, its output kept out of the
grader's), runs the submission's code cells one by one with a time limit each, counting but not
keeping their output, and then serves the checks' requests
(:class:`~course_utils.grading.kernels.Kernel`) through small files: the checking process writes
a pickled request, the kernel's agent writes the answer as JSON, which is read back as plain
values only.

A cell or a request that runs past its limit is interrupted; a kernel that does not come back
within :data:`GRACE` seconds after that, or that dies, raises
:class:`~course_utils.grading.kernels.KernelLost`.
"""

from __future__ import annotations

import itertools
import json
import os
import pickle
import queue
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from .kernels import AnswerError, Kernel, KernelLost

GRACE = 5.0  # seconds a kernel has to stop after an interrupt
MAX_ANSWER_BYTES = 300_000_000

# Run before the submission's first cell: the agent keeps its own references from here on.
PRELUDE = """\
import course_utils.grading.agent as _course_grading_agent
_course_grading_answer = _course_grading_agent.install(get_ipython().user_ns)
del _course_grading_agent
"""


@dataclass
class CellOutcome:
    error: str | None = None  # "ValueError: ..." if the cell raised
    timed_out: bool = False
    output_bytes: int = 0


class JupyterKernel(Kernel):
    """A kernel started in ``work_dir`` (its current folder) that answers over files in ``io_dir``."""

    def __init__(self, work_dir: Path, io_dir: Path, env: dict, request_timeout: float):
        from jupyter_client import KernelManager

        self.io_dir, self.request_timeout = Path(io_dir), request_timeout
        self._count = itertools.count()
        self.km = KernelManager(kernel_name="python3")
        self._log = open(Path(io_dir) / "kernel.log", "wb")  # noqa: SIM115  (open for the kernel's lifetime)
        self.km.start_kernel(cwd=str(work_dir), env=env, stdout=self._log, stderr=self._log)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)

    @property
    def pid(self) -> int | None:
        return getattr(getattr(self.km, "provisioner", None), "pid", None)

    def run_cell(self, code: str, timeout: float, *, silent: bool = False) -> CellOutcome:
        """Run ``code`` as a notebook cell; stop it after ``timeout`` seconds (KernelLost if it won't)."""
        msg_id = self.kc.execute(code, silent=silent, store_history=not silent, allow_stdin=False)
        outcome, deadline, interrupted = CellOutcome(), time.monotonic() + timeout, False
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                if interrupted:
                    raise KernelLost(f"the kernel ignored an interrupt for {GRACE:g} s")
                self.km.interrupt_kernel()
                outcome.timed_out, interrupted = True, True
                deadline = time.monotonic() + GRACE
                continue
            try:
                msg = self.kc.get_iopub_msg(timeout=min(left, 1.0))
            except queue.Empty:
                if not self.km.is_alive():
                    raise KernelLost("the kernel died (the submission exited Python or ran out of memory)") from None
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind in ("stream", "display_data", "execute_result", "error", "update_display_data"):
                outcome.output_bytes += len(json.dumps(content, default=str))
            if kind == "error":
                outcome.error = f"{content.get('ename')}: {' '.join(str(content.get('evalue', '')).split())[:160]}"
            elif kind == "status" and content.get("execution_state") == "idle":
                return outcome

    def request(self, request: dict) -> dict:
        n = next(self._count)
        req, resp = self.io_dir / f"request-{n}.pkl", self.io_dir / f"answer-{n}.json"
        req.write_bytes(pickle.dumps(request))
        outcome = self.run_cell(f"_course_grading_answer({str(req)!r}, {str(resp)!r})",
                                self.request_timeout, silent=True)
        if outcome.timed_out:
            raise AnswerError(f"{_what(request)} ran longer than {self.request_timeout:g} s "
                              f"(an infinite loop?) and was stopped")
        try:
            if resp.stat().st_size > MAX_ANSWER_BYTES:
                raise AnswerError(f"{_what(request)}: the answer is too big to check")
            return json.loads(resp.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            why = outcome.error or "no answer came back"
            return {"status": "error", "message": f"{_what(request)}: {why} (was the grader's helper removed?)"}
        finally:
            for path in (req, resp):
                path.unlink(missing_ok=True)

    def shutdown(self) -> None:
        """Stop the kernel and everything it started (its process group)."""
        pid = self.pid
        try:
            self.kc.stop_channels()
            self.km.shutdown_kernel(now=True)
        except Exception:  # noqa: BLE001  (a dead kernel is what we want)
            pass
        kill_group(pid)
        self._log.close()


def _what(request: dict) -> str:
    return f"{request['name']}(...)" if request.get("op") == "call" else "the checked code"


def kill_group(pid: int | None) -> None:
    """SIGKILL the process group led by ``pid`` (jupyter starts kernels in a session of their own)."""
    if not pid:
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass

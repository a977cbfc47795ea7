"""Check the code paths only a GPU takes, in one command, on a borrowed CUDA machine with no network.

    python tools/gpu_check.py                       # make gpu-check
    python tools/gpu_check.py chapters/07_*.ipynb   # some notebooks only

1. ``pytest tests/gpu``: fp16 with loss scaling, bf16, out-of-memory back-off, resume and the chapter
   helpers on CUDA, and chapter 8's packaged decoder on the GPU.
2. Every chapter notebook (and the book's notebook pages) top to bottom under
   ``COURSE_PROFILE=gpu-check``: the smoke profile's sizes on the GPU, with the packaged models
   standing in for the Hub's (``HF_HUB_OFFLINE=1``), so each chapter's CUDA branches, placement and
   mixed precision run in minutes. Stored outputs are left alone; run time, peak GPU memory and the
   metrics go to ``book/results.json`` under the profile ``gpu-check`` (and book/status.md).

Budget: 10 minutes on one H100 (``BUDGET_S``); the report says how long each part took. Without a
CUDA GPU it prints one line and exits 0, so it can sit in any script.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUDGET_S = 600


def cuda_device() -> str | None:
    """The GPU's name, or None where torch sees no CUDA device."""
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def default_notebooks() -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for p in [*(ROOT / "chapters").glob("*.ipynb"),
                                                     *(ROOT / "book").glob("*.ipynb")])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="default: every chapter and book notebook")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per notebook cell")
    args = parser.parse_args(argv)
    gpu = cuda_device()
    if gpu is None:
        print("make gpu-check: skipped, no CUDA GPU here (torch.cuda.is_available() is False)")
        return 0
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env.setdefault("COURSE_DATA", str((ROOT.parent / "shared" / "data").resolve()))
    print(f"gpu-check on {gpu}: tests/gpu, then the notebooks under COURSE_PROFILE=gpu-check", flush=True)
    t0 = time.perf_counter()
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/gpu"],
                           cwd=ROOT, env=env)
    tests_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    failed = []
    for notebook in args.notebooks or default_notebooks():  # one process each: a failure stops no other
        run = subprocess.run([sys.executable, "tools/notebooks.py", "execute", "--profile", "gpu-check",
                              "--timeout", str(args.timeout), notebook], cwd=ROOT, env=env)
        if run.returncode:
            failed.append(notebook)
    notebooks_s = time.perf_counter() - t1
    subprocess.run([sys.executable, "tools/status.py"], cwd=ROOT, env=env, check=False)
    total = time.perf_counter() - t0
    ok = tests.returncode == 0 and not failed
    print(f"gpu-check on {gpu}: {'passed' if ok else 'FAILED'}; tests/gpu {tests_s:.0f} s "
          f"(exit {tests.returncode}), notebooks {notebooks_s:.0f} s "
          f"({'all ran' if not failed else 'failed: ' + ', '.join(failed)}), "
          f"total {total:.0f} s" + (f", OVER the {BUDGET_S} s budget" if total > BUDGET_S else ""))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

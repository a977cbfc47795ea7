"""Measured outcomes of a notebook run: ``book/results.json`` and the notebook's side of it.

A notebook reports its key figures with ``record_metric("bilstm_glove.val_accuracy", acc)``.
When the notebook is run by ``make execute`` (``tools/notebooks.py``), those figures, the run
time and the peak memory land in ``book/results.json`` under chapter → profile. Anywhere
else (CI's smoke run, a reader on Colab) they are only kept in memory, so an experiment
never overwrites the reference figures. Never hand-edit a figure into the file.
"""

from __future__ import annotations

import atexit
import json
import os
from pathlib import Path

SINK_ENV = "COURSE_RESULTS_SINK"
METRICS: dict[str, float] = {}


def record_metric(name: str, value: float) -> float:
    """Remember ``name`` (``model.metric``) = ``value`` for this run and return the value."""
    if "." not in name:
        raise ValueError(f"metric names are 'model.metric', e.g. 'bilstm.val_accuracy'; got {name!r}")
    METRICS[name] = float(value)
    _write_sink()
    return value


def _write_sink(extra: dict | None = None) -> None:
    sink = os.environ.get(SINK_ENV)
    if not sink:
        return
    from .device import memory_report

    payload = {"metrics": METRICS, "memory": memory_report(), **(extra or {})}
    Path(sink).write_text(json.dumps(payload, indent=1))


def start_sink() -> None:
    """Called by ``setup()``: write the peak memory once more when the kernel exits."""
    if os.environ.get(SINK_ENV):
        _write_sink()
        atexit.register(_write_sink)


# A copy of book/results.json ships inside the package (tools/notebooks.py writes both), so a
# notebook installed on Colab from a release can still compare itself with the reference runs.
PACKAGED_COPY = Path(__file__).resolve().parent / "reference_results.json"


def load_results(path: str | os.PathLike | None = None) -> dict:
    """The results file as a dict: chapter slug → profile → record (``{}`` if there is none yet)."""
    path = Path(path) if path else default_results_path()
    return json.loads(path.read_text()) if path.exists() else {}


def default_results_path() -> Path:
    """``$COURSE_RESULTS`` if set, else ``book/results.json`` of this checkout, else the packaged copy."""
    if os.environ.get("COURSE_RESULTS"):
        return Path(os.environ["COURSE_RESULTS"])
    checkout = Path(__file__).resolve().parent.parent / "book" / "results.json"
    return checkout if checkout.exists() else PACKAGED_COPY


def metric(results: dict, chapter: str, name: str, profiles=("gpu", "cpu")):
    """``(value, profile)`` of metric ``name`` recorded by ``chapter``, preferring the first profile
    that has it; ``(None, None)`` when no run recorded it yet."""
    for profile in profiles:
        value = results.get(chapter, {}).get(profile, {}).get("metrics", {}).get(name)
        if value is not None:
            return value, profile
    return None, None


BENCHMARKS_KEY = "benchmarks"  # not a chapter: ``make bench`` keeps its figures under this key


def record_benchmark(name: str, record: dict, path: str | os.PathLike | None = None) -> Path:
    """Store the figures of benchmark ``name`` under ``"benchmarks"`` in the results file; return its path.

    Written by ``make bench`` (``benchmarks/*.py --record``) for chapter 10 to read with
    :func:`benchmark`; the rest of the file (the chapters' runs) is kept as it is. When the file is
    this checkout's ``book/results.json``, the packaged copy is rewritten too, so the two stay equal.

    Example::

        record_benchmark("fit_overhead", {"date": "2026-12-02", "fit_vs_trainer": 0.87})
    """
    path = Path(path) if path else default_results_path()
    results = load_results(path)
    results.setdefault(BENCHMARKS_KEY, {})[name] = record
    text = json.dumps(results, indent=2, sort_keys=True) + "\n"
    checkout = Path(__file__).resolve().parent.parent / "book" / "results.json"
    targets = [path, PACKAGED_COPY] if path.resolve() == checkout.resolve() else [path]
    for target in targets:
        partial = target.with_suffix(".tmp")
        partial.write_text(text)
        os.replace(partial, target)
    return path


def benchmark(results: dict, name: str) -> dict | None:
    """The last recorded figures of benchmark ``name`` (``None`` before ``make bench`` ran)."""
    return results.get(BENCHMARKS_KEY, {}).get(name)

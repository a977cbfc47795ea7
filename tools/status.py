"""Write ``book/status.md``: the last recorded run of every chapter under each profile.

    python tools/status.py           # regenerate book/status.md (make status; make execute does it too)
    python tools/status.py --check   # exit 1 if book/status.md is not what book/results.json gives

The page is generated, never hand-edited: its rows come from ``book/results.json`` (written by
``tools/notebooks.py execute``), one per chapter and profile, with the date, hardware, run time,
peak memory and the metrics the notebook recorded with ``course_utils.record_metric``. Chapters are
those in ``_toc.yml`` (linked to their page) and any other the results file names.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from notebooks import _duration  # noqa: E402  (the same durations as the chapters' "Runs in" lines)
from toc import toc_files  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "book" / "results.json"
STATUS = ROOT / "book" / "status.md"
PROFILES = ("smoke", "cpu", "gpu")  # always shown; a check run (gpu-check) adds its row where it ran


def profiles_of(runs: dict) -> tuple[str, ...]:
    """The three profiles, then any other the chapter's records name (``gpu-check``), sorted."""
    return PROFILES + tuple(sorted(set(runs) - set(PROFILES)))

HEADER = """\
# Status of the chapters

The last recorded run of every chapter under each profile (see {doc}`setup`): when it ran, on
what, how long it took, its peak memory, and the figures the notebook recorded with
`course_utils.record_metric`. The published pages show the outputs of the `cpu` or `gpu` run;
`smoke` is the quick run our CI repeats.

This page is generated from `book/results.json` by `python tools/status.py` (run by
`make execute`); do not edit it by hand. A test fails when it differs from what the results
file gives.
"""


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _memory(record: dict) -> str:
    peak = record.get("peak_memory_mb")
    if not peak:
        return "not measured"
    where = "GPU" if "gpu_peak_mb" in record.get("memory", {}) else "host"
    return f"{peak:,.0f} MiB ({where})"


def _chapter(slug: str, runs: dict, linked: bool, path: str | None = None) -> str:
    page = f"Page: {{doc}}`../{path or 'chapters/' + slug}`" if linked else "Not in the book yet."
    lines = [f"## `{slug}`", "", page, "", "| Profile | Date | Hardware | Run time | Peak memory |",
             "| --- | --- | --- | --- | --- |"]
    profiles = profiles_of(runs)
    for profile in profiles:
        record = runs.get(profile)
        if record is None:
            lines.append(f"| {profile} | not measured yet | | | |")
        else:
            cells = [record.get("date", "?"), record.get("hardware", "?"), _duration(record["runtime_s"]),
                     _memory(record)]
            lines.append(f"| {profile} | " + " | ".join(_cell(c) for c in cells) + " |")
    names = sorted({name for record in runs.values() for name in (record.get("metrics") or {})})
    lines.append("")
    if not names:
        lines.append("No metrics recorded yet.")
    else:
        lines += ["| Metric | " + " | ".join(profiles) + " |", "| --- |" + " ---: |" * len(profiles)]
        for name in names:
            values = [runs.get(p, {}).get("metrics", {}).get(name) for p in profiles]
            lines.append(f"| `{name}` | " + " | ".join("" if v is None else f"{v:.4g}" for v in values) + " |")
    return "\n".join(lines) + "\n"


def render(results: dict, chapters: list[str], in_toc: set[str], paths: dict[str, str] | None = None) -> str:
    """The Markdown of the status page for ``chapters`` (slugs, in order). ``paths`` gives the page of a
    notebook outside ``chapters/`` (an appendix: ``{"maths_refresher": "book/maths_refresher"}``)."""
    paths = paths or {}
    return "\n".join([HEADER] + [_chapter(slug, results.get(slug, {}), slug in in_toc, paths.get(slug))
                                 for slug in chapters])


def toc_chapters(toc_path: Path) -> set[str]:
    """Slugs of the ``chapters/`` entries in ``_toc.yml``."""
    return {Path(name).stem for name in toc_files(toc_path) if name.startswith("chapters/")}


def toc_appendix_notebooks(toc_path: Path) -> dict[str, str]:
    """Slug → page of the notebook pages in ``_toc.yml`` outside ``chapters/`` (e.g. the maths refresher)."""
    root = Path(toc_path).parent
    return {Path(name).stem: name for name in toc_files(toc_path)
            if not name.startswith("chapters/") and (root / f"{name}.ipynb").exists()}


def expected(root: Path = ROOT) -> str:
    """What ``book/status.md`` must hold, from the results file and the table of contents."""
    results_path = root / "book" / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    appendices = toc_appendix_notebooks(root / "_toc.yml")
    in_toc = toc_chapters(root / "_toc.yml") | set(appendices)
    chapters = set(results) - {"benchmarks"}  # make bench's figures (course_utils.results), not a chapter
    return render(results, sorted(in_toc | chapters), in_toc, appendices)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if the page is out of date")
    parser.add_argument("--output", type=Path, default=STATUS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    text = expected()
    current = args.output.read_text() if args.output.exists() else None
    if args.check:
        if current != text:
            print(f"{args.output} is out of date with book/results.json: run python tools/status.py")
            return 1
        print(f"{args.output} is up to date")
    elif current != text:
        args.output.write_text(text)
        print(f"{args.output} written")
    return 0


if __name__ == "__main__":
    sys.exit(main())

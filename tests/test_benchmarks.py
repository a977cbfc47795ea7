"""What ``make bench`` relies on: the precisions it compares and where its figures are stored."""

import json
import sys
from pathlib import Path

import pytest
import torch

from course_utils import device as device_module
from course_utils.results import benchmark, load_results, record_benchmark

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tools"))

import _common  # noqa: E402
import status  # noqa: E402

NO_BF16 = {"amx_bf16": False, "amx_tile": False, "avx512_bf16": False, "avx512_f": True, "avx2": True, "bf16": False}
AMX = {**NO_BF16, "amx_bf16": True, "amx_tile": True, "avx512_bf16": True}


@pytest.mark.parametrize(("flags", "both", "best"), [
    (AMX, [torch.float32, torch.bfloat16], [torch.bfloat16]),
    (NO_BF16, [torch.float32], [torch.float32]),
])
def test_benchmarks_compare_fp32_with_the_hardware_choice(monkeypatch, flags, both, best):
    monkeypatch.delenv(device_module.CPU_BF16_ENV, raising=False)
    monkeypatch.setattr(device_module, "cpu_features", lambda: flags)
    cpu = torch.device("cpu")
    assert _common.precisions(cpu, "both") == both and _common.precisions(cpu, "best") == best
    assert _common.precisions(cpu, "bf16") == [torch.bfloat16]


def test_a_recorded_benchmark_keeps_the_chapters_and_stays_off_the_status_page(tmp_path):
    path = tmp_path / "book" / "results.json"
    path.parent.mkdir()
    chapter = {"cpu": {"runtime_s": 60.0, "date": "2026-12-01", "hardware": "2 CPU cores", "metrics": {"a.b": 1.0}}}
    path.write_text(json.dumps({"00_environment": chapter}))
    record_benchmark("bert_finetune", {"best": {"precision": "bfloat16"}, "precisions": {}}, path)
    record_benchmark("fit_overhead", {"best": "float32"}, path)
    results = load_results(path)
    assert results["00_environment"] == chapter
    assert benchmark(results, "bert_finetune")["best"]["precision"] == "bfloat16"
    assert benchmark(results, "fit_overhead") == {"best": "float32"} and benchmark(results, "missing") is None
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: index\nchapters:\n- file: chapters/00_environment\n")
    page = status.expected(tmp_path)
    assert "## `00_environment`" in page and "benchmarks" not in page

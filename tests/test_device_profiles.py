"""Profiles, device choice and the mixed-precision table."""

import json

import pytest
import torch

import course_utils
from course_utils import device as device_module
from course_utils.device import amp_dtype, describe_hardware, is_out_of_memory, memory_report
from course_utils.profiles import get_profile


@pytest.mark.parametrize(
    ("device", "capability", "dtype", "scaler"),
    [
        ("mps", None, torch.float32, False),
        ("cuda", (6, 0), torch.float32, False),  # P100: no tensor cores
        ("cuda", (7, 5), torch.float16, True),  # T4: fp16 needs loss scaling
        ("cuda", (7, 0), torch.float16, True),  # V100
        ("cuda", (8, 0), torch.bfloat16, False),  # A100
        ("cuda", (9, 0), torch.bfloat16, False),  # H100
    ],
)
def test_amp_dtype_table(device, capability, dtype, scaler):
    choice = amp_dtype(torch.device(device), capability=capability)
    assert (choice.dtype, choice.use_grad_scaler) == (dtype, scaler)
    assert choice.enabled == (dtype != torch.float32)


# CPU flags as course_utils.device.cpu_features() reports them.
NO_BF16 = {"amx_bf16": False, "amx_tile": False, "avx512_bf16": False, "avx512_f": False, "avx2": True, "bf16": False}
AVX512_BF16 = {**NO_BF16, "avx512_f": True, "avx512_bf16": True}  # AMD Zen 4, Intel Cooper Lake
AMX = {**AVX512_BF16, "amx_bf16": True, "amx_tile": True}  # Intel Xeon, Sapphire Rapids and later


@pytest.fixture
def no_measuring(monkeypatch):
    """Fail the test if amp_dtype times a matrix product; no choice of COURSE_CPU_BF16 leaks in."""
    monkeypatch.delenv(device_module.CPU_BF16_ENV, raising=False)

    def refuse(*args, **kwargs):
        raise AssertionError("the flags were conclusive: nothing should have been measured")

    monkeypatch.setattr(device_module, "measured_bf16_speedup", refuse)


@pytest.mark.parametrize(
    ("flags", "speedup", "dtype", "reason"),
    [
        (AMX, None, torch.bfloat16, "AMX-BF16 matrix engine"),
        (AVX512_BF16, 5.0, torch.bfloat16, "AVX512-BF16 without AMX; bf16 matmul 5.0x fp32"),
        # 2.8x matmul on an EPYC made chapter 7's training only 2% faster: not enough
        (AVX512_BF16, 2.8, torch.float32, "AVX512-BF16 without AMX; bf16 matmul only 2.8x fp32"),
        (AVX512_BF16, 1.1, torch.float32, "AVX512-BF16 without AMX; bf16 matmul only 1.1x fp32"),
        (AVX512_BF16, 0.6, torch.float32, "bf16 matmul only 0.6x fp32"),  # bf16 emulated: slower
        ({**NO_BF16, "bf16": True}, 4.5, torch.bfloat16, "ARM-BF16 without AMX"),
        (NO_BF16, None, torch.float32, "no bf16 matrix engine"),
    ],
)
def test_amp_dtype_cpu_rows_with_injected_capabilities(no_measuring, flags, speedup, dtype, reason):
    choice = amp_dtype("cpu", cpu_flags=flags, bf16_speedup=speedup)
    assert choice.dtype == dtype and not choice.use_grad_scaler
    assert reason in choice.reason


def test_amp_dtype_cpu_measures_only_when_the_flags_are_not_conclusive(monkeypatch):
    monkeypatch.delenv(device_module.CPU_BF16_ENV, raising=False)
    asked = []
    monkeypatch.setattr(device_module, "measured_bf16_speedup", lambda: asked.append(1) or 4.5)
    assert amp_dtype("cpu", cpu_flags=AVX512_BF16).dtype == torch.bfloat16 and asked == [1]
    amp_dtype("cpu", cpu_flags=AMX)
    amp_dtype("cpu", cpu_flags=NO_BF16)
    assert asked == [1]


@pytest.mark.parametrize(("setting", "dtype"), [("0", torch.float32), ("1", torch.bfloat16)])
def test_course_cpu_bf16_overrides_the_cpu_choice(monkeypatch, setting, dtype):
    monkeypatch.setenv(device_module.CPU_BF16_ENV, setting)
    for flags in (AMX, AVX512_BF16, NO_BF16):
        choice = amp_dtype("cpu", cpu_flags=flags, bf16_speedup=2.0)
        assert choice.dtype == dtype and f"COURSE_CPU_BF16={setting}" in choice.reason


def test_the_bf16_speedup_is_measured_once_and_kept_on_disk(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    timed = []

    def fake_flops(dtype, **kwargs):
        timed.append(dtype)
        return 3e11 if dtype == torch.bfloat16 else 1e11

    monkeypatch.setattr(device_module, "matmul_flops", fake_flops)
    assert device_module.measured_bf16_speedup() == pytest.approx(3.0)
    assert device_module.measured_bf16_speedup() == pytest.approx(3.0)
    assert timed == [torch.bfloat16, torch.float32]  # the second answer came from the file
    stored = json.loads((tmp_path / "course_utils" / "cpu_bf16.json").read_text())
    assert list(stored.values()) == [3.0] and f"{torch.get_num_threads()} threads" in next(iter(stored))
    device_module.measured_bf16_speedup(refresh=True)
    assert len(timed) == 4


def test_matmul_flops_measures_a_positive_rate():
    assert device_module.matmul_flops(torch.float32, n=64, repeat=2) > 1e6


def test_cpu_features_fall_back_to_proc_cpuinfo(monkeypatch):
    monkeypatch.delattr(torch.cpu, "get_capabilities")
    monkeypatch.setattr(device_module, "_proc_cpuinfo_flags", lambda: {"fpu", "avx2", "avx512f", "amx_tile", "amx_bf16"})
    flags = device_module.cpu_features()
    assert flags == {**NO_BF16, "avx512_f": True, "amx_tile": True, "amx_bf16": True}
    assert device_module.cpu_matrix_engine(flags) == "AMX-BF16"


def test_cpu_features_agree_with_torch_where_torch_reports_them():
    reported = dict(torch.cpu.get_capabilities())
    flags = device_module.cpu_features()
    for name in ("amx_bf16", "amx_tile", "avx512_bf16", "avx2"):
        assert flags[name] == bool(reported[name])


@pytest.mark.parametrize(
    ("flags", "engine"), [(AMX, "AMX-BF16"), (AVX512_BF16, "AVX512-BF16"), (NO_BF16, "no bf16 engine")]
)
def test_describe_hardware_names_the_cpu_engine(flags, engine):
    text = describe_hardware(torch.device("cpu"), flags)
    assert f"CPU cores ({engine}), no GPU" in text


def test_profile_comes_from_environment_then_hardware(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    assert get_profile().name == "smoke"
    monkeypatch.delenv("COURSE_PROFILE")
    assert get_profile(cuda_available=True).name == "gpu"
    assert get_profile(cuda_available=False).name == "cpu"


def test_unknown_profile_names_the_choices(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "laptop")
    with pytest.raises(ValueError, match="smoke, cpu, gpu"):
        get_profile()


def test_setup_returns_config_reading_through_to_the_profile(no_measuring, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    monkeypatch.setattr(device_module, "cpu_features", lambda: NO_BF16)
    cfg = course_utils.setup(seed=7)
    assert cfg.profile.name == "smoke" and cfg.train_size == 256
    assert cfg.choose(smoke="a", cpu="b", gpu="c") == "a"
    assert cfg.device.type == "cpu" and cfg.amp.dtype == torch.float32
    line = capsys.readouterr().out
    assert "profile smoke" in line and "compute dtype float32 (no bf16 matrix engine on this CPU)" in line
    assert "(no bf16 engine)" in line
    first = torch.rand(3)
    course_utils.setup(seed=7, quiet=True)
    assert torch.equal(first, torch.rand(3))


def test_out_of_memory_detection():
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("out of memory"))


def test_memory_report_on_cpu_has_a_positive_host_peak():
    report = memory_report("cpu")
    assert report["host_peak_mb"] > 10 and "gpu_peak_mb" not in report


def test_setup_on_an_amx_cpu_says_bf16_and_why(no_measuring, monkeypatch, capsys):
    monkeypatch.setattr(device_module, "cpu_features", lambda: AMX)
    cfg = course_utils.setup("smoke", device="cpu")
    assert cfg.amp.dtype == torch.bfloat16 and "(AMX-BF16)" in cfg.hardware
    assert "compute dtype bfloat16 (AMX-BF16 matrix engine)" in capsys.readouterr().out


def test_doctor_shows_the_cpu_engine_and_the_choice(no_measuring, monkeypatch, capsys):
    monkeypatch.setattr(device_module, "cpu_features", lambda: AMX)
    course_utils.doctor()
    out = capsys.readouterr().out
    assert "AMX-BF16 (flags: amx_bf16, amx_tile, avx512_bf16)" in out
    assert "bfloat16 (AMX-BF16 matrix engine)" in out


# ------------------------------------------------------------------ make gpu-check
def test_gpu_check_profile_has_smoke_sizes_and_models_and_says_what_ran():
    check, smoke = get_profile("gpu-check"), get_profile("smoke")
    assert check.run_name == "gpu-check" and check.needs_cuda
    assert (check.name, check.train_size, check.epochs, check.encoder) == (
        smoke.name, smoke.train_size, smoke.epochs, "packaged")
    assert check.choose(smoke=1, cpu=2, gpu=3) == 1  # chapters size themselves as under smoke
    assert smoke.run_name == "smoke" and not smoke.needs_cuda


def test_gpu_check_profile_comes_from_course_profile(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "gpu-check")
    assert get_profile().run_name == "gpu-check"
    with pytest.raises(ValueError, match="gpu-check"):
        get_profile("gpu_check")  # the error lists the valid names, the check included


def test_gpu_check_profile_refuses_to_run_without_a_gpu(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "gpu-check")
    with pytest.raises(RuntimeError, match="CUDA GPU.*make gpu-check"):
        course_utils.setup(device="cpu", quiet=True)


def test_gpu_check_skips_in_one_line_without_cuda(monkeypatch, capsys):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    import gpu_check

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main([]) == 0
    out = capsys.readouterr().out
    assert out == "make gpu-check: skipped, no CUDA GPU here (torch.cuda.is_available() is False)\n"


def test_gpu_check_runs_are_recorded_but_never_stored_in_the_notebooks():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    import notebooks

    assert "gpu-check" in notebooks.MEASURE_ONLY and "cpu" not in notebooks.MEASURE_ONLY
    line = notebooks.runs_in_line("x", {"x": {"gpu-check": {"runtime_s": 5, "hardware": "H100", "date": "d"}}})
    assert "gpu-check" not in line  # the chapters' "Runs in" line keeps to the three profiles

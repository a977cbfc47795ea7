"""Profiles, device choice and the mixed-precision table."""

import pytest
import torch

import course_utils
from course_utils.device import amp_dtype, is_out_of_memory, memory_report
from course_utils.profiles import get_profile


@pytest.mark.parametrize(
    ("device", "capability", "dtype", "scaler"),
    [
        ("cpu", None, torch.float32, False),
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


def test_setup_returns_config_reading_through_to_the_profile(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    cfg = course_utils.setup(seed=7)
    assert cfg.profile.name == "smoke" and cfg.train_size == 256
    assert cfg.choose(smoke="a", cpu="b", gpu="c") == "a"
    assert cfg.device.type == "cpu" and cfg.amp.dtype == torch.float32
    line = capsys.readouterr().out
    assert "profile smoke" in line and "compute dtype float32" in line
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

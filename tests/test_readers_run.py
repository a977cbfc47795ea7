"""What a reader's run relies on: models stay where fit put them, Colab checkpoints survive, outputs are quiet."""

import sys
import types

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import course_utils
from course_utils import evaluate, fit


def moons_like(n=64):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=gen)
    return TensorDataset(x, (x[:, 0] * x[:, 1] > 0).long())


def test_a_model_placed_by_fit_on_the_lazy_device_refuses_cpu_inputs_as_a_gpu_would():
    data = moons_like()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 2))
    fit(model, data, device="lazy", epochs=2, batch_size=16, lr=1e-2, progress=False)
    placed = next(model.parameters()).device
    assert placed.type == "lazy", "fit must leave the model on the device it was given"
    x, _ = data.tensors
    with pytest.raises(RuntimeError, match="not a lazy tensor"):
        model(x)  # the bug the check exists for: a CPU tensor fed to a placed model
    on_device = model(x.to(placed)).cpu()
    on_cpu = model.to("cpu")(x)
    torch.testing.assert_close(on_device, on_cpu, rtol=1e-5, atol=1e-6)


def test_evaluate_runs_on_the_device_the_model_is_on():
    data = moons_like()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 2))
    fit(model, data, epochs=1, batch_size=16, lr=1e-2, progress=False, device="cpu")
    on_cpu = evaluate(model, data, batch_size=16, amp=False)  # float32 on both devices
    on_lazy = evaluate(model.to(course_utils.pick_device("lazy")), data, batch_size=16, amp=False)
    assert on_lazy["accuracy"] == on_cpu["accuracy"]
    assert on_lazy["loss"] == pytest.approx(on_cpu["loss"], rel=1e-5)


def test_course_device_environment_variable_chooses_the_device(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "lazy")
    assert course_utils.pick_device().type == "lazy"
    assert "lazy-tensor" in course_utils.describe_hardware(course_utils.pick_device())
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert course_utils.pick_device().type == "cpu"


@pytest.fixture
def fake_colab(monkeypatch, tmp_path):
    mounted = []
    drive = types.SimpleNamespace(mount=lambda where: mounted.append(where))
    colab = types.ModuleType("google.colab")
    colab.drive = drive
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.delenv("COURSE_CHECKPOINTS", raising=False)
    return mounted


def test_setup_on_colab_says_how_to_keep_checkpoints_through_a_disconnect(fake_colab, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    course_utils.setup()
    assert "course_utils.keep_checkpoints_on_drive()" in capsys.readouterr().out
    monkeypatch.setenv("COURSE_CHECKPOINTS", "/content/drive/MyDrive/x")
    course_utils.setup()
    assert "keep_checkpoints_on_drive" not in capsys.readouterr().out


def test_keep_checkpoints_on_drive_mounts_drive_and_points_checkpoints_there(fake_colab, monkeypatch, tmp_path):
    folder = tmp_path / "MyDrive" / "course-checkpoints"
    assert course_utils.keep_checkpoints_on_drive(str(folder)) == str(folder)
    assert fake_colab == ["/content/drive"] and folder.is_dir()
    cfg = course_utils.setup("smoke", quiet=True)
    assert cfg.checkpoint_dir("07_bert") == folder / "smoke" / "07_bert"


def test_keep_checkpoints_on_drive_off_colab_says_what_to_do_instead(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    with pytest.raises(RuntimeError, match="COURSE_CHECKPOINTS"):
        course_utils.keep_checkpoints_on_drive()


def test_loading_the_encoder_prints_one_line_and_no_local_path(capfd):
    from course_utils.models import load_classifier, resolve_encoder

    load_classifier(resolve_encoder(None), num_labels=2)
    out, err = capfd.readouterr()
    assert out.count("\n") == 1 and "initialised at random: classifier.bias, classifier.weight" in out
    assert "site-packages" not in out + err and "LOAD REPORT" not in err and "Loading weights" not in err

"""``fit`` under faults: every interruption resumes to the uninterrupted run's exact weights and history,
and every refusal and failure says what and where (issue 31).

In-process cases play each interruption at a chosen moment (a hook on the model or the optimizer
raises the signal or the error there); a short series of subprocess runs is killed by SIGKILL,
SIGTERM and SIGINT at seeded random moments (``tests/fault_run.py``; ``make fault-series`` runs
100+ kills). Disk failures are played by replacing the one function every checkpoint byte or file
goes through: we run as root, and a read-only folder (chmod) does not stop root.
"""

import errno
import importlib.util
import signal
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import course_utils.checkpoint as ckpt
from course_utils import fit


def make_data(n=96, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=gen)
    return TensorDataset(x, (x[:, 0] + x[:, 1] > 0).long())


def make_model(seed=0, dropout=0.3, activation=nn.ReLU):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), activation(), nn.Dropout(dropout), nn.Linear(16, 2))


# 12 steps an epoch, 2 micro-batches a step (so forward pass 2k-1 is the first half of step k)
RUN = dict(epochs=2, batch_size=4, accumulation=2, lr=1e-2, seed=3, progress=False, checkpoint_every=2)


def weights_equal(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def comparable(history) -> dict:
    """Everything two runs of one recipe share: not the clock readings, nor where a run resumed."""
    skip = {"train_time_s", "eval_time_s", "checkpoint_time_s", "examples_per_s", "tokens_per_s",
            "resumed_from_step"}
    result = {k: v for k, v in history.to_dict().items() if k not in skip}
    result["epochs"] = [{k: v for k, v in e.items() if k not in ("seconds", "val_examples_per_s")}
                        for e in result["epochs"]]
    return result


def reference(dropout=0.3, **changes):
    model = make_model(dropout=dropout)
    history = fit(model, make_data(), **{**RUN, **changes})
    return model, history


def on_forward(model: nn.Module, count: int, action):
    """Run ``action`` right after the ``count``-th forward pass of ``model`` (its dropout already drawn)."""
    seen = [0]

    def hook(module, inputs, output):
        seen[0] += 1
        if seen[0] == count:
            action()

    return model.register_forward_hook(hook)


def ctrl_c():
    signal.raise_signal(signal.SIGINT)  # what Jupyter's stop button sends


# --------------------------------------------------------------------------- 1-3: interruptions


def test_ctrl_c_in_the_middle_of_a_step_resumes_to_the_uninterrupted_run(tmp_path):
    ref_model, ref_history = reference()
    model = make_model()
    hook = on_forward(model, 11, ctrl_c)  # first half of step 6: its dropout masks are drawn
    with pytest.raises(KeyboardInterrupt):
        fit(model, make_data(), checkpoint_dir=tmp_path, **RUN)
    hook.remove()
    assert ckpt.load_checkpoint(tmp_path / "checkpoint.pt")["position"]["step"] == 6  # step 6 finished first
    resumed = make_model(seed=99)  # a restarted kernel builds the model afresh
    history = fit(resumed, make_data(), checkpoint_dir=tmp_path, **RUN)
    assert history.resumed_from_step == 6
    assert weights_equal(resumed, ref_model)
    assert comparable(history) == comparable(ref_history)


def test_interrupt_then_rerun_in_the_same_process_carries_no_leftover_gradients(tmp_path, capsys):
    # The notebook pattern: the cell is stopped half-way through a step (here by a KeyboardInterrupt
    # raised in the model, after the first micro-batch's backward pass), then run again.
    ref_model, ref_history = reference(dropout=0.0)
    model = make_model(dropout=0.0)

    def stop():
        raise KeyboardInterrupt

    hook = on_forward(model, 12, stop)  # second half of step 6: half its gradient is accumulated
    with pytest.raises(KeyboardInterrupt):
        fit(model, make_data(), checkpoint_dir=tmp_path, **RUN)
    hook.remove()
    assert "middle of step 6" in capsys.readouterr().out
    history = fit(model, make_data(), checkpoint_dir=tmp_path, **RUN)  # the same model object
    assert history.resumed_from_step == 4  # the last whole step saved; half a step is not resumable
    assert weights_equal(model, ref_model)
    assert comparable(history) == comparable(ref_history)


def test_ctrl_c_between_the_optimizer_step_and_the_step_counter_applies_the_step_once(tmp_path):
    def with_optimizer(model, interrupt_at=None):
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        if interrupt_at is not None:
            steps = [0]

            def after_update(optimizer, args, kwargs):
                steps[0] += 1
                if steps[0] == interrupt_at:
                    ctrl_c()

            opt.register_step_post_hook(after_update)
        return opt

    ref_model = make_model(dropout=0.0)
    fit(ref_model, make_data(), optimizer=with_optimizer(ref_model), **RUN)
    model = make_model(dropout=0.0)
    with pytest.raises(KeyboardInterrupt):
        fit(model, make_data(), optimizer=with_optimizer(model, interrupt_at=7), checkpoint_dir=tmp_path, **RUN)
    resumed = make_model(seed=99, dropout=0.0)
    history = fit(resumed, make_data(), optimizer=with_optimizer(resumed), checkpoint_dir=tmp_path, **RUN)
    assert history.resumed_from_step == 7
    assert weights_equal(resumed, ref_model)


def test_sigterm_saves_at_the_next_step_boundary_and_exits(tmp_path, capsys):
    # A scheduler's or Colab's SIGTERM. The test installs a handler of its own first, so that a fit
    # that does not hold the signal cannot take the test process down with it.
    class Terminated(Exception):
        pass

    def terminated(signum, frame):
        raise Terminated

    ref_model, ref_history = reference()
    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        model = make_model()
        hook = on_forward(model, 9, lambda: signal.raise_signal(signal.SIGTERM))  # mid step 5
        with pytest.raises(Terminated):
            fit(model, make_data(), checkpoint_dir=tmp_path, **RUN)
        hook.remove()
        assert signal.getsignal(signal.SIGTERM) is terminated  # fit put the handler back
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert "Stopped by SIGTERM at step 5; checkpoint saved" in capsys.readouterr().out
    resumed = make_model(seed=99)
    history = fit(resumed, make_data(), checkpoint_dir=tmp_path, **RUN)
    assert history.resumed_from_step == 5
    assert weights_equal(resumed, ref_model) and comparable(history) == comparable(ref_history)


def test_sigterm_with_the_default_handler_exits_with_status_143(tmp_path):
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)  # as in a script (a test runner may differ)
    try:
        model = make_model()
        on_forward(model, 3, lambda: signal.raise_signal(signal.SIGTERM))
        with pytest.raises(SystemExit) as exited:
            fit(model, make_data(), checkpoint_dir=tmp_path, **RUN)
        assert exited.value.code == 143 and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert ckpt.load_checkpoint(tmp_path / "checkpoint.pt")["position"]["step"] == 2


# --------------------------------------------------------------------------- 4: history across resumes


def test_a_mid_epoch_checkpoint_holds_every_step_loss(tmp_path):
    ref_model, ref_history = reference()
    run = {**RUN, "checkpoint_every": 5}  # losses are read from the device every 10 steps
    model = make_model()

    def disconnect():
        raise RuntimeError("runtime disconnected")  # nothing is written at a crash

    on_forward(model, 16, disconnect)  # step 8
    with pytest.raises(RuntimeError):
        fit(model, make_data(), checkpoint_dir=tmp_path, **run)
    saved = ckpt.load_checkpoint(tmp_path / "checkpoint.pt")["history"]
    assert len(saved["loss"]) == len(saved["step"]) == 5
    resumed = make_model(seed=99)
    history = fit(resumed, make_data(), checkpoint_dir=tmp_path, **run)
    assert history.resumed_from_step == 5
    assert history.loss == ref_history.loss and len(history.loss) == 24
    assert [e["train_loss"] for e in history.epochs] == [e["train_loss"] for e in ref_history.epochs]
    assert weights_equal(resumed, ref_model)


# --------------------------------------------------------------------------- 5: the fingerprint


class Tempered(nn.Module):
    """A model whose configuration (not its modules) holds a setting the forward pass uses."""

    def __init__(self, temperature):
        super().__init__()
        torch.manual_seed(0)
        self.net, self.config = nn.Linear(5, 2), {"temperature": temperature}

    def forward(self, x):
        return self.net(x) / self.config["temperature"]


@pytest.mark.parametrize("first, second, named", [
    ({}, {"model": lambda: make_model(dropout=0.5)}, "Dropout(p=0.5"),
    ({}, {"model": lambda: make_model(activation=nn.GELU)}, "GELU("),
    ({}, {"model": lambda: make_model().double()}, "parameter dtypes: float32 ×4 → float64 ×4"),
    ({"loss_fn": nn.CrossEntropyLoss()}, {"loss_fn": nn.CrossEntropyLoss(weight=torch.tensor([1.0, 3.0]))},
     "loss: CrossEntropyLoss"),
    ({"loss_fn": nn.CrossEntropyLoss()}, {"loss_fn": nn.CrossEntropyLoss(label_smoothing=0.1)}, "label_smoothing"),
    ({}, {"data": lambda: make_data(seed=1)}, "training data: 96 examples"),
    ({"model": lambda: Tempered(2.0)}, {"model": lambda: Tempered(3.0)}, "model config: temperature 2.0 → 3.0"),
])
def test_a_checkpoint_of_a_run_that_differs_in_what_changes_the_result_is_refused_naming_it(
        tmp_path, first, second, named):
    def call(spec, **kwargs):
        spec = dict(spec)
        model = spec.pop("model", make_model)()
        data = spec.pop("data", make_data)()
        return fit(model, data, checkpoint_dir=tmp_path, **{**RUN, **spec, **kwargs})

    call(first)
    with pytest.raises(ValueError) as refused:
        call(second, on_step=lambda step, loss: pytest.fail("the changed run trained from the old checkpoint"))
    assert named in str(refused.value) and "resume=False" in str(refused.value)


def test_a_new_micro_batch_split_of_the_same_step_is_used_and_said(tmp_path, capsys):
    data = TensorDataset(*(t.double() if t.is_floating_point() else t for t in make_data().tensors))
    run = {**RUN, "batch_size": 8, "accumulation": 2}

    def model():
        return make_model(dropout=0.0).double()

    reference_model = model()
    fit(reference_model, data, **run)

    def stop_at_5(step, loss):
        if step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(model(), data, checkpoint_dir=tmp_path, on_step=stop_at_5, **run)
    resumed = model()
    history = fit(resumed, data, checkpoint_dir=tmp_path, **{**run, "batch_size": 16, "accumulation": 1})
    assert "the checkpoint's run used 8 × 2; this call asks for 16 × 1" in capsys.readouterr().out
    assert (history.batch_size, history.accumulation, history.resumed_from_step) == (16, 1, 5)
    for a, b in zip(resumed.parameters(), reference_model.parameters()):
        assert torch.allclose(a, b, atol=1e-12, rtol=0)  # the same updates, up to rounding


def test_a_finished_run_is_extended_only_on_purpose_and_then_matches_the_longer_run(tmp_path, capsys):
    run = {**RUN, "max_steps": 6}
    longer_model, longer = reference(max_steps=10)
    fit(make_model(), make_data(), checkpoint_dir=tmp_path, **run)
    with pytest.raises(ValueError, match=r"Only the length differs.*resume='extend'"):
        fit(make_model(), make_data(), checkpoint_dir=tmp_path, **{**run, "max_steps": 10})
    model = make_model(seed=99)
    history = fit(model, make_data(), checkpoint_dir=tmp_path, resume="extend", **{**run, "max_steps": 10})
    assert "Extending the run" in capsys.readouterr().out and history.resumed_from_step == 6
    assert weights_equal(model, longer_model)  # constant learning rate: the same as 10 steps at once
    assert history.loss == longer.loss
    restored = make_model(seed=5)
    again = fit(restored, make_data(), checkpoint_dir=tmp_path, **{**run, "max_steps": 10})
    assert again.steps == 10 and weights_equal(restored, longer_model)  # the extended run, finished


# --------------------------------------------------------------------------- 7-8: the disk


def full_disk_after(condition):
    """A ``_write`` that writes half of a chunk and then finds the disk full, once ``condition()`` holds."""
    real = ckpt._write if hasattr(ckpt, "_write") else None

    def write(file, data):
        if condition():
            file.write(bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(file, data)

    return write


def test_a_full_disk_mid_run_names_the_file_keeps_the_last_checkpoint_and_leaves_no_partial_file(
        tmp_path, monkeypatch):
    full = [False]
    monkeypatch.setattr(ckpt, "_write", full_disk_after(lambda: full[0]), raising=False)

    def fill_disk_after_step_3(step, loss):
        full[0] = step >= 3

    with pytest.raises(OSError) as failed:
        fit(make_model(), make_data(), checkpoint_dir=tmp_path, on_step=fill_disk_after_step_3, **RUN)
    message = str(failed.value)
    assert str(tmp_path / "checkpoint.pt") in message or "checkpoint.pt" in message
    assert "No space left on device" in message and "disk is full" in message and "checkpoint_dir" in message
    assert failed.value.errno == errno.ENOSPC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]  # no partial temporary file
    monkeypatch.undo()
    assert ckpt.load_checkpoint(tmp_path / "checkpoint.pt")["position"]["step"] == 2  # the previous one


def test_a_read_only_checkpoint_folder_is_refused_before_any_step(tmp_path, monkeypatch):
    def read_only(path):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(ckpt, "_create", read_only, raising=False)
    with pytest.raises(OSError) as refused:
        fit(make_model(), make_data(), checkpoint_dir=tmp_path / "ro", **RUN,
            on_step=lambda step, loss: pytest.fail("trained although no checkpoint could be written"))
    message = str(refused.value)
    assert "ro" in message and "Read-only file system" in message and "checkpoint_dir" in message


def test_a_checkpoint_folder_that_cannot_exist_is_refused_before_any_step(tmp_path):
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    with pytest.raises(OSError) as refused:
        fit(make_model(), make_data(), checkpoint_dir=tmp_path / "notes.txt" / "run", **RUN,
            on_step=lambda step, loss: pytest.fail("trained although no checkpoint could be written"))
    assert "notes.txt" in str(refused.value) and "checkpoint_dir" in str(refused.value)


def test_a_failed_final_write_still_returns_the_finished_history_with_a_warning(tmp_path, monkeypatch):
    ref_model, ref_history = reference()
    last_step = [0]

    def count(step, loss):
        last_step[0] = step

    monkeypatch.setattr(ckpt, "_write", full_disk_after(lambda: last_step[0] == 24), raising=False)
    model = make_model()
    with pytest.warns(UserWarning, match=r"final checkpoint was not written.*No space left"):
        history = fit(model, make_data(), checkpoint_dir=tmp_path, on_step=count, **RUN)
    assert weights_equal(model, ref_model) and comparable(history) == comparable(ref_history)


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_an_unreadable_checkpoint_is_named_with_the_fix(tmp_path, damage):
    fit(make_model(), make_data(), checkpoint_dir=tmp_path, **RUN)
    path = tmp_path / "checkpoint.pt"
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2] if damage == "truncated" else b"")
    with pytest.raises(Exception) as refused:
        fit(make_model(), make_data(), checkpoint_dir=tmp_path, **RUN)
    message = str(refused.value)
    assert "checkpoint.pt" in message and "cannot be read" in message and "resume=False" in message


def test_a_checkpoint_is_flushed_to_disk_then_renamed_then_its_folder_flushed(tmp_path, monkeypatch):
    import os

    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(src)))
        real_replace(src, dst)

    monkeypatch.setattr(ckpt.os, "fsync", fsync)
    monkeypatch.setattr(ckpt.os, "replace", replace)
    ckpt.save_checkpoint(tmp_path / "checkpoint.pt", {"x": torch.zeros(3)})
    ckpt.save_checkpoint(tmp_path / "checkpoint.pt", {"x": torch.ones(3)})
    temps = [src for kind, src in events if kind == "replace"]
    assert events == [("fsync", temps[0]), ("replace", temps[0]), ("fsync", str(tmp_path)),
                      ("fsync", temps[1]), ("replace", temps[1]), ("fsync", str(tmp_path))]
    assert temps[0] != temps[1] and str(os.getpid()) in temps[0]  # a name no other writer shares
    assert torch.equal(ckpt.load_checkpoint(tmp_path / "checkpoint.pt")["x"], torch.ones(3))


def test_temporary_files_of_killed_writers_on_this_machine_are_removed(tmp_path):
    import socket
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = ckpt._temp_name(tmp_path / "checkpoint.pt").name.split(".")[2]
    stale = tmp_path / f"checkpoint.pt.{host}.{int(dead.stdout)}.0badc0de.tmp"
    alive = tmp_path / f"checkpoint.pt.{host}.{__import__('os').getpid()}.0badc0de.tmp"
    stale.write_bytes(b"half a checkpoint")
    alive.write_bytes(b"being written")
    assert socket.gethostname()
    ckpt.check_writable(tmp_path)
    assert not stale.exists() and alive.exists()


# --------------------------------------------------------------------------- 6: subprocesses, killed


def load_fault_run():
    spec = importlib.util.spec_from_file_location("fault_run", Path(__file__).with_name("fault_run.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_runs_killed_by_sigkill_sigterm_and_sigint_at_random_moments_end_exact(tmp_path):
    # Dropout on, accumulation on, and the out-of-memory back-off triggered (micro-batch 8 -> 4);
    # the kills land mid forward pass, right after optimizer.step(), inside a checkpoint write, or
    # between steps. `make fault-series` runs the same with 100+ kills.
    fault_run = load_fault_run()
    report = fault_run.run_series(kills=3, seed=31, configs=("mlp",), max_kills_per_run=3, folder=tmp_path,
                                  signals=("SIGKILL", "SIGTERM", "SIGINT"), in_turn=True, say=lambda line: None)
    assert report["kills"] >= 3 and set(report["by_signal"]) == {"SIGKILL", "SIGTERM", "SIGINT"}
    assert report["exact"], report["failures"]


def test_a_checkpoint_of_an_earlier_course_utils_resumes_on_what_it_recorded(tmp_path):
    # Checkpoints written before the fingerprint held the model's structure, the data, ... (a reader's
    # half-done run on Google Drive when the course updates) carry on, with a warning, not a refusal.
    ref_model, _ = reference()

    def stop_at_5(step, loss):
        if step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(make_model(), make_data(), checkpoint_dir=tmp_path, on_step=stop_at_5, **RUN)
    state = ckpt.load_checkpoint(tmp_path / "checkpoint.pt")
    for key in ("model structure", "model config", "parameter dtypes", "training data"):
        del state["fingerprint"][key]
    torch.save(state, tmp_path / "checkpoint.pt")
    resumed = make_model(seed=99)
    with pytest.warns(UserWarning, match="earlier version of course_utils.*model structure"):
        history = fit(resumed, make_data(), checkpoint_dir=tmp_path, **RUN)
    assert history.resumed_from_step == 5 and weights_equal(resumed, ref_model)

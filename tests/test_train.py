"""fit/evaluate: resume, accumulation, out-of-memory back-off, schedules, bad input."""

import types

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from course_utils import evaluate, fit
from course_utils.train import lr_factor


def make_data(n=96, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=gen, dtype=dtype)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return TensorDataset(x, y)


def make_model(seed=0, dropout=0.2, dtype=torch.float32):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 2)).to(dtype)


def weights_equal(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


RUN = dict(epochs=3, batch_size=8, lr=1e-2, progress=False, seed=3)


def test_resume_after_interrupt_matches_uninterrupted_run(tmp_path):
    data = make_data()
    reference = make_model()
    fit(reference, data, **RUN)

    def stop_at_step_17(step, loss):
        if step == 17:  # mid-way through epoch 2 (12 steps per epoch)
            raise KeyboardInterrupt

    model = make_model()
    with pytest.raises(KeyboardInterrupt):
        fit(model, data, checkpoint_dir=tmp_path, on_step=stop_at_step_17, **RUN)
    assert not weights_equal(model, reference)
    resumed = make_model(seed=99)  # a fresh process would start from other weights: the checkpoint must win
    history = fit(resumed, data, checkpoint_dir=tmp_path, **RUN)
    assert history.resumed_from_step == 17
    assert history.steps == 36
    assert weights_equal(resumed, reference)


def test_resume_after_hard_stop_restarts_from_last_epoch_checkpoint(tmp_path):
    data = make_data()
    reference = make_model()
    fit(reference, data, **RUN)

    def crash_at_step_30(step, loss):
        if step == 30:  # the process dies: no checkpoint is written at the crash
            raise RuntimeError("runtime disconnected")

    model = make_model()
    with pytest.raises(RuntimeError):
        fit(model, data, checkpoint_dir=tmp_path, on_step=crash_at_step_30, **RUN)
    resumed = make_model(seed=99)
    history = fit(resumed, data, checkpoint_dir=tmp_path, **RUN)
    assert history.resumed_from_step == 24  # end of epoch 2
    assert weights_equal(resumed, reference)


def test_resume_refuses_a_checkpoint_from_a_different_run(tmp_path):
    data = make_data()
    fit(make_model(), data, checkpoint_dir=tmp_path, **RUN)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        fit(make_model(), data, checkpoint_dir=tmp_path, **{**RUN, "batch_size": 16})


def one_sgd_step(model, data, **kwargs):
    """Weights after one plain SGD step with lr=1 over the whole data set: w - grad."""
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    return fit(model, data, optimizer=opt, epochs=1, shuffle=False, progress=False, **kwargs)


def full_batch_gradient_step(model, data):
    x, y = data.tensors
    model.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    with torch.no_grad():
        return [p - p.grad for p in model.parameters()]


def test_accumulation_4_by_8_gives_the_same_update_as_batch_32():
    data = make_data(n=32, dtype=torch.float64)
    a, b = make_model(dropout=0.0, dtype=torch.float64), make_model(dropout=0.0, dtype=torch.float64)
    one_sgd_step(a, data, batch_size=8, accumulation=4)
    one_sgd_step(b, data, batch_size=32, accumulation=1)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.allclose(pa, pb, atol=1e-12, rtol=0)
    assert not torch.equal(a[0].weight, make_model(dropout=0.0, dtype=torch.float64)[0].weight)


def test_accumulation_with_uneven_micro_batches_still_averages_over_examples():
    data = make_data(n=30, dtype=torch.float64)  # micro-batches of 8, 8, 8, 6
    model = make_model(dropout=0.0, dtype=torch.float64)
    expected = full_batch_gradient_step(make_model(dropout=0.0, dtype=torch.float64), data)
    one_sgd_step(model, data, batch_size=8, accumulation=4)
    for p, e in zip(model.parameters(), expected):
        assert torch.allclose(p, e, atol=1e-12, rtol=0)


class OutOfMemoryAbove(nn.Module):
    """Raises what CUDA raises when a micro-batch has more than ``limit`` examples."""

    def __init__(self, inner, limit):
        super().__init__()
        self.inner, self.limit, self.sizes = inner, limit, []

    def forward(self, x):
        self.sizes.append(len(x))
        if len(x) > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.inner(x)


def test_out_of_memory_backs_off_to_a_smaller_micro_batch_with_the_same_gradient(capsys):
    data = make_data(n=32, dtype=torch.float64)
    model = OutOfMemoryAbove(make_model(dropout=0.0, dtype=torch.float64), limit=8)
    expected = full_batch_gradient_step(make_model(dropout=0.0, dtype=torch.float64), data)
    history = one_sgd_step(model, data, batch_size=32, accumulation=1)
    assert (history.batch_size, history.accumulation) == (8, 4)
    assert history.out_of_memory_backoffs == 2
    assert model.sizes[-4:] == [8, 8, 8, 8]
    for p, e in zip(model.inner.parameters(), expected):
        assert torch.allclose(p, e, atol=1e-6, rtol=0)
    assert "micro-batch halved to 8" in capsys.readouterr().out


def test_out_of_memory_at_batch_size_one_is_raised():
    model = OutOfMemoryAbove(make_model(), limit=0)
    with pytest.raises(torch.OutOfMemoryError):
        fit(model, make_data(n=8), batch_size=2, progress=False)


def test_other_errors_are_not_mistaken_for_out_of_memory():
    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    with pytest.raises(RuntimeError, match="shapes"):
        fit(Broken(), make_data(n=8), batch_size=4, optimizer=torch.optim.SGD([nn.Parameter(torch.zeros(1))]),
            progress=False)


def test_fit_learns_and_evaluate_reports_sklearn_f1():
    from sklearn.metrics import f1_score

    data = make_data(n=512)
    model = make_model()
    history = fit(model, data, epochs=5, batch_size=32, lr=1e-2, progress=False, val_data=make_data(n=128, seed=1))
    assert history.loss[-1] < history.loss[0]
    assert len(history.epochs) == 5 and "val_accuracy" in history.epochs[-1]
    result = evaluate(model, make_data(n=128, seed=1), return_predictions=True)
    assert result["accuracy"] > 0.9
    assert result["f1"] == pytest.approx(f1_score(result["labels"], result["predictions"]))


def test_learning_rate_schedule_warms_up_then_decays():
    assert [lr_factor(s, 10, 4, "linear") for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(4, 10, 4, "linear") == 1.0
    assert lr_factor(10, 10, 4, "linear") == 0.0
    assert lr_factor(10, 10, 0, "cosine") == pytest.approx(0.0)
    assert lr_factor(5, 10, 0, "cosine") == pytest.approx(0.5)
    data = make_data(n=64)
    history = fit(make_model(), data, batch_size=8, lr=1.0, epochs=1, schedule="linear", warmup=2,
                  optimizer=torch.optim.SGD(make_model().parameters(), lr=1.0), progress=False)
    assert history.lr[:3] == [0.5, 1.0, 1.0] and history.lr[-1] == pytest.approx(1 / 6)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"batch_size": 0}, ValueError, "batch_size must be an integer ≥ 1, got 0"),
        ({"accumulation": 0}, ValueError, "accumulation must be"),
        ({"amp": True}, ValueError, "needs a CUDA GPU"),
        ({"amp": "fp16"}, ValueError, "needs a CUDA GPU"),
        ({"epochs": 0}, ValueError, "epochs must be"),
    ],
)
def test_bad_arguments_get_errors_that_name_the_fix(kwargs, error, message):
    with pytest.raises(error, match=message):
        fit(make_model(), make_data(n=16), **{"progress": False, "device": "cpu", **kwargs})


def test_empty_dataset_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="train_data is empty"):
        fit(make_model(), TensorDataset(torch.zeros(0, 5), torch.zeros(0, dtype=torch.long)), progress=False)


def test_float_labels_for_cross_entropy_are_refused_with_the_fix():
    x, y = make_data(n=16).tensors
    with pytest.raises(TypeError, match=r"labels.long\(\)"):
        fit(make_model(), TensorDataset(x, y.float()), batch_size=4, progress=False)


def test_validation_time_is_kept_out_of_training_throughput(monkeypatch):
    import types

    import course_utils.train as train_module

    clock = [0.0]

    def perf_counter():
        clock[0] += 0.001  # every clock read costs a millisecond of "work"
        return clock[0]

    monkeypatch.setattr(train_module, "time", types.SimpleNamespace(perf_counter=perf_counter))

    class SlowValidation(torch.utils.data.Dataset):
        """Each example takes 10 (fake) seconds to load: validation dwarfs training."""

        def __init__(self, data):
            self.data = data

        def __len__(self):
            return len(self.data)

        def __getitem__(self, i):
            clock[0] += 10.0
            return self.data[i]

    val = SlowValidation(make_data(n=8, seed=1))
    history = fit(make_model(), make_data(), val_data=val, **RUN)
    assert history.eval_time_s >= 3 * 8 * 10.0  # three epochs, eight slow examples each
    assert history.train_time_s < 10.0, "validation time leaked into the training time"
    assert history.examples_per_s == pytest.approx(3 * 96 / history.train_time_s, rel=1e-3)


def test_default_optimizer_is_fused_adamw_with_the_same_updates_as_the_loop():
    from course_utils.train import default_optimizer

    fused_model, loop_model = make_model(dropout=0.0), make_model(dropout=0.0)
    fused = default_optimizer(fused_model, lr=1e-2, weight_decay=0.1)
    assert isinstance(fused, torch.optim.AdamW) and fused.defaults["fused"], "expected the fused kernel on CPU"
    loop = torch.optim.AdamW(loop_model.parameters(), lr=1e-2, weight_decay=0.1, foreach=False)
    x, y = make_data().tensors
    for model, opt in ((fused_model, fused), (loop_model, loop)):
        for _ in range(5):
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            opt.zero_grad()
    for a, b in zip(fused_model.parameters(), loop_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert not torch.equal(fused_model[0].weight, make_model()[0].weight), "the parameters did not move"


# --------------------------------------------------------------------------- a run that never surprises


class TinyTextClassifier(nn.Module):
    """A Hugging Face-shaped model: ``model(input_ids=, attention_mask=, labels=)`` → ``.loss``, ``.logits``."""

    def __init__(self, vocab=20, hidden=8):
        super().__init__()
        self.embed, self.head = nn.Embedding(vocab, hidden), nn.Linear(hidden, 2)

    def forward(self, input_ids, attention_mask, labels=None):
        mask = attention_mask.unsqueeze(-1).float()
        logits = self.head((self.embed(input_ids) * mask).sum(1) / mask.sum(1))
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return types.SimpleNamespace(loss=loss, logits=logits)


class TextData(torch.utils.data.Dataset):
    """Padded token ids with a mask: the real tokens of example i are its first 2 + i % 5."""

    def __init__(self, n=48):
        gen = torch.Generator().manual_seed(0)
        self.ids = torch.randint(1, 20, (n, 8), generator=gen)
        self.mask = (torch.arange(8)[None] < (2 + torch.arange(n) % 5)[:, None]).long()
        self.labels = (self.ids[:, 0] > 10).long()

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "attention_mask": self.mask[i], "labels": self.labels[i]}


def text_model(seed=0, hidden=8):
    torch.manual_seed(seed)
    return TinyTextClassifier(hidden=hidden)


TEXT_RUN = dict(epochs=2, batch_size=8, lr=1e-2, progress=False, seed=1)


def test_finished_run_reentered_restores_weights_and_history_without_training(tmp_path, capsys):
    data = TextData()
    trained = text_model()
    first = fit(trained, data, checkpoint_dir=tmp_path, **TEXT_RUN)
    assert first.tokens_per_s > 0 and first.examples_per_s > 0

    def must_not_train(step, loss):
        raise AssertionError(f"step {step} ran: a finished run was trained again")

    again = text_model(seed=99)  # a restarted kernel builds the model afresh
    second = fit(again, data, checkpoint_dir=tmp_path, on_step=must_not_train, **TEXT_RUN)
    assert second.to_dict() == first.to_dict(), "the restored history differs from the finished run's"
    assert weights_equal(again, trained)
    assert "nothing retrained" in capsys.readouterr().out


@pytest.mark.parametrize("change, named", [
    ({"lr": 2e-2}, "learning rate"),
    ({"max_steps": 5}, "steps"),
    ({"schedule": "linear"}, "schedule"),
    ({"warmup": 3}, "warmup_steps"),
    ({"clip_norm": 1.0}, "clip_norm"),
    ({"seed": 2}, "seed"),
    ({"weight_decay": 0.1}, "optimizer settings"),
])
def test_resume_refuses_a_changed_setting_and_names_it(tmp_path, change, named):
    fit(text_model(), TextData(), checkpoint_dir=tmp_path, **TEXT_RUN)
    with pytest.raises(ValueError, match=named) as refused:
        fit(text_model(), TextData(), checkpoint_dir=tmp_path, **{**TEXT_RUN, **change})
    assert "resume=False" in str(refused.value) and "checkpoint_dir" in str(refused.value)


def test_resume_refuses_a_different_model_and_names_it(tmp_path):
    fit(text_model(hidden=8), TextData(), checkpoint_dir=tmp_path, **TEXT_RUN)
    with pytest.raises(ValueError, match="model: TinyTextClassifier"):
        fit(text_model(hidden=16), TextData(), checkpoint_dir=tmp_path, **TEXT_RUN)


def test_resume_false_starts_over_and_overwrites_the_old_checkpoint(tmp_path):
    fit(text_model(), TextData(), checkpoint_dir=tmp_path, **TEXT_RUN)
    changed = {**TEXT_RUN, "lr": 2e-2}
    history = fit(text_model(), TextData(), checkpoint_dir=tmp_path, resume=False, **changed)
    assert history.resumed_from_step is None
    again = fit(text_model(seed=5), TextData(), checkpoint_dir=tmp_path, **changed)  # now resumes the new run
    assert again.to_dict() == history.to_dict()


def test_a_resumed_run_reports_throughput_over_all_its_steps(tmp_path, monkeypatch):
    # A clock that ticks 10 ms per reading, so train_time_s (stored to the millisecond) is exact: on
    # the real clock these 12 steps take ~2 ms, and that rounding alone once moved the rate by 6%.
    ticks = iter(range(10**9))
    monkeypatch.setattr("course_utils.train.time.perf_counter", lambda: next(ticks) * 0.01)
    data = TextData()

    def stop_at_step_7(step, loss):
        if step == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(text_model(), data, checkpoint_dir=tmp_path, on_step=stop_at_step_7, **TEXT_RUN)
    history = fit(text_model(), data, checkpoint_dir=tmp_path, **TEXT_RUN)
    assert history.resumed_from_step == 7 and history.steps == 12
    assert history.examples_seen == 2 * len(data)
    assert history.tokens_seen == 2 * int(data.mask.sum())
    assert history.train_time_s >= 0.05  # the ticking clock, not the real one
    assert history.examples_per_s == pytest.approx(history.examples_seen / history.train_time_s, rel=0.05)
    assert history.tokens_per_s == pytest.approx(history.tokens_seen / history.train_time_s, rel=0.05)


def test_tokens_are_counted_on_the_host_before_the_batch_moves():
    # On the meta device nothing can be read back: counting the mask there would raise.
    from contextlib import nullcontext

    from course_utils.train import _accumulate_gradients

    data = TextData()
    model = text_model().to("meta")
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    loss, tokens = _accumulate_gradients(model, data, list(range(16)), torch.utils.data.default_collate, None,
                                         batch_size=8, device=torch.device("meta"), autocast=nullcontext(),
                                         scaler=scaler)
    assert loss.device.type == "meta"
    assert tokens == int(data.mask[:16].sum())


def test_checkpoints_on_a_time_interval_also_land_mid_epoch(tmp_path, monkeypatch):
    import course_utils.checkpoint as ckpt
    import course_utils.train as train_module

    clock = [0.0]
    monkeypatch.setattr(train_module, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))

    class OneSecondPerStep(TinyTextClassifier):
        def forward(self, *args, **kwargs):
            clock[0] += 1.0  # every micro-batch takes a (fake) second
            return super().forward(*args, **kwargs)

    steps_at_write = []
    real_save = ckpt.save_checkpoint
    monkeypatch.setattr(ckpt, "save_checkpoint",
                        lambda path, state: (steps_at_write.append(state["position"]["step"]), real_save(path, state)))
    torch.manual_seed(0)
    fit(OneSecondPerStep(), TextData(), checkpoint_dir=tmp_path, checkpoint_every_s=2.5, **TEXT_RUN)
    # 12 steps of 1 s in two epochs: a write once 2.5 s have passed since the last one (steps 3
    # and 9), at the end of epoch 1 (step 6), and the final one; never twice for the same step.
    assert steps_at_write == [3, 6, 9, 12]


def test_default_optimizer_takes_parameter_groups_and_skips_fused_where_no_kernel():
    from course_utils.train import default_optimizer

    model = text_model()
    groups = [{"params": [model.embed.weight], "weight_decay": 0.0},
              {"params": list(model.head.parameters()), "weight_decay": 0.01}]
    opt = default_optimizer(groups, lr=1e-3)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.0, 0.01] and opt.defaults["fused"]
    on_meta = default_optimizer(text_model().to("meta"), lr=1e-3)
    assert not on_meta.defaults["fused"]


def test_checkpoint_paths_are_shown_without_machine_specific_prefixes(monkeypatch, tmp_path):
    from course_utils.checkpoint import display_path

    monkeypatch.setenv("COURSE_CHECKPOINTS", str(tmp_path))
    assert display_path(tmp_path / "cpu" / "07_bert" / "checkpoint.pt") == "$COURSE_CHECKPOINTS/cpu/07_bert/checkpoint.pt"
    monkeypatch.chdir(tmp_path.parent)
    monkeypatch.delenv("COURSE_CHECKPOINTS")
    assert display_path(tmp_path / "x.pt") == f"{tmp_path.name}/x.pt"


def test_the_live_loss_plot_draws_once_in_a_batch_run_and_rarely_when_drawing_is_slow(monkeypatch):
    """A stored-output run pays for no redraws nobody watches (chapter 9's LoRA run redrew every 2 s);
    live, a slow redraw stretches the wait to 20 times its own duration."""
    from course_utils import train as train_module

    drawn = []

    class Handle:
        def update(self, fig):
            drawn.append(len(history.loss))

    history = train_module.History()
    plot = train_module._LivePlot.__new__(train_module._LivePlot)
    plot.history, plot.handle, plot.last, plot.wait = history, Handle(), 0.0, 2.0
    plot.fig, plot.ax = None, type("Ax", (), {"clear": lambda self: None})()
    monkeypatch.setattr("course_utils.plots.plot_history", lambda h, ax: None)
    plot.live = False  # a batch run
    for _step in range(50):
        history.loss.append(1.0)
        plot.update()
    plot.close()
    assert drawn == [50]
    plot.live, plot.last = True, 0.0
    clock = iter([100.0, 100.0, 100.0, 103.0, 103.0, 110.0, 170.0])
    monkeypatch.setattr(train_module.time, "perf_counter", lambda: next(clock))
    plot.update()  # 100 s since the last draw: draws, and the draw "took" 0 s
    assert plot.wait == 2.0
    plot.update()  # 3 s later: draws, and this draw took 7 s
    assert plot.wait == 140.0 and len(drawn) == 3
    plot.update()  # 60 s later: under 140 s, no draw
    assert len(drawn) == 3

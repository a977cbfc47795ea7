"""``fit`` and ``evaluate`` under bf16 autocast on the CPU: fp32 master weights, fp32 loss, same answers."""

import math

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from course_utils import device as device_module
from course_utils import evaluate, fit

AMX = {"amx_bf16": True, "amx_tile": True, "avx512_bf16": True, "avx512_f": True, "avx2": True, "bf16": False}
NO_BF16 = {name: False for name in AMX} | {"avx2": True}


def separable_data(n=256, seed=0, shift=1.5) -> TensorDataset:
    """Two Gaussian blobs in 8 dimensions, ``2 * shift`` apart per axis (shift 0.4: ~87% at best)."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=gen)
    x = torch.randn(n, 8, generator=gen) + shift * (2 * y[:, None] - 1)
    return TensorDataset(x, y)


def mlp(seed=0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 32), nn.GELU(), nn.LayerNorm(32), nn.Linear(32, 2))


class RecordingCrossEntropy(nn.CrossEntropyLoss):
    """Cross-entropy that remembers the dtype of the logits it got and of the loss it returned."""

    def __init__(self):
        super().__init__()
        self.seen: list[tuple[torch.dtype, torch.dtype]] = []

    def forward(self, logits, labels):
        loss = super().forward(logits, labels)
        self.seen.append((logits.dtype, loss.dtype))
        return loss


def test_bf16_training_on_cpu_keeps_fp32_weights_optimizer_state_and_loss():
    model, loss_fn = mlp(), RecordingCrossEntropy()
    history = fit(model, separable_data(), loss_fn=loss_fn, amp="bf16", device="cpu", lr=1e-2,
                  batch_size=32, epochs=2, progress=False)
    assert history.amp_dtype == "bfloat16"
    assert {logits for logits, _ in loss_fn.seen} == {torch.bfloat16}  # autocast did run the layers in bf16
    assert {loss for _, loss in loss_fn.seen} == {torch.float32}  # the loss itself is fp32
    assert {p.dtype for p in model.parameters()} == {torch.float32}  # master weights
    assert history.loss[-1] < 0.5 * history.loss[0]


def test_bf16_optimizer_state_stays_fp32():
    model = mlp()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    fit(model, separable_data(n=64), optimizer=optimizer, amp="bf16", device="cpu", batch_size=32,
        epochs=1, progress=False)
    moments = [t for state in optimizer.state.values() for k, t in state.items() if k.startswith("exp_avg")]
    assert len(moments) == 2 * len(list(model.parameters()))
    assert {t.dtype for t in moments} == {torch.float32}


def test_bf16_run_reaches_the_fp32_run_accuracy_and_differs_from_it():
    train, val = separable_data(seed=0, shift=0.4), separable_data(n=512, seed=1, shift=0.4)
    results = {}
    for amp in (False, "bf16"):
        model = mlp()
        fit(model, train, amp=amp, device="cpu", lr=1e-2, batch_size=32, epochs=3, progress=False)
        results[amp] = (model, evaluate(model, val, amp=amp, batch_size=128))
    (fp32_model, fp32), (bf16_model, bf16) = results[False], results["bf16"]
    assert fp32["accuracy"] > 0.8  # noisy blobs: ~87% is the best any classifier can do
    assert abs(bf16["accuracy"] - fp32["accuracy"]) <= 5 / 512  # a few borderline points at most
    assert bf16["loss"] == pytest.approx(fp32["loss"], rel=0.02)
    assert isinstance(bf16["loss"], float)
    weights = [(a - b).abs().max().item() for a, b in zip(fp32_model.parameters(), bf16_model.parameters())]
    assert max(weights) > 1e-4  # bf16 rounding did change the run: the comparison is not vacuous


def test_fit_auto_follows_amp_dtype_on_the_cpu(monkeypatch):
    monkeypatch.delenv(device_module.CPU_BF16_ENV, raising=False)
    for flags, expected in ((AMX, "bfloat16"), (NO_BF16, "float32")):
        monkeypatch.setattr(device_module, "cpu_features", lambda flags=flags: flags)
        history = fit(mlp(), separable_data(n=32), device="cpu", batch_size=16, epochs=1, progress=False)
        assert history.amp_dtype == expected


def test_a_hugging_face_classifier_trains_in_bf16_with_an_fp32_loss():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=16, num_labels=2)
    model = BertForSequenceClassification(config)
    ids = torch.randint(1, 50, (32, 8), generator=torch.Generator().manual_seed(0))
    data = [{"input_ids": ids[i], "attention_mask": torch.ones(8, dtype=torch.long), "labels": ids[i, 0] % 2}
            for i in range(32)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = model(**{k: torch.stack([d[k] for d in data[:4]]) for k in data[0]})
    assert output.logits.dtype == torch.bfloat16 and output.loss.dtype == torch.float32
    history = fit(model, data, amp="bf16", device="cpu", lr=1e-3, batch_size=8, epochs=2, progress=False)
    assert history.amp_dtype == "bfloat16" and all(loss == loss for loss in history.loss)  # no NaN
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    bf16, fp32 = (evaluate(model, data, amp=amp, batch_size=16) for amp in ("bf16", False))
    assert math.isfinite(bf16["loss"]) and bf16["loss"] == pytest.approx(fp32["loss"], rel=0.05)


def test_fp16_on_the_cpu_is_still_refused_with_the_fix():
    with pytest.raises(ValueError, match="amp='bf16' on a CPU"):
        fit(mlp(), separable_data(n=16), amp="fp16", device="cpu", progress=False)


def test_mixed_precision_on_a_bf16_cpu_picks_the_math_attention_kernel_and_can_be_reused():
    # The fused CPU flash-attention kernel's bf16 backward is slow; mixed_precision swaps it out,
    # in bf16 on the CPU only, and the context can be entered again and again (fit reuses it).
    from course_utils.device import AmpChoice, mixed_precision

    q = torch.randn(1, 2, 8, 16, requires_grad=True)
    flash = "ScaledDotProductFlashAttentionForCpuBackward0"
    bf16 = mixed_precision("cpu", AmpChoice(torch.bfloat16, False, "test"))
    assert bf16.math_attention
    for _ in range(2):
        with bf16:
            out = nn.functional.scaled_dot_product_attention(q, q, q)
        assert out.dtype == torch.bfloat16 and type(out.grad_fn).__name__ != flash
        out.float().sum().backward()
    assert type(nn.functional.scaled_dot_product_attention(q, q, q).grad_fn).__name__ == flash  # restored
    fp32 = mixed_precision("cpu", AmpChoice(torch.float32, False, "test"))
    with fp32:
        out = nn.functional.scaled_dot_product_attention(q, q, q)
    assert not fp32.math_attention and out.dtype == torch.float32 and type(out.grad_fn).__name__ == flash


def test_classifier_gets_eager_attention_only_where_it_trains_on_a_bf16_cpu(monkeypatch, capsys):
    from course_utils import models
    from course_utils.profiles import get_profile

    choice = models.resolve_encoder(get_profile("smoke"))
    monkeypatch.setattr(models, "bf16_on_cpu", lambda: True)
    model, _ = models.load_classifier(choice)
    assert model.config._attn_implementation == "eager" and "eager attention" in capsys.readouterr().out
    model, _ = models.load_classifier(choice, attn_implementation="sdpa")  # the caller's choice wins
    assert model.config._attn_implementation == "sdpa"
    monkeypatch.setattr(models, "bf16_on_cpu", lambda: False)
    model, _ = models.load_classifier(choice)
    assert model.config._attn_implementation != "eager" and "eager" not in capsys.readouterr().out


def test_evaluate_runs_an_int8_model_in_fp32_even_where_autocast_is_on():
    # Dynamic int8 linear kernels take fp32 inputs only; under bf16 autocast they raise.
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2)).eval()
    # the last layer only: the first, left in float, hands it bf16 under autocast (as in a BERT)
    int8 = torch.ao.quantization.quantize_dynamic(model, {"2"}, dtype=torch.qint8)
    data = separable_data(64)
    with pytest.raises(RuntimeError), torch.autocast("cpu", dtype=torch.bfloat16):
        int8(data.tensors[0])
    result = evaluate(int8, data, batch_size=32, amp="bf16")
    assert 0 <= result["accuracy"] <= 1


def test_the_bf16_speed_probe_leaves_the_global_random_state_alone(monkeypatch, tmp_path):
    # On a CPU with AVX512-BF16 and no AMX the first run on a machine times bf16 against fp32. Drawing
    # its matrices from the global generator would shift every later dropout mask: a first run could
    # not be reproduced by a restart, which finds the figure cached and draws nothing.
    avx512 = {**NO_BF16, "avx512_bf16": True, "avx512_f": True}
    monkeypatch.setattr(device_module, "cpu_features", lambda: avx512)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(device_module.CPU_BF16_ENV, raising=False)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    device_module.amp_dtype("cpu")
    assert (tmp_path / "course_utils" / "cpu_bf16.json").exists(), "the probe did not run: the test shows nothing"
    assert torch.equal(torch.get_rng_state(), before)


def test_fit_with_mixed_precision_off_does_not_measure_the_machine(monkeypatch):
    def probe():
        raise AssertionError("amp=False needs no bf16 speed probe")

    monkeypatch.setattr(device_module, "measured_bf16_speedup", probe)
    monkeypatch.setattr(device_module, "cpu_features", lambda: {**NO_BF16, "avx512_bf16": True})
    monkeypatch.delenv(device_module.CPU_BF16_ENV, raising=False)
    history = fit(mlp(), separable_data(n=32), amp=False, device="cpu", batch_size=16, epochs=1, progress=False)
    assert history.amp_dtype == "float32"

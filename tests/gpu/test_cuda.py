"""What only a GPU runs: fp16 with loss scaling, bf16, out-of-memory back-off, resume and evaluation
on CUDA, and the chapter helpers that touch a model. Skipped without CUDA.

Small random-initialised models only: no network, no downloaded weights (the packaged MiniLM's
tokenizer is used for text). Run on a lent GPU with ``pytest -q tests/gpu``.
"""


import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import course_utils
from course_utils import evaluate, fit

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")


def data(n=256, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 32, generator=gen)
    return TensorDataset(x, (x[:, :4].sum(1) > 0).long())


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 2))


RUN = dict(epochs=3, batch_size=32, lr=1e-2, progress=False, device="cuda")


def test_fp16_with_loss_scaling_trains_and_keeps_fp32_master_weights():
    model = mlp()
    history = fit(model, data(), amp="fp16", **RUN)  # forced, as a T4 would get it
    assert history.amp_dtype == "float16"
    assert all(p.dtype == torch.float32 and p.device.type == "cuda" for p in model.parameters())
    assert history.loss[-1] < history.loss[0] and all(map(lambda v: v == v, history.loss))


@pytest.mark.skipif(torch.cuda.is_available() and not torch.cuda.is_bf16_supported(), reason="no bf16")
def test_bf16_trains_without_a_loss_scaler():
    model = mlp()
    history = fit(model, data(), amp="bf16", **RUN)
    assert history.amp_dtype == "bfloat16" and history.loss[-1] < history.loss[0]
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_clipping_acts_on_unscaled_gradients_under_fp16():
    # One SGD step of lr 1 with a tiny clip: the weights move by exactly clip_norm. Clipping the
    # scaled gradients (scale 65536) and unscaling after would move them 65536 times less.
    model, clip = mlp(), 1e-3
    before = [p.detach().clone() for p in model.parameters()]
    fit(model, data(n=64), optimizer=torch.optim.SGD(model.parameters(), lr=1.0), epochs=1, batch_size=64,
        amp="fp16", clip_norm=clip, progress=False, device="cuda", shuffle=False)
    moved = torch.sqrt(sum(((p.detach() - b) ** 2).sum() for p, b in zip(model.parameters(), before)))
    assert moved.item() == pytest.approx(clip, rel=0.02)


class AllocatesPerExample(nn.Module):
    """Asks the GPU for ``bytes_per_example`` per example: a real CUDA out-of-memory error above a size."""

    def __init__(self, inner, bytes_per_example):
        super().__init__()
        self.inner, self.bytes, self.sizes = inner, bytes_per_example, []

    def forward(self, x):
        self.sizes.append(len(x))
        scratch = torch.empty(len(x) * self.bytes, dtype=torch.uint8, device=x.device)
        del scratch
        return self.inner(x)


def test_out_of_memory_backs_off_on_a_real_cuda_error():
    free, _ = torch.cuda.mem_get_info()
    per_example = free // 20  # 32 examples cannot fit, 16 cannot, 8 can
    model = AllocatesPerExample(mlp(), per_example)
    history = fit(model, data(n=32), epochs=1, batch_size=32, progress=False, device="cuda", shuffle=False)
    assert history.out_of_memory_backoffs >= 1 and history.batch_size * history.accumulation == 32
    assert max(model.sizes[-(32 // history.batch_size):]) == history.batch_size


def test_resume_on_gpu_matches_the_uninterrupted_run(tmp_path):
    reference = mlp()
    fit(reference, data(), **RUN)

    def stop(step, loss):
        if step == 13:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(mlp(), data(), checkpoint_dir=tmp_path, on_step=stop, **RUN)
    resumed = mlp(seed=5)
    history = fit(resumed, data(), checkpoint_dir=tmp_path, **RUN)
    assert history.resumed_from_step == 13
    for a, b in zip(resumed.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    again = fit(mlp(seed=6), data(), checkpoint_dir=tmp_path, **RUN)
    assert again.to_dict() == history.to_dict()


def test_evaluate_with_amp_agrees_with_fp32():
    model = mlp()
    fit(model, data(), **RUN)
    full = evaluate(model, data(seed=1), amp=False)
    mixed = evaluate(model, data(seed=1), amp="auto")
    assert abs(full["accuracy"] - mixed["accuracy"]) <= 2 / 256
    assert mixed["loss"] == pytest.approx(full["loss"], rel=2e-2)


def test_a_training_step_does_not_wait_for_the_gpu():
    from contextlib import nullcontext

    from course_utils.train import _accumulate_gradients, _apply_gradients

    model = mlp().to(CUDA)
    opt = course_utils.train.default_optimizer(model, lr=1e-3)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    torch.cuda.set_sync_debug_mode("error")  # any device-to-host wait raises
    try:
        for _ in range(3):
            _accumulate_gradients(model, data(), list(range(64)), torch.utils.data.default_collate, None,
                                  batch_size=16, device=CUDA, autocast=nullcontext(), scaler=scaler)
            _apply_gradients(model, opt, scaler, clip_norm=1.0)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def tiny_bert():
    from transformers import BertConfig, BertForSequenceClassification

    from course_utils.models import packaged_encoder_path

    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, num_labels=2)
    from transformers import AutoTokenizer

    return BertForSequenceClassification(config), AutoTokenizer.from_pretrained(str(packaged_encoder_path()))


def test_chapter_7_path_on_a_random_tiny_bert_with_fp16():
    from transformers import DataCollatorWithPadding

    model, tokenizer = tiny_bert()
    texts = ["a fine film .", "a dull , lifeless mess .", "it 's not bad at all .", "terrible ."] * 16
    enc = tokenizer(texts, truncation=True, max_length=32)
    rows = [{"input_ids": i, "attention_mask": m, "labels": k % 2} for k, (i, m)
            in enumerate(zip(enc["input_ids"], enc["attention_mask"]))]

    class Rows(torch.utils.data.Dataset):
        def __len__(self):
            return len(rows)

        def __getitem__(self, i):
            return rows[i]

    collate = DataCollatorWithPadding(tokenizer)
    history = fit(model, Rows(), collate_fn=collate, epochs=1, batch_size=16, lr=1e-3, amp="fp16",
                  clip_norm=1.0, progress=False, device="cuda")
    assert history.tokens_per_s > 0 and model.device.type == "cuda"
    result = evaluate(model, Rows(), collate_fn=collate, batch_size=32)
    assert 0 <= result["accuracy"] <= 1
    enc = tokenizer("a fine film .", return_tensors="pt").to(model.device)
    model.set_attn_implementation("eager")
    with torch.no_grad():
        weights = torch.stack(model(**enc, output_attentions=True).attentions)[:, 0].cpu()
    from course_utils.widgets import attention_explorer

    explorer = attention_explorer(lambda s: (tokenizer.convert_ids_to_tokens(enc["input_ids"][0].tolist()), weights),
                                  sentences=["a fine film ."], layer=1, head=0, title="tiny")
    assert explorer is not None


def test_from_scratch_attention_runs_on_cuda_with_a_causal_mask():
    from course_utils.attention import MultiHeadAttention, causal_mask

    mha = MultiHeadAttention(d_model=32, num_heads=4).to(CUDA)
    x = torch.randn(2, 10, 32, device=CUDA)
    out, weights = mha(x, mask=causal_mask(10, device=x.device))
    assert out.device.type == "cuda" and torch.allclose(weights.sum(-1), torch.ones(2, 4, 10, device=CUDA))
    assert weights[0, 0].triu(1).abs().max().item() == 0


def test_setup_on_a_gpu_picks_the_gpu_profile_and_its_precision(monkeypatch, capsys):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    cfg = course_utils.setup()
    assert cfg.device.type == "cuda" and cfg.profile.name == "gpu"
    major, _ = torch.cuda.get_device_capability()
    expected = torch.bfloat16 if major >= 8 else torch.float16 if major >= 7 else torch.float32
    assert cfg.amp.dtype == expected
    assert "profile gpu" in capsys.readouterr().out


def test_packaged_smollm2_on_cuda_greedy_matches_the_cpu_and_ends_with_its_header_token():
    """Chapter 8's real decoder on the GPU (the gpu-check profile's notebooks use its tiny stand-in):
    float32 weights, the GGUF header's end token, the same greedy answer as on the CPU."""
    from course_utils.models import decoder_special_tokens, load_decoder, resolve_decoder
    from course_utils.profiles import get_profile

    choice = resolve_decoder(get_profile("cpu"))
    model, tok = load_decoder(choice)
    assert tok.eos_token_id == decoder_special_tokens(choice)["eos"] and tok.eos_token == "<|im_end|>"
    prompt = tok("The capital of France is", return_tensors="pt")
    greedy = dict(max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
    on_cpu = model.generate(**prompt, **greedy)
    model.to(CUDA)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    on_gpu = model.generate(**prompt.to(CUDA), **greedy).cpu()
    assert torch.equal(on_gpu, on_cpu), (tok.decode(on_cpu[0]), tok.decode(on_gpu[0]))

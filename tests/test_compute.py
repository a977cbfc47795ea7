"""The calculator's arithmetic reproduces the worked examples of its sources."""

import math

import pytest

from course_utils.compute import (
    FP32_ADAMW,
    GPUS,
    MIXED_ADAMW,
    MIXED_ADAMW_FP32_GRADS,
    activation_bytes,
    activation_bytes_per_layer,
    cost_per_million_tokens,
    decode_step_s,
    decode_tokens_per_s,
    devices_to_fit,
    flops_per_token,
    fsdp_shard_numel,
    gpus_for_deadline,
    kv_cache_bytes_per_token,
    max_decode_batch,
    mfu,
    model_state_bytes,
    prefill_s,
    serving_plan,
    training_flops,
    training_time_s,
    zero_bytes_per_device,
)


def test_zero_figure_1_per_device_memory_for_7_5b_parameters_on_64_gpus():
    # Rajbhandari et al. 2020, Fig. 1: 120 GB, 31.4 GB, 16.6 GB, 1.9 GB for stages 0-3.
    gb = [zero_bytes_per_device(7.5e9, 64, stage) / 1e9 for stage in range(4)]
    assert gb == pytest.approx([120, 31.4, 16.6, 1.9], abs=0.05)


def test_zero_gpt2_1_5b_needs_24_gb_of_model_states_in_mixed_precision():
    # ZeRO §3.1: "at least 24 GB" for GPT-2's 1.5 B parameters against 3 GB of fp16 weights.
    states = model_state_bytes(1.5e9, MIXED_ADAMW)
    assert states["total"] == pytest.approx(24e9) and states["weights"] == pytest.approx(3e9)


def test_bytes_per_parameter_16_for_fp32_and_zero_mixed_18_for_hf_mixed():
    assert (FP32_ADAMW.total, MIXED_ADAMW.total, MIXED_ADAMW_FP32_GRADS.total) == (16, 16, 18)


def test_zero_on_one_device_is_plain_data_parallelism_for_every_stage():
    assert {zero_bytes_per_device(1e9, 1, s) for s in range(4)} == {16e9}


def test_gpt3_training_compute_is_6nd_3_15e23():
    assert training_flops(175e9, 300e9) == pytest.approx(3.15e23)


def test_inference_is_a_third_of_training_per_token_with_and_without_attention():
    shape = dict(n_layers=12, d_model=768, seq_len=1024)
    assert flops_per_token(1e8, training=False) * 3 == flops_per_token(1e8)
    assert flops_per_token(85e6, training=False, **shape) * 3 == pytest.approx(flops_per_token(85e6, **shape))


def test_attention_term_matches_nanogpt_estimate_mfu_12_l_h_q_t():
    # nanoGPT: flops_per_token = 6N + 12 L H Q T, with H heads of size Q (H Q = d).
    L, H, Q, T, N = 12, 12, 64, 1024, 85e6
    assert flops_per_token(N, n_layers=L, d_model=H * Q, seq_len=T) == 6 * N + 12 * L * H * Q * T


def test_korthikanti_activation_memory_34_sbh_plus_5_as2b_in_16_bit_with_dropout():
    s, b, h, a = 2048, 4, 12288, 96  # GPT-3 175B's layer shape (Korthikanti et al. 2022, Table 3)
    expected = s * b * h * (34 + 5 * a * s / h)
    assert activation_bytes_per_layer(s, b, h, a) == pytest.approx(expected)


def test_fused_attention_drops_the_quadratic_term():
    small = activation_bytes_per_layer(128, 2, 64, 4, bytes_per_value=4, dropout=False, saves_attention_matrix=False)
    assert small == 16 * 4 * 128 * 2 * 64 + 4 * 4 * 128 * 2
    long = activation_bytes_per_layer(256, 2, 64, 4, bytes_per_value=4, dropout=False, saves_attention_matrix=False)
    assert long == pytest.approx(2 * small)  # linear in the sequence length


def test_fsdp_shards_along_the_first_dimension_like_torch_chunk():
    assert [fsdp_shard_numel((5, 64), 2, r) for r in range(2)] == [192, 128]
    assert [fsdp_shard_numel((3,), 4, r) for r in range(4)] == [1, 1, 1, 0]
    # The two-layer MLP 33 -> 64 -> 5 (2,501 parameters) measured under FSDP2 on 2 ranks: 1,283 / 1,218.
    shapes = [(64, 33), (64,), (5, 64), (5,)]
    per_rank = [sum(fsdp_shard_numel(s, 2, r) for s in shapes) for r in range(2)]
    assert per_rank == [1283, 1218] and sum(per_rank) == 2501


def test_fsdp_storage_is_padded_to_the_first_chunk_on_every_rank():
    # FSDP2 allocates chunks[0].size() on every rank: rank 1 of the 5-row weight holds 3 rows of storage
    assert [fsdp_shard_numel((5, 64), 2, r, padded=True) for r in range(2)] == [192, 192]
    assert [fsdp_shard_numel((5,), 4, r, padded=True) for r in range(4)] == [2, 2, 2, 2]  # 2, 2, 1, 0 unpadded
    # chapter 10's MLP 16 -> 63 -> 3 on 2 ranks: the review measured 2,688 B of storage on *both* ranks
    shapes = [(63, 16), (63,), (3, 63), (3,)]
    assert [4 * sum(fsdp_shard_numel(s, 2, r, padded=True) for s in shapes) for r in range(2)] == [2688, 2688]
    assert [4 * sum(fsdp_shard_numel(s, 2, r) for s in shapes) for r in range(2)] == [2688, 2364]


def _saved_bytes(model, run):
    """Bytes of the distinct storages autograd saves during run(), parameters excluded."""
    import torch

    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages = {}

    def pack(t):
        if t.untyped_storage().data_ptr() not in weights:
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        run()
    return sum(storages.values())


def _block(d, heads, context):
    """Chapter 10's pre-LN block: causal attention written out, mask added, GELU MLP."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
            self.register_buffer("future", torch.full((context, context), float("-inf")).triu(1))

        def forward(self, x):
            b, t, _ = x.shape
            q, k, v = (z.view(b, t, heads, -1).transpose(1, 2) for z in self.qkv(self.ln1(x)).split(d, -1))
            w = (q @ k.transpose(-2, -1) / (d // heads) ** 0.5 + self.future[:t, :t]).softmax(-1)
            x = x + self.proj((w @ v).transpose(1, 2).reshape(b, t, d))
            return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.ln2(x))))

    return Block()


@pytest.mark.parametrize("autocast", [False, True])
def test_activation_formula_matches_the_bytes_autograd_saves_in_fp32_and_under_autocast(autocast):
    import torch

    torch.manual_seed(0)
    b, s, d, heads = 4, 32, 64, 4
    block = _block(d, heads, s)
    x = torch.randn(b, s, d, requires_grad=True)
    weights_16 = 2 * sum(m.weight.numel() for m in block.modules() if isinstance(m, torch.nn.Linear))

    def run():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            block(x).float().sum().backward()

    got = _saved_bytes(block, run) - (weights_16 if autocast else 0)  # autocast's 16-bit weight copies
    want = activation_bytes_per_layer(s, b, d, heads, bytes_per_value=2 if autocast else 4, dropout=False,
                                      autocast=autocast)
    # what is left: LayerNorm's per-position mean and 1/std (2 x 2 x b x s fp32 values)
    assert got - want == 2 * 2 * b * s * 4
    if autocast:  # Megatron's 16-bit count undercounts PyTorch autocast by well over 1.1x here
        assert want > 1.1 * activation_bytes_per_layer(s, b, d, heads, bytes_per_value=2, dropout=False)


def test_full_recomputation_keeps_layer_inputs_and_costs_8n():
    assert flops_per_token(1e9, n_layers=4, d_model=256, seq_len=128, recompute=True) == pytest.approx(
        4 / 3 * flops_per_token(1e9, n_layers=4, d_model=256, seq_len=128))
    kept = activation_bytes(32, 4096, 1, 4096, 32, recompute="full")
    one_layer = activation_bytes(32, 4096, 1, 4096, 32) / 32
    assert kept == pytest.approx(32 * 4 * 4096 * 4096 + one_layer)
    with pytest.raises(ValueError, match="recompute must be"):
        activation_bytes(2, 8, 1, 8, 2, recompute="some")


def test_kv_cache_of_a_llama_3_1_8b_class_model_is_128_kib_per_token():
    assert kv_cache_bytes_per_token(32, 8, 128) == 128 * 1024


def test_kv_cache_reads_slow_decoding_and_cap_the_batch_on_an_h100():
    gpu, kv = GPUS["H100 SXM"], kv_cache_bytes_per_token(32, 8, 128)
    # the review's recomputation: 8 B at batch 32 and 2,048 tokens: 16 GB of weights + 8.6 GB of KV per step
    with_kv = decode_tokens_per_s(8e9, gpu, batch=32, context=2048, kv_bytes_per_token=kv)
    assert with_kv == pytest.approx(32 * 3.35e12 / (16e9 + 32 * 2048 * kv))
    assert with_kv < decode_tokens_per_s(8e9, gpu, batch=32)
    assert max_decode_batch(8e9, gpu, context=2048, kv_bytes_per_token=kv) == 208 < 256
    assert decode_step_s(8e9, gpu) == pytest.approx(16e9 / 3.35e12)  # time per output token at batch 1
    assert prefill_s(8e9, gpu, prompt_tokens=1000) == pytest.approx(2 * 8e9 * 1000 / (989e12 * 0.4))


def test_serving_plan_follows_little_law_and_the_rent_over_the_traffic():
    gpu, kv = GPUS["H100 SXM"], kv_cache_bytes_per_token(32, 8, 128)
    plan = serving_plan(2000, 8e9, gpu, context=2048, kv_bytes_per_token=kv, price_per_hour=3.0)
    assert plan["gpus"] == 1
    assert plan["batch"] == pytest.approx(2000 * plan["step_s"], rel=1e-6)  # batch = rate x step time
    assert plan["cost_per_million"] == pytest.approx(3.0 / (2000 * 3600) * 1e6)
    big = serving_plan(20000, 8e9, gpu, context=2048, kv_bytes_per_token=kv, price_per_hour=3.0)
    assert big["gpus"] == math.ceil(20000 / big["capacity_tokens_per_s"]) == 3
    tight = serving_plan(20000, 8e9, gpu, context=2048, kv_bytes_per_token=kv, max_step_s=0.008)
    assert tight["max_batch"] < big["max_batch"] and tight["step_s"] <= 0.008 and tight["gpus"] > 3
    with pytest.raises(ValueError, match="no batch fits"):
        serving_plan(100, 70e9, GPUS["T4"], context=2048, kv_bytes_per_token=kv)


def test_training_time_and_gpu_count_are_inverse():
    flops, gpu = 3.15e23, GPUS["A100 80GB SXM"]
    seconds = training_time_s(flops, gpu, n_gpus=1024, mfu=0.4)
    assert seconds / 86400 == pytest.approx(28.5, abs=0.1)
    assert gpus_for_deadline(flops, gpu, seconds, mfu=0.4) == 1024
    assert gpus_for_deadline(flops, gpu, seconds * 1.0001, mfu=0.4) == 1024  # 1023.9 rounds up


def test_mfu_is_achieved_flops_over_peak():
    assert mfu(tokens_per_s=1000, flops_per_tok=6e8, peak_flops=1e12) == pytest.approx(0.6)


def test_devices_to_fit_zero_3_scales_and_plain_data_parallelism_never_fits_a_big_model():
    h100 = GPUS["H100 SXM"]  # 80 GB, 64 GB usable for model states
    assert devices_to_fit(70e9, h100, stage=0) is None  # 1.12 TB on every device
    n = devices_to_fit(70e9, h100, stage=3)
    assert n == math.ceil(70e9 * 16 / 64e9) == 18
    assert devices_to_fit(1e9, h100, stage=0) == 1


def test_decoding_is_memory_bound_at_batch_1_and_compute_bound_at_large_batch():
    gpu, n = GPUS["H100 SXM"], 7e9
    one = decode_tokens_per_s(n, gpu, batch=1)
    assert one == pytest.approx(gpu.bandwidth / (2 * n))  # ~239 tokens/s: weights read once per token
    big = decode_tokens_per_s(n, gpu, batch=4096)
    assert big == pytest.approx(gpu.peak_flops * 0.4 / (2 * n))  # the same default MFU as estimate()


def test_cost_per_million_tokens_of_a_3_dollar_gpu_at_1000_tokens_per_s():
    assert cost_per_million_tokens(3.0, 1000) == pytest.approx(0.8333, abs=1e-4)


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="stage must be"):
        zero_bytes_per_device(1e9, 8, stage=4)
    with pytest.raises(ValueError, match="mfu must be"):
        training_time_s(1e20, GPUS["T4"], mfu=40)
    with pytest.raises(ValueError, match="rank must be"):
        fsdp_shard_numel((4, 4), 2, 2)


def test_every_gpu_row_cites_its_source():
    for gpu in GPUS.values():
        assert "datasheet" in gpu.source and gpu.peak_flops > 1e13 and gpu.memory_bytes >= 16e9


def test_estimate_7b_on_2t_tokens_with_64_h100_takes_about_38_days():
    from course_utils.compute import estimate

    e = estimate(7e9, 2e12, GPUS["H100 SXM"], n_gpus=64, mfu=0.4, price_per_hour=3.0)
    assert e["train_days"] == pytest.approx(8.4e22 / (64 * 989e12 * 0.4) / 86400)
    assert e["train_days"] == pytest.approx(38.4, abs=0.1)
    assert e["train_cost"] == pytest.approx(e["gpu_hours"] * 3.0)
    assert e["devices_to_fit"][3] == 2 and e["devices_to_fit"][0] is None  # 112 GB of states


def test_estimate_counts_activations_in_the_fit_and_kv_caches_in_serving():
    from course_utils.compute import estimate

    gpu = GPUS["H100 SXM"]
    shape = dict(n_layers=32, d_model=4096, n_heads=32, seq_len=4096)
    plain = estimate(7e9, 2e12, gpu, n_gpus=64)
    full = estimate(7e9, 2e12, gpu, n_gpus=64, recompute="full", **shape)
    none = estimate(7e9, 2e12, gpu, n_gpus=64, **shape)
    assert full["activation_bytes_per_device"] == pytest.approx(activation_bytes(32, 4096, 1, 4096, 32, recompute="full"))
    assert none["activation_bytes_per_device"] > full["activation_bytes_per_device"] > 0
    assert plain["devices_to_fit"][3] <= full["devices_to_fit"][3] <= none["devices_to_fit"][3]
    kv = kv_cache_bytes_per_token(32, 8, 128)
    served = estimate(8e9, 2e12, gpu, serve_batch=512, serve_context=2048, kv_bytes_per_token=kv)
    assert served["serve_batch"] == served["serve_max_batch"] == 208  # capped by memory
    assert served["serve_tokens_per_s"] == pytest.approx(208 / served["serve_step_s"])


def test_calculator_draws_a_static_figure_with_the_estimate(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    from course_utils.compute import calculator_figure

    fig, numbers = calculator_figure(n_params=1e9, tokens=2e10, gpu="T4", n_gpus=4)
    bars = [p.get_height() for p in fig.axes[0].patches]
    assert bars == pytest.approx([b / 1e9 for b in numbers["bytes_per_device"]])
    assert bars[0] == pytest.approx(16) and bars[3] == pytest.approx(4)


def test_calculator_with_live_controls_shows_the_same_numbers(capsys):
    import matplotlib

    matplotlib.use("Agg")
    from course_utils.compute import cost_calculator, estimate

    shown = cost_calculator(interactive=True, n_params=1e9, tokens=2e10, gpu="T4", n_gpus=4)
    assert shown == estimate(1e9, 2e10, GPUS["T4"], n_gpus=4)
    assert "VBox" in capsys.readouterr().out  # the controls were displayed under the figure


def test_a_frozen_base_keeps_only_its_weights():
    # LoRA on an 8 B model: 4e7 adapter parameters trained, the base frozen in 16 bits
    lora = model_state_bytes(8.04e9, MIXED_ADAMW, trainable_params=4e7)
    assert lora["total"] == pytest.approx(2 * 8.04e9 + (2 + 12) * 4e7)
    assert model_state_bytes(8e9, MIXED_ADAMW, trainable_params=8e9) == model_state_bytes(8e9, MIXED_ADAMW)
    with pytest.raises(ValueError, match="trainable_params must be"):
        model_state_bytes(1e9, trainable_params=2e9)

"""How much compute, memory, time and money a Transformer needs: the arithmetic of chapter 10.

Every function is a formula from a named source, written so that it can be checked by hand::

    flops = training_flops(n_params=124e6, tokens=10e9)          # 6 N D = 7.4e18 FLOPs
    days = training_time_s(flops, GPUS["A100 80GB SXM"], n_gpus=8, mfu=0.4) / 86400
    zero_bytes_per_device(7.5e9, n_devices=64, stage=1) / 1e9    # 31.4 GB (ZeRO paper, Fig. 1)
    cost_per_million_tokens(price_per_hour=3.0, tokens_per_s=1000)  # $0.83

Units: FLOPs are floating-point operations (a multiply and an add count as two), bytes are bytes
(divide by 1e9 for the GB of papers and datasheets, by 2**30 for GiB), times are seconds, prices are
US dollars. The model is described by ``n_params`` (N), ``n_layers`` (L), ``d_model`` (d) and the
context length ``seq_len`` (T).

The table :data:`GPUS` holds each accelerator's dense (no sparsity) peak for 16-bit matrix products,
its memory and its memory bandwidth, each row with the datasheet it comes from. Peaks are what the
vendor promises, not what a model reaches: multiply by a model-FLOPs utilisation (MFU) of 0.3-0.5
for a well-tuned large training run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# ------------------------------------------------------------------------------------------ FLOPs


def flops_per_token(n_params: float, *, n_layers: int = 0, d_model: int = 0, seq_len: int = 0,
                    training: bool = True, recompute: bool = False) -> float:
    """FLOPs to process one token: ``6 N + 12 L T d`` for training, ``2 N + 4 L T d`` for inference.

    ``n_params`` counts the weights that multiply activations (every ``nn.Linear`` weight, and the
    output head); an embedding lookup is not a matrix product and costs nothing here. The forward pass
    does one multiply-add (2 FLOPs) per weight per token: 2N. The backward pass computes two products
    of the same size per weight matrix, the gradient for the input and the gradient for the weight: 4N.
    Attention adds products whose size grows with the context instead of the weights: per layer and
    token, ``q·kᵀ`` over T keys and the weighted sum of T values, each ``2 T d`` FLOPs forward, so
    ``4 L T d`` forward and three times that for training: ``6N + 12 L T d``, the form of PaLM
    (Chowdhery et al. 2022, App. B) and nanoGPT's ``estimate_mfu``. Kaplan et al. (2020, Table 1)
    count half of the attention term, ``2 L T d``, as if each token saw on average half the context.

    A causal model could skip the masked half of ``q·kᵀ``; most kernels, and PyTorch's FLOP counter,
    compute the whole square, and so does this formula.

    ``recompute=True`` (activation checkpointing of every layer) runs each forward pass a second time
    during the backward pass: ``8 N + 16 L T d``. These are the *hardware* FLOPs the chip executes;
    the *model* FLOPs of MFU stay ``6 N + 12 L T d`` (Narayanan et al. 2021 count 8N for this reason).

    Example: ``flops_per_token(85e6, n_layers=12, d_model=768, seq_len=1024)`` is 6.2e8 (5.1e8 of it the 6N term).
    """
    for name, value in (("n_params", n_params), ("n_layers", n_layers), ("d_model", d_model), ("seq_len", seq_len)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    forward = 2 * n_params + 4 * n_layers * seq_len * d_model
    if recompute and not training:
        raise ValueError("recompute=True needs training=True: inference saves nothing to recompute")
    return (4 if recompute else 3) * forward if training else forward


def training_flops(n_params: float, tokens: float, **attention) -> float:
    """Total training FLOPs ``C = flops_per_token · D`` for ``tokens`` = D (``6 N D`` without attention).

    Example: GPT-3, 175e9 parameters on 300e9 tokens: ``training_flops(175e9, 300e9)`` = 3.15e23.
    """
    if tokens < 0:
        raise ValueError(f"tokens must be >= 0, got {tokens}")
    return flops_per_token(n_params, training=True, **attention) * tokens


# ----------------------------------------------------------------------------------- hardware


@dataclass(frozen=True)
class GPU:
    """One accelerator: dense 16-bit matmul peak (FLOP/s), memory (bytes), bandwidth (bytes/s), source."""

    name: str
    peak_flops: float
    memory_bytes: float
    bandwidth: float
    source: str


# Dense (non-sparse) BF16/FP16 tensor-core peaks; datasheets print the sparse figure (2x) beside it.
GPUS: dict[str, GPU] = {gpu.name: gpu for gpu in (
    GPU("T4", 65e12, 16e9, 320e9, "NVIDIA T4 datasheet (2019): FP16 tensor 65 TFLOPS, 16 GB GDDR6, 320 GB/s"),
    GPU("V100 32GB SXM2", 125e12, 32e9, 900e9,
        "NVIDIA V100 datasheet (2020): tensor 125 TFLOPS (SXM2), 32 GB HBM2, 900 GB/s"),
    GPU("L4", 121e12, 24e9, 300e9,
        "NVIDIA L4 datasheet (2023): BF16 242 TFLOPS with sparsity (121 dense), 24 GB, 300 GB/s"),
    GPU("A100 80GB SXM", 312e12, 80e9, 2039e9,
        "NVIDIA A100 datasheet (2021): BF16 312 TFLOPS dense, 80 GB HBM2e, 2,039 GB/s"),
    GPU("H100 SXM", 989e12, 80e9, 3350e9,
        "NVIDIA H100 datasheet (2023): BF16 1,979 TFLOPS with sparsity (989 dense), 80 GB HBM3, 3.35 TB/s"),
    GPU("H200 SXM", 989e12, 141e9, 4800e9,
        "NVIDIA H200 datasheet (2024): BF16 1,979 TFLOPS with sparsity (989 dense), 141 GB HBM3e, 4.8 TB/s"),
)}


def training_time_s(total_flops: float, gpu: GPU, *, n_gpus: int = 1, mfu: float = 0.4) -> float:
    """Wall-clock seconds: ``C / (n_gpus · peak · MFU)``.

    Example: ``training_time_s(3.15e23, GPUS["A100 80GB SXM"], n_gpus=1024, mfu=0.4)`` ≈ 2.5e6 s (28 days).
    """
    if n_gpus < 1:
        raise ValueError(f"n_gpus must be >= 1, got {n_gpus}")
    if not 0 < mfu <= 1:
        raise ValueError(f"mfu must be in (0, 1], got {mfu}: it is a fraction of the peak, e.g. 0.4")
    return total_flops / (n_gpus * gpu.peak_flops * mfu)


def gpus_for_deadline(total_flops: float, gpu: GPU, seconds: float, *, mfu: float = 0.4) -> int:
    """The fewest GPUs that do ``total_flops`` within ``seconds`` at ``mfu`` (rounded up)."""
    if seconds <= 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    return max(1, math.ceil(total_flops / (seconds * gpu.peak_flops * mfu)))


def mfu(tokens_per_s: float, flops_per_tok: float, peak_flops: float) -> float:
    """Model-FLOPs utilisation: the FLOP/s the model's arithmetic needs at this speed, over the peak.

    Example: 1,000 tokens/s of a model needing 6e8 FLOPs/token on a 1e12 FLOP/s machine: 0.6.
    """
    if peak_flops <= 0:
        raise ValueError(f"peak_flops must be > 0, got {peak_flops}")
    return tokens_per_s * flops_per_tok / peak_flops


# ------------------------------------------------------------------------------------- memory


@dataclass(frozen=True)
class Precision:
    """Bytes per parameter of each model state: weights, gradients, optimizer (incl. fp32 master copy)."""

    name: str
    weights: float
    gradients: float
    optimizer: float

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer


# fp32 AdamW: 4 (weights) + 4 (gradients) + 8 (two moments), what a CPU run of this course uses.
FP32_ADAMW = Precision("fp32 AdamW", 4, 4, 8)
# Mixed precision as ZeRO counts it (Rajbhandari et al. 2020, §3.1): fp16 weights and gradients,
# and K = 12 bytes of fp32 optimizer state (master weights, momentum, variance): 16 bytes.
MIXED_ADAMW = Precision("mixed AdamW (ZeRO: fp16 grads)", 2, 2, 12)
# Mixed precision as Hugging Face's "model memory anatomy" counts it: fp16 + fp32 weights (6),
# fp32 gradients (4), two fp32 moments (8): 18 bytes.
MIXED_ADAMW_FP32_GRADS = Precision("mixed AdamW (HF: fp32 grads)", 6, 4, 8)
PRECISIONS = {p.name: p for p in (FP32_ADAMW, MIXED_ADAMW, MIXED_ADAMW_FP32_GRADS)}


def model_state_bytes(n_params: float, precision: Precision = FP32_ADAMW, *,
                      trainable_params: float | None = None) -> dict[str, float]:
    """Bytes of weights, gradients and optimizer state for ``n_params`` parameters, and their total.

    ``trainable_params`` (default: all of them) are the ones the optimizer updates; frozen weights
    (a LoRA or QLoRA base model) keep only their ``precision.weights`` bytes, with no gradient and
    no optimizer state (which in mixed precision includes the fp32 master copy).

    Example: ``model_state_bytes(1.5e9, MIXED_ADAMW)["total"]`` is 24e9, ZeRO's GPT-2 1.5 B example;
    an 8e9-parameter base with 4e7 LoRA parameters trained: 2 · 8.04e9 + 14 · 4e7 = 16.6e9.
    """
    if n_params < 0:
        raise ValueError(f"n_params must be >= 0, got {n_params}")
    trained = n_params if trainable_params is None else trainable_params
    if not 0 <= trained <= n_params:
        raise ValueError(f"trainable_params must be in [0, n_params={n_params:g}], got {trained:g}")
    parts = {"weights": precision.weights * n_params, "gradients": precision.gradients * trained,
             "optimizer": precision.optimizer * trained}
    return {**parts, "total": sum(parts.values())}


def zero_bytes_per_device(n_params: float, n_devices: int, stage: int,
                          precision: Precision = MIXED_ADAMW) -> float:
    """Model-state bytes on each of ``n_devices`` data-parallel devices under ZeRO ``stage`` 0-3.

    Stage 0 is plain data parallelism: every device holds everything. Stage 1 shards the optimizer
    state, stage 2 also the gradients, stage 3 also the weights (FSDP's full sharding); a sharded
    state costs ``1/n_devices`` of itself per device (ZeRO paper, Fig. 1 and §5).

    Example (ZeRO Fig. 1, 7.5 B parameters, 64 devices): stages 0-3 give 120, 31.4, 16.6, 1.9 GB.
    """
    if n_devices < 1:
        raise ValueError(f"n_devices must be >= 1, got {n_devices}")
    if stage not in (0, 1, 2, 3):
        raise ValueError(f"stage must be 0, 1, 2 or 3 (ZeRO's stages), got {stage}")
    w, g, o = precision.weights, precision.gradients, precision.optimizer
    sharded = (0, o, g + o, w + g + o)[stage]
    return n_params * ((w + g + o - sharded) + sharded / n_devices)


def devices_to_fit(n_params: float, gpu: GPU, stage: int, precision: Precision = MIXED_ADAMW, *,
                   usable_fraction: float = 0.8, max_devices: int = 1 << 16) -> int | None:
    """The fewest devices whose memory holds the model states under ZeRO ``stage``, or None if no count does.

    ``usable_fraction`` of each device's memory is given to model states; the rest is left for
    activations, temporary buffers and the framework. Without sharding of a part, adding devices does
    not shrink it, so stages 0-2 may never fit a large model: then the answer is None.
    """
    budget = gpu.memory_bytes * usable_fraction
    for n in (1, *range(2, max_devices + 1)):
        if zero_bytes_per_device(n_params, n, stage, precision) <= budget:
            return n
        if stage == 0:
            return None
    return None


def fsdp_shard_numel(shape: tuple[int, ...], world: int, rank: int, *, padded: bool = False) -> int:
    """Elements of a parameter of ``shape`` that FSDP2 (``fully_shard``) keeps on ``rank`` of ``world``.

    FSDP2 cuts every parameter along its first dimension as ``torch.chunk`` does: chunks of
    ``ceil(rows / world)`` rows, so the first ranks get full chunks, later ranks the remainder, and
    ranks past the end nothing (5 rows on 4 ranks: 2, 2, 1, 0). That is the *logical* shard
    (``padded=False``), and the size of AdamW's moments, which are created like the shard.

    The parameter's *storage* is padded: every rank allocates a full first chunk, so that the
    all-gather, which needs inputs of one size on every rank, can read it without a copy
    (``padded=True``; FSDP2's ``_fsdp_param.py`` allocates ``chunks[0].size()`` on each rank).

    A ``(5, 64)`` weight on 2 ranks: 3 rows (192) and 2 rows (128); padded, 192 on both.
    """
    if not 0 <= rank < world:
        raise ValueError(f"rank must be in 0..{world - 1}, got {rank}")
    if not shape:
        return 1 if rank == 0 or padded else 0
    rows, per_row = shape[0], math.prod(shape[1:])
    chunk = math.ceil(rows / world)
    mine = chunk if padded else min(chunk, max(0, rows - rank * chunk))
    return mine * per_row


def activation_bytes_per_layer(seq_len: int, batch: int, d_model: int, n_heads: int, *,
                               bytes_per_value: int = 2, dropout: bool = True,
                               saves_attention_matrix: bool = True, autocast: bool = False) -> float:
    """Bytes a pre-LN Transformer layer (4d-wide MLP, GELU) saves for its backward pass.

    Counts each tensor that autograd keeps, once: the two LayerNorm inputs (2 sbd), the QKV input (sbd),
    Q, K and V (3 sbd), the output projection's input (sbd), the MLP's inputs to the first matrix (sbd),
    to GELU (4 sbd) and to the second matrix (4 sbd): 16 sbd values. Attention that materialises its
    probabilities also keeps the ``heads × s × s`` matrix per example; a fused kernel
    (FlashAttention, PyTorch's SDPA) keeps the output (already counted as the projection's input) and
    one fp32 log-sum-exp per head and position instead. Dropout keeps a one-byte mask per dropped value
    and, after the attention softmax, its output.

    With 16-bit values and dropout this is Korthikanti et al. (2022)'s ``s b h (34 + 5 a s / h)``: it
    counts Megatron's fp16 training, where LayerNorm and softmax outputs are kept in 16 bits too.

    ``autocast=True`` counts PyTorch's automatic mixed precision instead (``torch.autocast``, with
    ``bytes_per_value`` the 16-bit size): the residual stream stays fp32, so both LayerNorm inputs are
    fp32 (8 sbd bytes); each matrix product saves a new 16-bit copy of its input (the QKV and MLP
    inputs, 2 + 2 bytes per value of ``d``); the 12 other values stay 16-bit; and a materialised
    softmax is computed and kept in fp32 *and* cast to 16 bits for the product with V: 4 + 2 bytes per
    score. That is ``36 sbd + 6 a s² b`` bytes, about 1.1-1.6 times the 16-bit count, not half of
    fp32. (Autocast also keeps a 16-bit copy of every weight, 2 bytes per parameter, for the pass.)
    Dropout under autocast is not modelled: pass ``dropout=False``.
    """
    sbd, e = seq_len * batch * d_model, bytes_per_value
    scores = n_heads * seq_len * seq_len * batch
    if autocast:
        if dropout:
            raise ValueError("autocast=True models a layer without dropout; pass dropout=False")
        total = 8 * sbd + 14 * e * sbd  # fp32 LayerNorm inputs; 16-bit copies and products
        if saves_attention_matrix:
            return total + (4 + e) * scores
        return total + 4 * n_heads * seq_len * batch
    total = 16 * e * sbd
    if saves_attention_matrix:
        total += e * scores
    else:
        total += 4 * n_heads * seq_len * batch  # log-sum-exp, fp32
    if dropout:
        total += 2 * sbd  # masks after attention and after the MLP, one byte each
        if saves_attention_matrix:
            total += scores + e * scores  # mask and output of the attention dropout
    return total


def activation_bytes(n_layers: int, seq_len: int, batch: int, d_model: int, n_heads: int, *,
                     recompute: str = "none", bytes_per_value: int = 2, autocast: bool = True,
                     saves_attention_matrix: bool = False) -> float:
    """Activation bytes of ``n_layers`` layers for a micro-batch, with or without recomputation.

    ``recompute="none"`` keeps every layer's activations (:func:`activation_bytes_per_layer`) until
    the backward pass. ``recompute="full"`` (activation checkpointing, Chen et al. 2016; Korthikanti
    et al. 2022) keeps only each layer's input (``s b d`` values, fp32 under autocast) and recomputes
    one layer's activations at a time during the backward pass, at the price of a second forward pass
    (``flops_per_token(..., recompute=True)``). The defaults describe a current LLM fine-tune: 16-bit
    autocast and a fused attention kernel. The output layer and loss are not included.

    Example: a 7 B model (32 layers, d = 4096, 32 heads) on one sequence of 4,096 tokens keeps
    ``activation_bytes(32, 4096, 1, 4096, 32)`` = 19.3e9 bytes; with ``recompute="full"`` 2.75e9.
    """
    if recompute not in ("none", "full"):
        raise ValueError(f"recompute must be 'none' or 'full', got {recompute!r}")
    layer = activation_bytes_per_layer(seq_len, batch, d_model, n_heads, bytes_per_value=bytes_per_value,
                                       dropout=False, saves_attention_matrix=saves_attention_matrix,
                                       autocast=autocast)
    if recompute == "none":
        return n_layers * layer
    layer_input = (4 if autocast else bytes_per_value) * seq_len * batch * d_model
    return n_layers * layer_input + layer


# ------------------------------------------------------------------------------------ serving


def kv_cache_bytes_per_token(n_layers: int, n_kv_heads: int, d_head: int, bytes_per_value: int = 2) -> int:
    """Bytes of KV cache one token of context occupies: a key and a value per layer and KV head.

    ``2 · n_layers · n_kv_heads · d_head · bytes`` (Pope et al. 2022; kipp.ly's "Transformer inference
    arithmetic"). Grouped-query attention shares each KV head between several query heads, which is
    why ``n_kv_heads`` can be smaller than the number of heads.

    Example: a Llama-3.1-8B-class model (32 layers, 8 KV heads of 128 dimensions, 16-bit):
    ``kv_cache_bytes_per_token(32, 8, 128)`` = 131,072 bytes, 128 KiB per token.
    """
    for name, value in (("n_layers", n_layers), ("n_kv_heads", n_kv_heads), ("d_head", d_head),
                        ("bytes_per_value", bytes_per_value)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    return 2 * n_layers * n_kv_heads * d_head * bytes_per_value


def decode_step_s(n_params: float, gpu: GPU, *, batch: int = 1, context: float = 0, kv_bytes_per_token: float = 0,
                  bytes_per_param: float = 2, mfu: float = 0.4, bandwidth_fraction: float = 1.0) -> float:
    """Seconds of one decoding step for ``batch`` sequences: the time per output token (a roofline).

    Each step reads every weight once and each sequence's KV cache (``context`` tokens of
    ``kv_bytes_per_token``) from memory, at ``bandwidth_fraction`` of the datasheet bandwidth, and does
    ``2 N`` FLOPs per sequence at ``mfu`` of the peak; the slower of the two sets the pace. Attention's
    own FLOPs (``4 L T d`` per token) are left out: small beside ``2 N`` until contexts get long.

    Example: 8e9 parameters in 16 bits on an H100 at batch 1 without KV cache: 16e9 / 3.35e12 = 4.8 ms.
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    if context < 0 or kv_bytes_per_token < 0:
        raise ValueError(f"context and kv_bytes_per_token must be >= 0, got {context} and {kv_bytes_per_token}")
    if not 0 < mfu <= 1 or not 0 < bandwidth_fraction <= 1:
        raise ValueError(f"mfu and bandwidth_fraction must be in (0, 1], got {mfu} and {bandwidth_fraction}")
    read_s = (n_params * bytes_per_param + batch * context * kv_bytes_per_token) / (gpu.bandwidth * bandwidth_fraction)
    compute_s = 2 * n_params * batch / (gpu.peak_flops * mfu)
    return max(read_s, compute_s)


def decode_tokens_per_s(n_params: float, gpu: GPU, *, batch: int = 1, bytes_per_param: float = 2,
                        mfu: float = 0.4, context: float = 0, kv_bytes_per_token: float = 0,
                        bandwidth_fraction: float = 1.0) -> float:
    """Tokens per second one GPU generates for ``batch`` sequences at once: ``batch / decode_step_s``.

    Small batches are memory-bound (the weights are read once per step whatever the batch), so
    batching requests is nearly free until the compute time catches up, or until the KV caches, which
    grow with batch × context, dominate the reads. With ``context=0`` the KV cache is ignored, an
    upper bound. The bandwidth and the peak are the datasheet's: real servers reach a fraction.
    """
    return batch / decode_step_s(n_params, gpu, batch=batch, context=context, kv_bytes_per_token=kv_bytes_per_token,
                                 bytes_per_param=bytes_per_param, mfu=mfu, bandwidth_fraction=bandwidth_fraction)


def max_decode_batch(n_params: float, gpu: GPU, *, context: float, kv_bytes_per_token: float,
                     bytes_per_param: float = 2, usable_fraction: float = 0.9) -> int:
    """The most sequences of ``context`` tokens whose KV caches fit beside the weights (0: none).

    ``floor((usable_fraction · memory − N · bytes) / (context · kv_bytes_per_token))``; the rest of the
    memory is left for activations of one step and the framework.

    Example: 8e9 parameters in 16 bits on an 80 GB GPU at 2,048 tokens of 128 KiB: (72e9 − 16e9) /
    268e6 = 208 sequences.
    """
    if context <= 0 or kv_bytes_per_token <= 0:
        raise ValueError(f"context and kv_bytes_per_token must be > 0, got {context} and {kv_bytes_per_token}")
    free = gpu.memory_bytes * usable_fraction - n_params * bytes_per_param
    return max(0, math.floor(free / (context * kv_bytes_per_token)))


def prefill_s(n_params: float, gpu: GPU, *, prompt_tokens: int, bytes_per_param: float = 2,
              mfu: float = 0.4) -> float:
    """Seconds to read a prompt of ``prompt_tokens`` before the first output token (time to first token).

    The prompt's tokens go through the model together, so prefill is compute-bound: ``2 N`` FLOPs per
    token at ``mfu`` of the peak, or one read of the weights if that is slower (a very short prompt).
    """
    if prompt_tokens < 1:
        raise ValueError(f"prompt_tokens must be >= 1, got {prompt_tokens}")
    return max(2 * n_params * prompt_tokens / (gpu.peak_flops * mfu), n_params * bytes_per_param / gpu.bandwidth)


def serving_plan(tokens_per_s: float, n_params: float, gpu: GPU, *, context: float, kv_bytes_per_token: float,
                 max_step_s: float | None = None, price_per_hour: float | None = None, bytes_per_param: float = 2,
                 mfu: float = 0.4, bandwidth_fraction: float = 1.0, usable_fraction: float = 0.9) -> dict:
    """GPUs, batch and latency to generate ``tokens_per_s`` output tokens per second, on average.

    The batch is not a free choice: it is how many sequences are decoding at once, which traffic sets
    (Little's law: each GPU's batch = its share of the tokens per second × the time of one step).
    Each GPU's capacity is its throughput at the largest batch whose KV caches fit
    (:func:`max_decode_batch`) and whose step stays within ``max_step_s`` (a target time per output
    token); the plan rents as many GPUs as the traffic needs at that capacity, then finds the batch
    each one runs at (the fixed point ``b = share · step(b)``, by bisection).

    Returns ``gpus``, ``batch`` (mean sequences per GPU), ``step_s`` (time per output token),
    ``capacity_tokens_per_s`` (per GPU), ``max_batch``, and ``cost_per_million`` when
    ``price_per_hour`` (per GPU) is given: the rented hours over the tokens actually generated.
    """
    if tokens_per_s <= 0:
        raise ValueError(f"tokens_per_s must be > 0, got {tokens_per_s}")
    kw = dict(context=context, kv_bytes_per_token=kv_bytes_per_token, bytes_per_param=bytes_per_param, mfu=mfu,
              bandwidth_fraction=bandwidth_fraction)

    def step(b):
        return decode_step_s(n_params, gpu, batch=max(b, 1), **kw)

    largest = max_decode_batch(n_params, gpu, context=context, kv_bytes_per_token=kv_bytes_per_token,
                               bytes_per_param=bytes_per_param, usable_fraction=usable_fraction)
    if max_step_s is not None:
        while largest >= 1 and step(largest) > max_step_s:
            largest -= 1
    if largest < 1:
        raise ValueError(f"no batch fits: the weights and one sequence of {context:g} tokens exceed {gpu.name}'s "
                         "memory, or one step is slower than max_step_s; use more memory per replica or relax it")
    capacity = largest / step(largest)
    gpus = math.ceil(tokens_per_s / capacity)
    share = tokens_per_s / gpus
    low, high = 0.0, float(largest)  # b - share * step(b) changes sign in [0, largest]
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if mid < share * step(mid) else (low, mid)
    plan = {"gpus": gpus, "batch": high, "step_s": step(high), "capacity_tokens_per_s": capacity,
            "max_batch": largest}
    if price_per_hour is not None:
        plan["cost_per_million"] = cost_per_million_tokens(price_per_hour * gpus, tokens_per_s)
    return plan


def cost_per_million_tokens(price_per_hour: float, tokens_per_s: float) -> float:
    """Dollars per million tokens from a machine rented at ``price_per_hour`` producing ``tokens_per_s``.

    Example: a $3/hour GPU at 1,000 tokens/s: ``3 / (1000 · 3600) · 1e6`` = $0.83 per million.
    """
    if tokens_per_s <= 0:
        raise ValueError(f"tokens_per_s must be > 0, got {tokens_per_s}")
    return price_per_hour / (tokens_per_s * 3600) * 1e6


# --------------------------------------------------------------------------------- calculator


def estimate(n_params: float, tokens: float, gpu: GPU, *, n_gpus: int = 8, mfu: float = 0.4,
             price_per_hour: float = 3.0, precision: Precision = MIXED_ADAMW, serve_batch: int = 32,
             n_layers: int = 0, d_model: int = 0, n_heads: int = 1, seq_len: int = 0, micro_batch: int = 1,
             recompute: str = "none", serve_context: int = 0, kv_bytes_per_token: float = 0) -> dict:
    """Everything the calculator shows, as numbers: compute, time and cost to train, memory and GPU
    counts per ZeRO stage, and serving speed, latency and cost. ``price_per_hour`` is per GPU.

    With the model's shape (``n_layers``, ``d_model``, ``n_heads``) and ``seq_len``, the activations of
    one ``micro_batch`` per GPU (16-bit autocast, fused attention, ``recompute``) are added to the
    memory, and a device count only fits when model states *and* activations fit in 80 % of memory.
    With ``serve_context`` and ``kv_bytes_per_token``, serving reads each sequence's KV cache too, the
    batch is capped by the memory left for KV caches, and the time per output token is the step time.

    Example: ``estimate(7e9, 2e12, GPUS["H100 SXM"], n_gpus=64)["train_days"]`` is about 38 (8.4e22 FLOPs).
    """
    flops = training_flops(n_params, tokens)
    seconds = training_time_s(flops, gpu, n_gpus=n_gpus, mfu=mfu)
    activations = 0.0
    if n_layers and d_model and seq_len:
        activations = activation_bytes(n_layers, seq_len, micro_batch, d_model, n_heads, recompute=recompute)
    usable = 0.8 - activations / gpu.memory_bytes
    fit = [devices_to_fit(n_params, gpu, s, precision, usable_fraction=usable) if usable > 0 else None
           for s in range(4)]
    batch, max_batch = serve_batch, None
    if serve_context and kv_bytes_per_token:
        max_batch = max_decode_batch(n_params, gpu, context=serve_context, kv_bytes_per_token=kv_bytes_per_token)
        batch = max(1, min(serve_batch, max_batch))
    step = decode_step_s(n_params, gpu, batch=batch, context=serve_context, kv_bytes_per_token=kv_bytes_per_token,
                         mfu=mfu)
    serve = batch / step
    return {
        "train_flops": flops,
        "train_days": seconds / 86400,
        "gpu_hours": seconds * n_gpus / 3600,
        "train_cost": seconds * n_gpus / 3600 * price_per_hour,
        "bytes_per_device": [zero_bytes_per_device(n_params, n_gpus, s, precision) for s in range(4)],
        "activation_bytes_per_device": activations,
        "devices_to_fit": fit,
        "serve_batch": batch,
        "serve_max_batch": max_batch,
        "serve_step_s": step,
        "serve_tokens_per_s": serve,
        "serve_cost_per_million": cost_per_million_tokens(price_per_hour, serve),
    }


def calculator_figure(n_params: float = 7e9, tokens: float = 2e12, gpu: str = "H100 SXM", n_gpus: int = 64,
                      mfu: float = 0.4, price_per_hour: float = 3.0, precision: str = MIXED_ADAMW.name,
                      serve_batch: int = 32, **shape):
    """The calculator as a matplotlib figure: per-device memory by ZeRO stage, and the answers as text.

    ``shape`` passes :func:`estimate`'s model-shape, activation and KV-cache arguments through.
    """
    import matplotlib.pyplot as plt

    device, prec = GPUS[gpu], PRECISIONS[precision]
    e = estimate(n_params, tokens, device, n_gpus=n_gpus, mfu=mfu, price_per_hour=price_per_hour,
                 precision=prec, serve_batch=serve_batch, **shape)
    fig, (ax, text) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [1, 1.1]})
    gb = [b / 1e9 for b in e["bytes_per_device"]]
    ax.bar(["0 (DDP)", "1", "2", "3 (FSDP)"], gb, color=["grey", "C0", "C0", "C2"])
    if e["activation_bytes_per_device"]:
        ax.bar(["0 (DDP)", "1", "2", "3 (FSDP)"], [e["activation_bytes_per_device"] / 1e9] * 4, bottom=gb,
               color="C1", alpha=0.6, label="+ activations")
    ax.axhline(device.memory_bytes / 1e9, color="C3", linestyle="--", label=f"{gpu}: {device.memory_bytes / 1e9:.0f} GB")
    ax.set(yscale="log", xlabel="ZeRO stage", ylabel="memory per device (GB, log)",
           title=f"{n_params / 1e9:g} B parameters on {n_gpus} GPUs ({prec.total:g} B/param)")
    ax.set_ylim(bottom=min(gb) / 2)  # the smallest bar stays in view on the log scale
    ax.legend(loc="upper right")
    fits = ", ".join(f"{s}: {n if n else 'never'}" for s, n in enumerate(e["devices_to_fit"]))
    dollar = "$"  # printed as it is: parse_math=False below
    lines = [
        f"train on {tokens / 1e9:,.0f} B tokens: {e['train_flops']:.2e} FLOPs (6ND)",
        f"{n_gpus} x {gpu} at MFU {mfu:.0%}:",
        f"  {e['train_days']:,.1f} days, {e['gpu_hours']:,.0f} GPU-hours",
        f"  at {dollar}{price_per_hour:.2f} per GPU-hour: {dollar}{e['train_cost']:,.0f}",
        "GPUs to fit in 80% of memory, by ZeRO stage:",
        f"  {fits}",
        f"  (model states + {e['activation_bytes_per_device'] / 1e9:,.1f} GB of activations)"
        if e["activation_bytes_per_device"] else "  (model states only)",
        f"serving at batch {e['serve_batch']}"
        + (f" ({e['serve_max_batch']} fit at {shape['serve_context']:,} tokens):"
           if e["serve_max_batch"] is not None else " (KV cache not counted):"),
        f"  {e['serve_tokens_per_s']:,.0f} tokens/s per GPU, {e['serve_step_s'] * 1e3:.1f} ms/output token",
        f"  always busy: {dollar}{e['serve_cost_per_million']:.3f} per million tokens",
        f"{gpu}: peak {device.peak_flops / 1e12:,.0f} TFLOP/s, {device.bandwidth / 1e12:.2f} TB/s",
    ]
    text.axis("off")
    text.text(0, 1, "\n".join(lines), va="top", family="monospace", fontsize=9, parse_math=False)
    fig.tight_layout()
    return fig, e


def cost_calculator(interactive: bool | None = None, **choice):
    """Show the calculator: a static figure always; in a live notebook, controls that redraw it.

    ``choice`` sets the starting values (the ones a rendered book shows), named as in
    :func:`calculator_figure`. Returns the numbers of the figure on screen (:func:`estimate`).
    """
    import matplotlib.pyplot as plt
    from IPython.display import display

    from .widgets import in_live_notebook

    state = {"n_params": 7e9, "tokens": 2e12, "gpu": "H100 SXM", "n_gpus": 64, "mfu": 0.4,
             "price_per_hour": 3.0, "precision": MIXED_ADAMW.name, "serve_batch": 32, **choice}
    contexts = sorted({512, 2048, 8192, 32768, state.get("serve_context") or 2048})
    fig, numbers = calculator_figure(**state)
    plt.close(fig)
    handle = display(fig, display_id=True)
    if not (interactive if interactive is not None else in_live_notebook()):
        return numbers
    import ipywidgets as w

    controls = {
        "n_params": w.FloatLogSlider(value=state["n_params"], base=10, min=8, max=12, description="parameters"),
        "tokens": w.FloatLogSlider(value=state["tokens"], base=10, min=9, max=13.5, description="tokens"),
        "gpu": w.Dropdown(options=list(GPUS), value=state["gpu"], description="GPU"),
        "n_gpus": w.Dropdown(options=[2**k for k in range(14)], value=state["n_gpus"], description="GPUs"),
        "mfu": w.FloatSlider(value=state["mfu"], min=0.05, max=0.7, step=0.05, description="MFU"),
        "price_per_hour": w.FloatSlider(value=state["price_per_hour"], min=0.2, max=10, step=0.1,
                                        description="$/GPU-hour"),
        "precision": w.Dropdown(options=list(PRECISIONS), value=state["precision"], description="precision"),
        "serve_batch": w.Dropdown(options=[1, 8, 32, 128, 512], value=state["serve_batch"], description="serve batch"),
    }
    if state.get("kv_bytes_per_token"):
        controls["serve_context"] = w.Dropdown(options=contexts, value=state.get("serve_context") or 2048,
                                               description="context")

    def redraw(change):
        state.update({name: box.value for name, box in controls.items()})
        new, _ = calculator_figure(**state)
        plt.close(new)
        handle.update(new)

    for box in controls.values():
        box.observe(redraw, names="value")
    display(w.VBox(list(controls.values())))
    return numbers

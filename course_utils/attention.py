"""Attention from scratch: the parts chapter 5 derives and chapters 6 and 8 build on.

Chapter 5 writes each of these in the notebook, checks it against PyTorch, and then
imports this module, so later chapters use the very same code::

    out, weights = scaled_dot_product_attention(q, k, v, mask=padding_mask(lengths, seq))
    mha = MultiHeadAttention(d_model=64, num_heads=4)
    out, weights = mha(x, mask=causal_mask(seq))       # out: (batch, seq, d_model)

Masks are boolean and follow ``torch.nn.functional.scaled_dot_product_attention``:
``True`` means "may attend". (``nn.MultiheadAttention``'s ``key_padding_mask`` uses the
opposite convention, ``True`` = ignore; :func:`copy_torch_mha_weights` is only about weights.)
"""

from __future__ import annotations

import math

import torch
from torch import nn


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``softmax(q kᵀ / √d_k) v`` and the attention weights.

    Shapes: ``q: (..., seq_q, d_k)``, ``k: (..., seq_k, d_k)``, ``v: (..., seq_k, d_v)``;
    ``mask`` broadcasts to ``(..., seq_q, seq_k)``, boolean (``True`` = may attend).
    Returns ``out: (..., seq_q, d_v)`` and ``weights: (..., seq_q, seq_k)`` (rows sum to 1).
    """
    if q.size(-1) != k.size(-1):
        raise ValueError(f"q and k need the same last dimension d_k, got {q.size(-1)} and {k.size(-1)}")
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (..., seq_q, seq_k)
    if mask is not None:
        if mask.dtype != torch.bool:
            raise TypeError(f"mask must be boolean (True = may attend), got {mask.dtype}")
        scores = scores.masked_fill(~mask, float("-inf"))  # before the softmax, so rows still sum to 1
    weights = scores.softmax(dim=-1)  # over the keys: each query's weights sum to 1
    return weights @ v, weights


def padding_mask(lengths: torch.Tensor, seq_len: int) -> torch.Tensor:
    """``(batch, 1, 1, seq_len)`` boolean mask, ``True`` on real tokens: masks padded *keys*.

    The two singleton dimensions broadcast over heads and over queries.
    Example: ``padding_mask(torch.tensor([3, 1]), 3)[:, 0, 0]`` is ``[[T, T, T], [T, F, F]]``.
    """
    keep = torch.arange(seq_len, device=lengths.device)[None, :] < lengths[:, None]  # (batch, seq_len)
    return keep[:, None, None, :]


def causal_mask(seq_len: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``(seq_len, seq_len)`` boolean lower-triangular mask: position ``i`` may attend to ``j ≤ i``."""
    return torch.ones(seq_len, seq_len, dtype=torch.bool, device=device).tril()


class MultiHeadAttention(nn.Module):
    """Multi-head attention as four linear maps and two reshapes.

    ``forward(x, context=None, mask=None)``: queries come from ``x: (batch, seq_q, d_model)``,
    keys and values from ``context`` (default ``x``: self-attention). Returns
    ``out: (batch, seq_q, d_model)`` and ``weights: (batch, heads, seq_q, seq_k)``.
    """

    def __init__(self, d_model: int, num_heads: int, bias: bool = True):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by num_heads ({num_heads})")
        self.num_heads, self.d_k = num_heads, d_model // num_heads
        self.w_q = nn.Linear(d_model, d_model, bias=bias)
        self.w_k = nn.Linear(d_model, d_model, bias=bias)
        self.w_v = nn.Linear(d_model, d_model, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, seq, d_model) -> (batch, heads, seq, d_k)``."""
        batch, seq, _ = x.shape
        return x.view(batch, seq, self.num_heads, self.d_k).transpose(1, 2)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        context = x if context is None else context
        q = self.split_heads(self.w_q(x))  # (batch, heads, seq_q, d_k)
        k = self.split_heads(self.w_k(context))  # (batch, heads, seq_k, d_k)
        v = self.split_heads(self.w_v(context))  # (batch, heads, seq_k, d_k)
        out, weights = scaled_dot_product_attention(q, k, v, mask)
        batch, _, seq_q, _ = out.shape
        out = out.transpose(1, 2).reshape(batch, seq_q, self.num_heads * self.d_k)  # concatenate heads
        return self.w_o(out), weights


@torch.no_grad()
def copy_torch_mha_weights(ours: MultiHeadAttention, theirs: nn.MultiheadAttention) -> MultiHeadAttention:
    """Load the weights of a ``torch.nn.MultiheadAttention`` into ours (same sizes) and return ours.

    PyTorch packs ``W_Q, W_K, W_V`` into one ``in_proj_weight: (3·d_model, d_model)``.
    """
    if theirs.in_proj_weight is None:
        raise ValueError("theirs has separate q/k/v projections (kdim/vdim set): only the packed layout is supported")
    for name, weight in zip(("w_q", "w_k", "w_v"), theirs.in_proj_weight.chunk(3)):
        getattr(ours, name).weight.copy_(weight)
    if theirs.in_proj_bias is not None:
        for name, bias in zip(("w_q", "w_k", "w_v"), theirs.in_proj_bias.chunk(3)):
            getattr(ours, name).bias.copy_(bias)
    ours.w_o.weight.copy_(theirs.out_proj.weight)
    if theirs.out_proj.bias is not None:
        ours.w_o.bias.copy_(theirs.out_proj.bias)
    return ours


def sinusoidal_positions(seq_len: int, d_model: int) -> torch.Tensor:
    """The fixed positional encodings of Vaswani et al. (2017): ``(seq_len, d_model)``.

    ``PE[p, 2i] = sin(p / 10000^(2i/d_model))``, ``PE[p, 2i+1] = cos(p / 10000^(2i/d_model))``.
    """
    if d_model % 2:
        raise ValueError(f"d_model must be even (sine and cosine pairs), got {d_model}")
    position = torch.arange(seq_len, dtype=torch.float32)[:, None]  # (seq_len, 1)
    frequency = 10000 ** (-torch.arange(0, d_model, 2, dtype=torch.float32) / d_model)  # (d_model/2,)
    pe = torch.empty(seq_len, d_model)
    pe[:, 0::2] = torch.sin(position * frequency)
    pe[:, 1::2] = torch.cos(position * frequency)
    return pe

"""A small GPT (decoder-only Transformer) from scratch, with a KV cache, and its copy into GPT-2.

Chapter 8 trains it and checks it against ``transformers``' ``GPT2LMHeadModel``. The layout is
GPT-2's (pre-LayerNorm blocks, learned positions, tanh-GELU, output layer tied to the token
embedding), so :func:`to_gpt2` can copy the weights across one tensor at a time::

    model = GPT(GPTConfig(vocab_size=70, context=128))
    logits = model(ids)                          # ids: (batch, seq) -> logits (batch, seq, vocab)
    loss = lm_loss(logits[:, :-1], ids[:, 1:])   # next-token prediction: targets are the inputs shifted
    logits, cache = model.step(ids[:, :5])       # the same, keeping keys and values for generation
    logits, cache = model.step(ids[:, 5:6], cache)  # one more token: only its query is computed
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .attention import scaled_dot_product_attention

# One (keys, values) pair per layer, each (batch, heads, seq_so_far, d_head).
Cache = list[tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class GPTConfig:
    """Sizes of a GPT. ``context`` is the longest sequence it can read (its position table)."""

    vocab_size: int
    context: int = 128
    d_model: int = 128
    num_heads: int = 4
    num_layers: int = 4
    dropout: float = 0.0

    def __post_init__(self):
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by num_heads ({self.num_heads})")
        if self.vocab_size < 2:
            raise ValueError(f"vocab_size must be at least 2, got {self.vocab_size}")


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position ``t`` sees positions ``≤ t`` only.

    ``forward(x, past)``: ``x: (batch, seq, d_model)``; ``past`` the keys and values of earlier
    positions (or None). Returns ``(out (batch, seq, d_model), (keys, values))`` with the keys and
    values of *all* positions so far, ready to be passed back as ``past`` for the next token.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.num_heads = config.num_heads
        d = config.d_model
        self.w_q, self.w_k, self.w_v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.proj = nn.Linear(d, d)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, seq, d_model) -> (batch, heads, seq, d_head)``."""
        batch, seq, d_model = x.shape
        return x.view(batch, seq, self.num_heads, d_model // self.num_heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None = None):
        batch, seq, d_model = x.shape
        q, k, v = self.split_heads(self.w_q(x)), self.split_heads(self.w_k(x)), self.split_heads(self.w_v(x))
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        earlier = k.size(2) - seq  # positions already in the cache
        # New query i sits at position earlier + i: it may see keys 0 .. earlier + i.
        mask = torch.ones(seq, k.size(2), dtype=torch.bool, device=x.device).tril(diagonal=earlier)
        out, _ = scaled_dot_product_attention(q, k, v, mask)  # chapter 5's attention, (batch, heads, seq, d_head)
        out = out.transpose(1, 2).reshape(batch, seq, d_model)  # concatenate the heads
        return self.proj(out), (k, v)


class Block(nn.Module):
    """Pre-LayerNorm Transformer block: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        d = config.d_model
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = CausalSelfAttention(config)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(approximate="tanh"), nn.Linear(4 * d, d),
                                 nn.Dropout(config.dropout))
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x, past=None):
        a, kv = self.attn(self.ln1(x), past)
        x = x + self.drop(a)
        return x + self.mlp(self.ln2(x)), kv


class GPT(nn.Module):
    """Token + position embeddings, ``num_layers`` blocks, a final LayerNorm, tied output layer."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.tokens = nn.Embedding(config.vocab_size, config.d_model)
        self.positions = nn.Embedding(config.context, config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_layers))
        self.ln_f = nn.LayerNorm(config.d_model)
        self.apply(self._init)
        for block in self.blocks:  # GPT-2: residual projections scaled down by the depth
            for layer in (block.attn.proj, block.mlp[2]):
                nn.init.normal_(layer.weight, std=0.02 / math.sqrt(2 * config.num_layers))

    @staticmethod
    def _init(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    @property
    def device(self) -> torch.device:
        return self.tokens.weight.device

    def step(self, ids: torch.Tensor, cache: Cache | None = None) -> tuple[torch.Tensor, Cache]:
        """``ids: (batch, seq)`` that follow the ``cache`` (None: the start of the text).

        Returns ``logits: (batch, seq, vocab)`` and the cache extended by these positions.
        """
        start = 0 if cache is None else cache[0][0].size(2)
        if start + ids.size(1) > self.config.context:
            raise ValueError(f"{start + ids.size(1)} positions exceed the context of {self.config.context}: "
                             "keep only the last `context` tokens (ids[:, -context:]) and start a new cache")
        positions = torch.arange(start, start + ids.size(1), device=ids.device)
        x = self.drop(self.tokens(ids) + self.positions(positions))
        new_cache = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, None if cache is None else cache[i])
            new_cache.append(kv)
        logits = self.ln_f(x) @ self.tokens.weight.T  # tied: the output layer is the embedding table
        return logits, new_cache

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """``ids: (batch, seq)`` -> ``logits: (batch, seq, vocab)``, the scores of the *next* token."""
        return self.step(ids)[0]


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy in nats. ``logits: (batch, seq, vocab)``, ``targets: (batch, seq)``.

    ``targets`` are already aligned with ``logits`` (position ``t`` scores token ``t+1`` of the text);
    positions whose target is ``-100`` are left out of the mean (a masked prompt, padding).
    """
    if logits.shape[:-1] != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} disagree: "
                         "targets need one entry per logit row, (batch, seq)")
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100)


@torch.no_grad()
def to_gpt2(model: GPT, **config_kwargs):
    """A ``transformers`` ``GPT2LMHeadModel`` holding exactly ``model``'s weights (in eval mode).

    GPT-2 stores its linear maps as ``Conv1D`` with the weight transposed (``(in, out)``), hence ``.T``,
    and packs ``W_Q, W_K, W_V`` into one map, ``c_attn``.
    Extra keyword arguments go to ``GPT2Config`` (e.g. ``eos_token_id``); GPT-2's own special ids
    (50256) do not exist in a small vocabulary, so they default to None.
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    c = model.config
    for special in ("bos_token_id", "eos_token_id", "pad_token_id"):
        config_kwargs.setdefault(special, None)
    hf_config = GPT2Config(vocab_size=c.vocab_size, n_positions=c.context, n_embd=c.d_model,
                           n_layer=c.num_layers, n_head=c.num_heads, activation_function="gelu_new",
                           resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=1e-5,
                           tie_word_embeddings=True, **config_kwargs)
    hf = GPT2LMHeadModel(hf_config).eval()
    hf.loss_type = "ForCausalLM"  # the loss it would pick anyway; named, so that it does not warn
    t = hf.transformer
    t.wte.weight.copy_(model.tokens.weight)
    t.wpe.weight.copy_(model.positions.weight)
    for ours, theirs in zip(model.blocks, t.h):
        theirs.ln_1.load_state_dict(ours.ln1.state_dict())
        theirs.ln_2.load_state_dict(ours.ln2.state_dict())
        attn = ours.attn
        theirs.attn.c_attn.weight.copy_(torch.cat([attn.w_q.weight, attn.w_k.weight, attn.w_v.weight]).T)
        theirs.attn.c_attn.bias.copy_(torch.cat([attn.w_q.bias, attn.w_k.bias, attn.w_v.bias]))
        for mine, conv in ((attn.proj, theirs.attn.c_proj), (ours.mlp[0], theirs.mlp.c_fc),
                           (ours.mlp[2], theirs.mlp.c_proj)):
            conv.weight.copy_(mine.weight.T)
            conv.bias.copy_(mine.bias)
    t.ln_f.load_state_dict(model.ln_f.state_dict())
    hf.tie_weights()
    return hf.to(model.device)

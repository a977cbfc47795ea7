"""course_utils.attention equals PyTorch's attention, masks included."""

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.attention import (
    MultiHeadAttention,
    causal_mask,
    copy_torch_mha_weights,
    padding_mask,
    scaled_dot_product_attention,
    sinusoidal_positions,
)


def qkv(batch=2, heads=3, seq=5, d_k=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, heads, seq, d_k, generator=gen) for _ in range(3)]


def test_attention_equals_sdpa_without_and_with_masks():
    q, k, v = qkv()
    lengths = torch.tensor([5, 2])
    for mask, kwargs in [(None, {}), (padding_mask(lengths, 5), {"attn_mask": padding_mask(lengths, 5)}),
                         (causal_mask(5), {"is_causal": True})]:
        ours, weights = scaled_dot_product_attention(q, k, v, mask)
        assert torch.allclose(ours, F.scaled_dot_product_attention(q, k, v, **kwargs), atol=1e-6)
        assert torch.allclose(weights.sum(-1), torch.ones(2, 3, 5))


def test_padding_mask_gives_padded_keys_zero_weight():
    q, k, v = qkv()
    _, weights = scaled_dot_product_attention(q, k, v, padding_mask(torch.tensor([5, 2]), 5))
    assert torch.equal(weights[1, :, :, 2:], torch.zeros(3, 5, 3))


def test_causal_mask_is_lower_triangular():
    assert torch.equal(causal_mask(3), torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool))


def test_multi_head_attention_equals_torch_with_copied_weights():
    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(16, 4, batch_first=True).eval()
    ours = copy_torch_mha_weights(MultiHeadAttention(16, 4), theirs)
    x = torch.randn(2, 5, 16)
    lengths = torch.tensor([5, 3])
    out, weights = ours(x, mask=padding_mask(lengths, 5))
    ref, ref_weights = theirs(x, x, x, key_padding_mask=~padding_mask(lengths, 5)[:, 0, 0],
                              average_attn_weights=False)
    assert torch.allclose(out, ref, atol=1e-6)
    assert torch.allclose(weights, ref_weights, atol=1e-6)


def test_cross_attention_takes_keys_and_values_from_the_context():
    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(8, 2, batch_first=True).eval()
    ours = copy_torch_mha_weights(MultiHeadAttention(8, 2), theirs)
    x, memory = torch.randn(1, 3, 8), torch.randn(1, 7, 8)
    out, weights = ours(x, memory)
    assert weights.shape == (1, 2, 3, 7)
    assert torch.allclose(out, theirs(x, memory, memory)[0], atol=1e-6)


def test_sinusoidal_positions_follow_the_formula_and_depend_on_offsets_only():
    pe = sinusoidal_positions(50, 16)
    assert torch.allclose(pe[7, 4], torch.sin(torch.tensor(7 / 10000 ** (4 / 16))))
    assert torch.allclose(pe[7, 5], torch.cos(torch.tensor(7 / 10000 ** (4 / 16))))
    # PE[p]·PE[p+k] = sum_i cos(k ω_i): the same for every p
    dots = torch.stack([pe[p] @ pe[p + 3] for p in range(40)])
    assert torch.allclose(dots, dots[0].expand(40), atol=1e-4)

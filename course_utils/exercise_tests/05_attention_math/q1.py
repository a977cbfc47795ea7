from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = 3

@test_case(points=None, hidden=False)
def test_matches_sdpa_without_a_mask(attention):
    import torch
    import torch.nn.functional as F
    from course_utils.grading.checks import expect_close
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 8, generator=g) for _ in range(3))
    result = attention(q, k, v)
    assert isinstance(result, (tuple, list)) and len(result) == 2, 'attention should return (out, weights)'
    out, weights = result
    assert isinstance(weights, torch.Tensor) and tuple(weights.shape) == (2, 3, 5, 5), 'weights should be (batch, heads, seq_q, seq_k)'
    expect_close(out, F.scaled_dot_product_attention(q, k, v), 'out differs from F.scaled_dot_product_attention', atol=1e-05)
    expect_close(weights.sum(-1), torch.ones(2, 3, 5), "each query's weights should sum to 1 (softmax over the keys)", atol=1e-05)

@test_case(points=None, hidden=False)
def test_matches_sdpa_with_a_causal_mask(attention):
    import torch
    import torch.nn.functional as F
    from course_utils.grading.checks import expect_close
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 2, 4, 16, generator=g) for _ in range(3))
    causal = torch.ones(4, 4, dtype=torch.bool).tril()
    out, weights = attention(q, k, v, causal)
    assert torch.all(weights[..., ~causal] == 0), 'masked positions should get exactly zero weight'
    expect_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True), 'wrong output with a causal mask', atol=1e-05)


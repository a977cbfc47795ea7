from otter.test_files import test_case

OK_FORMAT = False

name = "q5"
points = 2

@test_case(points=None, hidden=False)
def test_matches_sdpa_causal(causal_attention):
    import torch
    import torch.nn.functional as F
    from course_utils.grading.checks import expect_close
    g = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(2, 6, 8, generator=g) for _ in range(3))
    expect_close(causal_attention(q, k, v), F.scaled_dot_product_attention(q, k, v, is_causal=True), 'causal_attention differs from F.scaled_dot_product_attention(..., is_causal=True)', atol=1e-05)


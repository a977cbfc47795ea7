from otter.test_files import test_case

OK_FORMAT = False

name = "q2"
points = 3

@test_case(points=None, hidden=False)
def test_prompt_then_one_token_at_a_time(attend_with_cache):
    import torch
    import torch.nn.functional as F
    from course_utils.grading.checks import expect_close
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 3, 8, 4, generator=g) for _ in range(3))
    whole = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    out, cache = attend_with_cache(q[:, :, :5], k[:, :, :5], v[:, :, :5])
    expect_close(out, whole[:, :, :5], 'the first call, on a 5-token prompt with no cache, differs from causal attention: each prompt token sees itself and earlier ones', atol=1e-05)
    for t in range(5, 8):
        step = slice(t, t + 1)
        out, cache = attend_with_cache(q[:, :, step], k[:, :, step], v[:, :, step], cache)
        assert tuple(out.shape) == (2, 3, 1, 4), f'one new token should give out (2, 3, 1, 4), not {tuple(out.shape)}'
        gap = (out - whole[:, :, step]).abs().max().item()
        assert gap < 1e-05, f'token {t}, fed alone after the cache, differs by {gap:.2e} from causal attention over the whole text: it should see all {t + 1} keys so far'
    keys, values = cache
    assert tuple(keys.shape) == (2, 3, 8, 4), f'after 8 tokens the cached keys should be (2, 3, 8, 4), not {tuple(keys.shape)}'


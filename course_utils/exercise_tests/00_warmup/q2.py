from otter.test_files import test_case

OK_FORMAT = False

name = "q2"
points = 3

@test_case(points=None, hidden=False)
def test_matches_torch_on_small_logits(softmax):
    import torch
    from course_utils.grading.checks import expect_close
    z = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.0, 0.5]])
    p = softmax(z)
    assert isinstance(p, torch.Tensor), f'softmax should return a tensor, not {type(p).__name__}'
    assert p.shape == z.shape, f'softmax should keep the shape {tuple(z.shape)}, got {tuple(p.shape)}'
    expect_close(p, torch.softmax(z, dim=-1), 'softmax(z) differs from torch.softmax(z, dim=-1) on small logits', atol=1e-06)

@test_case(points=None, hidden=False)
def test_confident_logits_do_not_overflow(softmax):
    import torch
    from course_utils.grading.checks import expect_close
    p = softmax(torch.tensor([[1000.0, 0.0], [0.0, 1000.0]]))
    assert torch.isfinite(p).all(), f'softmax returned {p.tolist()} for logits of size 1000: exp overflowed'
    expect_close(p, torch.eye(2), 'softmax of logits (1000, 0) should be (1, 0)', atol=1e-06)


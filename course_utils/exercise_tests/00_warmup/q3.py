from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = 2

@test_case(points=None, hidden=False)
def test_matches_torch_on_small_logits(log_softmax):
    import torch
    from course_utils.grading.checks import expect_close
    z = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.0, 0.5]])
    out = log_softmax(z)
    assert isinstance(out, torch.Tensor), f'log_softmax should return a tensor, not {type(out).__name__}'
    assert out.shape == z.shape, f'log_softmax should keep the shape {tuple(z.shape)}, got {tuple(out.shape)}'
    expect_close(out, torch.log_softmax(z, dim=-1), 'log_softmax(z) differs from torch.log_softmax(z, dim=-1) on small logits', atol=1e-05)

@test_case(points=None, hidden=False)
def test_tiny_probabilities_stay_finite(log_softmax):
    import torch
    from course_utils.grading.checks import expect_close
    out = log_softmax(torch.tensor([1000.0, 0.0]))
    assert torch.isfinite(out).all(), f'log_softmax returned {out.tolist()} for logits (1000, 0): did a probability underflow to 0 before the log?'
    expect_close(out, torch.tensor([0.0, -1000.0]), 'log_softmax of logits (1000, 0) should be (0, -1000)')


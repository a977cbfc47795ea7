from otter.test_files import test_case

OK_FORMAT = False

name = "q2"
points = 3

@test_case(points=None, hidden=False)
def test_matches_torch_on_small_logits(softmax):
    import torch
    z = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.0, 0.5]])
    p = softmax(z)
    assert isinstance(p, torch.Tensor), f'softmax should return a tensor, not {type(p).__name__}'
    assert p.shape == z.shape, f'softmax should keep the shape {tuple(z.shape)}, got {tuple(p.shape)}'
    assert torch.allclose(p, torch.softmax(z, dim=-1), atol=1e-06), 'softmax(z) differs from torch.softmax(z, dim=-1) on small logits'

@test_case(points=None, hidden=False)
def test_confident_logits_do_not_overflow(softmax):
    import torch
    p = softmax(torch.tensor([[1000.0, 0.0], [0.0, 1000.0]]))
    assert torch.isfinite(p).all(), f'softmax returned {p.tolist()} for logits of size 1000: exp overflowed'
    assert torch.allclose(p, torch.eye(2), atol=1e-06), 'softmax of logits (1000, 0) should be (1, 0)'


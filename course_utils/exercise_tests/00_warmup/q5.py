from otter.test_files import test_case

OK_FORMAT = False

name = "q5"
points = 2

@test_case(points=None, hidden=False)
def test_matches_torch_on_a_small_batch(mean_cross_entropy):
    import torch
    import torch.nn.functional as F
    from course_utils.grading.checks import expect_close
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0], [1.0, -2.0, 0.0], [0.3, 0.3, 0.1]])
    targets = torch.tensor([0, 2, 1, 2])
    loss = mean_cross_entropy(logits, targets)
    assert isinstance(loss, torch.Tensor) and loss.dim() == 0, 'mean_cross_entropy should return a 0-dim tensor (one number for the batch)'
    expect_close(loss, F.cross_entropy(logits, targets), 'wrong loss on a small batch with small logits: which probability does each example take?', atol=1e-05)

@test_case(points=None, hidden=False)
def test_confident_logits_stay_finite(mean_cross_entropy):
    import torch
    import torch.nn.functional as F
    from course_utils.grading.checks import expect_close
    logits = 1000 * torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0], [1.0, -2.0, 0.0]])
    targets = torch.tensor([0, 1, 2])
    loss = mean_cross_entropy(logits, targets)
    assert torch.isfinite(loss), f'the loss is {loss.item()} on confident logits: exp overflowed, or a log met a 0'
    expect_close(loss, F.cross_entropy(logits, targets), 'wrong loss on confident logits', rtol=1e-05)


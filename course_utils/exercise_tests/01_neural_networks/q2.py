from otter.test_files import test_case

OK_FORMAT = False

name = "q2"
points = 3

@test_case(points=None, hidden=False)
def test_matches_torch_on_moderate_logits(bce_with_logits):
    import torch
    import torch.nn.functional as F
    from course_utils.grading.checks import expect_close
    z = torch.tensor([-2.0, -0.5, 0.0, 0.7, 3.0])
    y = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0])
    loss = bce_with_logits(z, y)
    assert isinstance(loss, torch.Tensor) and loss.dim() == 0, 'bce_with_logits should return a 0-dim tensor: the mean over the batch'
    expect_close(loss, F.binary_cross_entropy_with_logits(z, y), 'wrong loss on moderate logits', atol=1e-06)

@test_case(points=None, hidden=False)
def test_confident_logits_stay_finite(bce_with_logits):
    import torch
    from course_utils.grading.checks import expect_close
    loss = bce_with_logits(torch.tensor([100.0]), torch.tensor([0.0]))
    assert torch.isfinite(loss), f'the loss of logit 100 with label 0 is {loss.item()}: did sigmoid(z) round to 1?'
    expect_close(loss, torch.tensor(100.0), 'a logit of 100 for the wrong class should cost 100')


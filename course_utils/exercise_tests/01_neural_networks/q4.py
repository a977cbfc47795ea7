from otter.test_files import test_case

OK_FORMAT = False

name = "q4"
points = 2

@test_case(points=None, hidden=False)
def test_a_certain_wrong_prediction_costs_100(bce_from_probs):
    import torch
    from course_utils.grading.checks import expect_close
    loss = bce_from_probs(torch.tensor([1.0]), torch.tensor([0.0]))
    assert torch.isfinite(loss), f'the loss is {loss.item()}: clamp the logarithm at -100 as PyTorch does'
    expect_close(loss, torch.tensor(100.0), f'p = 1 for a label 0 should cost 100 (log clamped at -100), got {loss.item()}')

@test_case(points=None, hidden=False)
def test_a_batch_with_both_certain_cases(bce_from_probs):
    import torch
    import torch.nn.functional as F
    from course_utils.grading.checks import expect_close
    p, y = (torch.tensor([0.9, 0.2, 0.6, 1.0, 0.0]), torch.tensor([1.0, 0.0, 1.0, 1.0, 1.0]))
    loss = bce_from_probs(p, y)
    assert not torch.isnan(loss), 'nan: a certain, right prediction gives 0 * log(0), which is nan unless the log is finite'
    expect_close(loss, F.binary_cross_entropy(p, y), 'wrong loss on a batch with p = 1 (right) and p = 0 (wrong)', atol=1e-05)


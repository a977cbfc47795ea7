from otter.test_files import test_case

OK_FORMAT = False

name = "q4"
points = 2

@test_case(points=None, hidden=False)
def test_padding_does_not_change_the_mean(mean_pool):
    import torch
    from course_utils.grading.checks import expect_close
    g = torch.Generator().manual_seed(6)
    sentence = torch.randn(1, 3, 4, generator=g)
    padded = torch.cat([torch.cat([sentence, 100 * torch.randn(1, 2, 4, generator=g)], dim=1), torch.randn(1, 5, 4, generator=g)])
    alone, batched = (mean_pool(sentence, torch.tensor([3])), mean_pool(padded, torch.tensor([3, 5])))
    assert isinstance(alone, torch.Tensor) and tuple(batched.shape) == (2, 4), 'mean_pool should return (batch, d)'
    expect_close(alone[0], sentence[0].mean(0), 'the mean of a sentence without padding is wrong', atol=1e-05)
    expect_close(batched[0], sentence[0].mean(0), 'the padding positions change the mean', atol=1e-05)


from otter.test_files import test_case

OK_FORMAT = False

name = "q4"
points = 2

@test_case(points=None, hidden=False)
def test_padding_does_not_change_the_mean(mean_pool):
    import torch
    g = torch.Generator().manual_seed(6)
    sentence = torch.randn(1, 3, 4, generator=g)
    padded = torch.cat([torch.cat([sentence, 100 * torch.randn(1, 2, 4, generator=g)], dim=1), torch.randn(1, 5, 4, generator=g)])
    alone, batched = (mean_pool(sentence, torch.tensor([3])), mean_pool(padded, torch.tensor([3, 5])))
    assert isinstance(alone, torch.Tensor) and tuple(batched.shape) == (2, 4), 'mean_pool should return (batch, d)'
    assert torch.allclose(alone[0], sentence[0].mean(0), atol=1e-05), 'the mean of a sentence without padding is wrong'
    assert torch.allclose(batched[0], sentence[0].mean(0), atol=1e-05), 'the padding positions change the mean'


from otter.test_files import test_case

OK_FORMAT = False

name = "q5"
points = 3

@test_case(points=None, hidden=False)
def test_clipping_without_noise(dp_sgd_gradient):
    import torch
    from course_utils.grading.checks import expect_close
    g = torch.Generator().manual_seed(0)
    grads = torch.randn(6, 5, generator=g) * torch.tensor([[0.1], [0.5], [1.0], [3.0], [10.0], [0.2]])
    got = dp_sgd_gradient(grads, 1.0, 0.0, 8.0, torch.Generator().manual_seed(1))
    norms = grads.norm(dim=1, keepdim=True)
    expected = (grads * torch.clamp(1.0 / norms, max=1.0)).sum(0) / 8.0
    assert isinstance(got, torch.Tensor) and tuple(got.shape) == (5,), f"expected a (p,) = (5,) tensor, got {tuple(getattr(got, 'shape', ())) or type(got).__name__}"
    expect_close(got, expected, f'with noise_multiplier=0 got {[round(v, 4) for v in got.tolist()]}, expected {[round(v, 4) for v in expected.tolist()]}: clip each row, sum, divide by expected_batch_size (8 here, for 6 rows)', atol=1e-05)

@test_case(points=None, hidden=False)
def test_noise_on_the_sum(dp_sgd_gradient):
    import torch
    g = torch.Generator().manual_seed(2)
    grads = 0.001 * torch.randn(8, 20000, generator=g)
    sigma, clip, expected_batch = (2.0, 0.5, 4.0)
    got = dp_sgd_gradient(grads, clip, sigma, expected_batch, torch.Generator().manual_seed(3))
    assert isinstance(got, torch.Tensor) and got.shape == (20000,), f"expected a (p,) = (20000,) tensor, got {tuple(getattr(got, 'shape', ())) or type(got).__name__}"
    noise = got.double() * expected_batch - grads.double().sum(0)
    std = noise.std().item()
    assert abs(std / (sigma * clip) - 1) < 0.05, f'the noise added to the sum of the clipped gradients has standard deviation {std:.4f}, not sigma * C = {sigma * clip}'
    assert abs(noise.mean().item()) < 0.05, f'the noise has mean {noise.mean().item():.4f}, not 0'


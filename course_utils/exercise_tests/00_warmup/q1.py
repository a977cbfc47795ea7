from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = 2

@test_case(points=None, hidden=False)
def test_shape_and_values(affine):
    import torch
    from course_utils.grading.checks import expect_close
    g = torch.Generator().manual_seed(0)
    W, A, b = (torch.randn(3, 4, generator=g), torch.randn(4, 5, generator=g), torch.randn(3, generator=g))
    Z = affine(W, A, b)
    assert isinstance(Z, torch.Tensor), f'affine should return a tensor, not {type(Z).__name__}'
    assert tuple(Z.shape) == (3, 5), f'W (3, 4), A (4, 5), b (3,) should give Z of shape (out, batch) = (3, 5), not {tuple(Z.shape)}'
    expected = torch.stack([W @ A[:, j] + b for j in range(5)], dim=1)
    expect_close(Z, expected, 'Z has the right shape but wrong values: is b added to every column?', atol=1e-05)


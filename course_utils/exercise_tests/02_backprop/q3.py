from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = 2

@test_case(points=None, hidden=False)
def test_cubic(central_difference):
    import torch
    from course_utils.grading.checks import evaluate, expect_close, expect_equal
    x = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    g, x_after = evaluate('central_difference(lambda v: (v**3).sum(), x), x', central_difference=central_difference, x=x)
    assert isinstance(g, torch.Tensor) and g.shape == x.shape, 'the result should be a tensor with the shape of x'
    expect_equal(x_after, x, 'central_difference changed x: work on copies')
    expect_close(g, 3 * x ** 2, f'the gradient of sum(x^3) is 3x^2 = {(3 * x ** 2).tolist()}, got {g.tolist()}', rtol=1e-08)


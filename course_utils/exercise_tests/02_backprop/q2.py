from otter.test_files import test_case

OK_FORMAT = False

name = "q2"
points = 3

@test_case(points=None, hidden=False)
def test_shapes_and_values(mlp_backward):
    import torch
    import torch.nn.functional as F
    from course_utils.grading.checks import expect_close

    def reference_loss(p, X, y):
        A1 = torch.tanh(p['W1'] @ X + p['b1'][:, None])
        return F.cross_entropy((p['W2'] @ A1 + p['b2'][:, None]).T, y)
    g = torch.Generator().manual_seed(0)
    params = {'W1': torch.randn(5, 3, generator=g, dtype=torch.float64), 'b1': torch.randn(5, generator=g, dtype=torch.float64), 'W2': torch.randn(4, 5, generator=g, dtype=torch.float64), 'b2': torch.randn(4, generator=g, dtype=torch.float64)}
    X, y = (torch.randn(3, 7, generator=g, dtype=torch.float64), torch.randint(0, 4, (7,), generator=g))
    grads = mlp_backward(params, X, y)
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    reference_loss(leaves, X, y).backward()
    assert isinstance(grads, dict), f'mlp_backward should return a dict of gradients, not {type(grads).__name__}'
    for k in ('W1', 'b1', 'W2', 'b2'):
        assert k in grads, f'the result has no entry {k!r}'
        assert tuple(grads[k].shape) == tuple(params[k].shape), f'd{k} should have the shape of {k}, {tuple(params[k].shape)}, not {tuple(grads[k].shape)}'
        expect_close(grads[k], leaves[k].grad, f'd{k} differs from autograd', atol=1e-10)


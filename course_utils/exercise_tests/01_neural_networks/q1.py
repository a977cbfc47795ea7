from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = 2

@test_case(points=None, hidden=False)
def test_matches_nn_sequential(mlp_forward):
    import torch
    from torch import nn
    from course_utils.grading.checks import expect_close
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 5), nn.Sigmoid(), nn.Linear(5, 3))
    params = [(m.weight.detach(), m.bias.detach()) for m in net if isinstance(m, nn.Linear)]
    X = torch.randn(4, 7)
    out = mlp_forward(params, X)
    assert isinstance(out, torch.Tensor), f'mlp_forward should return a tensor, not {type(out).__name__}'
    assert tuple(out.shape) == (3, 7), f'logits should be (classes, batch) = (3, 7), not {tuple(out.shape)}'
    expect_close(out, net(X.T).detach().T, "the logits differ from nn.Sequential's: check the activations", atol=1e-06)

@test_case(points=None, hidden=False)
def test_one_layer_is_affine(mlp_forward):
    import torch
    from course_utils.grading.checks import expect_close
    W, b = (torch.tensor([[1.0, 2.0], [0.0, -1.0], [3.0, 0.5]]), torch.tensor([0.5, 0.0, -1.0]))
    X = torch.tensor([[1.0, 0.0], [2.0, 1.0]])
    expected = torch.tensor([[5.5, 2.5], [-2.0, -1.0], [3.0, -0.5]])
    expect_close(mlp_forward([(W, b)], X), expected, 'a one-layer network should return W X + b, with no activation')


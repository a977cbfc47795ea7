from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = 2

@test_case(points=None, hidden=False)
def test_two_ranks_match_one_process(ddp_gradients):
    import torch
    import torch.nn.functional as F
    from torch import nn
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    x, y = (torch.randn(8, 4), torch.randint(3, (8,)))
    whole = torch.autograd.grad(F.cross_entropy(model(x), y), list(model.parameters()))
    got = ddp_gradients(model, x, y, 2)
    assert isinstance(got, (list, tuple)) and len(got) == 2, f'ddp_gradients should return one gradient per parameter, a list of 2 tensors here, not {type(got).__name__}'
    for name, g, w in zip(['weight', 'bias'], got, whole):
        assert isinstance(g, torch.Tensor) and g.shape == w.shape, f"the {name}'s gradient should be a tensor of shape {tuple(w.shape)}, not {getattr(g, 'shape', type(g).__name__)}"
        gap = (g - w).abs().max().item()
        assert gap < 1e-05, f"the {name}'s averaged gradient is {gap:.3g} away from one process's: it is {g.norm() / w.norm():.3f} times as large"


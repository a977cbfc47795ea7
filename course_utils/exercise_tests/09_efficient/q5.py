from otter.test_files import test_case

OK_FORMAT = False

name = "q5"
points = 2

@test_case(points=None, hidden=False)
def test_same_keys_and_shapes(pruned_state_dict):
    import torch
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 10), torch.nn.ReLU(), torch.nn.Linear(10, 3))
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = pruned_state_dict(model, 0.5)
    assert isinstance(got, dict), f'pruned_state_dict should return a dict, not {type(got).__name__}'
    shapes = {k: tuple(v.shape) for k, v in got.items()}
    assert shapes == expected, f"the checkpoint holds {shapes}, not the model's {expected}: weight_orig and weight_mask must be folded into weight (prune.remove)"


from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = 2

@test_case(points=None, hidden=False)
def test_shape_and_values(padding_mask):
    import torch
    mask = padding_mask(torch.tensor([3, 1]), 4)
    assert isinstance(mask, torch.Tensor) and mask.dtype == torch.bool, 'the mask should be a boolean tensor'
    assert tuple(mask.shape) == (2, 1, 1, 4), f'the mask should be (batch, 1, 1, seq_len) = (2, 1, 1, 4), not {tuple(mask.shape)}'
    assert mask[:, 0, 0].tolist() == [[True, True, True, False], [True, False, False, False]], 'True on the real tokens, False on padding'


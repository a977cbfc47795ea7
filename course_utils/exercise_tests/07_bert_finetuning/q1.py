from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = 2

@test_case(points=None, hidden=False)
def test_labels_and_special_positions(bert_mask):
    import torch
    from course_utils.grading.checks import expect_equal
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (64, 32), generator=g)
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = special[:, -1] = True
    inputs, labels = bert_mask(ids, special, 3, 1000, torch.Generator().manual_seed(1))
    assert inputs.shape == ids.shape and labels.shape == ids.shape, 'inputs and labels should both be (batch, seq)'
    selected = labels != -100
    assert not selected[special].any(), 'special positions ([CLS], [SEP], padding) must never be selected'
    expect_equal(labels[selected], ids[selected], 'labels should hold the original id at selected positions')
    expect_equal(inputs[~selected], ids[~selected], 'positions that were not selected must keep their id')

@test_case(points=None, hidden=False)
def test_proportions(bert_mask):
    import torch
    ids = torch.randint(5, 1000, (256, 128), generator=torch.Generator().manual_seed(2))
    special = torch.zeros_like(ids, dtype=torch.bool)
    inputs, labels = bert_mask(ids, special, 3, 1000, torch.Generator().manual_seed(3))
    selected = labels != -100
    rate = selected.float().mean().item()
    assert abs(rate - 0.15) < 0.01, f'{rate:.3f} of the positions were selected, not 0.15'
    masked = (inputs[selected] == 3).float().mean().item()
    assert abs(masked - 0.8) < 0.02, f'{masked:.3f} of the selected positions became [MASK], not 0.8'


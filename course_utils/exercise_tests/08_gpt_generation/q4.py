from otter.test_files import test_case

OK_FORMAT = False

name = "q4"
points = 2

@test_case(points=None, hidden=False)
def test_the_answer_and_its_end_are_targets(qa_batch):
    import torch
    items = [([1, 2, 3, 9, 5, 6, 8], 4), ([4, 4, 9, 7, 8], 3)]
    x, y = qa_batch(items, 8)
    assert tuple(y.shape) == (2, 6), f'two examples of 7 and 5 ids should give (2, 6), not {tuple(y.shape)}'
    got = y[0].tolist()
    assert got[3] != -100, f'targets of example 0 are {got}: the first answer id (5, the target at the position of <a>) is masked'
    assert got[3] == 5, f'targets of example 0 are {got}: at the position of <a> the target should be the next id, 5 (y[b, t] is ids[t + 1])'
    assert got[5] == 8, f'targets of example 0 are {got}: its real <eos> (8) is masked, so the model never learns to stop'
    assert got == [-100, -100, -100, 5, 6, 8], f'targets of example 0 should be [-100, -100, -100, 5, 6, 8], got {got}'


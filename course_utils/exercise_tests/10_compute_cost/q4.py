from otter.test_files import test_case

OK_FORMAT = False

name = "q4"
points = 2

@test_case(points=None, hidden=False)
def test_the_chapter_example(distributed_accuracy):
    import torch
    from torch.utils.data import DistributedSampler
    from course_utils.grading.checks import number
    truth = torch.tensor([1, 1, 1, 1, 1, 0, 0, 0, 0], dtype=torch.bool)
    shards = [torch.tensor(list(DistributedSampler(range(9), 2, r, shuffle=False))) for r in range(2)]
    got = number(distributed_accuracy(shards, [truth[s] for s in shards]), 'distributed_accuracy(...)')
    assert abs(got - 5 / 9) < 1e-06, f"accuracy {got:.4f} for the chapter's example, not 5/9 = 0.5556: the 2 ranks hold 10 predictions for 9 examples"


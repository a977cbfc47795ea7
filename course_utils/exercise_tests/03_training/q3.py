from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = 2

@test_case(points=None, hidden=False)
def test_small_example(roc_auc):
    import numpy as np
    from course_utils.grading.checks import number
    labels = np.array([0, 0, 1, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    auc = number(roc_auc(labels, scores), 'roc_auc(...)')
    assert abs(auc - 0.75) < 1e-09, f'3 of the 4 positive-negative pairs are ordered correctly: AUC 0.75, got {auc}'


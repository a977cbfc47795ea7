from otter.test_files import test_case

OK_FORMAT = False

name = "q5"
points = 1

@test_case(points=None, hidden=False)
def test_three_numbers_that_sum_to_zero(grad_q5):
    import math
    assert isinstance(grad_q5, (list, tuple)) and len(grad_q5) == 3, 'grad_q5 should be a list of three floats'
    assert all((isinstance(v, (int, float)) and math.isfinite(v) for v in grad_q5)), 'every entry should be a finite Python float'
    assert abs(sum(grad_q5)) < 0.0001, f"the entries sum to {sum(grad_q5):.4f}: a softmax + cross-entropy gradient sums to 0 (the p's sum to 1, and so do the y's)"


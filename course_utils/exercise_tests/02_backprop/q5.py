from otter.test_files import test_case

OK_FORMAT = False

name = "q5"
points = 1

@test_case(points=None, hidden=False)
def test_three_numbers_that_sum_to_zero(grad_q5):
    import math
    from course_utils.grading.checks import number
    values = grad_q5.tolist() if hasattr(grad_q5, 'tolist') else grad_q5
    assert isinstance(values, (list, tuple)) and len(values) == 3, 'grad_q5 should be three numbers (a list, a tuple or a tensor)'
    values = [number(v, f'grad_q5[{i}]') for i, v in enumerate(values)]
    assert all((math.isfinite(v) for v in values)), f'every entry should be finite, got {values}'
    assert abs(sum(values)) < 0.0001, f"the entries sum to {sum(values):.4f}: a softmax + cross-entropy gradient sums to 0 (the p's sum to 1, and so do the y's)"


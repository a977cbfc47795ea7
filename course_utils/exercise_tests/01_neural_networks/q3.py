from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = 1

@test_case(points=None, hidden=False)
def test_is_a_finite_number(gelu_slope_q3):
    import math
    from course_utils.grading.checks import number
    assert math.isfinite(number(gelu_slope_q3, 'gelu_slope_q3')), 'gelu_slope_q3 should be a finite number'


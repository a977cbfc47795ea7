from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = 1

@test_case(points=None, hidden=False)
def test_is_a_float(gelu_slope_q3):
    import math
    assert isinstance(gelu_slope_q3, (int, float)) and (not isinstance(gelu_slope_q3, bool)), f'gelu_slope_q3 should be a Python float (use .item() on a tensor), not {type(gelu_slope_q3).__name__}'
    assert math.isfinite(gelu_slope_q3), 'gelu_slope_q3 should be a finite number'


from otter.test_files import test_case

OK_FORMAT = False

name = "q6"
points = 1

@test_case(points=None, hidden=False)
def test_is_a_positive_float(weights_mib):
    assert isinstance(weights_mib, (int, float)) and (not isinstance(weights_mib, bool)), f'weights_mib should be a Python float, not {type(weights_mib).__name__}'
    assert weights_mib > 0


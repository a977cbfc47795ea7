from otter.test_files import test_case

OK_FORMAT = False

name = "q2"
points = 1

@test_case(points=None, hidden=False)
def test_is_a_positive_int(params_q2):
    assert isinstance(params_q2, int) and (not isinstance(params_q2, bool)), f'params_q2 should be a Python int, not {type(params_q2).__name__}'
    assert params_q2 > 0


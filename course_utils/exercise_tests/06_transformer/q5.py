from otter.test_files import test_case

OK_FORMAT = False

name = "q5"
points = 1

@test_case(points=None, hidden=False)
def test_is_a_positive_int(step_flops):
    assert isinstance(step_flops, int) and (not isinstance(step_flops, bool)), f'step_flops should be a Python int, not {type(step_flops).__name__}'
    assert step_flops > 0


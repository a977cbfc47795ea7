from otter.test_files import test_case

OK_FORMAT = False

name = "q2"
points = 2

@test_case(points=None, hidden=False)
def test_are_positive_floats(var_dot, scale):
    for name, value in [('var_dot', var_dot), ('scale', scale)]:
        assert isinstance(value, (int, float)) and (not isinstance(value, bool)), f'{name} should be a Python float, not {type(value).__name__}'
        assert value > 0, f'{name} should be positive'


from otter.test_files import test_case

OK_FORMAT = False

name = "q2"
points = 2

@test_case(points=None, hidden=False)
def test_are_positive_numbers(var_dot, scale):
    from course_utils.grading.checks import number
    for name, value in [('var_dot', var_dot), ('scale', scale)]:
        assert number(value, name) > 0, f'{name} should be positive, got {value}'


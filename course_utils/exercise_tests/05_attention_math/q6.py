from otter.test_files import test_case

OK_FORMAT = False

name = "q6"
points = 1

@test_case(points=None, hidden=False)
def test_is_a_positive_number(weights_mib):
    from course_utils.grading.checks import number
    assert number(weights_mib, 'weights_mib') > 0, f'weights_mib should be positive, got {weights_mib}'


from otter.test_files import test_case

OK_FORMAT = False

name = "q2"
points = 1

@test_case(points=None, hidden=False)
def test_is_a_positive_whole_number(params_q2):
    from course_utils.grading.checks import number
    count = number(params_q2, 'params_q2')
    assert count > 0 and count == int(count), f'params_q2 should be a positive whole number, got {count}'


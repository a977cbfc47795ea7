from otter.test_files import test_case

OK_FORMAT = False

name = "q5"
points = 1

@test_case(points=None, hidden=False)
def test_is_a_positive_whole_number(step_flops):
    from course_utils.grading.checks import number
    count = number(step_flops, 'step_flops')
    assert count > 0 and count == int(count), f'step_flops should be a positive whole number, got {count}'


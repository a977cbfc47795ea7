from otter.test_files import test_case

OK_FORMAT = False

name = "q5"
points = 1

@test_case(points=None, hidden=False)
def test_is_a_power_of_two(scale_q5):
    import math
    from course_utils.grading.checks import number
    scale = number(scale_q5, 'scale_q5')
    assert scale > 0 and math.log2(scale) == int(math.log2(scale)), f'{scale} is not a power of two'


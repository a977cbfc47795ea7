from otter.test_files import test_case

OK_FORMAT = False

name = "q5"
points = 1

@test_case(points=None, hidden=False)
def test_shape_of_the_schedule(lr_at):
    from course_utils.grading.checks import number
    assert number(lr_at(0, 100, 10, 0.0001), 'lr_at(0, ...)') == 0.0, 'the warm-up starts at 0'
    assert abs(number(lr_at(5, 100, 10, 0.0001)) - 5e-05) < 1e-12, 'half-way through the warm-up the rate is half of base_lr'
    assert abs(number(lr_at(10, 100, 10, 0.0001)) - 0.0001) < 1e-12, 'the warm-up ends at base_lr'
    assert number(lr_at(100, 100, 10, 0.0001)) == 0.0, 'the rate reaches 0 at the last step'


from otter.test_files import test_case

OK_FORMAT = False

name = "q4"
points = 1

@test_case(points=None, hidden=False)
def test_is_a_finite_nonnegative_number(loss_q4):
    import math
    from course_utils.grading.checks import number
    loss = number(loss_q4, 'loss_q4')
    assert math.isfinite(loss), f'loss_q4 is {loss}: the naive formula overflowed'
    assert loss >= 0, f'loss_q4 is {loss}, but a cross-entropy loss is never negative: it is minus the log of a probability'


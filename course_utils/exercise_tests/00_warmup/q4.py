from otter.test_files import test_case

OK_FORMAT = False

name = "q4"
points = 1

@test_case(points=None, hidden=False)
def test_is_a_finite_nonnegative_float(loss_q4):
    import math
    assert isinstance(loss_q4, (int, float)) and (not isinstance(loss_q4, bool)), f'loss_q4 should be a Python float (use .item() on a tensor), not {type(loss_q4).__name__}'
    assert math.isfinite(loss_q4), f'loss_q4 is {loss_q4}: the naive formula overflowed'
    assert loss_q4 >= 0, 'a cross-entropy loss is never negative: it is minus the log of a probability'


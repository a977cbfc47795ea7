from otter.test_files import test_case

OK_FORMAT = False

name = "q5"
points = 1

@test_case(points=None, hidden=False)
def test_is_a_power_of_two(scale_q5):
    import math
    assert isinstance(scale_q5, (int, float)) and (not isinstance(scale_q5, bool)), 'scale_q5 should be a number'
    assert scale_q5 > 0 and math.log2(scale_q5) == int(math.log2(scale_q5)), f'{scale_q5} is not a power of two'


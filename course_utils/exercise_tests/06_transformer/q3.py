from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = 2

@test_case(points=None, hidden=False)
def test_one_size(encoder_flops):
    from course_utils.grading.checks import number
    value = number(encoder_flops(2, 10, 16, 64), 'encoder_flops(2, 10, 16, 64)')
    assert value == 135680, f'for b=2, n=10, d=16, d_ff=64 the count is {value:g}, not 135680: list every matrix product of the block'


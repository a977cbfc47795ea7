from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = 2

@test_case(points=None, hidden=False)
def test_one_size(encoder_flops):
    value = encoder_flops(2, 10, 16, 64)
    assert isinstance(value, int) and (not isinstance(value, bool)), f'encoder_flops should return a Python int, not {type(value).__name__}'
    assert value == 135680, 'for b=2, n=10, d=16, d_ff=64 the count is wrong: list every matrix product of the block'


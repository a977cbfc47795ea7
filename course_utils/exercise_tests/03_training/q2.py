from otter.test_files import test_case

OK_FORMAT = False

name = "q2"
points = 2

@test_case(points=None, hidden=False)
def test_key_points(lr_at):
    import math
    total, warmup, base = (100, 10, 0.001)
    cases = {0: 0.0001, 4: 0.0005, 9: 0.001, 10: 0.001, 55: 0.0005}
    for step, expected in cases.items():
        got = lr_at(step, total, warmup, base)
        assert isinstance(got, (int, float)), f'lr_at should return a Python float, not {type(got).__name__}'
        assert math.isclose(got, expected, rel_tol=1e-09, abs_tol=1e-15), f'lr_at({step}, {total}, {warmup}, {base}) should be {expected}, got {got}'
    assert 0 < lr_at(99, total, warmup, base) < 1e-06, "the last step's rate should be just above 0"


from otter.test_files import test_case

OK_FORMAT = False

name = "q2"
points = 2

@test_case(points=None, hidden=False)
def test_key_points(lr_at):
    import math
    from course_utils.grading.checks import number
    total, warmup, base = (100, 10, 0.001)
    cases = {0: 0.0001, 4: 0.0005, 9: 0.001, 10: 0.001, 55: 0.0005}
    for step, expected in cases.items():
        got = number(lr_at(step, total, warmup, base), f'lr_at({step}, ...)')
        assert math.isclose(got, expected, rel_tol=1e-06, abs_tol=1e-15), f'lr_at({step}, {total}, {warmup}, {base}) should be {expected}, got {got}'
    assert 0 < number(lr_at(99, total, warmup, base)) < 1e-06, "the last step's rate should be just above 0"


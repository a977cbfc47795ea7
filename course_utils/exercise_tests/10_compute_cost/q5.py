from otter.test_files import test_case

OK_FORMAT = False

name = "q5"
points = 2

@test_case(points=None, hidden=False)
def test_the_chapter_calculator(training_cost):
    from course_utils.grading.checks import number
    got = training_cost(7000000000.0, 2000000000000.0, 64, 989000000000000.0, 0.4, 3.0)
    assert isinstance(got, (tuple, list)) and len(got) == 3, f'training_cost should return (days, gpu_hours, dollars), not {type(got).__name__}'
    seconds = 6 * 7000000000.0 * 2000000000000.0 / (64 * 989000000000000.0 * 0.4)
    want = [seconds / 86400, 64 * seconds / 3600, 64 * seconds / 3600 * 3]
    for name, g, w in zip(['days', 'gpu_hours', 'dollars'], got, want):
        g = number(g, name)
        assert abs(g / w - 1) < 1e-06, f'7 B parameters, 2 T tokens, 64 H100s at MFU 0.4, $3/GPU-hour: {name} is {g:,.2f}, {g / w:.4g} times the right value'


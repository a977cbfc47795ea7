from otter.test_files import test_case

OK_FORMAT = False

name = "q6"
points = 2

@test_case(points=None, hidden=False)
def test_zero_paper_figure_1(zero_bytes):
    from course_utils.grading.checks import number
    want = [120000000000.0, 31406250000.0, 16640625000.0, 1875000000.0]
    for stage, w in enumerate(want):
        got = number(zero_bytes(7500000000.0, 64, stage), f'zero_bytes(7.5e9, 64, {stage})')
        assert abs(got / w - 1) < 1e-06, f'7.5 B parameters on 64 devices, stage {stage}: {got / 1000000000.0:.4g} GB per device, not {w / 1000000000.0:.4g}'


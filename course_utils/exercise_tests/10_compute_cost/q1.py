from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = 2

@test_case(points=None, hidden=False)
def test_the_chapter_cpu_shape(train_flops_per_token):
    from course_utils.grading.checks import number
    got = number(train_flops_per_token(256, 128, 128, 4), 'train_flops_per_token(256, 128, 128, 4)')
    want = 6 * (4 * 12 * 128 ** 2 + 256 * 128) + 12 * 4 * 128 * 128
    assert abs(got / want - 1) < 1e-06, f"train_flops_per_token(vocab=256, context=128, d=128, layers=4) is {got:,.0f}, not the chapter's 6N + 12LTd"


from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = 3

@test_case(points=None, hidden=False)
def test_the_example_and_one_at_a_time(form_batches):
    from course_utils.grading.checks import expect_equal
    got = form_batches([0, 1, 2, 10, 11, 30], 2, 5)
    assert isinstance(got, (list, tuple)), f'form_batches should return a list of batches, got {got!r}'
    expect_equal(got, [[0, 1], [2], [3, 4], [5]], 'form_batches([0, 1, 2, 10, 11, 30], 2, 5) should give [[0, 1], [2], [3, 4], [5]]', name='the batches')
    got = form_batches([0.0, 0.5, 0.5, 4.0], 1, 20)
    expect_equal(got, [[0], [1], [2], [3]], 'with max_batch_size=1 every text goes alone', name='the batches')

@test_case(points=None, hidden=False)
def test_the_wait_counts_from_the_first_text(form_batches):
    from course_utils.grading.checks import expect_equal
    arrivals = [0, 3, 6, 9, 12, 15]
    got = form_batches(arrivals, 100, 5)
    expect_equal(got, [[0, 1], [2, 3], [4, 5]], f'form_batches({arrivals}, 100, 5) should give [[0, 1], [2, 3], [4, 5]]: a batch opened at t0 takes the texts that arrive by t0 + max_wait_ms, counted from its first text', name='the batches')


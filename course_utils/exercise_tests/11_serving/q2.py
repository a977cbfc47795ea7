from otter.test_files import test_case

OK_FORMAT = False

name = "q2"
points = 3

@test_case(points=None, hidden=False)
def test_a_small_run(run_summary):
    from course_utils.grading.checks import number
    due = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    done = [0.05, 0.18, 0.202, 0.45, 0.43, 0.9]
    status = [200, 200, 503, 200, 200, 200]
    got = run_summary(due, done, status)
    assert isinstance(got, (tuple, list)) and len(got) == 3, f'run_summary should return (p50_ms, p95_ms, rps), got {got!r}'
    p50, p95, rps = (number(v, name) for v, name in zip(got, ('p50_ms', 'p95_ms', 'rps')))
    assert abs(p50 - 80) < 0.01, f'p50 is {p50:g}, not 80 ms: latencies of the 200 answers only, in milliseconds'
    assert abs(p95 - 350) < 0.01, f'p95 is {p95:g}, not 350 ms: interpolate between the sorted latencies at rank 0.95 (n - 1)'
    assert abs(rps / (5 / 0.9) - 1) < 0.0001, f'rps is {rps:g}, not 5.556: five 200 answers in a run of 0.9 s'


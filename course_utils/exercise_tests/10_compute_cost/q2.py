from otter.test_files import test_case

OK_FORMAT = False

name = "q2"
points = 2

@test_case(points=None, hidden=False)
def test_answers_are_numbers(n_params_q2, state_bytes_q2):
    from course_utils.grading.checks import number
    count = number(n_params_q2, 'n_params_q2')
    assert count == int(count) and 100000000.0 < count < 200000000.0, f"n_params_q2 is {count:,.0f}: GPT-2 small's shape has between 100 and 200 million parameters, a whole number"
    assert isinstance(state_bytes_q2, dict), f'state_bytes_q2 should be a dict, not {type(state_bytes_q2).__name__}'
    assert sorted(state_bytes_q2) == ['fp32', 'hf', 'zero'], f"state_bytes_q2 has the keys {sorted(state_bytes_q2)}, not 'fp32', 'zero' and 'hf'"
    for key, value in state_bytes_q2.items():
        got = number(value, f'state_bytes_q2[{key!r}]')
        assert 5 < got / count < 50, f'state_bytes_q2[{key!r}] is {got:.4g}: give bytes, not GB'


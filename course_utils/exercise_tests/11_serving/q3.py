from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = 2

@test_case(points=None, hidden=False)
def test_are_numbers_in_range(false_alarms_q3, p_any_q3, min_permutations_q3):
    from course_utils.grading.checks import number
    alarms = number(false_alarms_q3, 'false_alarms_q3')
    assert 0 <= alarms <= 384, f'false_alarms_q3 is {alarms}: a count of dimensions, 0 to 384'
    p_any = number(p_any_q3, 'p_any_q3')
    assert 0 < p_any < 1, f'p_any_q3 is {p_any}: a probability'
    count = number(min_permutations_q3, 'min_permutations_q3')
    assert count == int(count) and count > 0, f'min_permutations_q3 is {count}: a positive whole number'


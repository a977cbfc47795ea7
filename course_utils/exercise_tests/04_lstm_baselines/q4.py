from otter.test_files import test_case

OK_FORMAT = False

name = "q4"
points = 1

@test_case(points=None, hidden=False)
def test_is_a_probability(majority_f1):
    from course_utils.grading.checks import number
    f1 = number(majority_f1, 'majority_f1')
    assert 0.0 <= f1 <= 1.0, f'majority_f1 is {f1}, but an F1 score lies between 0 and 1'


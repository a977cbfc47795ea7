from otter.test_files import test_case

OK_FORMAT = False

name = "q4"
points = 1

@test_case(points=None, hidden=False)
def test_is_a_probability(majority_f1):
    assert isinstance(majority_f1, float), f'majority_f1 should be a Python float, not {type(majority_f1).__name__}'
    assert 0.0 <= majority_f1 <= 1.0, 'an F1 score lies between 0 and 1'


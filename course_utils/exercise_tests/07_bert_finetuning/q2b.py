from otter.test_files import test_case

OK_FORMAT = False

name = "q2b"
points = 1

@test_case(points=None, hidden=False)
def test_head_learns_three_classes(head_accuracy_q2):
    from course_utils.grading.checks import number
    accuracy = number(head_accuracy_q2, 'head_accuracy_q2 (run the training cell above)')
    assert accuracy <= 1, f'head_accuracy_q2 is {accuracy}: give the accuracy as a fraction between 0 and 1, not a percentage'
    assert accuracy > 0.9, f'held-out accuracy {accuracy:.3f}: a head with 3 outputs trained on these features should pass 0.9'


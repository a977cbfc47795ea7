from otter.test_files import test_case

OK_FORMAT = False

name = "q2b"
points = 1

@test_case(points=None, hidden=False)
def test_head_learns_three_classes(head_accuracy_q2):
    assert isinstance(head_accuracy_q2, float), 'run the training cell above: head_accuracy_q2 should be a float'
    assert head_accuracy_q2 > 0.9, f'held-out accuracy {head_accuracy_q2:.3f}: a head with 3 outputs trained on these features should pass 0.9'


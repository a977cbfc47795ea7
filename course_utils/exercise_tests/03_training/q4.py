from otter.test_files import test_case

OK_FORMAT = False

name = "q4"
points = 2

@test_case(points=None, hidden=False)
def test_deterministic_and_right(evaluate_accuracy):
    import torch
    from torch import nn
    from torch.utils.data import TensorDataset
    from course_utils.grading.checks import evaluate, number
    torch.manual_seed(0)
    x = torch.randn(300, 2)
    data = TensorDataset(x, x.argmax(dim=1))
    model = nn.Sequential(nn.Dropout(0.5), nn.Linear(2, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.eye(2))
        model[1].bias.zero_()
    model.train()
    scores = evaluate('[evaluate_accuracy(model, data) for _ in range(3)]', evaluate_accuracy=evaluate_accuracy, model=model, data=data)
    scores = [number(s, 'evaluate_accuracy(...)') for s in scores]
    assert max(scores) - min(scores) < 1e-06, f'three calls on one model gave {scores}: evaluation should not be random (dropout?)'
    assert abs(scores[0] - 1.0) < 1e-06, f'this model is always right, but the accuracy is {scores[0]}: are predictions and labels in the same order, and dropout off?'


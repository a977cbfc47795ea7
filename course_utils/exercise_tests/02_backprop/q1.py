from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = 2

@test_case(points=None, hidden=False)
def test_value_and_slope(tanh, Value):
    import math
    from course_utils.grading.checks import evaluate
    kind, data, grad = evaluate('x = Value(0.5)\nt = tanh(x)\nkind = type(t).__name__\nt.backward()\nkind, t.data, x.grad', tanh=tanh, Value=Value)
    assert kind == 'Value', f'tanh should return a Value, not {kind}'
    assert abs(data - math.tanh(0.5)) < 1e-06, f'tanh(Value(0.5)).data is {data}, not tanh(0.5) = {math.tanh(0.5):.9f}'
    slope = 1 - math.tanh(0.5) ** 2
    assert abs(grad - slope) < 1e-06, f'after backward(), x.grad is {grad}; d tanh(x)/dx at 0.5 is 1 - tanh(0.5)^2 = {slope:.9f}'

@test_case(points=None, hidden=False)
def test_neuron_matches_autograd(tanh, Value):
    import torch
    from course_utils.grading.checks import evaluate
    grads = evaluate('x, w, b = Value(1.5), Value(-0.8), Value(0.3)\nout = tanh(w * x + b) * tanh(w * x + b)\nout.backward()\nx.grad, w.grad, b.grad', tanh=tanh, Value=Value)
    tx, tw, tb = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (1.5, -0.8, 0.3))
    (torch.tanh(tw * tx + tb) ** 2).backward()
    for name, ours, ref in zip('xwb', grads, (tx, tw, tb)):
        assert abs(ours - ref.grad.item()) < 1e-06, f'd out/d {name} is {ours}, autograd says {ref.grad.item():.9f}'


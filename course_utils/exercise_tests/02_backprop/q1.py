from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = 2

@test_case(points=None, hidden=False)
def test_value_and_slope(tanh, Value):
    import math
    x = Value(0.5)
    t = tanh(x)
    assert isinstance(t, Value), f'tanh should return a Value, not {type(t).__name__}'
    assert abs(t.data - math.tanh(0.5)) < 1e-12, 'the value of tanh(0.5) is wrong'
    t.backward()
    assert abs(x.grad - (1 - math.tanh(0.5) ** 2)) < 1e-12, f'd tanh(x)/dx at 0.5 should be 1 - tanh(0.5)^2, got {x.grad}'

@test_case(points=None, hidden=False)
def test_neuron_matches_autograd(tanh, Value):
    import torch
    x, w, b = (Value(1.5), Value(-0.8), Value(0.3))
    out = tanh(w * x + b) * tanh(w * x + b)
    out.backward()
    tx, tw, tb = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (1.5, -0.8, 0.3))
    (torch.tanh(tw * tx + tb) ** 2).backward()
    for name, ours, ref in (('x', x, tx), ('w', w, tw), ('b', b, tb)):
        assert abs(ours.grad - ref.grad.item()) < 1e-10, f'd out/d {name} is {ours.grad}, autograd says {ref.grad.item()}'


from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = 3

@test_case(points=None, hidden=False)
def test_int8_values_and_one_scale_per_row(quantize_per_channel):
    import torch
    g = torch.Generator().manual_seed(0)
    w = torch.randn(6, 10, generator=g) * torch.arange(1.0, 7.0)[:, None]
    q, scale = quantize_per_channel(w)
    assert isinstance(q, torch.Tensor) and q.dtype == torch.int8, f"q should be an int8 tensor, not {getattr(q, 'dtype', type(q))}"
    assert q.shape == (6, 10) and scale.shape == (6,), f'q should be (out, in) = (6, 10) and scale (out,) = (6,), not {tuple(q.shape)} and {tuple(scale.shape)}'
    expected = w.abs().amax(dim=1) / 127
    rel = ((scale.double() - expected.double()).abs() / expected.double()).max().item()
    assert rel < 1e-06, f"the scales {[float(f'{v:.4g}') for v in scale.tolist()]} differ from max |W_j| / 127 by a relative {rel:.2g}"
    top = q.int().abs().amax(dim=1).tolist()
    assert top == [127] * 6, f"the largest |q| of each row is {top}: each row's largest weight should map to +-127"

@test_case(points=None, hidden=False)
def test_error_at_most_half_a_step(quantize_per_channel, dequantize):
    import torch
    g = torch.Generator().manual_seed(1)
    sizes = 10.0 ** torch.arange(-3.0, 4.0)
    w = torch.randn(7, 40, generator=g) * sizes[:, None]
    q, scale = quantize_per_channel(w)
    w_hat = dequantize(q, scale)
    assert isinstance(w_hat, torch.Tensor) and w_hat.shape == w.shape, 'dequantize should return an (out, in) tensor'
    assert w_hat.dtype in (torch.float32, torch.float64), f'dequantize should return float32 (or float64), not {w_hat.dtype}'
    step = w.abs().amax(dim=1, keepdim=True) / 127
    worst = ((w_hat - w).abs() / step).max(dim=1).values
    assert (worst <= 0.5 + 1e-05).all(), f'the error exceeds half a step in some rows: worst error in steps of each row {[round(v, 3) for v in worst.tolist()]} (rows from 1e-3 to 1e3): round to the nearest, with one scale per row'


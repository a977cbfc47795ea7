from otter.test_files import test_case

OK_FORMAT = False

name = "q2"
points = 3

@test_case(points=None, hidden=False)
def test_starts_as_the_base_layer_and_trains_only_A_and_B(LoRALinear):
    import torch
    from course_utils.grading.checks import evaluate
    torch.manual_seed(0)
    base, x = (torch.nn.Linear(12, 5), torch.randn(4, 12))
    out, trained, shapes = evaluate('layer = LoRALinear(base, r=3, alpha=6)\nn = sum(p.numel() for p in layer.parameters() if p.requires_grad)\nlayer(x), n, (tuple(layer.A.shape), tuple(layer.B.shape))', LoRALinear=LoRALinear, base=base, x=x)
    assert shapes == ((3, 12), (5, 3)), f'A and B have shapes {shapes}, not A: (r, d_in) = (3, 12) and B: (d_out, r) = (5, 3)'
    assert trained == 3 * (12 + 5), f'{trained} trained parameters, not r (d_in + d_out) = 51: freeze base, train only A and B'
    with torch.no_grad():
        expected = base(x)
    assert isinstance(out, torch.Tensor) and out.shape == (4, 5), 'the layer should map (batch, d_in) to (batch, d_out)'
    gap = (out - expected).abs().max().item()
    assert gap < 1e-05, f'at initialisation the output differs from base(x) by {gap:.2e}: B should start at zero'

@test_case(points=None, hidden=False)
def test_matches_the_formula_with_nonzero_A_and_B(LoRALinear):
    import torch
    from course_utils.grading.checks import evaluate
    g = torch.Generator().manual_seed(1)
    base = torch.nn.Linear(6, 4)
    A, B = (torch.randn(2, 6, generator=g), torch.randn(4, 2, generator=g))
    x = torch.randn(5, 6, generator=g)
    out = evaluate('layer = LoRALinear(base, r=2, alpha=8)\nwith torch.no_grad():\n    layer.A.copy_(A)\n    layer.B.copy_(B)\nlayer(x)', LoRALinear=LoRALinear, base=base, A=A, B=B, x=x)
    with torch.no_grad():
        expected = base(x) + 8 / 2 * x @ A.T @ B.T
    gap = (out - expected).abs().max().item()
    assert gap < 1e-05, f'with r = 2, alpha = 8 the output differs from W x + b + (alpha / r) B A x by {gap:.3g}: check the product and the scale'


from otter.test_files import test_case

OK_FORMAT = False

name = "q2"
points = 2

@test_case(points=None, hidden=False)
def test_shapes_and_parameters(ClassificationHead):
    import torch
    from course_utils.grading.checks import evaluate
    x = torch.randn(4, 384)
    out, sizes = evaluate('head = ClassificationHead(384, 3).eval()\nhead(x), [p.numel() for p in head.parameters()]', ClassificationHead=ClassificationHead, x=x)
    assert isinstance(out, torch.Tensor) and tuple(out.shape) == (4, 3), f"a head with 3 classes should give (batch, 3) scores, got {tuple(getattr(out, 'shape', ())) or type(out).__name__}"
    n = sum(sizes)
    assert n == 384 * 3 + 3, f'one linear layer from 384 to 3 has {384 * 3 + 3} parameters; yours has {n}'


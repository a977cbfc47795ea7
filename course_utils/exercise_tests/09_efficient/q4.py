from otter.test_files import test_case

OK_FORMAT = False

name = "q4"
points = 3

@test_case(points=None, hidden=False)
def test_the_two_ends_of_weight(distillation_loss):
    import torch
    import torch.nn.functional as F
    from course_utils.grading.checks import number
    g = torch.Generator().manual_seed(0)
    s, t = (torch.randn(8, 3, generator=g), 3 * torch.randn(8, 3, generator=g))
    y = torch.randint(0, 3, (8,), generator=g)
    hard = number(distillation_loss(s, (y, t), T=2.0, weight=0.0), 'distillation_loss(..., weight=0.0)')
    expected = F.cross_entropy(s, y).item()
    assert abs(hard - expected) < 1e-05 + 1e-05 * abs(expected), f'with weight = 0 the loss is {hard:.6f}, not the cross-entropy {expected:.6f} (at temperature 1, mean over the batch)'
    soft = number(distillation_loss(s, (y, t), T=2.0, weight=1.0), 'distillation_loss(..., weight=1.0)')
    kl = F.kl_div(F.log_softmax(s / 2, -1), F.softmax(t / 2, -1), reduction='batchmean').item()
    assert abs(soft - 4 * kl) < 1e-05 + 1e-05 * abs(4 * kl), f'with weight = 1 and T = 2 the loss is {soft:.6f}, not T^2 KL(teacher || student) = {4 * kl:.6f} (mean over the batch)'

@test_case(points=None, hidden=False)
def test_mixes_the_two_terms(distillation_loss):
    import torch
    import torch.nn.functional as F
    from course_utils.grading.checks import number
    g = torch.Generator().manual_seed(1)
    s = torch.randn(16, 2, generator=g)
    t = 4 * torch.randn(16, 2, generator=g)
    y = torch.randint(0, 2, (16,), generator=g)
    for T, lam in ((4.0, 0.3), (1.0, 0.8)):
        got = number(distillation_loss(s, (y, t), T=T, weight=lam), f'distillation_loss(..., T={T}, weight={lam})')
        kl = F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction='batchmean')
        expected = (lam * T ** 2 * kl + (1 - lam) * F.cross_entropy(s, y)).item()
        assert abs(got - expected) < 1e-05 + 1e-05 * abs(expected), f'T = {T}, weight = {lam}: the loss is {got:.6f}, not {expected:.6f}'


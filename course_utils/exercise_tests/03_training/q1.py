from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = 3

@test_case(points=None, hidden=False)
def test_matches_torch_adamw(adamw_update):
    import torch
    from course_utils.grading.checks import expect_close
    g_seq = torch.randn(5, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))
    opt = torch.optim.AdamW([ref], lr=0.01, weight_decay=0.1)
    p, m, v = (ref.detach().clone(), torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64))
    for t, g in enumerate(g_seq, start=1):
        ref.grad = g.clone()
        opt.step()
        out = adamw_update(p, g, m, v, t, lr=0.01, weight_decay=0.1)
        assert isinstance(out, (tuple, list)) and len(out) == 3, 'adamw_update should return the tuple (p, m, v)'
        p, m, v = out
        expect_close(p, ref.detach(), f'after step {t} the weights differ from torch.optim.AdamW', atol=1e-10)


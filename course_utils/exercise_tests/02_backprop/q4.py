from otter.test_files import test_case

OK_FORMAT = False

name = "q4"
points = 2

@test_case(points=None, hidden=False)
def test_runs_and_matches_the_reference(train_logistic):
    import torch
    from course_utils.grading.checks import expect_close, number
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 2, generator=g)
    y = (x[:, 0] - x[:, 1] > 0).float()
    w, loss = train_logistic(x, y, steps=30)
    w_ref = torch.zeros(2, requires_grad=True)
    opt = torch.optim.SGD([w_ref], lr=0.5)
    for _ in range(30):
        opt.zero_grad()
        p = torch.sigmoid(x @ w_ref).clamp(1e-06, 1 - 1e-06)
        ref_loss = -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
        ref_loss.backward()
        opt.step()
    expect_close(w, w_ref.detach(), f'weights {w.tolist()} differ from the reference {w_ref.tolist()}: are the gradients cleared every step?', atol=1e-05)
    assert abs(number(loss, 'the final loss') - ref_loss.item()) < 1e-05, 'the final loss differs from the reference'


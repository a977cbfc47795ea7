from otter.test_files import test_case

OK_FORMAT = False

name = "q6"
points = 2

@test_case(points=None, hidden=False)
def test_scores_on_a_tiny_model(token_scores):
    import torch
    from torch import nn
    from course_utils.grading.checks import expect_close
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Flatten(0), nn.Linear(5 * 8, 3))
    emb = torch.randn(5, 4)
    got = token_scores(model, emb)
    assert isinstance(got, (tuple, list)) and len(got) == 2, 'token_scores should return (saliency, grad_x_input)'
    saliency, gxi = (torch.as_tensor(s).detach().double() for s in got)
    assert saliency.shape == (5,) and gxi.shape == (5,), f'one score per token expected, (5,) each; got {tuple(saliency.shape)} and {tuple(gxi.shape)}'
    e = emb.clone().requires_grad_()
    logits = model(e)
    logits[logits.argmax()].backward()
    expected_saliency = e.grad.norm(dim=-1).double()
    expected_gxi = (e.grad * emb).sum(-1).double()
    expect_close(saliency, expected_saliency, f"saliency {[round(v, 4) for v in saliency.tolist()]} differs from the norm of the gradient of the predicted logit over each token's embedding", atol=1e-05)
    expect_close(gxi, expected_gxi, f"grad_x_input {[round(v, 4) for v in gxi.tolist()]} differs from the gradient times the embedding, summed over the embedding's width", atol=1e-05)


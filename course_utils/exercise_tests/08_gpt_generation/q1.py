from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = 3

@test_case(points=None, hidden=False)
def test_a_small_example(top_p_filter):
    import torch
    from course_utils.grading.checks import expect_close
    logits = torch.tensor([[0.5, 0.05, 0.3, 0.15]]).log()
    out = top_p_filter(logits, 0.7)
    assert isinstance(out, torch.Tensor) and out.shape == (1, 4), "top_p_filter should return a tensor of the logits' shape (1, 4)"
    kept = (out.softmax(-1) > 0)[0].tolist()
    assert kept == [True, False, True, False], f'with p = 0.7 and probabilities (0.5, 0.05, 0.3, 0.15) the tokens kept should be 0 and 2 (0.5 + 0.3 >= 0.7), not {kept}'
    probs = out.softmax(-1)[0]
    expected = torch.tensor([0.625, 0.0, 0.375, 0.0], dtype=torch.float64)
    expect_close(probs, expected, f'softmax of your result is {probs.tolist()}, not the nucleus renormalised (0.625, 0, 0.375, 0)', atol=1e-06)

@test_case(points=None, hidden=False)
def test_keeps_the_most_likely_token(top_p_filter):
    import torch
    logits = torch.tensor([[0.0, 4.0, 1.0, 0.5]])
    probs = top_p_filter(logits, 0.5).softmax(-1)
    assert not probs.isnan().any(), f'softmax of your result is {probs.tolist()}: every token was filtered out; the most likely one must always stay'
    assert probs[0].tolist() == [0.0, 1.0, 0.0, 0.0], f"p = 0.5 below the top token's 0.91 should keep that token alone, got probabilities {probs[0].tolist()}"


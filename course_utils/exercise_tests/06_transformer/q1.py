from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = 3

@test_case(points=None, hidden=False)
def test_post_ln_matches_torch(post_ln_block):
    import torch
    from torch import nn
    from course_utils.grading.checks import evaluate, expect_close
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 4, 32, batch_first=True, norm_first=False).eval()
    x = torch.randn(2, 5, 16)
    ours = evaluate('with torch.no_grad():\n    out = post_ln_block(x, lambda h: layer.self_attn(h, h, h, need_weights=False)[0], lambda h: layer.linear2(layer.activation(layer.linear1(h))), layer.norm1, layer.norm2)\nout', post_ln_block=post_ln_block, x=x, layer=layer)
    with torch.no_grad():
        theirs = layer(x)
    assert isinstance(ours, torch.Tensor) and ours.shape == x.shape, 'the block should return a tensor shaped like x'
    expect_close(ours, theirs, 'post_ln_block differs from nn.TransformerEncoderLayer(norm_first=False)', atol=1e-05)

@test_case(points=None, hidden=False)
def test_pre_ln_matches_torch(pre_ln_block):
    import torch
    from torch import nn
    from course_utils.grading.checks import evaluate, expect_close
    torch.manual_seed(1)
    layer = nn.TransformerEncoderLayer(16, 4, 32, batch_first=True, norm_first=True).eval()
    x = torch.randn(2, 5, 16)
    ours = evaluate('with torch.no_grad():\n    out = pre_ln_block(x, lambda h: layer.self_attn(h, h, h, need_weights=False)[0], lambda h: layer.linear2(layer.activation(layer.linear1(h))), layer.norm1, layer.norm2)\nout', pre_ln_block=pre_ln_block, x=x, layer=layer)
    with torch.no_grad():
        theirs = layer(x)
    assert isinstance(ours, torch.Tensor) and ours.shape == x.shape, 'the block should return a tensor shaped like x'
    expect_close(ours, theirs, 'pre_ln_block differs from nn.TransformerEncoderLayer(norm_first=True)', atol=1e-05)


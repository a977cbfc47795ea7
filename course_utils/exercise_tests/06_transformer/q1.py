from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = 3

@test_case(points=None, hidden=False)
def test_post_ln_matches_torch(post_ln_block):
    import torch
    from torch import nn
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 4, 32, batch_first=True, norm_first=False).eval()

    def attn(h):
        return layer.self_attn(h, h, h, need_weights=False)[0]

    def ff(h):
        return layer.linear2(layer.activation(layer.linear1(h)))
    x = torch.randn(2, 5, 16)
    with torch.no_grad():
        ours, theirs = (post_ln_block(x, attn, ff, layer.norm1, layer.norm2), layer(x))
    assert isinstance(ours, torch.Tensor) and ours.shape == x.shape, 'the block should return a tensor shaped like x'
    assert torch.allclose(ours, theirs, atol=1e-05), 'post_ln_block differs from nn.TransformerEncoderLayer(norm_first=False)'

@test_case(points=None, hidden=False)
def test_pre_ln_matches_torch(pre_ln_block):
    import torch
    from torch import nn
    torch.manual_seed(1)
    layer = nn.TransformerEncoderLayer(16, 4, 32, batch_first=True, norm_first=True).eval()

    def attn(h):
        return layer.self_attn(h, h, h, need_weights=False)[0]

    def ff(h):
        return layer.linear2(layer.activation(layer.linear1(h)))
    x = torch.randn(2, 5, 16)
    with torch.no_grad():
        ours, theirs = (pre_ln_block(x, attn, ff, layer.norm1, layer.norm2), layer(x))
    assert isinstance(ours, torch.Tensor) and ours.shape == x.shape, 'the block should return a tensor shaped like x'
    assert torch.allclose(ours, theirs, atol=1e-05), 'pre_ln_block differs from nn.TransformerEncoderLayer(norm_first=True)'


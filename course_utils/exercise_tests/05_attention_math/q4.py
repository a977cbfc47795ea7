from otter.test_files import test_case

OK_FORMAT = False

name = "q4"
points = 2

@test_case(points=None, hidden=False)
def test_split_puts_each_slice_in_its_head(split_heads):
    import torch
    from course_utils.grading.checks import expect_equal
    x = torch.arange(2 * 3 * 8, dtype=torch.float32).reshape(2, 3, 8)
    heads = split_heads(x, 4)
    assert tuple(heads.shape) == (2, 4, 3, 2), f'(batch, seq, d_model) = (2, 3, 8) with 4 heads should give (2, 4, 3, 2), not {tuple(heads.shape)}'
    expect_equal(heads[1, 2, 0], x[1, 0, 4:6], 'head 2 of token 0 should hold features 4 and 5 of that token')

@test_case(points=None, hidden=False)
def test_merge_undoes_split(split_heads, merge_heads):
    import torch
    from course_utils.grading.checks import expect_equal
    x = torch.randn(3, 5, 12)
    expect_equal(merge_heads(split_heads(x, 3)), x, 'merge_heads(split_heads(x)) should give x back')


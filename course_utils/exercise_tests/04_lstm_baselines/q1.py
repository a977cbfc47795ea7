from otter.test_files import test_case

OK_FORMAT = False

name = "q1"
points = 3

@test_case(points=None, hidden=False)
def test_one_step_matches_lstm_cell(lstm_cell):
    import torch
    from torch import nn
    from course_utils.grading.checks import expect_close
    torch.manual_seed(0)
    ref = nn.LSTMCell(5, 3)
    x, h, c = (torch.randn(2, 5), torch.randn(2, 3), torch.randn(2, 3))
    with torch.no_grad():
        result = lstm_cell(x, h, c, ref.weight_ih, ref.weight_hh, ref.bias_ih, ref.bias_hh)
        ref_h, ref_c = ref(x, (h, c))
    assert isinstance(result, (tuple, list)) and len(result) == 2, 'lstm_cell should return the pair (h, c)'
    assert tuple(result[0].shape) == (2, 3) and tuple(result[1].shape) == (2, 3), 'h and c should be (batch, H)'
    expect_close(result[1], ref_c, "the new cell state c differs from nn.LSTMCell: check the gate order i, f, g, o and c' = f*c + i*g", atol=1e-05)
    expect_close(result[0], ref_h, "the new hidden state h differs from nn.LSTMCell: h' = o * tanh(c')", atol=1e-05)


from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = 2

@test_case(points=None, hidden=False)
def test_matches_the_packed_final_state(last_output):
    import torch
    from torch import nn
    from course_utils.grading.checks import expect_close
    torch.manual_seed(3)
    lstm = nn.LSTM(4, 3, batch_first=True)
    x, lengths = (torch.randn(3, 6, 4), torch.tensor([6, 2, 4]))
    with torch.no_grad():
        outputs, _ = lstm(x)
        _, (h_n, _) = lstm(nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    result = last_output(outputs, lengths)
    assert isinstance(result, torch.Tensor) and tuple(result.shape) == (3, 3), 'last_output should return (batch, H)'
    expect_close(result[0], h_n[0, 0], 'wrong for the sentence without padding', atol=1e-06)
    expect_close(result, h_n[0], 'wrong for the padded sentences: their last position is padding', atol=1e-06)


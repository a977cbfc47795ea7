from otter.test_files import test_case

OK_FORMAT = False

name = "q3"
points = 2

@test_case(points=None, hidden=False)
def test_matches_the_packed_final_state(last_output):
    import torch
    from torch import nn
    torch.manual_seed(3)
    lstm = nn.LSTM(4, 3, batch_first=True)
    x, lengths = (torch.randn(3, 6, 4), torch.tensor([6, 2, 4]))
    with torch.no_grad():
        outputs, _ = lstm(x)
        _, (h_n, _) = lstm(nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    result = last_output(outputs, lengths)
    assert isinstance(result, torch.Tensor) and tuple(result.shape) == (3, 3), 'last_output should return (batch, H)'
    assert torch.allclose(result[0], h_n[0, 0], atol=1e-06), 'wrong for the sentence without padding'
    assert torch.allclose(result, h_n[0], atol=1e-06), 'wrong for the padded sentences: their last position is padding'


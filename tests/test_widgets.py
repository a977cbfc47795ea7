"""The attention explorer shows the right numbers, and degrades to a static figure."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_utils.widgets import (
    AttentionExplorer,
    apply_temperature,
    attention_explorer,
    in_live_notebook,
)

TOKENS = ["a", "gorgeous", ",", "witty", "film", "."]


def scores(layers=2, heads=3, seq=6, seed=0):
    return torch.randn(layers, heads, seq, seq, generator=torch.Generator().manual_seed(seed)) * 2


def shown_matrix(fig) -> np.ndarray:
    return np.asarray(fig.axes[0].images[0].get_array())


def test_temperature_of_softmax_weights_equals_softmax_of_scaled_scores():
    s = scores()
    for t in (0.1, 0.5, 1.0, 3.0):
        assert torch.allclose(apply_temperature(s.softmax(-1), t), (s / t).softmax(-1), atol=1e-6)


def test_temperature_keeps_masked_keys_at_zero_and_rows_summing_to_one():
    s = scores(1, 1, 4)[0, 0].masked_fill(torch.tensor([True, True, False, False]), float("-inf"))
    w = apply_temperature(s.softmax(-1), 0.3)
    assert torch.equal(w[:, :2], torch.zeros(4, 2))
    assert torch.allclose(w.sum(-1), torch.ones(4))


def test_figure_shows_the_softmax_of_the_chosen_layer_head_and_temperature():
    s = scores()
    explorer = AttentionExplorer(s.softmax(-1), tokens=TOKENS)
    fig = explorer.figure(layer=1, head=2, temperature=0.5)
    expected = (s[1, 2] / 0.5).softmax(-1).numpy()
    np.testing.assert_allclose(shown_matrix(fig), expected, atol=1e-6)
    np.testing.assert_allclose(shown_matrix(fig).sum(-1), np.ones(len(TOKENS)), atol=1e-6)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == TOKENS
    assert "layer 1, head 2, temperature 0.5" in fig.axes[0].get_title()
    plt.close(fig)


def test_callable_source_is_called_once_per_sentence():
    calls = []

    def attention_of(sentence):
        calls.append(sentence)
        tokens = sentence.split()
        return tokens, scores(1, 2, len(tokens), seed=len(tokens)).softmax(-1)

    explorer = AttentionExplorer(attention_of, sentences=["a fine film", "dull and slow and long"])
    view = explorer.view(sentence="dull and slow and long", head=1)
    explorer.view(sentence="dull and slow and long", head=0)
    assert view.tokens == ["dull", "and", "slow", "and", "long"]
    np.testing.assert_allclose(view.weights, scores(1, 2, 5, seed=5)[0, 1].softmax(-1).numpy(), atol=1e-6)
    assert calls == ["a fine film", "dull and slow and long"]


def test_show_draws_the_default_state_without_controls_outside_a_notebook():
    s = scores()
    explorer = attention_explorer(s.softmax(-1), tokens=TOKENS, layer=1, head=0, temperature=2.0)
    assert not in_live_notebook()
    view = explorer.last_view
    assert (view.layer, view.head, view.temperature) == (1, 0, 2.0)
    np.testing.assert_allclose(view.weights, (s[1, 0] / 2.0).softmax(-1).numpy(), atol=1e-6)


def test_batch_runs_that_store_outputs_get_no_controls(monkeypatch):
    monkeypatch.setenv("COURSE_RESULTS_SINK", "/tmp/sink.json")
    assert not in_live_notebook()


def test_controls_change_the_state_and_redraw():
    explorer = AttentionExplorer(scores().softmax(-1), tokens=TOKENS)
    redraws = []
    box = explorer.controls(lambda: redraws.append(explorer.view()))
    layer, head, temperature = box.children
    head.value, temperature.value = 2, 0.25
    assert explorer.state["head"] == 2 and explorer.state["temperature"] == pytest.approx(0.25)
    assert len(redraws) == 2 and redraws[-1].head == 2


@pytest.mark.parametrize("bad, message", [
    (scores(), "rows sum to 1"),                      # raw scores, not softmax outputs
    (torch.ones(2, 2, 5, 5) / 5, "5 positions"),      # one position short of the tokens
    (torch.ones(2, 2, 6, 5) / 5, "(layers, heads, seq, seq)"),
])
def test_bad_weights_are_refused_with_the_fix(bad, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        AttentionExplorer(bad, tokens=TOKENS)


def test_out_of_range_head_names_the_valid_range():
    explorer = AttentionExplorer(scores().softmax(-1), tokens=TOKENS)
    with pytest.raises(IndexError, match=r"head in 0..2"):
        explorer.view(head=3)

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


# ------------------------------------------------------------------ ipywidgets 7 (Colab) and 8
# Colab imports its ipywidgets 7.7.1 at start-up, so the course must work with it as well as with 8:
# this file runs at 8 in .venv and at 7.7.1 in `make compat COMPAT_ENDS=colab`.

def test_the_declared_ipywidgets_range_admits_colabs_7_and_8():
    import tomllib
    from pathlib import Path

    from packaging.requirements import Requirement

    with open(Path(__file__).resolve().parents[1] / "pyproject.toml", "rb") as f:
        declared = [Requirement(d) for d in tomllib.load(f)["project"]["dependencies"]]
    widgets = next(r for r in declared if r.name == "ipywidgets")
    assert all(widgets.specifier.contains(v) for v in ("7.6.5", "7.7.1", "8.0.0", "8.1.9")), widgets
    # 7.6.0-7.6.3 import ipython_genutils without declaring it (make compat's lowest end)
    assert not widgets.specifier.contains("7.6.3"), widgets


def test_the_explorers_controls_build_and_redraw_with_the_installed_ipywidgets():
    import ipywidgets

    explorer = AttentionExplorer(lambda s: (s.split(), scores(2, 3, len(s.split())).softmax(-1)),
                                 sentences=["a fine film", "dull and slow"])
    redraws = []
    box = explorer.controls(lambda: redraws.append(explorer.view()))
    sentence, layer, head, temperature = box.children
    assert isinstance(box, ipywidgets.VBox) and isinstance(temperature, ipywidgets.FloatLogSlider)
    sentence.value, layer.value = "dull and slow", 1
    assert redraws[-1].tokens == ["dull", "and", "slow"] and redraws[-1].layer == 1, ipywidgets.__version__


def test_the_cost_calculators_controls_build_with_the_installed_ipywidgets(monkeypatch):
    import IPython.display

    from course_utils import compute

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(obj) or _Handle())
    compute.cost_calculator(interactive=True)
    controls = shown[-1]
    n_params = controls.children[0]
    n_params.value = 1e9  # redraws through the display handle
    assert type(controls).__name__ == "VBox" and n_params.description == "parameters"


class _Handle:
    def update(self, obj):
        plt.close(obj)


def test_sliders_take_their_value_positionally_as_chapter_8_writes_them():
    import ipywidgets as widgets

    assert widgets.FloatSlider(1.0, min=0.2, max=2.0).value == 1.0
    assert widgets.IntSlider(0, min=0, max=20).value == 0


def test_tqdm_auto_draws_a_widget_bar_in_a_notebook_with_the_installed_ipywidgets():
    """fit and evaluate draw tqdm.auto bars; in a notebook that is tqdm.notebook's ipywidgets bar."""
    from tqdm.notebook import tqdm as notebook_tqdm

    bar = notebook_tqdm(total=4, desc="training", display=False)
    bar.update(3)
    bar.refresh()
    progress = [c for c in bar.container.children if type(c).__name__ in ("FloatProgress", "IntProgress")]
    assert progress and progress[0].max == 4 and progress[0].value == 3
    bar.close()

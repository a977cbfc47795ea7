"""The attention explorer: an attention map you steer by sentence, layer, head and temperature.

Give it attention weights, either precomputed for one sentence or computed on demand::

    # weights: (layers, heads, seq, seq), rows summing to 1 (softmax outputs); tokens: seq strings
    explorer = attention_explorer(weights, tokens=tokens)

    # or a function sentence -> (tokens, weights), and the sentences to choose from
    explorer = attention_explorer(attention_of, sentences=["a gorgeous film .", "dull and slow ."])

For a Hugging Face model, ``weights = torch.stack(model(**batch, output_attentions=True).attentions)[:, 0]``
(one sentence, no padding) has that shape.

It always draws a static matplotlib figure of the current choice first, so a rendered book,
a PDF or a batch run stores a plain image. In a live notebook the controls appear under the
figure and redraw it in place. Batch runs are recognised by ``$COURSE_STATIC_WIDGETS`` or by
``$COURSE_RESULTS_SINK`` (set while ``tools/notebooks.py execute`` stores outputs), so the
stored notebook holds no widget that would be dead in the book.

Temperature ``T`` divides the attention scores before the softmax: ``softmax(s / T)``.
From weights ``w = softmax(s)`` the same map is ``softmax(log(w) / T)``, because ``log w``
differs from ``s`` by one constant per row, which the softmax ignores. ``T = 1`` shows the
weights as given; ``T < 1`` sharpens them, ``T > 1`` flattens them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch

from .plots import heatmap

Source = Callable[[str], tuple[Sequence[str], torch.Tensor]]


def apply_temperature(weights: torch.Tensor, temperature: float) -> torch.Tensor:
    """Re-sharpen attention weights as if their scores had been divided by ``temperature``.

    ``weights: (..., seq_q, seq_k)`` with rows summing to 1; zeros (masked keys) stay zero.
    Example: ``apply_temperature(torch.softmax(s, -1), 0.5)`` equals ``torch.softmax(s / 0.5, -1)``.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    log_w = torch.log(weights.double())  # log 0 = -inf: masked keys stay masked
    return torch.softmax(log_w / temperature, dim=-1).to(weights.dtype)


def _as_4d(weights, n_tokens: int) -> torch.Tensor:
    """Check and reshape attention weights to ``(layers, heads, seq, seq)``."""
    w = torch.as_tensor(weights).detach().float().cpu()
    while w.dim() < 4:
        w = w.unsqueeze(0)
    if w.dim() != 4 or w.shape[-1] != w.shape[-2]:
        raise ValueError(f"attention weights must be (layers, heads, seq, seq), (heads, seq, seq) or (seq, seq); "
                         f"got shape {tuple(torch.as_tensor(weights).shape)}")
    if w.shape[-1] != n_tokens:
        raise ValueError(f"attention weights cover {w.shape[-1]} positions but there are {n_tokens} tokens: "
                         "pass one token per position (strip padding from both, or keep it in both)")
    if (w < 0).any() or not torch.allclose(w.sum(-1), torch.ones(()), atol=1e-3):
        raise ValueError("attention weights must be probabilities whose rows sum to 1: pass the softmax "
                         "outputs (e.g. output_attentions=True in transformers), not the raw scores")
    return w


def in_live_notebook() -> bool:
    """True in an interactive Jupyter/Colab kernel; False in plain Python and in batch runs that store outputs."""
    if os.environ.get("COURSE_STATIC_WIDGETS") or os.environ.get("COURSE_RESULTS_SINK"):
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


@dataclass
class AttentionView:
    """One drawn map: which sentence, layer, head and temperature, the tokens and the weights shown."""

    sentence: str | None
    layer: int
    head: int
    temperature: float
    tokens: list[str]
    weights: np.ndarray  # (seq, seq): row i = how query token i spreads its attention over the keys


class AttentionExplorer:
    """Attention maps of one model over a few sentences; see the module docstring."""

    def __init__(self, source, *, tokens: Sequence[str] | None = None, sentences: Sequence[str] | None = None,
                 layer: int = 0, head: int = 0, temperature: float = 1.0, title: str = "Attention weights"):
        self._cache: dict[str | None, tuple[list[str], torch.Tensor]] = {}
        if callable(source):
            if not sentences:
                raise ValueError("a callable source needs sentences=[...] to choose from")
            self.sentences, self._source = list(sentences), source
        else:
            if tokens is None:
                raise ValueError("precomputed attention weights need tokens=[...], one per position")
            self.sentences, self._source = [None], None
            self._cache[None] = (list(tokens), _as_4d(source, len(tokens)))
        self.title = title
        self.state = {"sentence": self.sentences[0], "layer": layer, "head": head, "temperature": temperature}
        self.shape = tuple(self.attention_of(self.sentences[0])[1].shape[:2])  # (layers, heads)
        self.last_view: AttentionView | None = None

    def attention_of(self, sentence: str | None) -> tuple[list[str], torch.Tensor]:
        """Tokens and ``(layers, heads, seq, seq)`` weights of ``sentence`` (computed once, then cached)."""
        if sentence not in self._cache:
            tokens, weights = self._source(sentence)
            self._cache[sentence] = (list(tokens), _as_4d(weights, len(tokens)))
        return self._cache[sentence]

    def view(self, **choice) -> AttentionView:
        """The map for the current choice, changed by any of ``sentence``, ``layer``, ``head``, ``temperature``."""
        unknown = set(choice) - set(self.state)
        if unknown:
            raise TypeError(f"unknown choice {sorted(unknown)}; choose among {sorted(self.state)}")
        state = {**self.state, **{k: v for k, v in choice.items() if v is not None}}
        tokens, weights = self.attention_of(state["sentence"])
        layers, heads = weights.shape[:2]
        if not (0 <= state["layer"] < layers and 0 <= state["head"] < heads):
            raise IndexError(f"layer must be in 0..{layers - 1} and head in 0..{heads - 1}, "
                             f"got layer {state['layer']}, head {state['head']}")
        shown = apply_temperature(weights[state["layer"], state["head"]], state["temperature"])
        return AttentionView(state["sentence"], state["layer"], state["head"], float(state["temperature"]),
                             tokens, shown.numpy())

    def figure(self, **choice):
        """A matplotlib figure of :meth:`view` (not shown; ``display`` it or call :meth:`show`)."""
        v = self.view(**choice)
        size = float(np.clip(2.5 + 0.42 * len(v.tokens), 4.5, 11))
        fig, ax = plt.subplots(figsize=(size + 1, size))
        heatmap(v.weights, v.tokens, v.tokens, ax=ax, cmap="Blues",
                title=f"{self.title}\nlayer {v.layer}, head {v.head}, temperature {v.temperature:.2g}")
        ax.set_xlabel("key: token attended to")
        ax.set_ylabel("query: token attending")
        ax.images[0].colorbar.set_label("attention weight (row sums to 1)")
        ax.images[0].set_clim(0, 1)
        fig.tight_layout()
        self.last_view = v
        return fig

    def controls(self, redraw: Callable[[], None]):
        """ipywidgets controls that update ``self.state`` and call ``redraw()`` on every change."""
        import ipywidgets as widgets

        layers, heads = self.shape
        boxes = []
        if len(self.sentences) > 1:
            boxes.append(("sentence", widgets.Dropdown(options=self.sentences, value=self.state["sentence"],
                                                       description="sentence", layout={"width": "95%"})))
        if layers > 1:
            boxes.append(("layer", widgets.IntSlider(value=self.state["layer"], min=0, max=layers - 1, description="layer")))
        if heads > 1:
            boxes.append(("head", widgets.IntSlider(value=self.state["head"], min=0, max=heads - 1, description="head")))
        boxes.append(("temperature", widgets.FloatLogSlider(value=self.state["temperature"], base=10, min=-1.5,
                                                            max=1.5, step=0.05, description="temperature")))

        def on_change(name):
            def update(change):
                self.state[name] = change["new"]
                redraw()
            return update

        for name, box in boxes:
            box.observe(on_change(name), names="value")
        return widgets.VBox([box for _, box in boxes])

    def show(self, interactive: bool | None = None) -> AttentionExplorer:
        """Display the static figure; in a live notebook, add controls that redraw it in place."""
        from IPython.display import display

        fig = self.figure()
        plt.close(fig)  # shown once, through the display handle, not again by the inline backend
        handle = display(fig, display_id=True)
        if interactive if interactive is not None else in_live_notebook():

            def redraw():
                new = self.figure()
                plt.close(new)
                handle.update(new)

            display(self.controls(redraw))
        return self


def attention_explorer(source, *, tokens: Sequence[str] | None = None, sentences: Sequence[str] | None = None,
                       layer: int = 0, head: int = 0, temperature: float = 1.0, title: str = "Attention weights",
                       interactive: bool | None = None) -> AttentionExplorer:
    """Show an :class:`AttentionExplorer` and return it (``.last_view`` is the map on screen).

    Args:
        source: attention weights ``(layers, heads, seq, seq)`` (or ``(heads, seq, seq)``, ``(seq, seq)``)
            with ``tokens``; or a function ``sentence -> (tokens, weights)`` with ``sentences``.
        layer, head, temperature: the first map shown (the one a rendered book keeps).
        interactive: force the controls on or off (default: on in a live notebook only).
    """
    explorer = AttentionExplorer(source, tokens=tokens, sentences=sentences, layer=layer, head=head,
                                 temperature=temperature, title=title)
    return explorer.show(interactive=interactive)

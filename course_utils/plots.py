"""Figures the chapters share: training curves, confusion matrices, heatmaps."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np


def _smooth(values: Sequence[float], window: int) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if window <= 1 or len(values) < window:
        return values
    return np.convolve(values, np.ones(window) / window, mode="valid")


def plot_history(history, ax=None, smooth: int = 0):
    """Training loss per optimizer step, with validation loss per epoch when the history has it."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    steps = history.step[: len(history.loss)]
    ax.plot(steps, history.loss, alpha=0.35 if smooth > 1 else 1.0, label="training loss (per step)")
    if smooth > 1 and len(history.loss) >= smooth:
        ax.plot(steps[smooth - 1 :], _smooth(history.loss, smooth), label=f"training loss ({smooth}-step mean)")
    val = [(e["step"], e["val_loss"]) for e in history.epochs if "val_loss" in e]
    if val:
        ax.plot(*zip(*val), "o-", label="validation loss (per epoch)")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (cross-entropy, nats)")
    ax.set_title("Training curve")
    ax.legend()
    return ax


def confusion_matrix(gold: Sequence[int], pred: Sequence[int], num_classes: int | None = None) -> np.ndarray:
    """Counts ``C[i, j]`` of examples with true class ``i`` predicted as ``j``."""
    gold, pred = np.asarray(gold), np.asarray(pred)
    k = num_classes or int(max(gold.max(), pred.max())) + 1
    matrix = np.zeros((k, k), dtype=int)
    np.add.at(matrix, (gold, pred), 1)
    return matrix


def plot_confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], ax=None, title: str = "Confusion matrix"):
    """A labelled confusion matrix with the count in every cell."""
    if ax is None:
        _, ax = plt.subplots(figsize=(3.8, 3.4))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        color = "white" if count > matrix.max() / 2 else "black"
        ax.text(j, i, str(count), ha="center", va="center", color=color)
    ax.set_xticks(range(len(class_names)), class_names)
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    return ax


def heatmap(matrix, x_labels: Sequence[str], y_labels: Sequence[str], ax=None, title: str = "", cmap: str = "viridis"):
    """A matrix as an image with labelled rows and columns (e.g. attention weights)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(1 + 0.45 * len(x_labels), 1 + 0.45 * len(y_labels)))
    image = ax.imshow(np.asarray(matrix), cmap=cmap)
    ax.set_xticks(range(len(x_labels)), x_labels, rotation=90)
    ax.set_yticks(range(len(y_labels)), y_labels)
    ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, fraction=0.046)
    return ax

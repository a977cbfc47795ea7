"""Checkpoints a run can trust: written atomically, resumed only by the run that wrote them.

A checkpoint holds everything ``fit`` needs to carry on as if it had never stopped: weights,
optimizer and loss-scaler state, where in which epoch it was, the random state, the history so
far, and a *fingerprint* of every setting that changes the result. Resuming with a different
learning rate, schedule, step count or model would silently continue the old run, so
:func:`restore` refuses a checkpoint whose fingerprint differs and says what differs.

A checkpoint written when the run finished is marked ``finished``: running the training cell
again restores the trained weights and the finished run's history instead of training again.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

CHECKPOINT_NAME = "checkpoint.pt"

# Optimizer options that choose a kernel, not the arithmetic: a run may resume on another device.
_KERNEL_OPTIONS = ("params", "fused", "foreach", "capturable", "differentiable", "initial_lr", "lr")


def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` atomically: a disconnect mid-write leaves the previous checkpoint intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict:
    # weights_only=False: the file holds our own RNG states (numpy arrays, Python tuples).
    return torch.load(path, map_location="cpu", weights_only=False)


def display_path(path: Path) -> str:
    """``path`` as a reader should see it in a stored notebook: no machine-specific prefix.

    Under ``$COURSE_CHECKPOINTS`` it reads ``$COURSE_CHECKPOINTS/...``; under the working folder,
    relative to it; under the home folder, ``~/...``.
    """
    path = Path(path).absolute()
    bases = [(os.environ.get("COURSE_CHECKPOINTS"), "$COURSE_CHECKPOINTS"), (os.getcwd(), "."),
             (str(Path.home()), "~")]
    for base, shown in bases:
        if base:
            try:
                return str(Path(shown) / path.relative_to(Path(base).expanduser().absolute()))
            except ValueError:
                continue
    return str(path)


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]


def run_fingerprint(model: nn.Module, optimizer: torch.optim.Optimizer, base_lrs: Sequence[float],
                    lengths: Sequence[int] | None = None, **settings) -> dict:
    """Every setting that changes what a run computes, as plain values that compare with ``==``.

    The model counts by its parameter names and shapes (a different architecture or head size
    differs), the optimizer by its class and per-group settings (learning rate, betas, weight
    decay, ...), the data order by the example count, seed, shuffle and length grouping.
    ``settings`` adds the rest (schedule, warm-up, steps, clipping, precision, batch).
    """
    shapes = [(name, list(p.shape)) for name, p in model.named_parameters()]
    groups = [{k: v for k, v in g.items() if k not in _KERNEL_OPTIONS} for g in optimizer.param_groups]
    fingerprint = {
        "model": f"{type(model).__name__}, {sum(p.numel() for p in model.parameters()):,} parameters "
                 f"(names and shapes {_digest(shapes)})",
        "optimizer": type(optimizer).__name__,
        "learning rate": [float(lr) for lr in base_lrs],
        "optimizer settings": json.loads(json.dumps(groups, default=str)),
        "length grouping": None if lengths is None else _digest(list(lengths)),
        **settings,
    }
    return fingerprint


def describe_difference(old: dict, new: dict) -> str:
    """``"learning rate [0.0001] → [0.0002]; max steps 800 → 1600"``: what changed between two runs."""
    keys = list(dict.fromkeys([*old, *new]))
    changes = [f"{k}: {old.get(k, 'not recorded')} → {new.get(k, 'not recorded')}"
               for k in keys if old.get(k) != new.get(k)]
    return "; ".join(changes)


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class Position:
    """Where a run is: optimizer steps done, the epoch, the next step-group in it, the micro-batch."""

    step: int = 0
    epoch: int = 0
    group: int = 0
    batch_size: int = 1
    accumulation: int = 1
    finished: bool = False
    extra: dict = field(default_factory=dict)


def save(path: Path | None, *, model, optimizer, scaler, position: Position, history: dict,
         fingerprint: dict) -> float:
    """Write the run's checkpoint to ``path`` (nothing when ``None``); return the seconds it took."""
    if path is None:
        return 0.0
    import time

    start = time.perf_counter()
    save_checkpoint(path, {
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
        "position": vars(position).copy(), "history": history, "rng": rng_state(), "fingerprint": fingerprint,
    })
    return time.perf_counter() - start


def restore(path: Path | None, *, model, optimizer, scaler, fingerprint: dict) -> tuple[Position, dict] | None:
    """Load the checkpoint at ``path`` into ``model``/``optimizer``/``scaler`` if there is one.

    Returns ``(position, history dict)``, or ``None`` when there is no checkpoint to resume.
    Raises ``ValueError`` naming every difference when the checkpoint was written by another run.
    """
    if path is None or not path.exists():
        return None
    state = load_checkpoint(path)
    if "position" not in state or state.get("fingerprint") != fingerprint:
        difference = describe_difference(state.get("fingerprint", {}), fingerprint) or "an older checkpoint format"
        raise ValueError(
            f"the checkpoint in {display_path(path.parent)} was written by a different run ({difference}). "
            "Resuming it would continue the old run with the old settings. Use another checkpoint_dir "
            "for the new run (e.g. cfg.checkpoint_dir('name_v2')), or pass resume=False to start over "
            "(the old checkpoint is then overwritten)."
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"])
    return Position(**state["position"]), state["history"]

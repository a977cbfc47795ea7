"""``fit`` and ``evaluate``: one lean training loop with the things a GPU run needs.

``fit`` is a plain PyTorch loop (read it top to bottom) with:

* mixed precision chosen per device (``device.amp_dtype``), with loss scaling for fp16;
* gradient accumulation: ``batch_size`` examples per micro-batch, ``accumulation``
  micro-batches per optimizer step, so one step sees ``batch_size * accumulation`` examples;
* gradient clipping and a per-step learning-rate schedule (warm-up, then constant,
  linear or cosine decay);
* ``tqdm.auto`` progress and an optional live loss plot;
* an atomic checkpoint each epoch (and every ``checkpoint_every`` steps), written again
  when the run is interrupted, and automatic resume from it: data order and random
  state are restored, so a resumed run ends with the same weights as an uninterrupted one;
* out-of-memory back-off: halve the micro-batch, double the accumulation, same
  effective batch, same examples in the step;
* throughput in examples/s and tokens/s.

Batches come in two shapes. A mapping (Hugging Face style, ``{"input_ids": ..., "labels": ...}``)
is called as ``model(**batch)``, and the loss is ``output.loss`` unless ``loss_fn`` is given.
A tuple ``(x1, ..., xk, y)`` is called as ``model(x1, ..., xk)`` and scored with
``loss_fn(output, y)`` (default: cross-entropy).
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import default_collate

from .device import AmpChoice, amp_dtype, is_out_of_memory, pick_device

CHECKPOINT_NAME = "checkpoint.pt"


# --------------------------------------------------------------------------- history


@dataclass
class History:
    """What a run did: per-step loss and learning rate, per-epoch summaries, throughput."""

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    examples_per_s: float = 0.0
    tokens_per_s: float | None = None
    train_time_s: float = 0.0  # optimizer steps only: validation and checkpoint writes are not counted
    eval_time_s: float = 0.0  # per-epoch validation, reported apart so throughput is not understated
    examples_seen: int = 0
    steps: int = 0
    batch_size: int = 0
    accumulation: int = 1
    amp_dtype: str = "float32"
    resumed_from_step: int | None = None
    out_of_memory_backoffs: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def plot(self, ax=None, smooth: int = 0):
        """Training loss per optimizer step (and validation loss per epoch when recorded)."""
        from .plots import plot_history

        return plot_history(self, ax=ax, smooth=smooth)


# --------------------------------------------------------------------------- helpers


def _to_device(batch, device: torch.device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def _fetch(dataset, indices: Sequence[int], collate_fn: Callable):
    if hasattr(dataset, "__getitems__"):
        items = dataset.__getitems__(list(indices))
    else:
        items = [dataset[i] for i in indices]
    return collate_fn(items)


def _count_tokens(batch) -> int:
    """Non-padding tokens in a batch: ``attention_mask`` if present, else 0 (not a text batch)."""
    if isinstance(batch, Mapping) and "attention_mask" in batch:
        return int(batch["attention_mask"].sum())
    return 0


def _logits(output):
    return output.logits if hasattr(output, "logits") else output


def _forward_loss(model, batch, loss_fn, check_labels: bool = False):
    """Run the model on one batch and return ``(loss, output, labels)``."""
    if isinstance(batch, Mapping):
        output = model(**batch)
        labels = batch.get("labels")
        if check_labels:
            _check_labels(output, labels, loss_fn)
        if loss_fn is None:
            loss = getattr(output, "loss", None)
            if loss is None:
                raise ValueError(
                    "the model returned no loss: put 'labels' in the batch (Hugging Face models "
                    "compute the loss then), or pass loss_fn=torch.nn.CrossEntropyLoss()"
                )
            return loss, output, labels
        return loss_fn(_logits(output), labels), output, labels
    if not isinstance(batch, (list, tuple)) or len(batch) < 2:
        raise TypeError(
            "a batch must be a mapping with 'labels' or a tuple (inputs..., labels); got "
            f"{type(batch).__name__}. Give fit a collate_fn that builds one of these."
        )
    *inputs, labels = batch
    output = model(*inputs)
    if check_labels:
        _check_labels(output, labels, loss_fn)
    return (loss_fn or nn.functional.cross_entropy)(_logits(output), labels), output, labels


def _check_labels(output, labels, loss_fn) -> None:
    """Catch float class labels before cross-entropy turns them into a cryptic shape error."""
    is_ce = loss_fn is None or isinstance(loss_fn, nn.CrossEntropyLoss) or loss_fn is nn.functional.cross_entropy
    logits = _logits(output)
    if (
        is_ce
        and isinstance(labels, torch.Tensor)
        and labels.is_floating_point()
        and isinstance(logits, torch.Tensor)
        and labels.dim() == logits.dim() - 1
    ):
        raise TypeError(
            f"labels are {labels.dtype} but cross-entropy needs integer class ids (torch.long): "
            "convert them with labels.long() in your dataset or collate_fn"
        )


def _resolve_amp(amp, device: torch.device) -> AmpChoice:
    auto = amp_dtype(device)
    if amp in ("auto", None):
        return auto
    if amp is False or amp in ("off", "fp32", "float32"):
        return AmpChoice(torch.float32, False, "mixed precision switched off")
    if device.type == "cpu" and amp in ("bf16", "bfloat16"):  # CPU autocast knows bf16 only
        return AmpChoice(torch.bfloat16, False, "bf16 requested")
    if device.type != "cuda":
        raise ValueError(
            f"amp={amp!r} needs a CUDA GPU, but training runs on {device.type}. Use amp='auto' "
            "(bf16 where the CPU has a bf16 matrix engine), amp='bf16' on a CPU, or move the model to a GPU."
        )
    if amp is True:
        return auto
    if amp in ("fp16", "float16"):
        return AmpChoice(torch.float16, True, "fp16 requested")
    if amp in ("bf16", "bfloat16"):
        return AmpChoice(torch.bfloat16, False, "bf16 requested")
    raise ValueError(f"amp must be 'auto', True, False, 'fp16' or 'bf16', got {amp!r}")


def lr_factor(step: int, total_steps: int, warmup_steps: int, schedule: str) -> float:
    """Multiplier of the base learning rate at optimizer step ``step`` (0-based).

    Linear warm-up from 0 over ``warmup_steps``, then ``constant``, ``linear`` decay to 0
    or ``cosine`` decay to 0 at ``total_steps``.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    progress = min(max(progress, 0.0), 1.0)
    if schedule == "linear":
        return 1.0 - progress
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"schedule must be 'constant', 'linear' or 'cosine', got {schedule!r}")


def _epoch_groups(
    n: int, group_size: int, seed: int, epoch: int, shuffle: bool, lengths: Sequence[int] | None
) -> list[list[int]]:
    """The examples of each optimizer step in one epoch; a pure function of (seed, epoch)."""
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(n, generator=gen).tolist() if shuffle else list(range(n))
    if lengths is None:
        return [order[i : i + group_size] for i in range(0, n, group_size)]
    # Group by length: sort within shuffled mega-chunks so a batch has little padding,
    # then shuffle the groups so lengths do not rise steadily through the epoch.
    mega = group_size * 50
    groups = []
    for start in range(0, n, mega):
        chunk = sorted(order[start : start + mega], key=lambda i: lengths[i], reverse=True)
        groups += [chunk[i : i + group_size] for i in range(0, len(chunk), group_size)]
    perm = torch.randperm(len(groups), generator=gen).tolist() if shuffle else range(len(groups))
    return [groups[i] for i in perm]


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` atomically: a disconnect mid-write leaves the previous checkpoint intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict:
    # weights_only=False: the file holds our own RNG states (numpy arrays, Python tuples).
    return torch.load(path, map_location="cpu", weights_only=False)


# --------------------------------------------------------------------------- fit


def default_optimizer(model: nn.Module, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """AdamW, with PyTorch's fused kernel where this build has one for the model's device.

    The fused kernel updates every parameter in one pass instead of a Python loop over tensors:
    the same arithmetic, a much faster optimizer step (``benchmarks/bert_finetune.py`` measures it).
    """
    try:
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, fused=True)
    except RuntimeError:  # a device or dtype without a fused kernel: the per-tensor loop
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)


def fit(
    model: nn.Module,
    train_data,
    *,
    val_data=None,
    loss_fn: Callable | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    epochs: int = 1,
    max_steps: int | None = None,
    batch_size: int = 32,
    accumulation: int = 1,
    collate_fn: Callable | None = None,
    shuffle: bool = True,
    group_by_length: Sequence[int] | None = None,
    schedule: str = "constant",
    warmup: float = 0.0,
    clip_norm: float | None = None,
    amp="auto",
    device: torch.device | str | None = None,
    seed: int = 0,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = True,
    on_step: Callable[[int, float], None] | None = None,
    eval_batch_size: int | None = None,
    progress: bool = True,
    live_plot: bool = False,
    log_every: int = 10,
) -> History:
    """Train ``model`` on ``train_data`` (a map-style dataset) and return its :class:`History`.

    Args:
        batch_size: examples per micro-batch (what must fit in memory).
        accumulation: micro-batches per optimizer step; the effective batch is their product.
        max_steps: stop after this many optimizer steps (default: ``epochs`` full epochs).
        optimizer: any ``torch.optim`` optimizer; default :func:`default_optimizer` (AdamW with
            ``lr`` and ``weight_decay``, fused where available).
        group_by_length: one length per example; batches then hold examples of similar length.
        schedule, warmup: per-step learning rate; ``warmup`` is a step count, or a fraction if < 1.
        amp: ``"auto"`` (the device's choice), ``False``, ``True`` (CUDA only), ``"fp16"``, ``"bf16"``.
        checkpoint_dir: where ``checkpoint.pt`` lives; with ``resume=True`` an existing one is
            continued from. Point it at Google Drive on Colab to survive a disconnect.
        on_step: called as ``on_step(step, loss)`` after every optimizer step.

    Example::

        history = fit(model, train_ds, val_data=val_ds, epochs=3, lr=2e-5, schedule="linear",
                      warmup=0.1, checkpoint_dir="checkpoints/ch07")
    """
    # ---- arguments a learner gets wrong, each with the fix
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer ≥ 1, got {batch_size!r}")
    if not isinstance(accumulation, int) or accumulation < 1:
        raise ValueError(f"accumulation must be an integer ≥ 1, got {accumulation!r}")
    n = len(train_data)
    if n == 0:
        raise ValueError("train_data is empty: check the split you loaded and any size limit (cfg.train_size)")
    if epochs < 1 and max_steps is None:
        raise ValueError(f"epochs must be ≥ 1 (or give max_steps), got {epochs!r}")
    if group_by_length is not None and len(group_by_length) != n:
        raise ValueError(f"group_by_length needs one length per example: {len(group_by_length)} lengths, {n} examples")

    device = torch.device(device) if device is not None else pick_device()
    precision = _resolve_amp(amp, device)
    model.to(device)
    collate_fn = collate_fn or default_collate
    optimizer = optimizer or default_optimizer(model, lr, weight_decay)
    group_size = batch_size * accumulation
    steps_per_epoch = math.ceil(n / group_size)
    total_steps = max_steps if max_steps is not None else epochs * steps_per_epoch
    epochs = math.ceil(total_steps / steps_per_epoch)
    warmup_steps = int(warmup * total_steps) if 0 < warmup < 1 else int(warmup)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    scaler = torch.amp.GradScaler("cuda", enabled=precision.use_grad_scaler)
    autocast = (
        torch.autocast(device.type, dtype=precision.dtype) if precision.enabled else nullcontext()
    )

    history = History(batch_size=batch_size, accumulation=accumulation, amp_dtype=str(precision.dtype).split(".")[-1])
    fingerprint = {"examples": n, "effective_batch": group_size, "seed": seed, "shuffle": shuffle}
    ckpt_path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
    start_epoch, start_group, step = 0, 0, 0

    if ckpt_path is not None and resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path)
        if state["fingerprint"] != fingerprint:
            raise ValueError(
                f"the checkpoint in {checkpoint_dir} was made with {state['fingerprint']}, this run has "
                f"{fingerprint}: use another checkpoint_dir, or resume=False to start over"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        start_epoch, start_group, step = state["epoch"], state["group"], state["step"]
        batch_size, accumulation = state["batch_size"], state["accumulation"]
        history = History(**state["history"])
        history.resumed_from_step = step
        _set_rng_state(state["rng"])
        print(f"Resumed from {ckpt_path} at step {step}/{total_steps} (epoch {start_epoch + 1}).")

    def checkpoint(epoch: int, group: int) -> None:
        if ckpt_path is None:
            return
        save_checkpoint(
            ckpt_path,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(),
                "epoch": epoch,
                "group": group,
                "step": step,
                "batch_size": batch_size,
                "accumulation": accumulation,
                "history": history.to_dict(),
                "rng": _rng_state(),
                "fingerprint": fingerprint,
            },
        )

    def set_lr(step_index: int) -> float:
        factor = lr_factor(step_index, total_steps, warmup_steps, schedule)
        for group, base in zip(optimizer.param_groups, base_lrs):
            group["lr"] = base * factor
        return base_lrs[0] * factor

    def optimizer_step(indices: list[int]) -> tuple[torch.Tensor, int]:
        """One optimizer step over ``indices``, split into micro-batches; backs off on OOM."""
        nonlocal batch_size, accumulation
        while True:
            try:
                total_loss, tokens = torch.zeros((), device=device), 0
                for start in range(0, len(indices), batch_size):
                    micro = indices[start : start + batch_size]
                    batch = _to_device(_fetch(train_data, micro, collate_fn), device)
                    with autocast:
                        loss, _, _ = _forward_loss(model, batch, loss_fn, check_labels=step == 0 and start == 0)
                    # Weight each micro-batch by its share of the step's examples, so the
                    # summed gradient equals the gradient of the mean loss over all of them.
                    share = len(micro) / len(indices)
                    scaler.scale(loss * share).backward()
                    total_loss += loss.detach() * share
                    tokens += _count_tokens(batch)
                return total_loss, tokens
            except Exception as error:
                if not is_out_of_memory(error) or batch_size == 1:
                    raise
                optimizer.zero_grad(set_to_none=True)
                del error
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                batch_size, accumulation = max(1, batch_size // 2), accumulation * 2
                history.batch_size, history.accumulation = batch_size, accumulation
                history.out_of_memory_backoffs += 1
                print(f"Out of memory: micro-batch halved to {batch_size}, accumulation doubled to {accumulation}.")

    model.train()
    bar = _progress_bar(total_steps, step, progress)
    plotter = _LivePlot(history) if live_plot else None
    pending_losses: list[torch.Tensor] = []
    examples = tokens_seen = 0
    eval_s = checkpoint_s = 0.0  # kept out of train_time_s / examples_per_s
    t_start = time.perf_counter()
    epoch, next_group = start_epoch, start_group
    try:
        for epoch in range(start_epoch, epochs):
            groups = _epoch_groups(n, group_size, seed, epoch, shuffle, group_by_length)
            t_epoch = time.perf_counter()
            first = start_group if epoch == start_epoch else 0
            next_group = first
            for group_index in range(first, len(groups)):
                if step >= total_steps:
                    break
                indices = groups[group_index]
                current_lr = set_lr(step)
                loss, n_tokens = optimizer_step(indices)
                if clip_norm is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                next_group = group_index + 1
                examples += len(indices)
                tokens_seen += n_tokens
                pending_losses.append(loss)
                history.step.append(step)
                history.lr.append(current_lr)
                if len(pending_losses) >= log_every or step == total_steps or on_step is not None:
                    values = torch.stack(pending_losses).float().cpu().tolist()
                    history.loss.extend(values)
                    pending_losses.clear()
                    bar.set_postfix(loss=f"{values[-1]:.4f}", lr=f"{current_lr:.2e}", refresh=False)
                    if plotter is not None:
                        plotter.update()
                bar.update(1)
                if on_step is not None:
                    on_step(step, history.loss[-1])
                if checkpoint_every and step % checkpoint_every == 0:
                    t_pause = time.perf_counter()
                    checkpoint(epoch, next_group)
                    checkpoint_s += time.perf_counter() - t_pause
            if pending_losses:
                history.loss.extend(torch.stack(pending_losses).float().cpu().tolist())
                pending_losses.clear()
            epoch_losses = history.loss[epoch * steps_per_epoch : step]
            summary = {"epoch": epoch + 1, "step": step,
                       "train_loss": sum(epoch_losses) / max(1, len(epoch_losses)),
                       "seconds": round(time.perf_counter() - t_epoch, 2)}
            if val_data is not None:
                t_pause = time.perf_counter()
                metrics = evaluate(model, val_data, batch_size=eval_batch_size or batch_size,
                                   collate_fn=collate_fn, loss_fn=loss_fn, device=device, amp=amp)
                summary.update({f"val_{k}": v for k, v in metrics.items() if isinstance(v, float)})
                model.train()
                eval_s += time.perf_counter() - t_pause
            history.epochs.append(summary)
            _print_epoch(summary, epochs)
            t_pause = time.perf_counter()
            checkpoint(epoch + 1, 0)
            checkpoint_s += time.perf_counter() - t_pause
            if step >= total_steps:
                break
    except KeyboardInterrupt:
        # Interrupted (by the reader, or a callback): keep everything done so far.
        if pending_losses:
            history.loss.extend(torch.stack(pending_losses).float().cpu().tolist())
        checkpoint(epoch, next_group)
        bar.close()
        if ckpt_path is not None:
            print(f"Interrupted at step {step}; checkpoint saved to {ckpt_path}. Call fit again to resume.")
        raise
    bar.close()
    if plotter is not None:
        plotter.close()

    elapsed = time.perf_counter() - t_start - eval_s - checkpoint_s
    history.steps = step
    history.train_time_s = round(history.train_time_s + elapsed, 3)
    history.eval_time_s = round(history.eval_time_s + eval_s, 3)
    history.examples_seen += examples
    history.examples_per_s = round(examples / elapsed, 2) if elapsed > 0 and examples else history.examples_per_s
    if tokens_seen:
        history.tokens_per_s = round(tokens_seen / elapsed, 1)
    return history


def _progress_bar(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="step", desc="training", mininterval=0.5)


def _print_epoch(summary: dict, epochs: int) -> None:
    parts = [f"epoch {summary['epoch']}/{epochs}", f"train loss {summary['train_loss']:.4f}"]
    parts += [f"{k.replace('_', ' ')} {v:.4f}" for k, v in summary.items() if k.startswith("val_") and k not in ("val_examples", "val_examples_per_s")]
    print(", ".join(parts) + f" ({summary['seconds']:.1f} s)")


class _LivePlot:
    """Redraws the loss curve in place in a notebook; does nothing outside one."""

    def __init__(self, history: History):
        self.history = history
        self.handle = None
        try:
            from IPython import get_ipython
            from IPython.display import display

            if get_ipython() is None:
                return
            import matplotlib.pyplot as plt

            self.fig, self.ax = plt.subplots(figsize=(6, 3))
            plt.close(self.fig)  # shown through the display handle only
            self.handle = display(self.fig, display_id=True)
        except ImportError:
            self.handle = None
        self.last = 0.0

    def update(self, force: bool = False) -> None:
        if self.handle is None or (not force and time.perf_counter() - self.last < 2.0):
            return
        from .plots import plot_history

        self.ax.clear()
        plot_history(self.history, ax=self.ax)
        self.handle.update(self.fig)
        self.last = time.perf_counter()

    def close(self) -> None:
        self.update(force=True)


# --------------------------------------------------------------------------- evaluate


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data,
    *,
    batch_size: int = 64,
    collate_fn: Callable | None = None,
    loss_fn: Callable | None = None,
    device: torch.device | str | None = None,
    amp="auto",
    return_predictions: bool = False,
    progress: bool = False,
) -> dict:
    """Loss, accuracy and F1 of a classifier on ``data`` (same batch shapes as :func:`fit`).

    F1 is for class 1 when there are two classes, else the macro average. With
    ``return_predictions=True`` the result also holds ``predictions`` and ``labels`` (numpy).
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer ≥ 1, got {batch_size!r}")
    if len(data) == 0:
        raise ValueError("data is empty: nothing to evaluate")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    precision = _resolve_amp(amp, device)
    collate_fn = collate_fn or default_collate
    was_training = model.training
    model.eval()
    total_loss, preds, golds = 0.0, [], []
    t0 = time.perf_counter()
    starts = range(0, len(data), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="evaluating", unit="batch")
    for start in starts:
        indices = list(range(start, min(start + batch_size, len(data))))
        batch = _to_device(_fetch(data, indices, collate_fn), device)
        with torch.autocast(device.type, dtype=precision.dtype) if precision.enabled else nullcontext():
            loss, output, labels = _forward_loss(model, batch, loss_fn)
        total_loss += float(loss) * len(indices)
        preds.append(_logits(output).float().argmax(-1).cpu())
        golds.append(labels.cpu())
    model.train(was_training)
    elapsed = time.perf_counter() - t0
    pred = torch.cat(preds).numpy()
    gold = torch.cat(golds).numpy()
    result = {
        "loss": total_loss / len(data),
        "accuracy": float((pred == gold).mean()),
        "f1": f1_score(gold, pred),
        "examples": len(data),
        "examples_per_s": len(data) / elapsed if elapsed > 0 else float("nan"),
    }
    if return_predictions:
        result.update(predictions=pred, labels=gold)
    return result


def f1_score(gold: np.ndarray, pred: np.ndarray) -> float:
    """F1 of class 1 for binary labels, macro-averaged F1 otherwise."""
    classes = sorted(set(gold.tolist()) | set(pred.tolist()))
    positive = [1] if set(classes) <= {0, 1} else classes
    scores = []
    for c in positive:
        tp = float(((pred == c) & (gold == c)).sum())
        fp = float(((pred == c) & (gold != c)).sum())
        fn = float(((pred != c) & (gold == c)).sum())
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))

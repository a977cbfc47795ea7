"""``fit`` and ``evaluate``: one lean training loop with the things a GPU run needs.

``fit`` is a plain PyTorch loop (read it top to bottom) with:

* mixed precision chosen per device (``device.amp_dtype``), with loss scaling for fp16;
* gradient accumulation: ``batch_size`` examples per micro-batch, ``accumulation``
  micro-batches per optimizer step, so one step sees ``batch_size * accumulation`` examples;
* gradient clipping and a per-step learning-rate schedule (warm-up, then constant,
  linear or cosine decay);
* ``tqdm.auto`` progress and an optional live loss plot;
* a durable, atomic checkpoint each epoch (and every ``checkpoint_every`` steps), only ever at
  a step boundary, and automatic resume from it: data order, random state and every step's
  loss are restored, so a resumed run ends with the same weights and the same history as an
  uninterrupted one. Ctrl-C (Jupyter's stop button) and SIGTERM (Colab, a scheduler) let the
  current step finish, save there and then stop (a second Ctrl-C stops at once, keeping the
  last checkpoint);
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
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import default_collate

from . import checkpoint, parallel
from .checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint  # noqa: F401 (public)
from .device import AmpChoice, amp_dtype, is_out_of_memory, mixed_precision, pick_device

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
    checkpoint_time_s: float = 0.0  # writing checkpoints, also kept out of train_time_s
    examples_seen: int = 0
    tokens_seen: int = 0
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


def _has_quantized_layers(model: nn.Module) -> bool:
    """True if ``model`` holds modules of ``torch.ao.nn.quantized`` (e.g. after dynamic int8
    quantization), whose kernels refuse the bf16 or fp16 inputs autocast would hand them."""
    return any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in model.modules())


def _resolve_amp(amp, device: torch.device) -> AmpChoice:
    # amp_dtype is asked only when the choice is the device's: on some CPUs it measures the machine
    if amp in ("auto", None):
        return amp_dtype(device)
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
        return amp_dtype(device)
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


# --------------------------------------------------------------------------- fit


def default_optimizer(params, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """AdamW, with PyTorch's fused kernel where this build has one for the parameters' device.

    ``params`` is a model or anything ``torch.optim`` accepts (e.g. parameter groups with their own
    weight decay). The fused kernel updates every parameter in one pass instead of a Python loop
    over tensors: the same arithmetic, a much faster optimizer step (``benchmarks/bert_finetune.py``
    measures it). Devices without one (a lazy or XLA device, old MPS builds) get the loop.
    """
    if isinstance(params, nn.Module):
        params = params.parameters()
    params = list(params)
    tensors = [p for p in params for p in (p["params"] if isinstance(p, dict) else [p])]
    fused = all(p.device.type in _fused_adamw_devices() and p.is_floating_point() for p in tensors)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused or None)


def _fused_adamw_devices() -> tuple[str, ...]:
    try:  # torch checks this list at the first step, not when the optimizer is built
        from torch.optim.optimizer import _get_fused_kernels_supported_devices

        return tuple(_get_fused_kernels_supported_devices())
    except ImportError:
        return ("cpu", "cuda")


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
    checkpoint_every_s: float | None = None,
    resume: bool | str = True,
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
            ``lr`` and ``weight_decay``, fused where available). Its learning rates are the base
            of the schedule.
        group_by_length: one length per example; batches then hold examples of similar length.
        schedule, warmup: per-step learning rate; ``warmup`` is a step count, or a fraction if < 1.
        amp: ``"auto"`` (the device's choice), ``False``, ``True`` (CUDA only), ``"fp16"``, ``"bf16"``.
        checkpoint_dir: where ``checkpoint.pt`` lives (checked writable before the first step). With
            ``resume=True`` a checkpoint of the same run is continued (or, if that run finished, its
            weights and history are restored without training again); a checkpoint of a different
            run (model, its settings or dtypes, loss, data, optimizer, schedule, steps, ...) is
            refused, naming the difference. A different micro-batch split of the same effective
            batch is used from the resume on, and said. On Colab put it on Google Drive
            (``course_utils.keep_checkpoints_on_drive()``). Under ``torchrun`` every process must
            see the same folder (shared storage); a run where they do not is refused at the start.
        resume: ``True`` (default), ``False`` (start over, overwriting the checkpoint) or
            ``"extend"``: carry the checkpoint's run (finished or not) on to a new, larger step
            count, on purpose; a plain ``True`` refuses a changed step count.
        checkpoint_every, checkpoint_every_s: also checkpoint mid-epoch, every this many steps and/or
            whenever this many seconds of training have passed since the last checkpoint.
        on_step: called as ``on_step(step, loss)`` after every optimizer step (this syncs the device
            every step; leave it out for speed).

    Example::

        history = fit(model, train_ds, val_data=val_ds, epochs=3, lr=2e-5, schedule="linear",
                      warmup=0.1, checkpoint_dir="checkpoints/ch07")
    """
    n = _check_arguments(train_data, batch_size, accumulation, epochs, max_steps, group_by_length, resume)
    placed = pick_device(device)  # the device given, else the best available (COURSE_DEVICE)
    ranks, placed = parallel.join(placed)  # several processes under torchrun, else one
    device = _training_device(placed)
    precision = _resolve_amp(amp, device)
    model.to(device)
    model.zero_grad(set_to_none=True)  # an interrupted earlier call may have left half a step's gradients
    collate_fn = collate_fn or default_collate
    optimizer = optimizer or default_optimizer(model, lr, weight_decay)
    base_lrs = _base_learning_rates(optimizer)
    group_size = batch_size * accumulation
    steps_per_epoch = math.ceil(n / group_size)
    total_steps = max_steps if max_steps is not None else epochs * steps_per_epoch
    epochs = math.ceil(total_steps / steps_per_epoch)
    warmup_steps = int(warmup * total_steps) if 0 < warmup < 1 else int(warmup)
    scaler = torch.amp.GradScaler(device.type if device.type == "cuda" else "cpu",
                                  enabled=precision.use_grad_scaler)
    autocast = mixed_precision(device.type, precision)  # autocast, and the attention kernel that pays
    dtype_name = str(precision.dtype).split(".")[-1]

    # ---- resume: the same run carries on; a finished run is restored, not retrained
    ckpt_path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
    fingerprint = None
    if ckpt_path is not None:
        _check_checkpoint_folder(ckpt_path.parent, ranks)  # now, not at the first write an epoch later
        fingerprint = checkpoint.run_fingerprint(
            model, optimizer, base_lrs, group_by_length, examples=n, effective_batch=group_size, seed=seed,
            shuffle=shuffle, steps=total_steps, schedule=schedule, warmup_steps=warmup_steps,
            clip_norm=clip_norm, precision=dtype_name, loss=checkpoint.describe_callable(loss_fn),
            **{"training data": checkpoint.data_digest(train_data)})
    saved = {"model": model, "optimizer": optimizer, "scaler": scaler}
    pos = checkpoint.Position(batch_size=batch_size, accumulation=accumulation,
                              extra={"requested": [batch_size, accumulation]})
    history = History(batch_size=batch_size, accumulation=accumulation, amp_dtype=dtype_name)
    try:
        state, unreadable = checkpoint.read(ckpt_path) if resume else None, None
    except checkpoint.CheckpointReadError as error:
        if ranks.world == 1:
            raise
        state, unreadable = None, error  # raised below, once every process knows what the others found
    if ranks.world > 1 and ckpt_path is not None:
        _check_same_checkpoint(ranks, state, ckpt_path, unreadable)
    last_saved = None  # the step of the newest checkpoint on disk
    if state is not None:
        lengthened = checkpoint.check(state, fingerprint, ckpt_path, extend=resume == "extend")
        pos, past = checkpoint.load_into(state, rank=ranks.rank, **saved)
        history, last_saved = History(**past), pos.step
        del state
        if lengthened:
            _extend(pos, total_steps, schedule, lengthened, ckpt_path, ranks)
        if pos.finished:
            _say(ranks, f"This run finished earlier ({pos.step} steps): weights and history restored from "
                        f"{checkpoint.display_path(ckpt_path)}, nothing retrained. To train again: resume=False or "
                        "another checkpoint_dir; to train it for more steps: resume='extend' with the new count.")
            model.to(placed)
            return history
        _keep_or_change_split(pos, history, batch_size, accumulation, ranks)
        history.resumed_from_step = pos.step
        _say(ranks, f"Resumed from {checkpoint.display_path(ckpt_path)} at step {pos.step}/{total_steps} (epoch {pos.epoch + 1}).")
    ranks.same_start(model)  # after the restore: every process starts from rank 0's weights

    def write_checkpoint(finished: bool = False) -> None:
        nonlocal last_saved
        losses.flush()  # every step's loss goes into the checkpoint: the curve survives a crash
        pos.finished, history.steps = finished, pos.step
        clock.pause()
        clock.account()
        error = None
        if ckpt_path is not None:
            rngs = ranks.gather(checkpoint.rng_state()) if ranks.world > 1 else None  # each process's own
            try:
                clock.checkpoint_s += checkpoint.save(ckpt_path if ranks.is_main else None, position=pos,
                                                      history=history.to_dict(), fingerprint=fingerprint,
                                                      rng_by_rank=rngs, **saved)
            except checkpoint.CheckpointWriteError as failed:
                error = failed
            if ranks.agree(error is not None) and error is None:  # rank 0 failed: every process stops
                error = checkpoint.CheckpointWriteError(
                    f"rank 0 could not write the checkpoint {checkpoint.display_path(ckpt_path)}: see its error")
        clock.resume()
        clock.last_checkpoint_s = clock.training_s()
        if error is not None:
            raise error
        last_saved = pos.step if ckpt_path is not None else last_saved

    # ---- the loop
    model.train()
    bar = _progress_bar(total_steps, pos.step, progress and ranks.is_main)
    plotter = _LivePlot(history) if live_plot and ranks.is_main else None
    losses = _LossLog(history, bar, plotter, log_every)
    clock = _Clock(history, ranks, device)
    held = _HeldSignals(every=log_every)  # Ctrl-C and SIGTERM wait for the end of the step
    votes = None  # the processes' stop requests, summed in each step's all-reduce (several processes)
    at_boundary = True  # weights, optimizer, random state and position agree: a checkpoint may be written
    held.install()
    try:
        while pos.epoch < epochs and pos.step < total_steps:
            groups = _epoch_groups(n, group_size, seed, pos.epoch, shuffle, group_by_length)
            t_epoch = time.perf_counter()
            for indices in groups[pos.group:]:
                if pos.step >= total_steps:
                    break
                at_boundary = False
                lr_now = _set_learning_rate(optimizer, base_lrs,
                                            lr_factor(pos.step, total_steps, warmup_steps, schedule))
                one_step = partial(_accumulate_gradients, model, train_data, ranks.shard(indices), collate_fn,
                                   loss_fn, step_examples=len(indices), device=device, autocast=autocast,
                                   scaler=scaler, check_labels=pos.step == 0)
                loss, tokens = _with_oom_backoff(one_step, pos, history, optimizer, device)
                loss, votes = ranks.sum_gradients(model, loss, held.signal is not None)
                _apply_gradients(model, optimizer, scaler, clip_norm)
                pos.step, pos.group = pos.step + 1, pos.group + 1
                clock.count(len(indices), tokens)
                losses.add(pos.step, loss, lr_now, flush=pos.step == total_steps or on_step is not None)
                at_boundary = True
                bar.update(1)
                if on_step is not None:
                    on_step(pos.step, history.loss[-1])
                epoch_ends = pos.group == len(groups) or pos.step == total_steps  # written below then
                due = clock.checkpoint_due(pos.step, checkpoint_every, checkpoint_every_s)
                if checkpoint_every_s is not None:
                    due = ranks.agree(due)  # clocks differ between processes: rank 0 decides
                if due and not epoch_ends:
                    write_checkpoint()
                if (held.signal is not None or votes is not None) and not epoch_ends and held.agreed(votes, pos.step):
                    raise _Stopped
            at_boundary = False  # until the epoch's summary and position are both updated
            losses.flush()
            summary = _epoch_summary(history, pos, steps_per_epoch, t_epoch)
            if val_data is not None and ranks.is_main:
                clock.pause()
                metrics = evaluate(model, val_data, batch_size=eval_batch_size or pos.batch_size,
                                   collate_fn=collate_fn, loss_fn=loss_fn, device=device, amp=amp)
                summary.update({f"val_{k}": v for k, v in metrics.items() if isinstance(v, float)})
                model.train()
                clock.eval_s += clock.resume()
            history.epochs.append(summary)
            _say(ranks, _epoch_line(summary, epochs))
            if pos.group == len(groups):  # a run cut short by max_steps stays where it stopped in its epoch
                pos.epoch, pos.group = pos.epoch + 1, 0
            at_boundary = True
            if pos.step < total_steps:  # the last epoch's checkpoint is the final one, below
                write_checkpoint()
                if (held.signal is not None or votes is not None) and held.agreed(votes, pos.step, force=True):
                    raise _Stopped
    except _Stopped:
        bar.close()
        if ckpt_path is not None and last_saved != pos.step:
            write_checkpoint()
        how = {None: "Stopped with the other processes", signal.SIGINT: "Interrupted"}.get(
            held.signal, f"Stopped by {signal.Signals(held.signal or 0).name}")
        saved_to = (f"checkpoint saved to {checkpoint.display_path(ckpt_path)}. Call fit again to resume."
                    if ckpt_path is not None else "nothing saved (no checkpoint_dir).")
        _say(ranks, f"{how} at step {pos.step}; {saved_to}")
        held.deliver(stopped=True)  # raises KeyboardInterrupt, or exits on SIGTERM
        model.to(placed)
        return history  # a handler someone else installed chose to carry on
    except KeyboardInterrupt:
        # Raised by code (a callback), or a second Ctrl-C: keep everything done, if it is whole.
        held.uninstall()
        bar.close()
        if ranks.world > 1:  # the other processes may be anywhere: no collective, no checkpoint
            raise
        if at_boundary:
            write_checkpoint()
            if ckpt_path is not None:
                print(f"Interrupted at step {pos.step}; checkpoint saved to "
                      f"{checkpoint.display_path(ckpt_path)}. Call fit again to resume.")
        elif ckpt_path is not None:
            kept = f"the checkpoint of step {last_saved} is kept" if last_saved is not None else "no checkpoint yet"
            print(f"Interrupted in the middle of step {pos.step + 1}, which cannot be resumed exactly: "
                  f"{kept}. Call fit again to resume from it.")
        raise
    finally:
        held.uninstall()
    bar.close()
    if plotter is not None:
        plotter.close()
    try:
        write_checkpoint(finished=True)  # after the history is complete: a re-run restores exactly this
    except checkpoint.CheckpointWriteError as error:
        kept = f"step {last_saved}" if last_saved is not None else "none"
        warnings.warn(f"training finished, but its final checkpoint was not written: {error} The History "
                      f"returned and the model's weights are the finished run's; the checkpoint on disk is "
                      f"{kept}'s, so a re-run would resume from there: save the model now if you need it "
                      "(e.g. torch.save(model.state_dict(), path)).", checkpoint.CheckpointWarning, stacklevel=2)
    model.to(placed)
    held.deliver()  # a Ctrl-C or SIGTERM during the last step is delayed, not dropped
    return history


# --------------------------------------------------------------------------- fit's parts


def _check_arguments(train_data, batch_size, accumulation, epochs, max_steps, group_by_length, resume=True) -> int:
    """Catch the arguments a learner gets wrong, each with the fix; return the number of examples."""
    if resume not in (True, False, "extend"):
        raise ValueError(f"resume must be True, False or 'extend', got {resume!r}")
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
    return n


class _Stopped(Exception):
    """Raised at a step boundary once a held Ctrl-C or SIGTERM asks the run to stop."""


class _HeldSignals:
    """Ctrl-C (SIGINT) and SIGTERM, held until the next step boundary, where ``fit`` saves and stops.

    A checkpoint written mid-step would hold half a step: the random state of a step not yet done,
    gradients not yet applied, or a step applied but not yet counted (resumed, it is applied twice).
    So while ``fit`` trains these signals only raise a flag, and the loop stops where everything
    agrees. A second Ctrl-C stops at once (the last checkpoint is kept). In a data-parallel run
    each process's request rides in the step's all-reduce (``votes``) and all stop at the same step,
    checked every ``every`` steps, when the losses are read anyway. Outside the main thread Python
    cannot install handlers: there signals act as usual.
    """

    def __init__(self, every: int):
        self.signal: int | None = None
        self.every = max(1, every)
        self.previous: dict = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            old = signal.getsignal(sig)
            if old is signal.SIG_IGN or old is None:  # ignored, or set outside Python: leave it be
                continue
            self.previous[sig] = old
            signal.signal(sig, self._hold)

    def _hold(self, signum, frame) -> None:
        if signum == signal.SIGINT and self.signal == signal.SIGINT:  # pressed twice: stop now
            self.uninstall()
            raise KeyboardInterrupt
        if self.signal is None:
            self.signal = signum

    def uninstall(self) -> None:
        for sig, old in self.previous.items():
            signal.signal(sig, old)
        self.previous = {}

    def agreed(self, votes, step: int, force: bool = False) -> bool:
        """Whether to stop now: this process's flag, or (several processes) the summed votes."""
        if votes is None:
            return self.signal is not None
        return (force or step % self.every == 0) and bool(votes > 0)

    def deliver(self, stopped: bool = False) -> None:
        """After the checkpoint: let the held signal do what it would have done at once."""
        sig, self.signal = self.signal, None
        if sig is None and stopped:  # another process was signalled: stop as on SIGTERM
            sig = signal.SIGTERM
        previous = self.previous.get(sig, signal.SIG_DFL)
        self.uninstall()
        if sig is None:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        if previous is signal.default_int_handler:
            raise KeyboardInterrupt
        if previous in (signal.SIG_DFL, None):
            raise SystemExit(128 + sig)  # a clean exit: finally blocks and atexit run, status 130 or 143
        signal.raise_signal(sig)  # a handler someone else installed decides


def _check_checkpoint_folder(folder: Path, ranks) -> None:
    """Prove the checkpoint folder writable before training, and (several processes) seen by all.

    Only rank 0 writes checkpoints, but every process reads the folder when the run resumes: on
    several machines without shared storage the others would start over while rank 0 resumes, and
    the run would diverge or hang. Such a run is refused here, before any step.
    """
    if ranks.world == 1:
        checkpoint.check_writable(folder)
        return
    probe, error = None, None
    if ranks.is_main:
        try:
            probe = checkpoint.check_writable(folder, keep_probe=True)
        except checkpoint.CheckpointWriteError as failed:
            error = failed
    written = ranks.gather(probe.name if probe is not None else None)[0]  # rank 0's answer
    if written is None:
        raise error or checkpoint.CheckpointWriteError(
            f"rank 0 cannot write checkpoint_dir {checkpoint.display_path(folder)}: see its error")
    seen = ranks.gather(((folder / written).exists(), _host()))  # in this process's checkpoint_dir
    if probe is not None:
        probe.unlink(missing_ok=True)
    blind = [f"rank {r} on {host}" for r, (ok, host) in enumerate(seen) if not ok]
    if blind:
        raise ValueError(
            f"checkpoint_dir {checkpoint.display_path(folder)} is not shared by all processes: "
            f"{', '.join(blind)} cannot see the file rank 0 wrote there. Only rank 0 writes checkpoints, so "
            "after a restart those processes would start over while rank 0 resumes. Put checkpoint_dir on "
            "storage every machine mounts at the same path (NFS, a shared disk, a bucket mount), or pass "
            "checkpoint_dir=None to train without checkpoints.")


def _host() -> str:
    import socket

    return socket.gethostname()


def _check_same_checkpoint(ranks, state: dict | None, path: Path, unreadable: Exception | None = None) -> None:
    """Refuse to start when the processes found different checkpoints (or some found none, or a damaged one)."""
    position = (state or {}).get("position", {})
    mine = "unreadable" if unreadable is not None else None if state is None else (
        position.get("step"), position.get("finished"))
    found = ranks.gather(mine)
    if unreadable is not None:
        raise unreadable
    if "unreadable" in found:
        raise checkpoint.CheckpointReadError(f"rank {found.index('unreadable')} cannot read the checkpoint "
                                             f"{checkpoint.display_path(path)}: see its error")
    if len(set(found)) > 1:
        seen = ", ".join(f"rank {r}: {'no checkpoint' if f is None else f'step {f[0]}'}" for r, f in enumerate(found))
        raise ValueError(
            f"the processes found different checkpoints at {checkpoint.display_path(path)} ({seen}). Every "
            "process must read the checkpoint rank 0 wrote: put checkpoint_dir on storage all machines share, "
            "at the same path, or pass resume=False to start over.")


def _extend(pos, total_steps: int, schedule: str, lengthened: list[str], path: Path, ranks) -> None:
    """``resume='extend'``: carry a run (finished or not) on to a new step count, saying what that means."""
    if total_steps <= pos.step:
        raise ValueError(f"resume='extend' needs more steps than the run in {checkpoint.display_path(path.parent)} "
                         f"has done ({pos.step}); this call asks for {total_steps}. Raise max_steps or epochs.")
    was = "finished" if pos.finished else "stopped"
    note = ""
    if schedule != "constant" or "warmup_steps" in lengthened:
        note = (f" Its learning-rate schedule is now that of a {total_steps}-step run, so the steps from here "
                f"differ from both the old run and a {total_steps}-step run planned from the start.")
    _say(ranks, f"Extending the run in {checkpoint.display_path(path.parent)} ({was} at step {pos.step}) to "
                f"{total_steps} steps, as resume='extend' asks.{note}")
    pos.finished = False


def _keep_or_change_split(pos, history, batch_size: int, accumulation: int, ranks) -> None:
    """Resume with this call's micro-batch split when it asks for another one than the checkpoint's run.

    The effective batch is fingerprinted (it changes the result); how it is split is not (it changes
    only rounding and memory). The same call as before keeps the run's split, including one the
    out-of-memory back-off chose.
    """
    requested = pos.extra.get("requested", [history.batch_size, history.accumulation])
    if [batch_size, accumulation] == list(requested):
        return
    _say(ranks, f"Micro-batches: the checkpoint's run used {pos.batch_size} × {pos.accumulation}; this call asks "
                f"for {batch_size} × {accumulation}. Each step still holds the same {batch_size * accumulation} "
                "examples, so the run goes on with the new split: the same updates up to floating-point rounding.")
    pos.batch_size, pos.accumulation = batch_size, accumulation
    pos.extra["requested"] = [batch_size, accumulation]
    history.batch_size, history.accumulation = batch_size, accumulation


def _training_device(device: torch.device) -> torch.device:
    """Where the steps run: ``device``, except on the lazy-tensor device of the placement check.

    Its TorchScript backend miscomputes some backward passes (a scaled mean loss, a gradient norm),
    so ``fit`` trains on the CPU there and then leaves the model on the lazy device, which is what
    the check needs: every later cell that feeds the model a CPU tensor fails, as on a GPU.
    """
    return torch.device("cpu") if device.type == "lazy" else device


def _base_learning_rates(optimizer: torch.optim.Optimizer) -> list[float]:
    """The schedule's base rates. Kept as ``initial_lr`` (as torch's schedulers do), so an optimizer
    passed to ``fit`` a second time starts from its base rate, not from where the last schedule ended."""
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
    return [group["initial_lr"] for group in optimizer.param_groups]


def _set_learning_rate(optimizer, base_lrs: list[float], factor: float) -> float:
    for group, base in zip(optimizer.param_groups, base_lrs):
        group["lr"] = base * factor
    return base_lrs[0] * factor


def _accumulate_gradients(model, data, indices, collate_fn, loss_fn, *, batch_size, device, autocast, scaler,
                          step_examples=None, check_labels=False) -> tuple[torch.Tensor, int]:
    """Forward and backward over the examples of one optimizer step, ``batch_size`` at a time.

    ``step_examples`` is the step's example count over all processes (default ``len(indices)``,
    one process): each example's loss is weighted by one over it.

    Returns the step's mean loss (a tensor on ``device``: reading it would wait for the device)
    and its non-padding token count (counted on the host before the batch moves).
    """
    total_loss, tokens = torch.zeros((), device=device), 0
    for start in range(0, len(indices), batch_size):
        micro = indices[start : start + batch_size]
        host_batch = _fetch(data, micro, collate_fn)
        tokens += _count_tokens(host_batch)
        batch = _to_device(host_batch, device)
        with autocast:
            loss, _, _ = _forward_loss(model, batch, loss_fn, check_labels=check_labels and start == 0)
        # Weight each micro-batch by its share of the step's examples, so the summed gradient
        # equals the gradient of the mean loss over all of them.
        share = len(micro) / (step_examples or len(indices))
        scaler.scale(loss * share).backward()
        total_loss += loss.detach().float() * share
    return total_loss, tokens


def _with_oom_backoff(step_fn, pos, history, optimizer, device):
    """Run ``step_fn(batch_size=...)``; on out-of-memory halve the micro-batch, double the accumulation, try again.

    The effective batch, and so the update, stays the same. At micro-batch 1 the error is raised.
    """
    while True:
        try:
            return step_fn(batch_size=pos.batch_size)
        except Exception as error:
            if not is_out_of_memory(error) or pos.batch_size == 1:
                raise
            optimizer.zero_grad(set_to_none=True)
            del error
            if device.type == "cuda":
                torch.cuda.empty_cache()
            pos.batch_size, pos.accumulation = max(1, pos.batch_size // 2), pos.accumulation * 2
            history.batch_size, history.accumulation = pos.batch_size, pos.accumulation
            history.out_of_memory_backoffs += 1
            print(f"Out of memory: micro-batch halved to {pos.batch_size}, "
                  f"accumulation doubled to {pos.accumulation}.")


def _apply_gradients(model, optimizer, scaler, clip_norm) -> None:
    """Clip (on the true, unscaled gradients), step, clear. With fp16, a step whose gradients
    overflowed is skipped by the scaler and the scale lowered."""
    if clip_norm is not None:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)


def _end_of_step(device: torch.device) -> None:
    """A lazy-tensor device (``COURSE_DEVICE=lazy``, the device-placement check) records operations
    into a graph and runs it here; every other device has already run them."""
    if device.type == "lazy":
        import torch._lazy

        torch._lazy.mark_step()


class _Clock:
    """Training time with validation and checkpoint writes left out, and examples/tokens seen."""

    def __init__(self, history: History, ranks, device: torch.device):
        self.history, self.ranks, self.device = history, ranks, device
        self.local_tokens = 0  # this process's, since the last account()
        self.before = (history.train_time_s, history.eval_time_s, history.checkpoint_time_s)  # a resume's past
        self.start = time.perf_counter()
        self.paused_s = self.eval_s = self.checkpoint_s = 0.0
        self.paused_at: float | None = None
        self.last_checkpoint_s = 0.0  # training seconds at the last checkpoint

    def pause(self) -> None:
        self.paused_at = time.perf_counter()

    def resume(self) -> float:
        """End a pause; return how long it lasted."""
        lasted = time.perf_counter() - self.paused_at
        self.paused_s += lasted
        self.paused_at = None
        return lasted

    def training_s(self) -> float:
        now = self.paused_at if self.paused_at is not None else time.perf_counter()
        return now - self.start - self.paused_s

    def count(self, examples: int, tokens: int) -> None:
        """``examples``: the step's, over all processes; ``tokens``: this process's share."""
        self.history.examples_seen += examples
        self.local_tokens += tokens

    def checkpoint_due(self, step: int, every_steps: int | None, every_s: float | None) -> bool:
        """Every ``every_steps`` steps, and/or once ``every_s`` seconds of training have passed."""
        due = bool(every_steps) and step % every_steps == 0
        return due or (every_s is not None and self.training_s() - self.last_checkpoint_s >= every_s)

    def account(self) -> None:
        """Write the totals so far into the history (before each checkpoint, and at the end)."""
        history, (train_s, eval_s, ckpt_s) = self.history, self.before
        history.tokens_seen += self.ranks.total(self.local_tokens, self.device)
        self.local_tokens = 0
        elapsed = train_s + self.training_s()
        history.train_time_s = round(elapsed, 3)
        history.eval_time_s = round(eval_s + self.eval_s, 3)
        history.checkpoint_time_s = round(ckpt_s + self.checkpoint_s, 3)
        if elapsed > 0 and history.examples_seen:
            history.examples_per_s = round(history.examples_seen / elapsed, 2)
        if elapsed > 0 and history.tokens_seen:
            history.tokens_per_s = round(history.tokens_seen / elapsed, 1)


class _LossLog:
    """Per-step losses, read from the device every ``log_every`` steps (each read is a sync)."""

    def __init__(self, history: History, bar, plotter, log_every: int):
        self.history, self.bar, self.plotter, self.log_every = history, bar, plotter, log_every
        self.pending: list[torch.Tensor] = []

    def add(self, step: int, loss: torch.Tensor, lr: float, flush: bool = False) -> None:
        self.history.step.append(step)
        self.history.lr.append(lr)
        self.pending.append(loss)
        if flush or len(self.pending) >= self.log_every:
            self.flush()
            self.bar.set_postfix(loss=f"{self.history.loss[-1]:.4f}", lr=f"{lr:.2e}", refresh=False)
            if self.plotter is not None:
                self.plotter.update()

    def flush(self) -> None:
        if self.pending:
            self.history.loss.extend(torch.stack(self.pending).float().cpu().tolist())
            self.pending.clear()


def _epoch_summary(history: History, pos, steps_per_epoch: int, t_epoch: float) -> dict:
    epoch_losses = history.loss[pos.epoch * steps_per_epoch : pos.step]
    return {"epoch": pos.epoch + 1, "step": pos.step,
            "train_loss": sum(epoch_losses) / max(1, len(epoch_losses)),
            "seconds": round(time.perf_counter() - t_epoch, 2)}


def _progress_bar(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="step", desc="training", mininterval=0.5)


def _say(ranks, message: str) -> None:
    """Print once per run: on rank 0 of a data-parallel run."""
    if ranks.is_main:
        print(message)


def _epoch_line(summary: dict, epochs: int) -> str:
    parts = [f"epoch {summary['epoch']}/{epochs}", f"train loss {summary['train_loss']:.4f}"]
    parts += [f"{k.replace('_', ' ')} {v:.4f}" for k, v in summary.items() if k.startswith("val_") and k not in ("val_examples", "val_examples_per_s")]
    return ", ".join(parts) + f" ({summary['seconds']:.1f} s)"


class _LivePlot:
    """Redraws the loss curve in place in a notebook; does nothing outside one.

    In a batch run that stores outputs (``tools/notebooks.py execute``) nobody watches: the curve is
    drawn once, at the end. Live, a redraw waits at least 2 s and at least 20 times as long as the
    last one took, so drawing a long history never costs more than about 5% of the training time.
    """

    def __init__(self, history: History):
        from .widgets import in_live_notebook

        self.history = history
        self.handle = None
        self.live = in_live_notebook()
        self.wait = 2.0
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
        if self.handle is None or not (force or (self.live and time.perf_counter() - self.last >= self.wait)):
            return
        from .plots import plot_history

        start = time.perf_counter()
        self.ax.clear()
        plot_history(self.history, ax=self.ax)
        self.handle.update(self.fig)
        self.last = time.perf_counter()
        self.wait = max(2.0, 20 * (self.last - start))

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
    if precision.enabled and _has_quantized_layers(model):
        # int8 kernels (torch.ao dynamic quantization) take fp32 inputs only
        precision = AmpChoice(torch.float32, False, "the model has int8 layers: fp32 around them")
    collate_fn = collate_fn or default_collate
    was_training = model.training
    model.eval()
    # Sums stay on the device and are read once at the end: no wait for the device per batch.
    total_loss, preds, golds = torch.zeros((), device=device), [], []
    t0 = time.perf_counter()
    starts = range(0, len(data), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="evaluating", unit="batch")
    for start in starts:
        indices = list(range(start, min(start + batch_size, len(data))))
        batch = _to_device(_fetch(data, indices, collate_fn), device)
        with mixed_precision(device.type, precision):
            loss, output, labels = _forward_loss(model, batch, loss_fn)
        total_loss += loss.detach().float() * len(indices)
        preds.append(_logits(output).float().argmax(-1))
        golds.append(labels)
        _end_of_step(device)
    model.train(was_training)
    total_loss = float(total_loss)
    elapsed = time.perf_counter() - t0
    pred = torch.cat(preds).cpu().numpy()
    gold = torch.cat(golds).cpu().numpy()
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

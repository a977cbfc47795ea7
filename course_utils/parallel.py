"""Data parallelism for ``fit``: the same loop on every process, each on its share of every step.

Launch any notebook's training script with ``torchrun --nproc_per_node N script.py`` and ``fit``
notices (``WORLD_SIZE`` > 1): it joins the process group (NCCL on GPUs, gloo on CPUs), gives
process ``r`` the examples ``r, r + N, r + 2N, ...`` of each optimizer step, and before the step
sums every gradient across processes. The recipe does not change: a step still holds
``batch_size * accumulation`` examples, now shared by N processes, so it runs up to N times faster. Each process weights its examples by one over the step's
*global* example count, so the sum is exactly the gradient of the mean loss over the whole step:
the update, and so the weights, equal a single process's with the same effective batch.

This is the all-reduce ``DistributedDataParallel`` performs (in 25 MB buckets, as DDP's), done once
per step after gradient accumulation instead of overlapped with the backward pass. That costs the overlap, and buys
exactness whatever the shard sizes: a step whose examples do not divide evenly, or a last step
smaller than the number of processes, leaves some process fewer (or no) examples, which DDP's
one-backward-per-process contract does not allow. Chapter 10 shows DDP itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Ranks:
    """This process's place in a data-parallel run: ``rank`` of ``world`` processes."""

    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints and shows progress; the others only compute."""
        return self.rank == 0

    def shard(self, indices: list[int]) -> list[int]:
        """This process's examples of one optimizer step (every ``world``-th, from ``rank``)."""
        return indices[self.rank :: self.world]

    def sum_gradients(self, model: nn.Module, loss: torch.Tensor,
                      stop: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Sum gradients, the step's loss and the processes' stop requests over all processes.

        Returns ``(summed loss, stop votes)``; the votes (a device tensor, > 0 when any process was
        asked to stop, e.g. by SIGTERM) ride in the same all-reduce, so stopping together costs no
        extra collective. One process: ``(loss, None)``.

        A process with no examples in this step contributes zeros. A parameter that no process
        gave a gradient (an unused expert, a conditional head) keeps ``grad = None``, as in one
        process, so the optimizer skips it. Gradients are reduced in buckets of at most
        ``BUCKET_BYTES``, not copied into one buffer as large as the model.
        """
        if self.world == 1:
            return loss, None
        import torch.distributed as dist

        params = [p for p in model.parameters() if p.requires_grad]
        missing = [p.grad is None for p in params]
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        # built on the host and sent without waiting: a blocking copy would stall a GPU every step
        flags = torch.tensor([float(stop)] + [0.0 if m else 1.0 for m in missing])
        extra = torch.cat([loss.detach().float().reshape(1), flags.to(loss.device, non_blocking=True)])
        by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
        for p in params:
            by_dtype.setdefault(p.grad.dtype, []).append(p.grad)
        by_dtype.setdefault(torch.float32, []).append(extra)
        for tensors in by_dtype.values():
            for bucket in _buckets(tensors):
                flat = torch.cat([t.reshape(-1) for t in bucket])
                dist.all_reduce(flat)
                offset = 0
                for t in bucket:
                    t.copy_(flat[offset : offset + t.numel()].view_as(t))
                    offset += t.numel()
        if any(missing):  # read back only here: which of ours did some other process fill?
            for p, used in zip(params, extra[2:].tolist()):
                if used == 0:
                    p.grad = None
        return extra[0].reshape(()), extra[1]

    def total(self, value: int, device: torch.device) -> int:
        """``value`` summed over all processes (reads it back to the host: call it rarely)."""
        if self.world == 1:
            return value
        import torch.distributed as dist

        tensor = torch.tensor([value], dtype=torch.int64, device=device)
        dist.all_reduce(tensor)
        return int(tensor.item())

    def agree(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every process, so all of them take the same branch."""
        if self.world == 1:
            return flag
        import torch.distributed as dist

        box = [flag]
        dist.broadcast_object_list(box, src=0)
        return bool(box[0])

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def gather(self, value) -> list:
        """Every process's ``value`` (any picklable object), in rank order."""
        if self.world == 1:
            return [value]
        import torch.distributed as dist

        values = [None] * self.world
        dist.all_gather_object(values, value)
        return values

    def same_start(self, model: nn.Module) -> None:
        """Copy rank 0's weights to every process, as DDP does when it wraps a model."""
        if self.world > 1:
            import torch.distributed as dist

            for tensor in model.state_dict().values():
                dist.broadcast(tensor, src=0)


BUCKET_BYTES = 25 * 2**20  # as DistributedDataParallel's default buckets


def _buckets(tensors: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    """``tensors`` in consecutive groups of at most ``BUCKET_BYTES`` (a larger tensor alone)."""
    buckets, current, size = [], [], 0
    for t in tensors:
        nbytes = t.numel() * t.element_size()
        if current and size + nbytes > BUCKET_BYTES:
            buckets.append(current)
            current, size = [], 0
        current.append(t)
        size += nbytes
    return buckets + [current] if current else buckets


def join(device: torch.device) -> tuple[Ranks, torch.device]:
    """Join the ``torchrun`` process group if this process was launched by one.

    Returns this process's :class:`Ranks` and its device: ``cuda:LOCAL_RANK`` on a GPU machine
    (one GPU per process; ``torch.cuda.set_device`` is called here, before the process group
    starts, so NCCL's collectives and barriers of each process run on its own GPU, not all on
    GPU 0), ``device`` otherwise. A plain ``python`` or notebook run gets
    ``Ranks()`` (one process) and ``device`` unchanged.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks(), device
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Ranks(dist.get_rank(), dist.get_world_size()), device

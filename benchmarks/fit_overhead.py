"""What does ``course_utils.fit`` cost over a bare PyTorch loop, and over the Hugging Face ``Trainer``?

One small MLP, synthetic data, timed side by side in one run (interleaved rounds, median per-step
time). Every loop at its best and all alike: fused AdamW, the same learning rate, batch and steps,
and the same precision, in fp32 and in the precision the hardware does best (bf16 autocast on a CPU
with a bf16 matrix engine or an Ampere-or-later GPU). MFU is against the matmul peak of that dtype,
measured in this run. Per-step overhead dominates here, unlike in ``bert_finetune.py``.

    .venv/bin/python benchmarks/fit_overhead.py [--rounds 5] [--steps 300] [--precision both] [--record]

One line per precision: ``<dtype>: fit_vs_bare=<fit / bare> fit_vs_trainer=<fit / Trainer> mfu=<fit>``;
the last is the best precision's. ``--record`` stores the figures in ``book/results.json``
(``benchmarks.fit_overhead``). Runs unchanged on a GPU.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout

import torch
from _common import autocast, dtype_name, fit_amp, machine, matmul_peak, precisions, record, sync
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

from course_utils import fit
from course_utils.device import pick_device
from course_utils.train import default_optimizer

FEATURES, CLASSES, BATCH, LR = 256, 10, 64, 1e-3


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(FEATURES, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, CLASSES))


def make_data(n: int) -> TensorDataset:
    gen = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(n, FEATURES, generator=gen), torch.randint(0, CLASSES, (n,), generator=gen))


def step_flops(device) -> int:
    """FLOPs of one forward + backward pass of the MLP on one batch."""
    model = make_model().to(device)
    x, y = torch.randn(BATCH, FEATURES, device=device), torch.randint(0, CLASSES, (BATCH,), device=device)
    with FlopCounterMode(display=False) as counter:
        nn.functional.cross_entropy(model(x), y).backward()
    return counter.get_total_flops()


def run_bare(data, steps, device, dtype) -> float:
    model = make_model().to(device)
    opt = default_optimizer(model, LR)
    loader = DataLoader(data, batch_size=BATCH, shuffle=True)
    sync(device)
    t0 = time.perf_counter()
    done = 0
    while done < steps:
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with autocast(device, dtype):
                loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            done += 1
            if done == steps:
                break
    sync(device)
    return (time.perf_counter() - t0) / steps


def run_fit(data, steps, device, dtype) -> float:
    model = make_model()
    sync(device)
    t0 = time.perf_counter()
    with redirect_stderr(io.StringIO()), redirect_stdout(io.StringIO()):  # drawn, not onto this report
        history = fit(model, data, lr=LR, batch_size=BATCH, max_steps=steps, device=device, amp=fit_amp(dtype))
    sync(device)
    assert history.steps == steps and history.amp_dtype == dtype_name(dtype)
    return (time.perf_counter() - t0) / steps


class DictDataset(Dataset):
    def __init__(self, data: TensorDataset):
        self.x, self.y = data.tensors

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "labels": self.y[i]}


class WithLoss(nn.Module):
    """The same MLP, returning the loss the way ``Trainer`` expects."""

    def __init__(self):
        super().__init__()
        self.net = make_model()

    def forward(self, x, labels=None):
        logits = self.net(x)
        return {"loss": nn.functional.cross_entropy(logits, labels), "logits": logits}


def run_trainer(data, steps, device, dtype) -> float:
    from transformers import Trainer, TrainingArguments

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=BATCH, max_steps=steps, learning_rate=LR,
            lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, optim="adamw_torch_fused",
            save_strategy="no", logging_strategy="no", report_to=[], use_cpu=device.type == "cpu",
            dataloader_num_workers=0, disable_tqdm=False, seed=0,
            bf16=dtype == torch.bfloat16, fp16=dtype == torch.float16,
        )
        trainer = Trainer(model=WithLoss(), args=args, train_dataset=DictDataset(data))
        sync(device)
        t0 = time.perf_counter()
        with redirect_stderr(io.StringIO()), redirect_stdout(io.StringIO()):
            trainer.train()
        sync(device)
        return (time.perf_counter() - t0) / steps


def compare(data, steps, rounds, device, dtype) -> dict:
    """Median per-step time of the three loops in ``dtype``, interleaved round by round."""
    runners = {"bare": run_bare, "fit": run_fit, "trainer": run_trainer}
    for runner in runners.values():  # warm-up: imports, allocator, thread pools
        runner(data, 20, device, dtype)
    times: dict[str, list[float]] = {name: [] for name in runners}
    for r in range(rounds):
        for name, runner in runners.items():
            times[name].append(runner(data, steps, device, dtype))
        print(f"  round {r + 1}: " + ", ".join(f"{n} {t[-1] * 1e3:.3f} ms/step" for n, t in times.items()))
    return {f"{name}_ms": round(statistics.median(t) * 1e3, 4) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--precision", default="both", help="both (fp32 and the best), best, fp32, bf16 or fp16")
    parser.add_argument("--record", action="store_true", help="store the figures in book/results.json")
    args = parser.parse_args()
    device = pick_device()
    data = make_data(BATCH * args.steps)
    flops = step_flops(device)
    about = machine(device)
    print(f"device: {about['hardware']}; precision choice {about['precision_choice']}; torch threads "
          f"{about['threads']}; load {about['load_average_1min']}; MLP {FEATURES}-512-512-{CLASSES}, "
          f"batch {BATCH}, {flops / 1e6:.1f} MFLOP per step, {args.steps} steps x {args.rounds} rounds")
    figures = {**about, "steps": args.steps, "rounds": args.rounds, "step_flops": flops, "precisions": {}}
    lines = []
    for dtype in precisions(device, args.precision):
        name = dtype_name(dtype)
        peak = matmul_peak(device, dtype)
        print(f"{name}: matmul peak {peak / 1e9:.1f} GFLOP/s")
        result = compare(data, args.steps, args.rounds, device, dtype)
        result.update(
            matmul_peak_gflops=round(peak / 1e9, 2),
            fit_vs_bare=round(result["fit_ms"] / result["bare_ms"], 3),
            fit_vs_trainer=round(result["fit_ms"] / result["trainer_ms"], 3),
            mfu=round(flops / (result["fit_ms"] / 1e3) / peak, 4),
        )
        figures["precisions"][name] = result
        print(f"{name} median per step: bare {result['bare_ms']:.3f} ms, fit {result['fit_ms']:.3f} ms, "
              f"Trainer {result['trainer_ms']:.3f} ms")
        lines.append(f"{name}: fit_vs_bare={result['fit_vs_bare']:.3f} "
                     f"fit_vs_trainer={result['fit_vs_trainer']:.3f} mfu={result['mfu']:.4f}")
    figures["best"] = dtype_name(precisions(device, "best")[0])
    figures["load_average_1min_after"] = machine(device)["load_average_1min"]
    record("fit_overhead", figures, args.record)
    print("\n".join(lines))


if __name__ == "__main__":
    main()

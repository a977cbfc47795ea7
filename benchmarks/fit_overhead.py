"""What does ``course_utils.fit`` cost over a bare PyTorch loop, and over the Hugging Face ``Trainer``?

One small MLP, synthetic data, the same optimizer, learning rate, batch size and number of steps
for all three, timed side by side in one run (interleaved rounds, median per-step time).

    .venv/bin/python benchmarks/fit_overhead.py [--rounds 5] [--steps 300]

Last line: ``fit_vs_bare=<fit time / bare time> fit_vs_trainer=<fit time / Trainer time>``.
Runs unchanged on a GPU (the model and data move to CUDA when it is available).
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from course_utils import fit
from course_utils.device import describe_hardware, pick_device

FEATURES, CLASSES, BATCH, LR = 256, 10, 64, 1e-3


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(FEATURES, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, CLASSES))


def make_data(n: int) -> TensorDataset:
    gen = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(n, FEATURES, generator=gen), torch.randint(0, CLASSES, (n,), generator=gen))


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_bare(data, steps, device) -> float:
    model = make_model().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    loader = DataLoader(data, batch_size=BATCH, shuffle=True)
    sync(device)
    t0 = time.perf_counter()
    done = 0
    while done < steps:
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            done += 1
            if done == steps:
                break
    sync(device)
    return (time.perf_counter() - t0) / steps


def run_fit(data, steps, device) -> float:
    model = make_model()
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    sync(device)
    t0 = time.perf_counter()
    with redirect_stderr(io.StringIO()), redirect_stdout(io.StringIO()):  # drawn, not onto this report
        history = fit(model, data, optimizer=opt, batch_size=BATCH, max_steps=steps, device=device)
    sync(device)
    assert history.steps == steps
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


def run_trainer(data, steps, device) -> float:
    from transformers import Trainer, TrainingArguments

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=BATCH, max_steps=steps, learning_rate=LR,
            lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.01, save_strategy="no",
            logging_strategy="no", report_to=[], use_cpu=device.type == "cpu", dataloader_num_workers=0,
            disable_tqdm=False, seed=0,
        )
        trainer = Trainer(model=WithLoss(), args=args, train_dataset=DictDataset(data))
        sync(device)
        t0 = time.perf_counter()
        with redirect_stderr(io.StringIO()), redirect_stdout(io.StringIO()):
            trainer.train()
        sync(device)
        return (time.perf_counter() - t0) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    device = pick_device()
    data = make_data(BATCH * args.steps)
    print(f"device: {describe_hardware(device)}; torch threads {torch.get_num_threads()}; "
          f"MLP {FEATURES}-512-512-{CLASSES}, batch {BATCH}, {args.steps} steps x {args.rounds} rounds")
    runners = {"bare": run_bare, "fit": run_fit, "trainer": run_trainer}
    for runner in runners.values():  # warm-up: imports, allocator, thread pools
        runner(data, 20, device)
    times: dict[str, list[float]] = {name: [] for name in runners}
    for r in range(args.rounds):
        for name, runner in runners.items():
            times[name].append(runner(data, args.steps, device))
        print(f"round {r + 1}: " + ", ".join(f"{n} {t[-1] * 1e3:.3f} ms/step" for n, t in times.items()))
    median = {name: statistics.median(t) for name, t in times.items()}
    print("median per step: " + ", ".join(f"{n} {t * 1e3:.3f} ms" for n, t in median.items()))
    print(f"fit_vs_bare={median['fit'] / median['bare']:.3f} fit_vs_trainer={median['fit'] / median['trainer']:.3f}")


if __name__ == "__main__":
    main()

"""Chapter 7's fine-tuning step: ``course_utils.fit`` vs the Hugging Face ``Trainer``, and its MFU.

Same model (the packaged MiniLM-L6, or bert-base-uncased with ``--model``), same SST-2 sentences
padded to a fixed length, same optimizer, batch and precision, timed side by side in one run.
Model-FLOPs utilisation (MFU) = FLOPs of one training step (counted by PyTorch's FlopCounterMode,
forward + backward) x steps per second / the machine's matmul peak, measured in this same run.
It also times one AdamW step over the model, PyTorch's fused kernel against the per-tensor loop.

    .venv/bin/python benchmarks/bert_finetune.py [--steps 20] [--rounds 3] [--seq-len 64]

Last line: ``fit_vs_trainer=<fit time / Trainer time> mfu=<fraction, for fit>``. Unchanged on a GPU
(the precision is then the one ``course_utils.amp_dtype`` picks, for both loops).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout

import torch
from torch.utils.flop_counter import FlopCounterMode

from course_utils import fit
from course_utils.data import load_sst2
from course_utils.device import amp_dtype, describe_hardware, pick_device
from course_utils.models import EncoderChoice, load_classifier, resolve_encoder
from course_utils.profiles import get_profile
from course_utils.train import default_optimizer


def matmul_peak_flops(device: torch.device, dtype: torch.dtype, n: int = 2048, repeat: int = 10) -> float:
    """Best FLOP/s of an n x n matrix product on this device and dtype (2 n^3 FLOPs each)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


class Fixed(torch.utils.data.Dataset):
    def __init__(self, enc, labels):
        self.enc, self.labels = enc, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"input_ids": self.enc["input_ids"][i], "attention_mask": self.enc["attention_mask"][i],
                "labels": torch.tensor(self.labels[i])}


def step_flops(model, batch) -> int:
    """FLOPs of one forward + backward pass on ``batch``."""
    with FlopCounterMode(display=False) as counter:
        model(**batch).loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def adamw_step_seconds(model, fused: bool, device, repeat: int = 10) -> float:
    """Median time of one AdamW step over all of ``model``'s parameters (random gradients)."""
    model = model.to(device)
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=fused, foreach=None if fused else False)
    times = []
    for _ in range(repeat + 2):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    model.zero_grad(set_to_none=True)
    return statistics.median(times[2:])  # the first steps allocate the optimizer state


def run_fit(choice, data, steps, batch_size, device) -> float:
    torch.manual_seed(0)
    model, _ = load_classifier(choice)
    opt = default_optimizer(model, lr=5e-5)  # fused AdamW, as in the chapter
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    with redirect_stderr(io.StringIO()), redirect_stdout(io.StringIO()):
        fit(model, data, optimizer=opt, batch_size=batch_size, max_steps=steps, device=device, shuffle=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def run_trainer(choice, data, steps, batch_size, device) -> float:
    from transformers import Trainer, TrainingArguments

    torch.manual_seed(0)
    model, _ = load_classifier(choice)
    amp = amp_dtype(device)
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=batch_size, max_steps=steps, learning_rate=5e-5,
            lr_scheduler_type="constant", weight_decay=0.0, save_strategy="no", logging_strategy="no",
            report_to=[], use_cpu=device.type == "cpu", dataloader_num_workers=0, seed=0,
            fp16=amp.dtype == torch.float16, bf16=amp.dtype == torch.bfloat16,
        )
        trainer = Trainer(model=model, args=args, train_dataset=data,
                          optimizers=(default_optimizer(model, lr=5e-5), None))  # the same optimizer as fit's
        t0 = time.perf_counter()
        with redirect_stderr(io.StringIO()), redirect_stdout(io.StringIO()):
            trainer.train()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - t0) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--model", default=None, help="a model id or path (default: the profile's encoder)")
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers import AutoTokenizer, logging

    logging.set_verbosity_error()
    device = pick_device()
    choice = resolve_encoder(get_profile()) if args.model is None else EncoderChoice(args.model, args.model, "given", "--model")
    tokenizer = AutoTokenizer.from_pretrained(choice.location)
    texts = load_sst2("train", limit=args.batch_size * args.steps)
    enc = tokenizer(texts.texts, padding="max_length", truncation=True, max_length=args.seq_len, return_tensors="pt")
    data = Fixed(enc, texts.labels)

    amp = amp_dtype(device)
    peak = matmul_peak_flops(device, amp.dtype)
    model, _ = load_classifier(choice)
    batch = {k: v[: args.batch_size].to(device) for k, v in data.enc.items()}
    batch["labels"] = torch.tensor(texts.labels[: args.batch_size], device=device)
    flops = step_flops(model.to(device), batch)
    print(f"device: {describe_hardware(device)}, precision {amp.dtype}; model {choice.name}; "
          f"batch {args.batch_size} x {args.seq_len} tokens; {flops / 1e9:.1f} GFLOP per step; "
          f"matmul peak {peak / 1e9:.1f} GFLOP/s")

    loop_s, fused_s = adamw_step_seconds(model, False, device), adamw_step_seconds(model, True, device)
    print(f"AdamW step over {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters: "
          f"per-tensor loop {loop_s * 1e3:.1f} ms, fused {fused_s * 1e3:.1f} ms (fused_vs_loop={fused_s / loop_s:.3f})")
    run_fit(choice, data, 2, args.batch_size, device)  # warm-up: allocator, thread pools
    times = {"fit": [], "trainer": []}
    for r in range(args.rounds):
        times["fit"].append(run_fit(choice, data, args.steps, args.batch_size, device))
        times["trainer"].append(run_trainer(choice, data, args.steps, args.batch_size, device))
        print(f"round {r + 1}: fit {times['fit'][-1]:.3f} s/step, Trainer {times['trainer'][-1]:.3f} s/step")
    fit_s, trainer_s = statistics.median(times["fit"]), statistics.median(times["trainer"])
    print(f"fit: {args.batch_size / fit_s:.1f} examples/s, {flops / fit_s / 1e9:.1f} GFLOP/s; "
          f"Trainer: {args.batch_size / trainer_s:.1f} examples/s")
    print(f"fit_vs_trainer={fit_s / trainer_s:.3f} mfu={flops / fit_s / peak:.3f}")


if __name__ == "__main__":
    main()

"""Chapter 7's fine-tuning step: a bare loop, ``course_utils.fit`` and the Hugging Face ``Trainer``, and MFU.

Same model (the packaged MiniLM-L6, or bert-base-uncased with ``--model``), same SST-2 sentences
padded to a fixed length, same fused AdamW, batch and precision, timed side by side in one run,
in fp32 and in the precision the hardware does best (``course_utils.amp_dtype``: bf16 autocast on a
CPU with a bf16 matrix engine or an Ampere-or-later GPU, fp16 on a T4).
On a CPU in bf16 every loop's model gets eager attention, as ``load_classifier`` chooses there: the
fused attention kernel's bf16 backward pass is several times slower than its fp32 one on the CPU.
Model-FLOPs utilisation (MFU) = FLOPs of one training step (counted by PyTorch's FlopCounterMode,
forward + backward) x steps per second / the matmul peak of the dtype used, measured in this run.
It also times one AdamW step (fused kernel against the per-tensor loop) and asks whether
``torch.compile`` pays for the chapter-7 run: chapter-7 batches (dynamic padding, grouped by
length), compile time counted against the 1,600 steps of the ``cpu`` recipe.

    .venv/bin/python benchmarks/bert_finetune.py [--steps 20] [--rounds 3] [--seq-len 64]
        [--precision both] [--compile-steps 60] [--record]

Last line: ``fit_vs_trainer=<fit time / Trainer time> mfu=<fraction, for fit>`` at the best
configuration (the hardware's precision; compiled if compiling paid). ``--record`` stores the
figures in ``book/results.json`` (``benchmarks.bert_finetune``). Unchanged on a GPU.
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
from _common import autocast, dtype_name, fit_amp, machine, matmul_peak, precisions, record, sync
from torch.utils.flop_counter import FlopCounterMode

from course_utils import fit
from course_utils.data import load_sst2
from course_utils.device import pick_device
from course_utils.models import EncoderChoice, load_classifier, resolve_encoder
from course_utils.profiles import get_profile
from course_utils.train import default_optimizer

LR = 5e-5
CHAPTER_STEPS = 1600  # the chapter-7 cpu recipe (max_steps)


class Fixed(torch.utils.data.Dataset):
    def __init__(self, enc, labels):
        self.enc, self.labels = enc, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"input_ids": self.enc["input_ids"][i], "attention_mask": self.enc["attention_mask"][i],
                "labels": torch.tensor(self.labels[i])}


def attention_for(device, dtype) -> str:
    """The faster attention for every loop: on a CPU in bf16 the eager one, as ``load_classifier``
    chooses (the fused kernel's bf16 backward is slow there); PyTorch's fused kernel otherwise."""
    return "eager" if device.type == "cpu" and dtype == torch.bfloat16 else "sdpa"


def load_model(choice, compiled: bool = False, attention: str = "sdpa"):
    """The classifier, dropout off as in chapter 7's cpu recipe; wrapped by ``torch.compile`` if asked."""
    torch.manual_seed(0)
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):  # no loading report or bar
        model, _ = load_classifier(choice, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                   attn_implementation=attention)
    return torch.compile(model) if compiled else model


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
        sync(device)
        t0 = time.perf_counter()
        opt.step()
        sync(device)
        times.append(time.perf_counter() - t0)
    model.zero_grad(set_to_none=True)
    return statistics.median(times[2:])  # the first steps allocate the optimizer state


def run_bare(choice, data, steps, batch_size, device, dtype, compiled=False) -> float:
    model = load_model(choice, compiled, attention_for(device, dtype)).to(device)
    model.train()
    opt = default_optimizer(model, lr=LR)
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False)
    sync(device)
    t0 = time.perf_counter()
    for done, batch in enumerate(loader):
        if done == steps:
            break
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        with autocast(device, dtype):
            loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    sync(device)
    return (time.perf_counter() - t0) / steps


def run_fit(choice, data, steps, batch_size, device, dtype, compiled=False) -> float:
    model = load_model(choice, compiled, attention_for(device, dtype))
    sync(device)
    t0 = time.perf_counter()
    with redirect_stderr(io.StringIO()), redirect_stdout(io.StringIO()):
        history = fit(model, data, lr=LR, batch_size=batch_size, max_steps=steps, device=device, shuffle=False,
                      amp=fit_amp(dtype))  # default optimizer: fused AdamW, as in the chapter
    sync(device)
    assert history.amp_dtype == dtype_name(dtype)
    return (time.perf_counter() - t0) / steps


def run_trainer(choice, data, steps, batch_size, device, dtype, compiled=False) -> float:
    from transformers import Trainer, TrainingArguments

    model = load_model(choice, attention=attention_for(device, dtype))
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=batch_size, max_steps=steps, learning_rate=LR,
            lr_scheduler_type="constant", weight_decay=0.0, optim="adamw_torch_fused", save_strategy="no",
            logging_strategy="no", report_to=[], use_cpu=device.type == "cpu", dataloader_num_workers=0,
            seed=0, fp16=dtype == torch.float16, bf16=dtype == torch.bfloat16, torch_compile=compiled,
        )
        trainer = Trainer(model=model, args=args, train_dataset=data)
        sync(device)
        t0 = time.perf_counter()
        with redirect_stderr(io.StringIO()), redirect_stdout(io.StringIO()):
            trainer.train()
        sync(device)
        return (time.perf_counter() - t0) / steps


def compare(choice, data, args, device, dtype, compiled=False) -> dict:
    """Median seconds per step of the three loops in ``dtype``, interleaved round by round."""
    runners = {"bare": run_bare, "fit": run_fit, "trainer": run_trainer}
    for runner in runners.values():  # warm-up: allocator, thread pools (and compilation)
        runner(choice, data, 2, args.batch_size, device, dtype, compiled)
    times: dict[str, list[float]] = {name: [] for name in runners}
    for r in range(args.rounds):
        for name, runner in runners.items():
            times[name].append(runner(choice, data, args.steps, args.batch_size, device, dtype, compiled))
        print(f"  round {r + 1}: " + ", ".join(f"{n} {t[-1]:.3f} s/step" for n, t in times.items()))
    return {f"{name}_s": round(statistics.median(t), 4) for name, t in times.items()}


def chapter_batches(tokenizer, steps: int, batch_size: int, max_len: int):
    """Chapter 7's training set and ``fit`` arguments: per-batch padding, batches grouped by length."""
    from transformers import DataCollatorWithPadding

    texts = load_sst2("train", limit=batch_size * steps * 4)
    enc = tokenizer(texts.texts, truncation=True, max_length=max_len)
    items = [{"input_ids": ids, "attention_mask": mask, "labels": label}
             for ids, mask, label in zip(enc["input_ids"], enc["attention_mask"], texts.labels)]
    lengths = [len(item["input_ids"]) for item in items]
    return items, dict(batch_size=batch_size, collate_fn=DataCollatorWithPadding(tokenizer), group_by_length=lengths)


def timed_fit(choice, items, recipe, steps, device, dtype, compiled) -> list[float]:
    """Seconds of each optimizer step of a chapter-7 style run (compilation lands in the first ones)."""
    model = load_model(choice, compiled, attention_for(device, dtype))
    stamps = [time.perf_counter()]
    with redirect_stderr(io.StringIO()), redirect_stdout(io.StringIO()):
        fit(model, items, lr=LR, max_steps=steps, device=device, amp=fit_amp(dtype), progress=False,
            on_step=lambda step, loss: stamps.append(time.perf_counter()), **recipe)
    return [b - a for a, b in zip(stamps, stamps[1:])]


def compile_study(choice, tokenizer, args, device, dtype) -> dict:
    """Does ``torch.compile`` shorten chapter 7's run, compile time included?"""
    items, recipe = chapter_batches(tokenizer, args.compile_steps, args.batch_size, args.seq_len)
    eager = timed_fit(choice, items, recipe, args.compile_steps, device, dtype, compiled=False)
    start = time.perf_counter()
    compiled = timed_fit(choice, items, recipe, args.compile_steps, device, dtype, compiled=True)
    compiled_wall = time.perf_counter() - start
    half = len(eager) // 2  # steady state: the second half of each run (recompilations are over)
    eager_step, compiled_step = statistics.median(eager[half:]), statistics.median(compiled[half:])
    overhead = max(0.0, sum(compiled) - compiled_step * len(compiled))  # compiling and recompiling
    saving = eager_step - compiled_step
    result = {
        "steps": args.compile_steps, "eager_step_s": round(eager_step, 4), "compiled_step_s": round(compiled_step, 4),
        "compile_overhead_s": round(overhead, 1), "compiled_run_wall_s": round(compiled_wall, 1),
        "break_even_steps": round(overhead / saving) if saving > 0 else None,
        "chapter_steps": CHAPTER_STEPS,
        "chapter_eager_s": round(CHAPTER_STEPS * eager_step, 1),
        "chapter_compiled_s": round(overhead + CHAPTER_STEPS * compiled_step, 1),
    }
    result["pays"] = result["chapter_compiled_s"] < result["chapter_eager_s"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--precision", default="both", help="both (fp32 and the best), best, fp32, bf16 or fp16")
    parser.add_argument("--compile-steps", type=int, default=60,
                        help="chapter-7 steps per run of the torch.compile study (0: skip it)")
    parser.add_argument("--model", default=None, help="a model id or path (default: the profile's encoder)")
    parser.add_argument("--record", action="store_true", help="store the figures in book/results.json")
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers import AutoTokenizer, logging

    logging.set_verbosity_error()
    device = pick_device()
    choice = resolve_encoder(get_profile()) if args.model is None else EncoderChoice(args.model, args.model, "given", "--model")
    tokenizer = AutoTokenizer.from_pretrained(choice.location)
    texts = load_sst2("train", limit=args.batch_size * (args.steps + 2))
    enc = tokenizer(texts.texts, padding="max_length", truncation=True, max_length=args.seq_len, return_tensors="pt")
    data = Fixed(enc, texts.labels)

    model = load_model(choice).to(device)
    batch = {k: v[: args.batch_size].to(device) for k, v in data.enc.items()}
    batch["labels"] = torch.tensor(texts.labels[: args.batch_size], device=device)
    flops = step_flops(model, batch)
    about = machine(device)
    print(f"device: {about['hardware']}; precision choice {about['precision_choice']}; load "
          f"{about['load_average_1min']}; model {choice.name}; batch {args.batch_size} x {args.seq_len} tokens; "
          f"{flops / 1e9:.1f} GFLOP per step; {args.steps} steps x {args.rounds} rounds")
    loop_s, fused_s = adamw_step_seconds(model, False, device), adamw_step_seconds(model, True, device)
    print(f"AdamW step over {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters: "
          f"per-tensor loop {loop_s * 1e3:.1f} ms, fused {fused_s * 1e3:.1f} ms (fused_vs_loop={fused_s / loop_s:.3f})")
    figures = {**about, "model": choice.name, "batch": args.batch_size, "seq_len": args.seq_len,
               "steps": args.steps, "rounds": args.rounds, "step_flops": flops,
               "adamw_fused_vs_loop": round(fused_s / loop_s, 3), "precisions": {}}

    def summarise(result: dict, peak: float) -> dict:
        result.update(matmul_peak_gflops=round(peak / 1e9, 2),
                      fit_vs_bare=round(result["fit_s"] / result["bare_s"], 3),
                      fit_vs_trainer=round(result["fit_s"] / result["trainer_s"], 3),
                      mfu=round(flops / result["fit_s"] / peak, 4))
        return result

    peaks = {}
    for dtype in precisions(device, args.precision):
        name = dtype_name(dtype)
        peaks[name] = matmul_peak(device, dtype)
        print(f"{name}: matmul peak {peaks[name] / 1e9:.1f} GFLOP/s")
        result = summarise(compare(choice, data, args, device, dtype), peaks[name])
        figures["precisions"][name] = result
        print(f"{name}: bare {result['bare_s']:.3f} s/step, fit {result['fit_s']:.3f}, Trainer "
              f"{result['trainer_s']:.3f} ({args.batch_size / result['fit_s']:.1f} examples/s with fit, "
              f"{flops / result['fit_s'] / 1e9:.1f} GFLOP/s); fit_vs_bare={result['fit_vs_bare']:.3f} "
              f"fit_vs_trainer={result['fit_vs_trainer']:.3f} mfu={result['mfu']:.4f}")
    if len(figures["precisions"]) == 2:
        fp32, other = (figures["precisions"][n] for n in figures["precisions"])
        figures["best_vs_fp32_fit"] = round(other["fit_s"] / fp32["fit_s"], 3)
        print(f"fit step in {list(figures['precisions'])[1]} / in float32: {figures['best_vs_fp32_fit']:.3f}")

    best = dtype_name(precisions(device, "best")[0])
    best_dtype = precisions(device, "best")[0]
    figures["best"] = {"precision": best, "compiled": False}
    if args.compile_steps > 0:
        study = compile_study(choice, tokenizer, args, device, best_dtype)
        figures["compile"] = {"precision": best, **study}
        print(f"torch.compile on chapter-7 batches in {best}: step {study['eager_step_s']:.3f} s eager, "
              f"{study['compiled_step_s']:.3f} s compiled, compile time {study['compile_overhead_s']:.0f} s "
              f"(break-even after {study['break_even_steps']} steps); a {CHAPTER_STEPS}-step chapter run: "
              f"{study['chapter_eager_s']:.0f} s eager, {study['chapter_compiled_s']:.0f} s compiled -> "
              f"{'pays' if study['pays'] else 'does not pay'}")
        if study["pays"] and best in peaks:  # the best configuration is the compiled one: every loop compiled
            result = summarise(compare(choice, data, args, device, best_dtype, compiled=True), peaks[best])
            figures["precisions"][f"{best}+compile"] = result
            figures["best"]["compiled"] = True
    key = f"{best}+compile" if figures["best"]["compiled"] else best
    final = figures["precisions"].get(key)
    figures["load_average_1min_after"] = machine(device)["load_average_1min"]
    record("bert_finetune", figures, args.record)
    if final is not None:
        print(f"fit_vs_trainer={final['fit_vs_trainer']:.3f} mfu={final['mfu']:.3f}")


if __name__ == "__main__":
    main()

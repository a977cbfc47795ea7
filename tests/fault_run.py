"""Kill ``fit`` at random moments and check that resuming ends exactly where an uninterrupted run ends.

Two roles in one file:

* ``python tests/fault_run.py child CONFIG OUT [--checkpoint DIR] [--kill SIGNAL:PHASE:COUNT]`` trains
  one run of ``CONFIG`` and, when it finishes, saves its weights and ``History`` to ``OUT``. With
  ``--kill`` the process signals itself at the ``COUNT``-th event of ``PHASE``: ``forward`` (a
  micro-batch's forward pass, mid-step), ``update`` (right after ``optimizer.step()``, before the
  step is counted), ``write`` (a chunk of a checkpoint being written) or ``boundary`` (after a step).
  ``async`` has the parent send the signal after ``COUNT`` milliseconds instead, wherever the child is.
* ``python tests/fault_run.py series --kills N [--seed S] [--configs mlp,bert]`` (``make fault-series``)
  runs the uninterrupted reference of each config once, then runs after runs, each killed again and
  again by SIGKILL, SIGTERM or SIGINT at seeded random moments until it finishes, and checks every
  finished run: weights ``torch.equal`` to the reference, history equal step for step.

``tests/test_fit_faults.py`` imports :func:`run_series` for its short CI series.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT}
PHASES = ("forward", "update", "write", "boundary", "async")
# How a killed child may end: by the signal itself, or fit's clean stop (KeyboardInterrupt -> 130,
# SIGTERM -> exit 143). A SIGINT sent from outside may land during the imports: a traceback, status 1.
EXITS = {"SIGKILL": (-9,), "SIGTERM": (143, -15), "SIGINT": (130, -2)}


# --------------------------------------------------------------------------- the runs (child side)


def build(config: str):
    """``(model, data, fit keyword arguments)`` of a config; the same every time it is called."""
    import torch
    from torch import nn
    from torch.utils.data import TensorDataset

    class OutOfMemoryAbove(nn.Module):
        """Raises what CUDA raises for a micro-batch of more than ``limit`` examples: the back-off runs."""

        def __init__(self, inner, limit):
            super().__init__()
            self.inner, self.limit = inner, limit

        def forward(self, *args, **kwargs):
            first = args[0] if args else kwargs["input_ids"]
            if len(first) > self.limit:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return self.inner(*args, **kwargs)

    gen = torch.Generator().manual_seed(0)
    if config == "mlp":
        x = torch.randn(160, 5, generator=gen)
        data = TensorDataset(x, (x[:, 0] + x[:, 1] > 0).long())
        val = TensorDataset(x[:32] + 0.1, (x[:32, 0] > 0).long())
        torch.manual_seed(0)
        inner = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 2))
        # micro-batch 8 x 2 asked; 8 runs out of memory, so 4 x 4: same 16 examples a step
        run = dict(epochs=3, batch_size=8, accumulation=2, lr=1e-2, seed=3, schedule="linear", warmup=2,
                   clip_norm=1.0, checkpoint_every=3, val_data=val, amp=False, progress=False)
        return OutOfMemoryAbove(inner, limit=4), data, run
    if config == "bert":
        from transformers import BertConfig, BertForSequenceClassification

        torch.manual_seed(0)
        model = BertForSequenceClassification(BertConfig(
            vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
            max_position_embeddings=16, num_labels=2, hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.2))
        ids = torch.randint(1, 40, (48, 8), generator=gen)
        lengths = 3 + torch.arange(48) % 6
        mask = (torch.arange(8)[None] < lengths[:, None]).long()
        data = [{"input_ids": ids[i] * mask[i], "attention_mask": mask[i], "labels": ids[i, 0] % 2}
                for i in range(48)]
        run = dict(epochs=3, batch_size=4, accumulation=2, lr=1e-3, seed=1, group_by_length=lengths.tolist(),
                   checkpoint_every=2, amp=False, progress=False)
        return OutOfMemoryAbove(model, limit=2), data, run
    raise ValueError(f"unknown config {config!r}: mlp or bert")


def child(config: str, out: str, checkpoint_dir: str | None, kill: str | None) -> None:
    import torch

    from course_utils import checkpoint, fit

    torch.set_num_threads(1)
    # A shell's background job starts with Ctrl-C ignored, and so would this child: act as a terminal run.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    model, data, run = build(config)
    if kill:
        name, phase, count = kill.split(":")
        sig, count, seen = SIGNALS[name], int(count), [0]

        def tick(*_args, **_kwargs):
            seen[0] += 1
            if seen[0] == count:
                os.kill(os.getpid(), sig)

        if phase == "forward":
            model.register_forward_pre_hook(lambda *a: tick())
        elif phase == "update":  # every optimizer's step, the one fit builds included
            from torch.optim.optimizer import register_optimizer_step_post_hook

            register_optimizer_step_post_hook(tick)
        elif phase == "write":
            real_write = checkpoint._write
            checkpoint._write = lambda file, data: (tick(), real_write(file, data))[1]
        elif phase == "boundary":
            run["on_step"] = lambda step, loss: tick()
    try:
        history = fit(model, data, checkpoint_dir=checkpoint_dir, **run)
    except KeyboardInterrupt:
        sys.exit(130)
    torch.save({"state": model.state_dict(), "history": history.to_dict()}, out)


# --------------------------------------------------------------------------- the series (parent side)


def comparable(history: dict) -> dict:
    """What two runs of the same recipe must share: every step's loss and rate, the epochs' figures,
    the counts; not the clock readings (seconds, throughput) nor where a run resumed."""
    skip = {"train_time_s", "eval_time_s", "checkpoint_time_s", "examples_per_s", "tokens_per_s",
            "resumed_from_step"}
    result = {k: v for k, v in history.items() if k not in skip}
    result["epochs"] = [{k: v for k, v in e.items() if k not in ("seconds", "val_examples_per_s")}
                        for e in history["epochs"]]
    return result


def launch(config: str, out: Path, checkpoint_dir: Path | None, kill: str | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COURSE_DEVICE": "cpu", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, str(HERE), "child", config, str(out)]
    if checkpoint_dir is not None:
        command += ["--checkpoint", str(checkpoint_dir)]
    if kill and kill.split(":")[1] == "async":
        name, _, millis = kill.split(":")
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            process.wait(timeout=int(millis) / 1000)
        except subprocess.TimeoutExpired:
            process.send_signal(SIGNALS[name])
        stdout, stderr = process.communicate(timeout=timeout)
        return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    if kill:
        command += ["--kill", kill]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


def reference(config: str, folder: Path) -> dict:
    import torch

    out = folder / f"{config}-reference.pt"
    done = launch(config, out, None)
    if done.returncode != 0:
        raise RuntimeError(f"the uninterrupted {config} run failed:\n{done.stderr[-3000:]}")
    return torch.load(out)


# The largest COUNT drawn per phase and config: about what one whole run has of each (the mlp run
# does 30 steps of 4 micro-batches, the bert run 18 of 4), so most kills land before it finishes.
LIMITS = {"mlp": {"forward": 125, "update": 30, "write": 60, "boundary": 30, "async": 6000},
          "bert": {"forward": 75, "update": 18, "write": 60, "boundary": 18, "async": 12000}}


def random_kill(rng: random.Random, signals=tuple(SIGNALS), phases=PHASES[:-1], config: str = "mlp") -> str:
    """A signal and a moment: the COUNT-th event of a phase, small enough to land within a run."""
    phase = rng.choice(phases)
    count = rng.randint(1500 if phase == "async" else 1, LIMITS[config][phase])
    return f"{rng.choice(signals)}:{phase}:{count}"


def run_series(kills: int, seed: int = 0, configs=("mlp",), signals=tuple(SIGNALS), phases=PHASES[:-1],
               max_kills_per_run: int = 4, folder: Path | None = None, say=print, in_turn: bool = False) -> dict:
    """Kill runs ``kills`` times in all; return what happened (and ``exact``: every finished run exact).

    ``in_turn``: the signals take turns (kill i gets ``signals[i % len(signals)]``) instead of a random one.
    """
    import torch

    rng = random.Random(seed)
    folder = Path(folder or tempfile.mkdtemp(prefix="fault-series-"))
    references = {config: reference(config, folder) for config in configs}
    report = {"kills": 0, "runs": 0, "exact_runs": 0, "by_signal": {}, "by_phase": {}, "failures": []}
    while report["kills"] < kills:
        config = configs[report["runs"] % len(configs)]
        ckpt, out = folder / f"run{report['runs']}", folder / f"run{report['runs']}.pt"
        launches = []
        for attempt in range(max_kills_per_run + 1):
            turn = (signals[report["kills"] % len(signals)],) if in_turn else signals
            kill = random_kill(rng, turn, phases, config) if attempt < max_kills_per_run else None
            done = launch(config, out, ckpt, kill)
            launches.append((kill, done.returncode))
            if out.exists():
                break
            name, phase, _ = kill.split(":") if kill else (None, None, None)
            if kill is None or done.returncode not in EXITS[name] + ((1,) if phase == "async" else ()):
                raise RuntimeError(f"run {report['runs']} ({config}) ended with status {done.returncode}, not as "
                                   f"{kill} ends a run: {launches}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
            report["kills"] += 1
            report["by_signal"][name] = report["by_signal"].get(name, 0) + 1
            report["by_phase"][phase] = report["by_phase"].get(phase, 0) + 1
        result, ref = torch.load(out), references[config]
        same_weights = all(torch.equal(result["state"][k], v) for k, v in ref["state"].items())
        same_history = comparable(result["history"]) == comparable(ref["history"])
        report["runs"] += 1
        if same_weights and same_history:
            report["exact_runs"] += 1
        else:
            diff = max((result["state"][k] - v).abs().max().item() for k, v in ref["state"].items())
            report["failures"].append({"run": report["runs"] - 1, "config": config, "launches": launches,
                                       "max_abs_weight_diff": diff, "history_equal": same_history})
        say(f"run {report['runs'] - 1} ({config}): {len(launches) - 1} kills {[k for k, _ in launches[:-1]]}, "
            f"exact: {same_weights and same_history}")
    report["exact"] = report["exact_runs"] == report["runs"]
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="role", required=True)
    one = sub.add_parser("child")
    one.add_argument("config")
    one.add_argument("out")
    one.add_argument("--checkpoint")
    one.add_argument("--kill")
    many = sub.add_parser("series")
    many.add_argument("--kills", type=int, default=100)
    many.add_argument("--seed", type=int, default=0)
    many.add_argument("--configs", default="mlp,bert")
    many.add_argument("--phases", default=",".join(PHASES[:-1]),
                      help=f"moments to kill at, of {','.join(PHASES)} (async: from outside, after a random delay)")
    args = parser.parse_args()
    if args.role == "child":
        child(args.config, args.out, args.checkpoint, args.kill)
        return
    start = time.perf_counter()
    phases = tuple(args.phases.split(","))
    report = run_series(args.kills, args.seed, tuple(args.configs.split(",")), phases=phases)
    print(f"{report['kills']} kills over {report['runs']} runs (by signal {report['by_signal']}, by moment "
          f"{report['by_phase']}): {report['exact_runs']}/{report['runs']} runs exact "
          f"(weights torch.equal, history equal) in {time.perf_counter() - start:.0f} s")
    if not report["exact"]:
        print("NOT exact:", report["failures"])
        sys.exit(1)


if __name__ == "__main__":
    main()

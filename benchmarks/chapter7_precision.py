"""Chapter 7's cpu recipe in fp32 and in bf16, seed by seed: training time and validation accuracy.

Issue 19 asks whether bf16 autocast on a CPU with a matrix engine trains chapter 7's model faster
without losing accuracy. One run per precision cannot say: the seed alone moves the accuracy by a
point or more. This script reruns the chapter's own data and recipe (its cells, executed from the
notebook) for each seed, once in fp32 (fused attention, as on a CPU without the engine) and once as
``fit`` chooses (bf16 and eager attention on an AMX CPU), one run at a time.

    COURSE_PROFILE=cpu .venv/bin/python benchmarks/chapter7_precision.py [--seeds 1 2]

Slow (about 7 minutes per seed on 2 cores); run it alone on a quiet machine.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
from pathlib import Path

import torch

import course_utils

NOTEBOOK = Path(__file__).resolve().parents[1] / "chapters" / "07_bert_finetuning.ipynb"
# the cells that set up the encoder, the data and the recipe (up to the optimizer)
SETUP_CELLS = range(20, 26)


def chapter_namespace() -> dict:
    """The chapter's variables after its setup, tokenizer and data cells ran."""
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    namespace: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec("import course_utils\ncfg = course_utils.setup()", namespace)
        exec("from course_utils.data import load_sst2", namespace)
        for i in (4, *SETUP_CELLS):
            if cells[i]["cell_type"] == "code":
                exec("".join(cells[i]["source"]), namespace)
    return namespace


def run(ns: dict, seed: int, fp32: bool) -> tuple[float, float]:
    """(validation accuracy, training seconds) of one run of the recipe."""
    torch.manual_seed(seed)
    extra = {"attn_implementation": "sdpa"} if fp32 else {}
    with contextlib.redirect_stdout(io.StringIO()):
        model, _ = ns["load_classifier"](ns["encoder"], num_labels=2, **ns["dropout"], **extra)
    history = course_utils.fit(
        model, ns["train_ds"], optimizer=ns["adamw"](model, ns["lr"]), lr=ns["lr"], epochs=ns["epochs"],
        max_steps=ns["max_steps"], seed=seed, progress=False, amp=False if fp32 else "auto", **ns["recipe"],
    )
    result = course_utils.evaluate(model, ns["val_ds"], batch_size=64, collate_fn=ns["collate"], progress=False)
    return result["accuracy"], history.train_time_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    ns = chapter_namespace()
    rows = {"fp32": [], "auto": []}
    for seed in args.seeds:
        for name in rows:
            accuracy, seconds = run(ns, seed, fp32=name == "fp32")
            rows[name].append((accuracy, seconds))
            print(f"seed {seed} {name}: accuracy {accuracy:.4f}, training {seconds:.1f} s", flush=True)
    acc = {name: statistics.mean(a for a, _ in r) for name, r in rows.items()}
    time_ = {name: statistics.mean(s for _, s in r) for name, r in rows.items()}
    print(f"mean over {len(args.seeds)} seeds: fp32 {acc['fp32']:.4f} in {time_['fp32']:.0f} s; "
          f"fit's choice ({course_utils.device.amp_dtype('cpu').dtype}) {acc['auto']:.4f} in {time_['auto']:.0f} s: "
          f"{time_['fp32'] / time_['auto']:.2f}x faster, {100 * (acc['auto'] - acc['fp32']):+.1f} points")


if __name__ == "__main__":
    main()

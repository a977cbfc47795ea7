"""Chapter 11's batching comparison, repeated: one-at-a-time against dynamic batching, side by side.

The chapter measures each server once, and on a shared 2-core machine one closed-loop run moves by
10-20% from the next. This script starts the chapter's two servers (one PyTorch thread each, at
most 64 waiting texts; one serves texts one at a time, the other batches up to 32 with a 5 ms
window), then alternates the chapter's closed loop (32 clients, 600 requests) between them
``--rounds`` times, so both see the same moments of the machine, and prints each round's speed-up
and p95s. The model is the packaged MiniLM encoder with an untrained head: its cost does not depend
on its weights. A server with no model gives the load generator's own ceiling first.

    COURSE_PROFILE=cpu .venv/bin/python benchmarks/serving_batching.py [--rounds 5] [--client aiohttp]

About 20 s a round on 2 cores; run it alone on a quiet machine.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile

import course_utils
from course_utils.data import load_sst2
from course_utils.loadgen import CLIENTS, closed_loop
from course_utils.models import load_classifier, resolve_encoder
from course_utils.serving import start_server


def save_model(folder: str, cfg) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        model, tokenizer = load_classifier(resolve_encoder(cfg), num_labels=2,
                                           id2label={0: "negative", 1: "positive"},
                                           label2id={"negative": 0, "positive": 1})
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--client", choices=CLIENTS, default="aiohttp")
    args = parser.parse_args()
    cfg = course_utils.setup(quiet=True)
    texts = load_sst2("validation", limit=cfg.val_size).texts
    load = dict(clients=args.clients, requests=args.requests, time_limit_s=60, client=args.client)

    with start_server(None, max_batch_size=32, max_wait_ms=5) as instant:
        closed_loop(instant.url, texts, **{**load, "requests": 50})  # warm-up
        ceiling = closed_loop(instant.url, texts, **load)
    print(f"load generator ({args.client}) against no model: {ceiling.rps:.0f} req/s")

    with tempfile.TemporaryDirectory() as folder:
        save_model(folder, cfg)
        common = dict(threads=1, max_tokens=cfg.max_len, max_queue=64, wait=False)
        servers = {"one at a time": start_server(folder, max_batch_size=1, **common),
                   "batched": start_server(folder, max_batch_size=32, max_wait_ms=5, **common)}
        try:
            for server in servers.values():
                server.wait_until_ready(timeout=300)
                closed_loop(server.url, texts, **{**load, "requests": 50})  # warm-up
            speedups = []
            for round_ in range(args.rounds):
                runs = {name: closed_loop(server.url, texts, **load) for name, server in servers.items()}
                one, batched = runs["one at a time"], runs["batched"]
                assert one.ok == one.sent and batched.ok == batched.sent, "every request must be answered"
                speedups.append(batched.rps / one.rps)
                print(f"round {round_ + 1}: one at a time {one.rps:6.1f} req/s p95 {one.percentile(95):4.0f} ms | "
                      f"batched {batched.rps:6.1f} req/s p95 {batched.percentile(95):4.0f} ms | "
                      f"speed-up {speedups[-1]:.2f}x", flush=True)
        finally:
            for server in servers.values():
                server.stop()
    print(f"speed-up over {args.rounds} rounds: median {statistics.median(speedups):.2f}x, "
          f"min {min(speedups):.2f}x, max {max(speedups):.2f}x")


if __name__ == "__main__":
    main()

"""Chapter 11's batched server under a stream of poison requests (issue 30).

One request a second carries a text the model cannot handle (a lone surrogate, ``"\\ud800"``, which
crashes the tokenizer) while the chapter's closed loop (32 clients) keeps the server busy. Before
issue 30 each poison request failed every innocent request that shared its batch (27.7% of them
at one poison a second). Two servers are measured, each clean and poisoned in alternating rounds:

- ``validated``: the server as shipped; validation refuses the poison (422) before the model;
- ``unvalidated``: ``check_unicode=False``, so the poison reaches the tokenizer and the batcher
  must split the failing batch to answer the innocent texts in it.

For each it prints the innocent requests' error rate (target 0), the poison requests' statuses,
and throughput poisoned / clean (target >= 0.9). The model is the packaged MiniLM encoder with an
untrained head, as in ``serving_batching.py``.

    COURSE_PROFILE=cpu .venv/bin/python benchmarks/serving_poison.py [--rounds 3] [--poison-rate 1]

About 20 s a round on 2 cores; run it alone on a quiet machine. ``--quick`` runs a short check.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import tempfile
import threading
import time

import httpx

import course_utils
from course_utils.data import load_sst2
from course_utils.loadgen import closed_loop

try:
    from serving_batching import save_model  # run as a script from benchmarks/
except ImportError:
    from benchmarks.serving_batching import save_model
from course_utils.serving import start_server

POISON = json.dumps({"text": "a fine film \ud800 ."}).encode()  # the escape "\\ud800", valid JSON


class PoisonStream:
    """Sends one poison request every ``1 / rate`` seconds from its own thread until stopped."""

    def __init__(self, url: str, rate: float):
        self.url, self.period = url + "/predict", 1 / rate
        self.statuses: collections.Counter = collections.Counter()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stop_event.wait(self.period):
                try:
                    response = client.post(self.url, content=POISON, headers={"content-type": "application/json"})
                    self.statuses[response.status_code] += 1
                except httpx.HTTPError as error:
                    self.statuses[type(error).__name__] += 1

    def __enter__(self) -> PoisonStream:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        self.thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--poison-rate", type=float, default=1.0, help="poison requests per second")
    parser.add_argument("--quick", action="store_true", help="1 round of 100 requests: checks it runs")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.requests = 1, 100
    cfg = course_utils.setup(quiet=True)
    texts = load_sst2("validation", limit=cfg.val_size).texts
    load = dict(clients=args.clients, requests=args.requests, time_limit_s=120)

    with tempfile.TemporaryDirectory() as folder:
        save_model(folder, cfg)
        common = dict(threads=1, max_tokens=cfg.max_len, max_queue=64, max_batch_size=32, max_wait_ms=5,
                      device="cpu", wait=False)
        servers = {"validated": start_server(folder, **common),
                   "unvalidated": start_server(folder, check_unicode=False, **common)}
        try:
            for server in servers.values():
                server.wait_until_ready(timeout=300)
                closed_loop(server.url, texts, **{**load, "requests": 50})  # warm-up
            ratios = {name: [] for name in servers}
            innocent = {name: collections.Counter() for name in servers}
            poison = {name: collections.Counter() for name in servers}
            for round_ in range(args.rounds):
                for name, server in servers.items():
                    clean = closed_loop(server.url, texts, **load)
                    with PoisonStream(server.url, args.poison_rate) as stream:
                        poisoned = closed_loop(server.url, texts, **load)
                    innocent[name].update(poisoned.statuses)
                    poison[name].update(stream.statuses)
                    ratios[name].append(poisoned.rps / clean.rps)
                    failed = poisoned.sent - poisoned.ok
                    print(f"round {round_ + 1} {name:11}: clean {clean.rps:6.1f} req/s "
                          f"(p95 {clean.percentile(95):4.0f} ms, {clean.sent - clean.ok} failed) | poisoned "
                          f"{poisoned.rps:6.1f} req/s (p95 {poisoned.percentile(95):4.0f} ms), innocent failed "
                          f"{failed}/{poisoned.sent}, poison answered {dict(stream.statuses)} | "
                          f"ratio {ratios[name][-1]:.3f}", flush=True)
            health = {name: httpx.get(s.url + "/health", timeout=5).json() for name, s in servers.items()}
        finally:
            for server in servers.values():
                server.stop()
    for name in servers:
        sent = sum(innocent[name].values())
        errors = sent - innocent[name].get(200, 0)
        print(f"{name:11}: innocent error rate {errors}/{sent} = {errors / max(sent, 1):.4f}; poison requests "
              f"{dict(poison[name])}; throughput poisoned/clean median {statistics.median(ratios[name]):.3f} "
              f"(min {min(ratios[name]):.3f}); failed model calls {health[name]['failed_model_calls']}")


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"took {time.perf_counter() - t0:.0f} s")

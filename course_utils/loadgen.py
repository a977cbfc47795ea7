"""A load generator for the chapter 11 server: bounded in requests and time, loopback only.

Two ways to load a server, as MLPerf Inference's LoadGen distinguishes them:

- **closed loop**: ``clients`` simulated users, each sending its next request when the previous one
  is answered. The server can never have more than ``clients`` requests in flight, so a slow server
  slows the load down with it and queueing stays hidden.
- **open loop**: requests arrive at random (a Poisson process of ``rate`` per second) whatever the
  server is doing, the way independent users arrive. Latency is counted from the moment a request
  was *due*, so a request the client could not even send on time counts as late ("coordinated
  omission" otherwise hides exactly the slow cases).

Both stop after ``requests`` requests or ``time_limit_s`` seconds, whichever comes first, and every
request ends with a status: an HTTP code, ``"timeout"`` or ``"error"``. Requests go out through
aiohttp, whose work per request is small beside the server's (``client="httpx"`` is the other
choice; chapter 11 measures both). Example::

    result = closed_loop(server.url, texts, clients=8, requests=400, time_limit_s=20)
    result.summary()   # {'sent': 400, 'ok': 400, 'rps': 181.2, 'p50_ms': 41.0, 'p95_ms': 62.3, ...}
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np


def check_loopback(url: str) -> None:
    """Raise ``ValueError`` unless ``url`` points at this machine's loopback interface."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"url {url!r} is not on the loopback interface: this load generator only "
                     "targets 127.0.0.1 / localhost / [::1], i.e. a server on this machine")


@dataclass
class LoadResult:
    """Raw per-request outcomes of one load run. Percentiles come from the raw latencies.

    ``latencies_ms``: (ok requests,) latency of each answered 200, in milliseconds.
    ``statuses``: how many requests ended with each status (200, 503, 'timeout', ...).
    ``batch_sizes``: the server-side batch each answered text was computed in (read from the
    answer's ``predictions[0]["batch_size"]`` where the server reports it, as chapter 11's does).
    ``records``: one ``(due_s, sent_s, done_s, status)`` per request, in seconds from the run's
    start: when it was due, when it was sent (later than due when the generator fell behind), when
    it ended. Coordinated omission is ``sent_s - due_s``; a time series of outcomes comes from
    ``done_s`` and ``status``.
    """

    mode: str
    elapsed_s: float
    latencies_ms: np.ndarray
    statuses: collections.Counter = field(default_factory=collections.Counter)
    batch_sizes: list[int] = field(default_factory=list)
    records: list[tuple[float, float, float, int | str]] = field(default_factory=list)
    start: float = 0.0  # time.perf_counter() at the run's start; records are relative to it

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def rps(self) -> float:
        """Throughput: answered requests (status 200) per second of the run."""
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else float("nan")

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if len(self.latencies_ms) else float("nan")

    def summary(self) -> dict:
        return {"mode": self.mode, "sent": self.sent, "ok": self.ok,
                "rejected_503": self.statuses.get(503, 0),
                "other": self.sent - self.ok - self.statuses.get(503, 0), "rps": round(self.rps, 1),
                "p50_ms": round(self.percentile(50), 1), "p95_ms": round(self.percentile(95), 1),
                "p99_ms": round(self.percentile(99), 1),
                "mean_batch": round(float(np.mean(self.batch_sizes)), 2) if self.batch_sizes else float("nan")}


CLIENTS = ("aiohttp", "httpx")


class _Client:
    """One HTTP client library behind one small interface: ``await post(url, text)`` gives
    ``(status, body)`` (``body`` parsed only for a 200), raises ``TimeoutError`` when the request
    ran out of time and ``ConnectionError`` when it failed otherwise.

    ``aiohttp`` is the default: the load generator shares the machine with the server, so its own
    work per request counts. Chapter 11 measures both against a server with no model.
    """

    def __init__(self, kind: str, concurrency: int, timeout_s: float):  # kind: checked by _check
        self.kind, self.concurrency, self.timeout_s = kind, concurrency, timeout_s

    async def __aenter__(self):
        if self.kind == "aiohttp":
            import aiohttp

            self.timeouts, self.errors = (TimeoutError,), (aiohttp.ClientError,)  # aiohttp: the builtin
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=self.concurrency),
                                                 timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        else:
            import httpx

            self.timeouts, self.errors = (httpx.TimeoutException,), (httpx.HTTPError,)
            limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
            self.session = httpx.AsyncClient(limits=limits, timeout=self.timeout_s)
        await self.session.__aenter__()
        return self

    async def __aexit__(self, *exc):
        await self.session.__aexit__(*exc)

    async def post(self, url: str, text: str) -> tuple[int, dict | None]:
        try:
            if self.kind == "aiohttp":
                async with self.session.post(url, json={"text": text}) as response:
                    return response.status, (await response.json() if response.status == 200 else None)
            response = await self.session.post(url, json={"text": text})
            return response.status_code, (response.json() if response.status_code == 200 else None)
        except self.timeouts as error:
            raise TimeoutError(str(error)) from error
        except self.errors as error:
            raise ConnectionError(f"{type(error).__name__}: {error}") from error


async def _one_request(client: _Client, url: str, text: str, due: float, result: LoadResult,
                       latencies: list) -> None:
    sent = time.perf_counter()
    try:
        status, body = await client.post(url + "/predict", text)
    except TimeoutError:
        status, body = "timeout", None
    except ConnectionError:
        status, body = "error", None
    done = time.perf_counter()
    result.statuses[status] += 1
    result.records.append((due - result.start, sent - result.start, done - result.start, status))
    if status == 200:
        latencies.append((done - due) * 1000)
        size = (body.get("predictions") or [{}])[0].get("batch_size") if isinstance(body, dict) else None
        if size is not None:
            result.batch_sizes.append(size)


async def _closed_loop(url, texts, clients, requests, time_limit_s, timeout_s, client) -> LoadResult:
    result, latencies = LoadResult("closed", 0.0, np.array([])), []
    counter = iter(range(requests))
    start = 0.0

    async def user(http):
        for i in counter:  # shared iterator: the users together send `requests` requests
            if time.perf_counter() - start > time_limit_s:
                return
            await _one_request(http, url, texts[i % len(texts)], time.perf_counter(), result, latencies)

    async with _Client(client, clients, timeout_s) as http:
        # the clock starts with the load, not with the client library's set-up (imports, a session)
        start = result.start = time.perf_counter()
        await asyncio.gather(*(user(http) for _ in range(clients)))
    result.elapsed_s, result.latencies_ms = time.perf_counter() - start, np.array(latencies)
    return result


async def _open_loop(url, texts, rate, requests, time_limit_s, timeout_s, seed, max_connections,
                     client) -> LoadResult:
    result, latencies = LoadResult("open", 0.0, np.array([])), []
    rng = random.Random(seed)
    async with _Client(client, max_connections, timeout_s) as http:
        start = result.start = time.perf_counter()  # after the client's set-up, as in the closed loop
        due, tasks = start, []
        for i in range(requests):
            due += rng.expovariate(rate)  # Poisson arrivals: exponential gaps of mean 1/rate
            if due - start > time_limit_s:
                break
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(
                _one_request(http, url, texts[i % len(texts)], due, result, latencies)))
        await asyncio.gather(*tasks)
    result.elapsed_s, result.latencies_ms = time.perf_counter() - start, np.array(latencies)
    return result


def _run(coroutine):
    """Run ``coroutine`` to completion in a fresh event loop on its own thread.

    A notebook already runs an event loop in the main thread, so ``asyncio.run`` cannot be used
    there directly; a second thread with its own loop works in notebooks, tests and scripts alike.
    """
    box = {}

    def target():
        try:
            box["value"] = asyncio.run(coroutine)
        except BaseException as error:  # re-raised in the caller's thread
            box["error"] = error

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _check(url, texts, requests, time_limit_s, client) -> None:
    check_loopback(url)
    if client not in CLIENTS:
        raise ValueError(f"client must be one of {CLIENTS}, got {client!r}")
    if not texts:
        raise ValueError("texts is empty: give at least one text to send")
    if requests < 1 or time_limit_s <= 0:
        raise ValueError(f"requests must be >= 1 and time_limit_s > 0, got {requests} and {time_limit_s}")


def closed_loop(url: str, texts: Sequence[str], *, clients: int, requests: int, time_limit_s: float,
                timeout_s: float = 10.0, client: str = "aiohttp") -> LoadResult:
    """``clients`` users send one text per request, each waiting for its answer before the next.

    Stops after ``requests`` requests in all or ``time_limit_s`` seconds. Texts are used in order,
    cycling. ``client``: the HTTP library that sends them, ``"aiohttp"`` or ``"httpx"``.
    """
    _check(url, texts, requests, time_limit_s, client)
    if clients < 1:
        raise ValueError(f"clients must be >= 1, got {clients}")
    return _run(_closed_loop(url, list(texts), clients, requests, time_limit_s, timeout_s, client))


def open_loop(url: str, texts: Sequence[str], *, rate: float, requests: int, time_limit_s: float,
              timeout_s: float = 10.0, seed: int = 0, max_connections: int = 256,
              client: str = "aiohttp") -> LoadResult:
    """Requests arrive as a Poisson process of ``rate`` per second, whether or not earlier ones were
    answered. Stops issuing after ``requests`` requests or ``time_limit_s`` seconds, then waits for
    the outstanding answers (each at most ``timeout_s``). ``client`` as in :func:`closed_loop`."""
    _check(url, texts, requests, time_limit_s, client)
    if rate <= 0:
        raise ValueError(f"rate must be > 0 requests per second, got {rate}")
    return _run(_open_loop(url, list(texts), rate, requests, time_limit_s, timeout_s, seed, max_connections,
                           client))

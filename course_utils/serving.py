"""A text classifier behind a small HTTP endpoint, with dynamic batching (chapter 11).

The server is FastAPI on uvicorn, one process, one model::

    POST /predict   {"texts": ["a gorgeous film .", "dull ."]}  (or {"text": "..."})
                    -> {"predictions": [{"label": 1, "label_name": "positive",
                                         "probabilities": [0.02, 0.98], "batch_size": 2}, ...]}
    GET  /health    -> {"status": "ok", "queued": 0, "batches": 12, "batch_sizes": {"1": 3, "4": 9}, ...}

Requests do not call the model themselves. Each text joins one queue; a single background task,
the **batcher**, takes the first text waiting, keeps collecting until ``max_batch_size`` texts
are there or ``max_wait_ms`` has passed, and runs the model once on all of them in a worker
thread, so the event loop keeps accepting requests meanwhile. The queue is bounded: a request
that does not fit is answered ``503`` at once instead of waiting behind an ever longer line.

One client cannot hurt the others (issue 30; every case is tested in ``tests/test_serving_hostile.py``):

- a text the model fails on fails only its own request: a failing batch is split and retried;
- a request's size (body, texts, characters, headers) is checked before any work on its texts,
  and errors are one short sentence that never repeats the input (413, 415, 422, 431, 501);
- a connection's time is bounded: deadlines for headers and body (408), idle and keep-alive
  timeouts, a cap on open connections (503), a shutdown deadline; a request whose client has gone
  is cancelled. uvicorn provides the keep-alive and shutdown limits; :class:`RequestLimits` (ASGI
  middleware) and :func:`guarded_protocol` (uvicorn's HTTP protocol, extended) the rest.

It is still one process: a reverse proxy in front (nginx, Envoy) adds TLS, per-client rate limits
and replicas, and should apply the same limits first.

In a notebook or a test, start it as a real process on the loopback interface::

    with start_server(model_dir, max_batch_size=16, max_wait_ms=5) as server:
        httpx.post(server.url + "/predict", json={"text": "a fine film ."}).json()

The same from a terminal: ``python -m course_utils.serving MODEL_DIR --port 8000``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

LOOPBACK = "127.0.0.1"

# A predictor maps a list of texts to one list of class probabilities per text.
Predictor = Callable[[list[str]], list[list[float]]]


@dataclass(frozen=True)
class ServerOptions:
    """The knobs of the server. ``max_batch_size=1`` is one-at-a-time serving (no batching).

    The batcher and the model:

    ``max_wait_ms``: how long the batcher holds the first text of a batch while it waits for more.
    ``max_queue``: texts that may wait at once; beyond it a request is answered 503.
    ``max_tokens``: the tokenizer's truncation length.
    ``extra_batch_ms``: added to every model call, to imitate a heavier model (tests of overload).
    ``device``: where the model runs, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, or ``"auto"``
    (CUDA when there is a GPU, else the CPU; see :func:`serving_device`).

    What one request may ask for, checked before any work on its texts (422 or 413 otherwise):

    ``max_texts``: most texts in one request (at most ``max_queue``: a bigger request could never
    fit). ``max_chars``: longest text (the tokenizer truncates anyway). ``max_body_bytes``: the
    largest body (``None``: room for ``max_texts`` texts of ``max_chars`` characters, each written
    as a 6-byte ``\\uXXXX`` escape). ``max_header_bytes`` and ``max_headers``: the request line and
    headers together, and how many headers (431 beyond). ``check_unicode``: refuse texts that are
    not valid Unicode (a lone surrogate such as ``"\\ud800"`` crashes tokenizers); switch it off
    only to watch the batcher isolate a text the model cannot handle.

    How long one connection may hold the server:

    ``header_timeout_s``: from a connection's opening (or a kept-alive request's first byte) to the
    end of its headers; an idle connection is closed, a half-sent request answered 408.
    ``body_timeout_s``: from the end of the headers to the end of the body (408 beyond).
    ``keep_alive_s``: how long an idle kept-alive connection stays open between requests.
    ``max_connections``: open connections at once; one more is answered 503 and closed.
    ``shutdown_timeout_s``: on SIGTERM, how long requests in flight may finish before they are cut.
    """

    max_batch_size: int = 16
    max_wait_ms: float = 5.0
    max_queue: int = 256
    max_chars: int = 1000
    max_texts: int = 64
    max_tokens: int = 64
    extra_batch_ms: float = 0.0
    device: str = "auto"
    max_body_bytes: int | None = None
    max_header_bytes: int = 16_384
    max_headers: int = 100
    check_unicode: bool = True
    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    keep_alive_s: float = 5.0
    max_connections: int = 256
    shutdown_timeout_s: float = 10.0

    def __post_init__(self):
        for name in ("max_batch_size", "max_queue", "max_chars", "max_texts", "max_tokens", "max_headers",
                     "max_connections"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("max_wait_ms", "extra_batch_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 milliseconds, got {getattr(self, name)!r}")
        for name in ("header_timeout_s", "body_timeout_s", "keep_alive_s", "shutdown_timeout_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 < value < float("inf"):
                raise ValueError(f"{name} must be a number of seconds > 0, got {value!r}")
        if self.max_texts > self.max_queue:
            raise ValueError(f"max_texts ({self.max_texts}) must be <= max_queue ({self.max_queue}): a request "
                             "with more texts than the queue holds could never be served; lower max_texts "
                             "or raise max_queue")
        for name, least in (("max_body_bytes", 64), ("max_header_bytes", 256)):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < least):
                raise ValueError(f"{name} must be an integer >= {least} bytes, got {value!r}")
        if not isinstance(self.device, str) or not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", self.device):
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {self.device!r}")

    @property
    def body_limit(self) -> int:
        """The largest request body accepted, in bytes (``max_body_bytes`` or room for the largest
        legal request: ``max_texts`` texts of ``max_chars`` 6-byte escapes, quotes and commas)."""
        if self.max_body_bytes is not None:
            return self.max_body_bytes
        return self.max_texts * (6 * self.max_chars + 3) + 64


# ----------------------------------------------------------------------------- the model


# On a CPU with a bf16 matrix engine, bf16 pays from a few texts up; a lone text is faster in fp32.
# The threshold came from one calibration (AMX Xeon, MiniLM, one thread: 1 text 8.9 ms fp32 / 11.7
# ms bf16; 32 texts 8.6 / 2.7 ms per text); where bf16 starts to win moves with the machine and its
# load (chapter 11's cost curve re-measures both precisions), so treat 4 as a safe choice, not a law.
BF16_MIN_BATCH = 4


def precision_for(batch_size: int, device: str = "cpu", device_choice=None):
    """The :class:`~course_utils.device.AmpChoice` the server uses for a batch of ``batch_size``
    texts: the device's mixed precision (``amp_dtype``) from ``BF16_MIN_BATCH`` texts up where that
    is bf16 on a CPU, fp32 below; on other devices, the device's choice whatever the size.
    ``device_choice``: ``amp_dtype(device)`` computed once by the caller (it reads CPU flags, so the
    server asks once at start-up rather than once a batch)."""
    import torch

    from .device import AmpChoice, amp_dtype

    choice = device_choice if device_choice is not None else amp_dtype(device)
    if torch.device(device).type == "cpu" and choice.enabled and batch_size < BF16_MIN_BATCH:
        return AmpChoice(torch.float32, False, f"fewer than {BF16_MIN_BATCH} texts: fp32 is faster")
    return choice


def attention_for(choice, device_type: str = "cpu") -> str:
    """The attention implementation the server gives a batch run in ``choice``'s precision:
    transformers' plain attention (``"eager"``) for bf16 on a CPU, the fused kernel (``"sdpa"``)
    otherwise. ``mixed_precision`` restricts the fused kernel to its slow exact form on a bf16 CPU
    (it is built for training); for a batch of 32 the plain one was ~17% faster (AMX Xeon)."""
    return "eager" if choice.enabled and device_type == "cpu" else "sdpa"


def serving_device(device: str | None = "auto") -> str:
    """The device a server's model runs on: ``device`` itself, or for ``"auto"`` (and ``None``)
    ``"cuda"`` when PyTorch sees a GPU and ``"cpu"`` otherwise. One server process owns the GPU."""
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(torch.device(device))


def load_predictor(model_dir: str | os.PathLike, max_tokens: int = 64, threads: int | None = None,
                   device: str | None = "auto"):
    """``(predict, label_names)`` for a classifier saved with ``save_pretrained`` in ``model_dir``.

    ``predict(texts)`` pads the batch to its longest text, truncates at ``max_tokens`` tokens and
    returns softmax probabilities, one list of ``num_labels`` floats per text. Each batch runs in
    the precision :func:`precision_for` gives its size (bf16 for batches of a few texts or more on
    a CPU with a bf16 matrix engine, fp32 otherwise), bf16 batches on a CPU with plain ("eager")
    attention, the others with the fused kernel (``sdpa``). ``device``: where the model runs
    (``"auto"``: CUDA when there is a GPU, else the CPU; see :func:`serving_device`); the
    probabilities come back as Python floats wherever it runs.

    Example::

        predict, names = load_predictor("checkpoints/cpu/11_served_model")        # GPU if any
        predict(["a gorgeous film ."])   # [[0.03, 0.97]]
        predict, names = load_predictor("checkpoints/cpu/11_served_model", device="cpu")
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from . import device as devices

    if threads is not None:
        torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval().to(serving_device(device))
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    device_choice = devices.amp_dtype(model.device)  # once: it reads the CPU's flags

    def predict(texts: list[str]) -> list[list[float]]:
        enc = tokenizer(texts, padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
        choice = precision_for(len(texts), model.device.type, device_choice)
        attention = attention_for(choice, model.device.type)
        if model.config._attn_implementation != attention:
            # ~0.1 ms, and only when the precision changes. It changes the shared model: safe only
            # because the batcher runs one batch at a time (two model threads would race here).
            model.set_attn_implementation(attention)
        with torch.inference_mode(), devices.mixed_precision(model.device.type, choice):
            logits = model(**enc.to(model.device)).logits  # (batch, num_labels)
        return logits.float().softmax(-1).cpu().tolist()

    return predict, names


def instant_predictor(num_labels: int = 2):
    """``(predict, label_names)`` for a stand-in model that answers every text with equal
    probabilities at once: a server around it measures what HTTP, JSON, the batcher and the load
    generator cost without any model (``start_server(None)``). Like a tokenizer it encodes each
    text to UTF-8 first, so a text a real model cannot read (a lone surrogate) fails here too."""
    names = ["negative", "positive"] if num_labels == 2 else [f"class {i}" for i in range(num_labels)]

    def predict(texts: list[str]) -> list[list[float]]:
        for text in texts:
            text.encode("utf-8")  # raises UnicodeEncodeError on a lone surrogate, as tokenizers do
        return [[1 / num_labels] * num_labels for _ in texts]

    return predict, names


# ----------------------------------------------------------------------------- the batcher


@dataclass
class _Waiting:
    text: str
    answer: asyncio.Future  # resolved with (probabilities, batch size)


class TextFailed(Exception):
    """The model failed on this one text, alone (it was retried apart from its batch)."""


@dataclass
class DynamicBatcher:
    """Collects texts from many requests into batches for one ``predict`` call at a time.

    ``submit(texts)`` is awaited by a request; ``run()`` is the background task. Batches are
    opportunistic: a lone text waits at most ``max_wait_ms`` for company, then goes alone.

    A batch whose model call fails is split in two halves and each is retried, down to single
    texts: a text the model cannot handle fails only its own request (:class:`TextFailed`), and
    ``k`` such texts in a batch of ``n`` cost about ``2 k log2(n)`` extra calls, most of them on
    small batches. A request that is cancelled (its client left) takes its texts out of the queue.
    """

    predict: Predictor
    options: ServerOptions
    waiting: collections.deque = field(default_factory=collections.deque)
    batch_sizes: collections.Counter = field(default_factory=collections.Counter)
    failed_calls: int = 0  # model calls that raised (each is then split, or fails its one text)

    def __post_init__(self):
        self.arrived = asyncio.Event()

    def has_room_for(self, n: int) -> bool:
        return len(self.waiting) + n <= self.options.max_queue

    async def submit(self, texts: Sequence[str]) -> list[tuple[list[float], int]]:
        """Queue ``texts`` (the caller checked ``has_room_for``) and wait for their answers."""
        loop = asyncio.get_running_loop()
        items = [_Waiting(t, loop.create_future()) for t in texts]
        self.waiting.extend(items)
        self.arrived.set()
        try:
            return [await item.answer for item in items]
        except asyncio.CancelledError:  # the request was cancelled: nobody will read these answers
            for item in items:
                item.answer.cancel()
            self.waiting = collections.deque(w for w in self.waiting if not w.answer.done())
            raise

    async def _wait_for_arrival(self, timeout: float | None) -> bool:
        """True when a text arrived within ``timeout`` seconds (None: wait as long as it takes)."""
        self.arrived.clear()
        try:
            # Cancelling a wait on an Event loses nothing, unlike cancelling a queue.get().
            await asyncio.wait_for(self.arrived.wait(), timeout)
            return True
        except TimeoutError:  # asyncio.TimeoutError is this builtin from Python 3.11
            return False

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        max_size, max_wait = self.options.max_batch_size, self.options.max_wait_ms / 1000
        while True:
            while not self.waiting:
                await self._wait_for_arrival(None)
            deadline = loop.time() + max_wait
            while len(self.waiting) < max_size and deadline > loop.time():
                await self._wait_for_arrival(deadline - loop.time())
            batch = [self.waiting.popleft() for _ in range(min(max_size, len(self.waiting)))]
            batch = [item for item in batch if not item.answer.done()]  # skip cancelled requests
            if batch:
                await self._answer(batch)

    async def _answer(self, batch: list[_Waiting]) -> None:
        try:
            # The model runs in a worker thread: the event loop keeps taking requests meanwhile.
            probs = await asyncio.to_thread(self._run_model, [item.text for item in batch])
        except Exception as error:  # a failing model must fail its own texts, not the batcher
            self.failed_calls += 1
            if len(batch) == 1:
                if not batch[0].answer.done():
                    batch[0].answer.set_exception(TextFailed(f"{type(error).__name__}: {error}"[:200]))
                return
            half = len(batch) // 2  # bisect: the halves without the culprit are answered
            await self._answer(batch[:half])
            await self._answer(batch[half:])
            return
        self.batch_sizes[len(batch)] += 1
        for item, p in zip(batch, probs):
            if not item.answer.done():  # the client may have gone away
                item.answer.set_result((p, len(batch)))

    def _run_model(self, texts: list[str]) -> list[list[float]]:
        if self.options.extra_batch_ms:
            time.sleep(self.options.extra_batch_ms / 1000)
        return self.predict(texts)


# ----------------------------------------------------------------------------- the request


class Refused(Exception):
    """A request the server will not serve: ``status`` and a short ``detail`` (never the input)."""

    def __init__(self, status: int, detail: str, close: bool = False):
        super().__init__(detail)
        self.status, self.detail, self.close = status, detail, close


def _no_constants(name: str):
    raise Refused(422, f"{name} is not valid JSON: send numbers as finite numbers, texts as strings")


def parse_texts(body: bytes, options: ServerOptions) -> list[str]:
    """The texts of a POST /predict body, ``{"text": "..."}`` or ``{"texts": ["...", ...]}``.

    Every size is checked before any work on a single text, so a request's cost is bounded by the
    options whatever it holds; errors name the field and the limit, never echo the input.
    Raises :class:`Refused` (413 for a body over the limit, 422 for everything else).
    """
    if len(body) > options.body_limit:
        raise Refused(413, f"the body has {len(body)} bytes; the limit is {options.body_limit}", close=True)
    try:
        payload = json.loads(body, parse_constant=_no_constants)
    except Refused:
        raise
    except RecursionError:
        raise Refused(422, "the body is not valid JSON: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
        where = f" at byte {error.pos}" if isinstance(error, json.JSONDecodeError) else ""
        raise Refused(422, f"the body is not valid JSON{where}: send a UTF-8 JSON object") from None
    if not isinstance(payload, dict):
        raise Refused(422, f"the body must be a JSON object (a dict) such as {{\"text\": \"...\"}}, "
                           f"got {type(payload).__name__}")
    unknown = sorted(set(payload) - {"text", "texts"})
    if unknown:
        raise Refused(422, f"unknown field {unknown[0][:40]!r} (extra fields are not allowed): "
                           "send 'text' or 'texts'")
    if ("text" in payload) == ("texts" in payload) or None in (payload.get("text", 0), payload.get("texts", 0)):
        raise Refused(422, "send exactly one of 'text' (a string) or 'texts' (a list of strings)")
    if "text" in payload:
        texts = [payload["text"]]
        if not isinstance(payload["text"], str):
            raise Refused(422, f"'text' must be a string, got {type(payload['text']).__name__}")
    else:
        texts = payload["texts"]
        if not isinstance(texts, list):
            raise Refused(422, f"'texts' must be a list of strings, got {type(texts).__name__}")
        if not texts:
            raise Refused(422, "'texts' is empty: send at least one text")
        if len(texts) > options.max_texts:
            raise Refused(422, f"{len(texts)} texts in one request; the limit is {options.max_texts}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise Refused(422, f"text {i} must be a string, got {type(text).__name__}")
        if len(text) > options.max_chars:
            raise Refused(422, f"text {i} has {len(text)} characters; the limit is {options.max_chars}")
        if not text.strip():
            raise Refused(422, f"text {i} is empty or only whitespace")
        if options.check_unicode and not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as error:
                raise Refused(422, f"text {i} is not valid Unicode (a lone surrogate at character "
                                   f"{error.start}): send UTF-8 text") from None
    return texts


# ----------------------------------------------------------------------------- the app


def create_app(predict: Predictor, label_names: Sequence[str], options: ServerOptions | None = None):
    """The FastAPI application around ``predict``, inside :class:`RequestLimits`; see the module
    docstring for the routes."""
    options = options or ServerOptions()

    @contextlib.asynccontextmanager
    async def lifespan(app):
        app.state.batcher = DynamicBatcher(predict, options)
        app.state.batcher_task = asyncio.create_task(app.state.batcher.run())
        yield
        app.state.batcher_task.cancel()

    app = FastAPI(title="SST-2 sentiment classifier", lifespan=lifespan)

    @app.exception_handler(Refused)
    async def refused(request, error: Refused):
        return _refusal_response(error, JSONResponse)

    @app.post("/predict")
    async def predict_route(request: Request):
        texts = parse_texts(await request.body(), options)
        batcher: DynamicBatcher = app.state.batcher
        if not batcher.has_room_for(len(texts)):
            raise Refused(503, "server busy: the queue is full, retry later")
        predictions = []
        try:
            answers = await batcher.submit(texts)
        except TextFailed as error:
            raise Refused(500, f"the model failed on a text of this request ({error}); the request's "
                               "other texts and other requests are unaffected") from None
        for probabilities, batch_size in answers:
            label = probabilities.index(max(probabilities))  # arg-max
            predictions.append({"label": label, "label_name": label_names[label],
                                "probabilities": probabilities, "batch_size": batch_size})
        return {"predictions": predictions}

    @app.get("/health")
    async def health():
        batcher: DynamicBatcher = app.state.batcher
        alive = not app.state.batcher_task.done()  # a dead batcher would leave every request waiting
        body = {"status": "ok" if alive else "batcher stopped", "queued": len(batcher.waiting),
                "batches": sum(batcher.batch_sizes.values()),
                "batch_sizes": {str(k): v for k, v in sorted(batcher.batch_sizes.items())},
                "failed_model_calls": batcher.failed_calls, "options": options.__dict__}
        return body if alive else JSONResponse(body, status_code=503)

    return RequestLimits(app, options)


def _refusal_response(error: Refused, response_class):
    headers = {"Retry-After": "1"} if error.status == 503 else {}
    if error.close:
        headers["Connection"] = "close"  # the rest of the body is unread: the connection cannot go on
    return response_class({"detail": error.detail}, status_code=error.status, headers=headers)


_ON_DISCONNECT = "course_utils.cancel_on_disconnect"  # scope key: (the request's task, its state)


class RequestLimits:
    """Pure ASGI middleware: what a request's headers and body may be, checked before the app runs,
    and the request's end when its client leaves.

    - ``Content-Type`` other than ``application/json``: 415; a ``Content-Encoding``: 415; a
      ``Transfer-Encoding`` other than ``chunked``: 501; ``Content-Length`` over the body limit: 413.
    - The body is counted as it streams in (a chunked body has no length up front): 413 beyond the
      limit, 408 if it is not complete ``body_timeout_s`` after the headers.
    - A disconnect from the client cancels the request, so the batcher drops its texts instead of
      computing answers nobody reads (with :func:`guarded_protocol`, which reports the disconnect).

    uvicorn has none of these (its options bound idle keep-alive connections, concurrency and the
    shutdown; :func:`guarded_protocol` adds the limits on headers and connections).
    """

    def __init__(self, app, options: ServerOptions):
        self.app, self.options = app, options

    def __getattr__(self, name):  # app.state and friends, for tests and tools
        return getattr(self.app, name)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        try:
            self._check_headers(scope)
        except Refused as error:
            return await _send_refusal(scope, receive, send, error)
        task, limit = asyncio.current_task(), self.options.body_limit
        state = {"received": 0, "late": False, "gone": False, "started": False}
        # guarded_protocol cancels the request through this entry when its client leaves: a timer
        # and a dict per request, where a task watching for the disconnect would cost ~20 us more.
        scope[_ON_DISCONNECT] = (task, state)

        def body_too_late():
            state["late"] = True
            task.cancel()

        timer = asyncio.get_running_loop().call_later(self.options.body_timeout_s, body_too_late)

        async def limited_receive():
            message = await receive()
            if message["type"] == "http.disconnect":
                state["gone"] = True
                raise asyncio.CancelledError
            state["received"] += len(message.get("body", b""))
            if state["received"] > limit:
                timer.cancel()
                raise Refused(413, f"the body has more than {limit} bytes, the limit", close=True)
            if not message.get("more_body", False):
                timer.cancel()
            return message

        async def watched_send(message):
            state["started"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except asyncio.CancelledError:
            if not (state["gone"] or state["late"]):
                raise  # cancelled from outside (the server's shutdown deadline)
            task.uncancel()  # this cancellation is handled here: the task goes on normally
            if state["late"] and not state["gone"] and not state["started"]:
                error = Refused(408, f"the body did not arrive within {self.options.body_timeout_s:g} s",
                                close=True)
                await _send_refusal(scope, receive, send, error)
        finally:
            timer.cancel()

    def _check_headers(self, scope) -> None:
        headers = dict(scope["headers"])  # names are lower case in ASGI
        encoding = headers.get(b"transfer-encoding", b"").lower().replace(b" ", b"")
        if encoding not in (b"", b"chunked", b"identity"):
            raise Refused(501, "Transfer-Encoding must be chunked or absent; compressed transfer "
                               "codings are not implemented", close=True)
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.options.body_limit):
            raise Refused(413, f"Content-Length is over the limit of {self.options.body_limit} bytes",
                          close=True)
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            return
        kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if kind != b"application/json":
            raise Refused(415, "Content-Type must be application/json", close=True)
        if headers.get(b"content-encoding", b"identity").strip().lower() != b"identity":
            raise Refused(415, "Content-Encoding is not supported: send the body uncompressed",
                          close=True)


async def _send_refusal(scope, receive, send, error: Refused) -> None:
    await _refusal_response(error, JSONResponse)(scope, receive, send)


# ----------------------------------------------------------------------------- the connection


_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large", 503: b"Service Unavailable"}


def guarded_protocol(options: ServerOptions):
    """uvicorn's HTTP protocol (httptools) with the limits uvicorn leaves out, per connection:

    - a header deadline: ``header_timeout_s`` from the connection's opening, or from a kept-alive
      request's first byte, to the end of the headers. A connection that sent nothing is closed,
      one that sent part of a request is answered 408 and closed (slowloris);
    - the request line and headers together at most ``max_header_bytes``, at most ``max_headers``
      headers: 431 and closed (httptools itself buffers headers without a bound);
    - at most ``max_connections`` open at once: one more is answered 503 and closed at once.
      (uvicorn's ``limit_concurrency`` answers 503 too, but keeps the connection open.);
    - a request whose client closes the connection before its answer is cancelled.

    Between requests, uvicorn's ``timeout_keep_alive`` closes idle connections.
    """
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self.refused, self.in_headers = False, False
            self.header_timer = self.loop.call_later(options.header_timeout_s, self._headers_too_slow)
            if len(self.connections) > options.max_connections:
                self._refuse(503, "too many connections: retry later")

        def connection_lost(self, exc) -> None:
            self._stop_header_timer()
            if self.cycle is not None and not self.cycle.response_complete:
                waiting = self.cycle.scope.get(_ON_DISCONNECT)  # set by RequestLimits
                if waiting is not None:
                    task, state = waiting
                    state["gone"] = True
                    task.cancel()  # the client left: stop its request wherever it waits
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self.refused:
                return
            super().data_received(data)
            if self.in_headers and not self.refused:  # headers still incomplete after this chunk
                self.raw_header_bytes += len(data)
                if self.raw_header_bytes > options.max_header_bytes:
                    self._refuse(431, f"the headers are over {options.max_header_bytes} bytes")

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self.in_headers, self.raw_header_bytes, self.header_bytes, self.header_count = True, 0, 0, 0
            if self.header_timer is None:
                self.header_timer = self.loop.call_later(options.header_timeout_s, self._headers_too_slow)

        def on_url(self, url: bytes) -> None:
            self.header_bytes += len(url)
            if self.header_bytes <= options.max_header_bytes:
                super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self.header_bytes += len(name) + len(value) + 4
            self.header_count += 1
            if self.header_count <= options.max_headers and self.header_bytes <= options.max_header_bytes:
                super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._stop_header_timer()
            self.in_headers = False
            if self.header_count > options.max_headers:
                self._refuse(431, f"{self.header_count} headers; the limit is {options.max_headers}")
            elif self.header_bytes > options.max_header_bytes:
                self._refuse(431, f"the headers are over {options.max_header_bytes} bytes")
            else:
                super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            if not self.refused:
                super().on_body(body)

        def on_message_complete(self) -> None:
            if not self.refused:
                super().on_message_complete()

        def _stop_header_timer(self) -> None:
            if self.header_timer is not None:
                self.header_timer.cancel()
                self.header_timer = None

        def _headers_too_slow(self) -> None:
            self.header_timer = None
            if self.in_headers:
                self._refuse(408, f"the headers did not arrive within {options.header_timeout_s:g} s")
            elif self.cycle is None or self.cycle.response_complete:
                self.transport.close()  # it never sent a request: nothing to answer

        def _refuse(self, status: int, detail: str) -> None:
            self.refused = True
            self._stop_header_timer()
            if self.cycle is None or self.cycle.response_complete:  # never write into an answer
                body = json.dumps({"detail": detail}).encode()
                self.transport.write(b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n"
                                     b"content-length: %d\r\nconnection: close\r\n%s\r\n%s"
                                     % (status, _REASONS[status], len(body),
                                        b"retry-after: 1\r\n" if status == 503 else b"", body))
            self.transport.close()

    return GuardedHttpToolsProtocol


def serve(model_dir: str | os.PathLike | None, port: int, options: ServerOptions,
          threads: int | None = None) -> None:
    """Load the model in ``model_dir`` and serve it on 127.0.0.1:``port`` until stopped
    (``model_dir=None``: the stand-in of :func:`instant_predictor`)."""
    import uvicorn

    if model_dir is None:
        predict, names = instant_predictor()
    else:
        options = dataclasses.replace(options, device=serving_device(options.device))  # /health shows it
        predict, names = load_predictor(model_dir, options.max_tokens, threads, options.device)
    uvicorn.run(create_app(predict, names, options), host=LOOPBACK, port=port, log_level="warning",
                access_log=False, http=guarded_protocol(options), timeout_keep_alive=options.keep_alive_s,
                timeout_graceful_shutdown=options.shutdown_timeout_s)


# ----------------------------------------------------------------------------- as a process


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


@dataclass
class ServerProcess:
    """A server running in a child process; ``stop()`` (or leaving a ``with`` block) ends it."""

    process: subprocess.Popen
    port: int
    log_path: Path
    shutdown_timeout_s: float = 10.0  # the server's own deadline for a graceful shutdown

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self, timeout: float | None = None) -> int:
        """Ask the server to shut down (SIGTERM), kill it if it lingers ``timeout`` seconds (default:
        its shutdown deadline and 5 s more); returns its exit code: ``-15`` after a graceful
        shutdown where uvicorn re-raises the SIGTERM it handled (0.54 does), else ``0``."""
        if timeout is None:
            timeout = self.shutdown_timeout_s + 5
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        return self.process.returncode

    def wait_until_ready(self, timeout: float = 180.0) -> ServerProcess:
        """Poll /health until it answers 200; stop the server and raise if it never does."""
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with code {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass  # not listening yet
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the server did not answer /health within {timeout} s:\n{self.log()}")

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_server(model_dir: str | os.PathLike | None, *, options: ServerOptions | None = None,
                 threads: int | None = None, timeout: float = 180.0, wait: bool = True,
                 **option_values) -> ServerProcess:
    """Start ``python -m course_utils.serving`` on a free loopback port; return once /health answers.

    ``model_dir=None`` serves the stand-in of :func:`instant_predictor` (no model, no torch work).
    Options are a :class:`ServerOptions` or its fields as keywords (``max_batch_size=16``,
    ``device="cpu"``; the default ``device="auto"`` serves on CUDA when there is a GPU, else the CPU).
    ``threads``: torch threads in the server (default: torch's choice). ``wait=False`` returns at
    once; call ``server.wait_until_ready()`` later (to start several servers side by side).
    Raises ``RuntimeError`` with the server's log if it exits or does not answer within ``timeout`` s.

    Example::

        with start_server("my_model", max_batch_size=1) as server:
            print(server.url)   # http://127.0.0.1:41237
        with start_server("my_model", device="cpu") as server:   # keep the GPU for something else
            ...
    """
    if model_dir is not None and not Path(model_dir, "config.json").exists():
        raise FileNotFoundError(f"model_dir {str(model_dir)!r} has no config.json: save the model there "
                                "with model.save_pretrained(model_dir) and tokenizer.save_pretrained(model_dir)")
    options = options or ServerOptions(**option_values)
    port = free_port()
    model_args = ["--instant-model"] if model_dir is None else [str(model_dir)]
    args = [sys.executable, "-m", "course_utils.serving", *model_args, "--port", str(port)]
    for name, value in options.__dict__.items():
        if value is not None:
            args += [f"--{name.replace('_', '-')}", str(value)]
    if threads is not None:
        args += ["--threads", str(threads)]
    log_path = Path(tempfile.gettempdir()) / f"course_serving_{port}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = ServerProcess(process, port, log_path, options.shutdown_timeout_s)
    if wait:
        server.wait_until_ready(timeout)
    return server


def _cli_type(default):
    """How the command line reads an option with this default (a bool is 'True' or 'False')."""
    if isinstance(default, bool):
        return lambda text: {"true": True, "false": False}[text.lower()]
    return int if default is None else type(default)  # the one None default is a byte count


def main(argv: Sequence[str] | None = None) -> None:
    defaults = ServerOptions()
    parser = argparse.ArgumentParser(description="Serve a saved text classifier on 127.0.0.1.")
    parser.add_argument("model_dir", nargs="?", help="a folder written by save_pretrained")
    parser.add_argument("--instant-model", action="store_true",
                        help="serve a stand-in that answers at once, to measure everything but the model")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=None)
    for name, value in defaults.__dict__.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=_cli_type(value), default=value)
    args = vars(parser.parse_args(argv))
    model_dir, port, threads = args.pop("model_dir"), args.pop("port"), args.pop("threads")
    if args.pop("instant_model") == (model_dir is not None):
        parser.error("give a model folder or --instant-model, not both and not neither")
    serve(model_dir, port, ServerOptions(**args), threads)


if __name__ == "__main__":
    main()

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

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, StrictStr

LOOPBACK = "127.0.0.1"

# A predictor maps a list of texts to one list of class probabilities per text.
Predictor = Callable[[list[str]], list[list[float]]]


@dataclass(frozen=True)
class ServerOptions:
    """The knobs of the server. ``max_batch_size=1`` is one-at-a-time serving (no batching).

    ``max_wait_ms``: how long the batcher holds the first text of a batch while it waits for more.
    ``max_queue``: texts that may wait at once; beyond it a request is answered 503.
    ``max_chars``: longest text accepted (longer ones get 422; the tokenizer truncates anyway).
    ``max_texts``: most texts in one request (more get 422).
    ``max_tokens``: the tokenizer's truncation length.
    ``extra_batch_ms``: added to every model call, to imitate a heavier model (tests of overload).
    ``device``: where the model runs, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, or ``"auto"``
    (CUDA when there is a GPU, else the CPU; see :func:`serving_device`).
    """

    max_batch_size: int = 16
    max_wait_ms: float = 5.0
    max_queue: int = 256
    max_chars: int = 1000
    max_texts: int = 64
    max_tokens: int = 64
    extra_batch_ms: float = 0.0
    device: str = "auto"

    def __post_init__(self):
        for name in ("max_batch_size", "max_queue", "max_chars", "max_texts", "max_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("max_wait_ms", "extra_batch_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 milliseconds, got {getattr(self, name)!r}")
        if not isinstance(self.device, str) or not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", self.device):
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {self.device!r}")


# ----------------------------------------------------------------------------- the model


# On a CPU with a bf16 matrix engine, bf16 pays from a few texts up; a lone text is faster in fp32
# (AMX Xeon, MiniLM, one thread: 1 text 8.9 ms fp32 / 11.7 ms bf16; 8 texts 7.3 / 3.4 ms per text;
# 32 texts 8.6 / 2.7 ms per text).
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
    generator cost without any model (``start_server(None)``)."""
    names = ["negative", "positive"] if num_labels == 2 else [f"class {i}" for i in range(num_labels)]

    def predict(texts: list[str]) -> list[list[float]]:
        return [[1 / num_labels] * num_labels for _ in texts]

    return predict, names


# ----------------------------------------------------------------------------- the batcher


@dataclass
class _Waiting:
    text: str
    answer: asyncio.Future  # resolved with (probabilities, batch size)


@dataclass
class DynamicBatcher:
    """Collects texts from many requests into batches for one ``predict`` call at a time.

    ``submit(texts)`` is awaited by a request; ``run()`` is the background task. Batches are
    opportunistic: a lone text waits at most ``max_wait_ms`` for company, then goes alone.
    """

    predict: Predictor
    options: ServerOptions
    waiting: collections.deque = field(default_factory=collections.deque)
    batch_sizes: collections.Counter = field(default_factory=collections.Counter)

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
        return [await item.answer for item in items]

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
            await self._answer(batch)

    async def _answer(self, batch: list[_Waiting]) -> None:
        try:
            # The model runs in a worker thread: the event loop keeps taking requests meanwhile.
            probs = await asyncio.to_thread(self._predict_slowly, [item.text for item in batch])
        except Exception as error:  # a failing model must fail its requests, not the batcher
            for item in batch:
                if not item.answer.done():
                    item.answer.set_exception(error)
            return
        self.batch_sizes[len(batch)] += 1
        for item, p in zip(batch, probs):
            if not item.answer.done():  # the client may have gone away
                item.answer.set_result((p, len(batch)))

    def _predict_slowly(self, texts: list[str]) -> list[list[float]]:
        if self.options.extra_batch_ms:
            time.sleep(self.options.extra_batch_ms / 1000)
        return self.predict(texts)


# ----------------------------------------------------------------------------- the app


class PredictRequest(BaseModel):
    """The body of POST /predict: ``{"text": "..."}`` or ``{"texts": ["...", ...]}``."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently ignored
    text: StrictStr | None = None  # strict: a number is refused, not turned into "3"
    texts: list[StrictStr] | None = None


def create_app(predict: Predictor, label_names: Sequence[str], options: ServerOptions | None = None):
    """The FastAPI application around ``predict``; see the module docstring for the routes."""
    options = options or ServerOptions()

    @contextlib.asynccontextmanager
    async def lifespan(app):
        app.state.batcher = DynamicBatcher(predict, options)
        task = asyncio.create_task(app.state.batcher.run())
        yield
        task.cancel()

    app = FastAPI(title="SST-2 sentiment classifier", lifespan=lifespan)

    def checked_texts(request: PredictRequest) -> list[str]:
        if (request.text is None) == (request.texts is None):
            raise HTTPException(422, "send exactly one of 'text' (a string) or 'texts' (a list of strings)")
        texts = [request.text] if request.text is not None else request.texts
        if not texts:
            raise HTTPException(422, "'texts' is empty: send at least one text")
        if len(texts) > options.max_texts:
            raise HTTPException(422, f"{len(texts)} texts in one request; the limit is {options.max_texts}")
        for i, text in enumerate(texts):
            if not text.strip():
                raise HTTPException(422, f"text {i} is empty or only whitespace")
            if len(text) > options.max_chars:
                raise HTTPException(422, f"text {i} has {len(text)} characters; the limit is {options.max_chars}")
        return texts

    @app.post("/predict")
    async def predict_route(request: PredictRequest):
        texts = checked_texts(request)
        batcher: DynamicBatcher = app.state.batcher
        if not batcher.has_room_for(len(texts)):
            raise HTTPException(503, "server busy: the queue is full, retry later",
                                headers={"Retry-After": "1"})
        predictions = []
        for probabilities, batch_size in await batcher.submit(texts):
            label = max(range(len(probabilities)), key=probabilities.__getitem__)  # arg-max
            predictions.append({"label": label, "label_name": label_names[label],
                                "probabilities": probabilities, "batch_size": batch_size})
        return {"predictions": predictions}

    @app.get("/health")
    async def health():
        batcher: DynamicBatcher = app.state.batcher
        return {"status": "ok", "queued": len(batcher.waiting), "batches": sum(batcher.batch_sizes.values()),
                "batch_sizes": {str(k): v for k, v in sorted(batcher.batch_sizes.items())},
                "options": options.__dict__}

    return app


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
                access_log=False)


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

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self, timeout: float = 10.0) -> int:
        """Ask the server to shut down (SIGTERM), kill it if it lingers; returns its exit code."""
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
        args += [f"--{name.replace('_', '-')}", str(value)]
    if threads is not None:
        args += ["--threads", str(threads)]
    log_path = Path(tempfile.gettempdir()) / f"course_serving_{port}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = ServerProcess(process, port, log_path)
    if wait:
        server.wait_until_ready(timeout)
    return server


def main(argv: Sequence[str] | None = None) -> None:
    defaults = ServerOptions()
    parser = argparse.ArgumentParser(description="Serve a saved text classifier on 127.0.0.1.")
    parser.add_argument("model_dir", nargs="?", help="a folder written by save_pretrained")
    parser.add_argument("--instant-model", action="store_true",
                        help="serve a stand-in that answers at once, to measure everything but the model")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=None)
    for name, value in defaults.__dict__.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = vars(parser.parse_args(argv))
    model_dir, port, threads = args.pop("model_dir"), args.pop("port"), args.pop("threads")
    if args.pop("instant_model") == (model_dir is not None):
        parser.error("give a model folder or --instant-model, not both and not neither")
    serve(model_dir, port, ServerOptions(**args), threads)


if __name__ == "__main__":
    main()

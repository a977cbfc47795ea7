"""The three run sizes of every notebook: ``smoke`` (CI), ``cpu`` (a laptop), ``gpu`` (Colab).

One more for machines we borrow: ``COURSE_PROFILE=gpu-check`` (``make gpu-check``) runs a chapter at
the ``smoke`` profile's sizes, with its packaged models standing in for the Hub's, on a CUDA GPU:
every code path that only a GPU takes (CUDA placement, fp16/bf16 autocast, GPU memory and timing
branches) in a few minutes, recorded in ``book/results.json`` under its own name.

A notebook never branches on where it runs; it reads sizes from the profile::

    cfg = course_utils.setup()
    train = train[: cfg.train_size]
    hidden = cfg.choose(smoke=16, cpu=150, gpu=300)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

PROFILE_NAMES = ("smoke", "cpu", "gpu")
# Check runs: (the profile whose sizes and models they take, what they are). Their ``name`` is that
# profile's, so a chapter sizes itself and skips its convergence targets as it does there; ``label``
# says what ran, in the summary line and in book/results.json.
CHECK_PROFILES = {
    "gpu-check": ("smoke", "make gpu-check: smoke sizes on a CUDA GPU, packaged models for the Hub's; "
                           "every gpu-only code path, no convergence target"),
}


@dataclass(frozen=True)
class Profile:
    """Sizes shared by all chapters for one profile.

    ``None`` for a size means "all of it".
    """

    name: str
    train_size: int | None
    val_size: int | None
    epochs: int
    batch_size: int
    max_len: int
    time_budget_s: float
    encoder: str  # which pre-trained encoder chapter 7 asks for
    description: str = ""
    extras: dict = field(default_factory=dict)
    label: str = ""  # a check run's own name (gpu-check); empty for the three profiles

    @property
    def run_name(self) -> str:
        """What ran: the check's label (``gpu-check``), else the profile's name."""
        return self.label or self.name

    @property
    def needs_cuda(self) -> bool:
        return self.label == "gpu-check"

    def choose(self, *, smoke, cpu, gpu):
        """Pick a chapter-specific value for this profile: ``cfg.choose(smoke=2, cpu=20, gpu=50)``."""
        return {"smoke": smoke, "cpu": cpu, "gpu": gpu}[self.name]


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        train_size=256,
        val_size=128,
        epochs=1,
        batch_size=16,
        max_len=32,
        time_budget_s=45,
        encoder="packaged",
        description="CI: a few hundred examples, a few steps; every code path still runs",
    ),
    "cpu": Profile(
        name="cpu",
        train_size=None,
        val_size=None,
        epochs=3,
        batch_size=32,
        max_len=64,
        time_budget_s=600,
        encoder="packaged",
        description="a 2-core laptop: full SST-2 or large subsets, packaged small models",
    ),
    "gpu": Profile(
        name="gpu",
        train_size=None,
        val_size=None,
        epochs=3,
        batch_size=32,
        max_len=128,
        time_budget_s=900,
        encoder="bert-base-uncased",
        description="Colab T4 and up: full data, bert-base-uncased, mixed precision",
    ),
}


def get_profile(name: str | None = None, *, cuda_available: bool | None = None) -> Profile:
    """Return the profile named ``name``, else ``$COURSE_PROFILE``, else ``gpu`` if CUDA works, else ``cpu``."""
    if name is None:
        name = os.environ.get("COURSE_PROFILE", "").strip().lower() or None
    if name is None:
        if cuda_available is None:
            import torch

            cuda_available = torch.cuda.is_available()
        name = "gpu" if cuda_available else "cpu"
    if name in CHECK_PROFILES:
        sizes, description = CHECK_PROFILES[name]
        return replace(PROFILES[sizes], label=name, description=description)
    if name not in PROFILES:
        raise ValueError(
            f"COURSE_PROFILE must be one of {', '.join(PROFILE_NAMES + tuple(CHECK_PROFILES))}, got {name!r}. "
            "Unset it to let course_utils choose (gpu when CUDA is available, else cpu)."
        )
    return PROFILES[name]

"""Companion package of *Large Models from First Principles*.

One import and one call at the top of every notebook::

    import course_utils
    cfg = course_utils.setup()     # profile, device, precision, seeds; prints one summary line
    cfg.train_size, cfg.epochs     # sizes for this profile (smoke / cpu / gpu)
"""

from __future__ import annotations

import os
import random
import sys
import warnings
from dataclasses import dataclass

__version__ = "0.1.0"

from .device import AmpChoice, amp_dtype, describe_hardware, memory_report, pick_device  # noqa: E402
from .profiles import Profile, get_profile  # noqa: E402
from .results import record_metric  # noqa: E402
from .train import History, evaluate, fit  # noqa: E402

__all__ = [
    "Config", "History", "Profile", "AmpChoice", "setup", "fit", "evaluate", "record_metric",
    "get_profile", "pick_device", "amp_dtype", "memory_report", "describe_hardware", "seed_everything", "doctor",
    "keep_checkpoints_on_drive",
]

DRIVE_CHECKPOINTS = "/content/drive/MyDrive/course-checkpoints"


@dataclass(frozen=True)
class Config:
    """What ``setup()`` decided. Profile sizes read straight through: ``cfg.train_size``."""

    profile: Profile
    device: object  # torch.device
    amp: AmpChoice
    seed: int
    on_colab: bool
    hardware: str

    def __getattr__(self, name):
        # Only called for names the dataclass lacks: delegate to the profile.
        return getattr(object.__getattribute__(self, "profile"), name)

    def checkpoint_dir(self, name: str):
        """Where a run called ``name`` keeps its checkpoint: ``$COURSE_CHECKPOINTS`` (e.g. a folder on
        Google Drive) or ``./checkpoints``, then the profile, then ``name``. Re-running the cell resumes."""
        from pathlib import Path

        base = Path(os.environ.get("COURSE_CHECKPOINTS") or "checkpoints").expanduser()
        return base / self.profile.name / name

    def summary(self) -> str:
        import torch

        where = "Colab" if self.on_colab else "local"
        dtype = str(self.amp.dtype).replace("torch.", "")
        return (f"course_utils {__version__} | profile {self.profile.run_name} | {self.device.type}: {self.hardware} | "
                f"compute dtype {dtype} ({self.amp.reason}) | torch {torch.__version__} | {where}")


def doctor() -> bool:
    """Print the environment and asset report of ``python -m course_utils doctor``; True if all resolve."""
    from .__main__ import doctor as report

    return report()


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and all GPUs)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def on_colab() -> bool:
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def keep_checkpoints_on_drive(folder: str = DRIVE_CHECKPOINTS) -> str:
    """On Colab: mount Google Drive and keep every run's checkpoints in ``folder`` on it.

    A Colab runtime's own disk is erased when it disconnects for more than a few minutes, and the
    checkpoints with it; on Drive they survive, so re-running the training cell in a new runtime
    resumes. One line, before ``setup()``: ``course_utils.keep_checkpoints_on_drive()``.
    It sets ``COURSE_CHECKPOINTS``, which :meth:`Config.checkpoint_dir` reads.
    """
    if not on_colab():
        raise RuntimeError("keep_checkpoints_on_drive() mounts Google Drive, which only Colab offers; "
                           "elsewhere set COURSE_CHECKPOINTS to any folder that outlives the kernel")
    from google.colab import drive

    drive.mount("/content/drive")
    os.makedirs(folder, exist_ok=True)
    os.environ["COURSE_CHECKPOINTS"] = folder
    print(f"Checkpoints now go to {folder} on Google Drive: a disconnect no longer loses a run.")
    return folder


def replaced_in_memory() -> list[str]:
    """``"name in memory -> on disk"`` for every imported package whose installed version is no longer
    the one in memory: pip upgraded it after it was imported (on Colab, the setup cell's install of a
    package that Colab imports at start-up). Python keeps running the old code until a restart.
    """
    from importlib.metadata import PackageNotFoundError, packages_distributions, version

    from packaging.version import InvalidVersion, Version

    found = []
    owners = packages_distributions()
    started = _process_start_time()
    for name, module in list(sys.modules.items()):
        # The module's own attribute only: a module-level __getattr__ may warn or import.
        loaded = getattr(module, "__dict__", {}).get("__version__")
        if "." in name or not isinstance(loaded, str):
            continue
        for dist in owners.get(name, [])[:1]:
            try:
                on_disk = version(dist)
                differs = Version(on_disk) != Version(loaded)
            except (PackageNotFoundError, InvalidVersion):
                continue
            # A module whose __version__ is written differently from its package's (opencv: 4.12.0
            # against 4.12.0.88) was not replaced: its file is older than this process.
            path = getattr(module, "__file__", None)
            rewritten = started is None or not path or not os.path.exists(path) or os.path.getmtime(path) > started
            if differs and rewritten:
                found.append(f"{dist} {loaded} -> {on_disk}")
    return sorted(found)


def _process_start_time() -> float | None:
    """When this Python process started (seconds since the epoch), or None where it cannot be told."""
    try:
        import psutil  # a dependency of peft, so installed wherever course_utils is

        return psutil.Process().create_time()
    except Exception:  # any failure: compare versions only
        return None


def check_version(written_for: str | None) -> bool:
    """Warn (and return False) when the notebook was written for another course_utils version."""
    if written_for is None or written_for == __version__:
        return True
    warnings.warn(f"this notebook was written for course_utils {written_for}, but {__version__} is installed: "
                  "its cells may call what this version lacks or changed. Open the notebook from the book's "
                  "Colab link (it installs the matching package), or install the version it names.",
                  stacklevel=3)
    return False


def setup(profile: str | None = None, *, seed: int = 0, device: str | None = None, quiet: bool = False,
          written_for: str | None = None) -> Config:
    """Pick the profile and device, seed everything, print one summary line, return the :class:`Config`.

    ``profile`` defaults to ``$COURSE_PROFILE``, else ``gpu`` when CUDA is available, else ``cpu``.
    ``written_for``: the course_utils version the notebook was written for (its setup cell passes
    it); a warning says so when the installed package is another one. A package that pip replaced
    after the kernel had imported it (Colab imports some at start-up) is named, with a request to
    restart the runtime.
    """
    from .results import start_sink

    check_version(written_for)
    replaced = replaced_in_memory()
    if replaced:
        print("pip replaced packages this runtime had already imported (" + ", ".join(replaced) + "): "
              "restart the runtime (Colab: Runtime > Restart session), then run this cell again.")

    dev = pick_device(device)
    cfg = Config(
        profile=get_profile(profile, cuda_available=dev.type == "cuda"),
        device=dev,
        amp=amp_dtype(dev),
        seed=seed,
        on_colab=on_colab(),
        hardware=describe_hardware(dev),
    )
    if cfg.profile.needs_cuda and dev.type != "cuda":
        raise RuntimeError(f"COURSE_PROFILE={cfg.profile.run_name} checks the code paths only a GPU takes, but "
                           f"the device is {dev.type}: run it on a machine with a CUDA GPU (make gpu-check), "
                           "or unset COURSE_PROFILE")
    seed_everything(seed)
    start_sink()
    if not quiet:
        print(cfg.summary())
        if cfg.on_colab and not os.environ.get("COURSE_CHECKPOINTS"):
            print("Checkpoints are on this runtime's disk, which a disconnect erases. To resume after one, "
                  "run course_utils.keep_checkpoints_on_drive() first.")
    return cfg

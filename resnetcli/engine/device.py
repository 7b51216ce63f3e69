"""Which device to run on: one rule for train, test and predict."""

from __future__ import annotations

import torch

from resnetcli.errors import UsageError


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def pick_device(name: str = "auto") -> torch.device:
    """auto: cuda, then mps, then cpu; an explicit device that is not there is one UsageError line."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu"
    if name not in ("cpu", "cuda", "mps") and not name.startswith("cuda:"):
        raise UsageError(f"--device must be auto, cpu, cuda or mps, not '{name}'")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: no CUDA device is available (use --device auto or cpu)")
    if name == "mps" and not _mps_available():
        raise UsageError("--device mps: Apple's MPS backend is not available here (use --device auto or cpu)")
    return torch.device(name)

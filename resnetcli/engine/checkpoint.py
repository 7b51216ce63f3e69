"""Checkpoints: written atomically, read with torch.load(weights_only=True).

A checkpoint is a dict of plain types and tensors only, so the safe loader reads it and a file that
smuggles in any other pickled object is refused instead of executed. Keys (FORMAT = 1):

    format        "resnetcli-checkpoint"     version       1
    epoch         completed epochs (int)     global_step   optimizer steps taken (int)
    model         state_dict (unwrapped from DDP / torch.compile)
    optimizer     optimizer.state_dict()     scheduler     scheduler.state_dict() or None
    scaler        GradScaler.state_dict() or None
    best_metric   best validation top-1 so far (float or None); best_epoch (int or None)
    rng           {"python": list, "numpy": list, "torch": uint8 tensor, "cuda": [uint8 tensors]}
    classes       [class name, ...]          normalization {"mean": [..], "std": [..]}
    arch          {"name": str, "num_classes": int, "in_channels": int, "options": {...}}
    data          {"source": str, "image_size": int, "channels": int, ...}
    config        the resolved training config (plain dict)
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from resnetcli.errors import CheckpointError
from resnetcli.io import atomic_path

FORMAT = "resnetcli-checkpoint"
VERSION = 1
REQUIRED_KEYS = ("format", "version", "epoch", "model", "classes", "arch")


def class_changes(old: Sequence[str], new: Sequence[str], old_label: str, new_label: str) -> list[str]:
    """What two class lists do not share, e.g. ["only in the checkpoint: a, b", "only in the data: c"]."""
    changes = []
    for label, ours, theirs in ((old_label, old, new), (new_label, new, old)):
        extra = [c for c in ours if c not in theirs]
        if extra:
            shown = ", ".join(extra[:6]) + (f" and {len(extra) - 6} more" if len(extra) > 6 else "")
            changes.append(f"{label}: {shown}")
    return changes


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write `state` to `path` atomically (temporary file, fsync, rename)."""
    path = Path(path)
    state = {"format": FORMAT, "version": VERSION, **state}
    try:
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
    except OSError as exc:
        raise CheckpointError(
            f"could not write checkpoint {path}: {exc.strerror or exc}; the previous checkpoint is intact"
        ) from exc
    # a process killed in the middle of a save leaves its temporary file behind: the next save clears them
    for stale in path.parent.glob(".*.pt.*.tmp"):
        stale.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a resnetcli checkpoint safely; any problem becomes one CheckpointError line."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if not zipfile.is_zipfile(path):
        # torch.save writes a zip archive; anything else (cut short, empty, random bytes) is damaged. Checked
        # first because torch reports random bytes as a refused pickle, with advice to load it unsafely.
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt and cannot be read (not a complete torch archive); "
            "use another checkpoint or retrain"
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refuses anything but tensors and plain containers: never execute it. Keep only the
        # reason from torch's message (the rest advises weights_only=False, and holds terminal escapes).
        found = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\. Please use|\n|$)", str(exc))
        reason = re.sub(r"\x1b\[[0-9;]*m", "", found.group(1)).strip() if found else "unsupported content"
        raise CheckpointError(
            f"checkpoint {path} holds objects other than tensors and plain types and was refused "
            f"(weights_only loading: {reason})"
        ) from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt and cannot be read ({type(exc).__name__}); "
            "use another checkpoint or retrain"
        ) from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a resnetcli checkpoint")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}")
    if state["version"] > VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {state['version']}; this resnetcli reads up to {VERSION}"
        )
    return state

"""`resnetcli export`: a checkpoint to files other runtimes load, each checked against PyTorch and carded.

    card.py      the JSON model card beside each file (and inside it, where the format has metadata)
    formats.py   one writer per format, each returning the runtime's forward for the check
    runtime.py   `predict --model model.onnx`: onnxruntime with the card's preprocessing

Every file is written to a temporary name, run back with its runtime on real images (the test split of the
data the checkpoint was trained on, else its validation split, else generated images), compared with
PyTorch's logits, and renamed into place only when the largest difference is within the tolerance.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from resnetcli.errors import CheckpointError, DataError, ResnetCliError, UsageError

FORMATS = ("onnx", "torchscript", "pt2", "safetensors")
#: the largest |exported - PyTorch| logit difference accepted
TOLERANCE = 1e-4
#: images the check runs on
CHECK_IMAGES = 8


@dataclass
class Exported:
    """One written file, its card, and the check it passed."""

    format: str
    path: Path
    card_path: Path
    max_abs_diff: float
    images: str

    def line(self, tolerance: float) -> str:
        from resnetcli.export.formats import RUNTIMES

        return (f"{self.format}: wrote {self.path} (card {self.card_path.name}); {RUNTIMES[self.format]} vs "
                f"PyTorch on {self.images}: max abs diff {self.max_abs_diff:.2e} (tolerance {tolerance:.0e})")


def parse_formats(spec: str | Sequence[str]) -> list[str]:
    """'onnx', 'onnx,safetensors' or 'all'."""
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if names == ["all"]:
        return list(FORMATS)
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        raise UsageError(f"--format {','.join(unknown) or spec!r}: choose from {', '.join(FORMATS)} or all")
    return [f for f in FORMATS if f in names]


def export_checkpoint(
    run: str | os.PathLike[str] | None = None,
    *,
    formats: str | Sequence[str] = "onnx",
    output: str | os.PathLike[str] | None = None,
    which: str = "last",
    runs_dir: str | os.PathLike[str] = "runs",
    tolerance: float = TOLERANCE,
    console: Any = None,
) -> list[Exported]:
    """Export a checkpoint (a run folder, a .pt file, or the latest run) to `formats` under `output`."""
    from resnetcli.console import escape, out
    from resnetcli.export.card import build_card, card_path
    from resnetcli.export.formats import FILENAMES, WRITERS, check_installed
    from resnetcli.inference.restore import eval_pipeline, restore
    from resnetcli.io import atomic_path, write_json
    from resnetcli.runs import RunLayout, find_checkpoint, run_dir_of

    console = console or out
    chosen = parse_formats(formats)
    if not (math.isfinite(tolerance) and tolerance > 0):  # inf would keep any file, however wrong
        raise UsageError(f"--tolerance must be a positive finite number, not {tolerance}")
    check_installed(chosen)
    path = find_checkpoint(run, which, runs_dir)
    restored = restore(path, "cpu")  # refuses unknown architectures and non-finite weights in one line
    pipeline = eval_pipeline(restored)
    images, described = check_batch(restored, pipeline)
    model = restored.model.float().eval()
    with torch.inference_mode():
        expected = model(images).float().numpy()
    out_dir = Path(output) if output is not None else RunLayout(run_dir_of(path)).export
    base = build_card(restored, pipeline)
    console.print(escape(f"exporting {path} ({restored.arch}, {len(restored.classes)} classes, "
                         f"{restored.image_size}px, {restored.channels} channel(s)) to {out_dir}/"))
    done: list[Exported] = []
    for fmt in chosen:
        target = out_dir / FILENAMES[fmt]
        card = {**base, "file": {"name": target.name, "format": fmt}}
        with atomic_path(target) as tmp:
            try:
                forward = WRITERS[fmt](model, images[:2], tmp, card)
            except ResnetCliError:
                raise
            except Exception as exc:  # an exporter refusing some layer of a plugin's network: one line
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise CheckpointError(f"{restored.arch} from {path} cannot be exported to {fmt}: {first}") from None
            diff = max(_max_diff(forward(images), expected), _max_diff(forward(images[:1]), expected[:1]))
            if not diff <= tolerance:
                raise CheckpointError(
                    f"{fmt} export of {path} disagrees with PyTorch by {diff:.2e} (more than {tolerance:.0e}) "
                    f"on {described}; nothing was written"
                )
            card["verification"] = {"runtime": _runtime_name(fmt), "images": described,
                                    "max_abs_diff": diff, "tolerance": tolerance}
            card["file"]["sha256"] = _sha256(tmp)
            # the card before the file's rename: a card that cannot be written keeps the old file and old card
            write_json(card_path(target), card)
        done.append(Exported(fmt, target, card_path(target), diff, described))
        console.print(escape(done[-1].line(tolerance)))
    return done


def check_batch(restored: Any, pipeline: Any) -> tuple[torch.Tensor, str]:
    """Up to CHECK_IMAGES images of the checkpoint's own data (test split, else val, else train), else generated."""
    from resnetcli.inference.data import EvalDataset, open_data

    try:
        source = open_data(restored, None)
        split = source.pick_split(None, ("test", "val", "train"), "--split")
        if split is None:
            raise DataError("no split")
        data = source.split(split)
        if len(data) < 2:  # the exporter traces a batch of 2, to keep the batch dimension free
            raise DataError("too few images")
        dataset = EvalDataset(data, pipeline, restored.channels, list(range(len(source.classes))))
        count = min(CHECK_IMAGES, len(dataset))
        batch = torch.stack([dataset[i][0] for i in range(count)])
        return batch.float(), f"{count} {split} images of {restored.data_spec}"
    except (DataError, UsageError, CheckpointError, OSError):
        pass  # the data is not on this machine: generated images still exercise every layer
    rng = np.random.default_rng(0)
    side = restored.image_size
    raw = rng.integers(0, 256, size=(CHECK_IMAGES, side, side, restored.channels), dtype=np.uint8)
    batch = torch.stack([pipeline(image=img)["image"] for img in raw])
    return batch.float(), f"{CHECK_IMAGES} generated images (the training data is not available here)"


def _max_diff(got: np.ndarray, expected: np.ndarray) -> float:
    if got.shape != expected.shape:
        return float("inf")
    return float(np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64))))


def _runtime_name(fmt: str) -> str:
    from resnetcli.export.formats import RUNTIMES

    return RUNTIMES[fmt]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

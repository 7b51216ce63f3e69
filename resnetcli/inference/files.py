"""Image files for `predict`: found in the paths given, decoded and resized as the training data was.

Each image is decoded like the training data (resnetcli.data.images: EXIF orientation, alpha on white,
the checkpoint's channel count), its smaller side resized with Pillow's antialiased bicubic filter as
`resnetcli preprocess` does, then put through the checkpoint's evaluation pipeline (center crop to the
stored image size, the stored normalization).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset


def collect_images(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[str]]:
    """Files named directly, and image files found by recursing into folders; plus what was not found."""
    from resnetcli.data.images import is_image_name

    files: list[Path] = []
    problems: list[str] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            named = sorted(p for p in path.rglob("*") if is_image_name(p.name) and not p.is_dir())
            found = [p for p in named if p.is_file()]
            # a dangling link or a FIFO (reading one would wait forever) is named, never silently dropped
            problems += [f"{p}: {_not_a_file(p)}; skipped" for p in named if not p.is_file()]
            if not named:
                problems.append(f"{path}: folder holds no image files")
        elif path.is_file():
            found = [path]  # named explicitly: try it whatever its suffix
        else:
            problems.append(f"{path}: {_not_a_file(path)}")
            found = []
        for p in found:
            if p not in seen:
                seen.add(p)
                files.append(p)
    return files, problems


def _not_a_file(path: Path) -> str:
    if path.is_symlink() and not path.exists():
        return "a link to nothing (dangling)"
    if path.exists():
        return "not a regular file (a FIFO, socket or device)"
    return "no such file or folder"


def pre_resize_side(pipeline: Any, image_size: int) -> int:
    """The side the pipeline's first resize brings the smaller side to (image_size when it has none)."""
    for transform in getattr(pipeline, "transforms", []) or []:
        name = type(transform).__name__
        if name == "SmallestMaxSize":
            size = getattr(transform, "max_size", None)
            if isinstance(size, int):
                return size
            if isinstance(size, Sequence) and size:
                return int(size[0])
        if name in ("CenterCrop", "Normalize", "ToTensorV2"):
            break
    return image_size


def load_image(path: Path, *, channels: int, side: int) -> np.ndarray:
    """Decode, orient and resize (smaller side to `side`, Pillow bicubic) one file; raises BadImage."""
    from resnetcli.data.images import decode_min_size, open_image, resize

    img = open_image(path, channels=channels, min_size=decode_min_size(side))
    arr = np.asarray(resize(img, side))
    return arr[:, :, None] if arr.ndim == 2 else arr


class ImageFiles(Dataset):
    """Files through the evaluation pipeline; item i is (image, i), or None when file i cannot be read.

    `collate_readable` drops the None items, so one unreadable file costs a warning, not the batch.
    """

    def __init__(self, files: Sequence[Path], transform: Callable[..., dict[str, Any]], channels: int,
                 side: int, on_bad: Callable[[Path, Exception], None]) -> None:
        self.files = list(files)
        self.transform = transform
        self.channels = channels
        self.side = side
        self.on_bad = on_bad

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int] | None:
        from resnetcli.data.images import BadImage

        try:
            arr = load_image(self.files[i], channels=self.channels, side=self.side)
        except BadImage as exc:
            self.on_bad(self.files[i], exc)
            return None
        return self.transform(image=arr)["image"], i


def collate_readable(items: list[tuple[torch.Tensor, int] | None]) -> tuple[torch.Tensor, torch.Tensor]:
    """default_collate over the items that were read (an all-unreadable batch is empty)."""
    kept = [item for item in items if item is not None]
    if not kept:
        return torch.empty(0), torch.empty(0, dtype=torch.int64)
    return torch.stack([image for image, _ in kept]), torch.tensor([i for _, i in kept], dtype=torch.int64)

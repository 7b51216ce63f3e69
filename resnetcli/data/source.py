"""What every dataset is made of: a Source (classes, statistics, named Splits) and the kinds of Split.

A Split is `len(split)` images, `load(i) -> (HxWxC uint8, label)` and `labels[i]`; a Source also says
which of its splits were held out of another one, so every command can say where its images come from.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from resnetcli.errors import DataError, UsageError

#: the order splits are listed in; any other split name follows these
SPLIT_ORDER = ("train", "val", "test")

#: normalization for variable-size photo folders whose statistics were not measured (torchvision's)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: the std (0-1 scale) measured for a channel that has one value in every training image: one grey level,
#: so normalization maps that value to 0 instead of dividing by zero
MIN_STD = 1.0 / 255.0


class Split:
    """One split of a source: `len(split)` images, `load(i) -> (HxWxC uint8, label)`, `labels[i]`."""

    labels: list[int]

    def __len__(self) -> int:
        return len(self.labels)

    def load(self, i: int) -> tuple[np.ndarray, int]:
        raise NotImplementedError

    def ident(self, i: int) -> str:
        """Where image i comes from: a path relative to the source root, or 'index:<i>'."""
        return f"index:{i}"

    def path(self, i: int) -> Path | None:
        """The file image i is decoded from, or None for in-memory datasets."""
        return None


class ArraySplit(Split):
    """Images held in memory as one (N, H, W, C) uint8 array: load() is an index, nothing more."""

    def __init__(self, images: np.ndarray, labels: Sequence[int]) -> None:
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4 or images.dtype != np.uint8:
            raise ValueError(f"images must be (N, H, W, C) uint8, got {images.shape} {images.dtype}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = [int(v) for v in labels]

    def load(self, i: int) -> tuple[np.ndarray, int]:
        return self.images[i], self.labels[i]


class FileSplit(Split):
    """Images decoded from files under `root` on each load (see resnetcli.data.images).

    decode_size: large JPEGs decode at a reduced scale (1/2 .. 1/8) whose smaller side stays at or
    above this many pixels, for training on raw folders of big photos without paying for full decodes.
    """

    def __init__(self, root: str | os.PathLike[str], paths: Sequence[str], labels: Sequence[int], *,
                 channels: int = 3, decode_size: int | None = None) -> None:
        if len(paths) != len(labels):
            raise ValueError(f"{len(paths)} paths but {len(labels)} labels")
        self.root = Path(root)
        self.paths = list(paths)
        self.labels = [int(v) for v in labels]
        self.channels = channels
        self.decode_size = decode_size

    def path(self, i: int) -> Path:
        return self.root / self.paths[i]

    def ident(self, i: int) -> str:
        return self.paths[i]

    def load(self, i: int) -> tuple[np.ndarray, int]:
        from resnetcli.data.images import BadImage, load_array

        try:
            return load_array(self.path(i), channels=self.channels, min_side=self.decode_size), self.labels[i]
        except BadImage as exc:
            raise DataError(
                f"{self.path(i)}: {exc}; remove the file, or run `resnetcli preprocess` which skips such files"
            ) from None


class SubsetSplit(Split):
    """Some of another split's images, by index (for example a validation set held out of `train`)."""

    def __init__(self, base: Split, indices: Sequence[int]) -> None:
        self.base = base
        self.indices = [int(i) for i in indices]
        self.labels = [base.labels[i] for i in self.indices]

    def load(self, i: int) -> tuple[np.ndarray, int]:
        return self.base.load(self.indices[i])

    def ident(self, i: int) -> str:
        return self.base.ident(self.indices[i])

    def path(self, i: int) -> Path | None:
        return self.base.path(self.indices[i])


@dataclass(frozen=True)
class HeldOut:
    """A split drawn out of another one (see resnetcli.data.holdout): its name, its parent, how many, why."""

    split: str
    parent: str
    count: int
    why: str


class Source:
    """A dataset: class names, normalization statistics, and its splits by name.

    mean/std are per channel on the 0-1 scale. image_size is the side the images come in, which caps the
    default training size: the native square size (32 for CIFAR, 28 for MNIST), the smaller side a
    processed folder was written at (`preprocess --size N`), or None when images vary in size.
    held_out: the splits drawn out of another split (resnetcli.data.holdout), so a command can say how
    many images were set apart and why, and give them back when nothing validates on them; origins:
    where each other split is read from. `describe(name)` puts both in words.
    """

    def __init__(
        self,
        *,
        name: str,
        root: str | os.PathLike[str],
        classes: Sequence[str],
        splits: dict[str, Split],
        channels: int = 3,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        image_size: int | None = None,
        notes: dict[str, Any] | None = None,
        held_out: Sequence[HeldOut] = (),
        origins: dict[str, str] | None = None,
    ) -> None:
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        if len(classes) < 1:
            raise DataError(f"dataset '{name}' at {root} has no classes")
        if not splits:
            raise DataError(f"dataset '{name}' at {root} has no splits")
        mean = tuple(float(v) for v in (mean if mean is not None else _default(IMAGENET_MEAN, channels)))
        std = tuple(float(v) for v in (std if std is not None else _default(IMAGENET_STD, channels)))
        if len(mean) != channels or len(std) != channels:
            raise ValueError(f"mean/std need {channels} values, got {mean} / {std}")
        self.name = name
        self.root = Path(root)
        self.classes = list(classes)
        self.channels = channels
        self.mean = mean
        self.std = std
        self.image_size = image_size
        #: what a builder wants to tell preprocess's report (for example files it skipped while scanning)
        self.notes: dict[str, Any] = notes or {}
        self._splits = dict(splits)
        #: split name -> how it was held out of another split
        self.held_out: dict[str, HeldOut] = {h.split: h for h in held_out}
        #: held-out splits give_back returned to the split they came from (their images are trained on)
        self.given_back: list[str] = []
        #: split name -> where its images are read from ('train/', 'test.csv', 'test_batch'), for messages
        self.origins: dict[str, str] = dict(origins or {})

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def splits(self) -> list[str]:
        known = [s for s in SPLIT_ORDER if s in self._splits]
        return known + sorted(s for s in self._splits if s not in SPLIT_ORDER)

    def pick_split(self, choice: str | None, prefer: Sequence[str], flag: str) -> str | None:
        """`choice` when it names a split, else the first of `prefer` this data has (None when none).

        The one rule for every command; only the preference differs (training validates on val before
        test, `test` scores test before val). A name that is not a split is one line naming `flag`.
        """
        splits = self.splits()
        if choice is None:
            return next((name for name in prefer if name in splits), None)
        if choice not in splits:
            raise UsageError(f"{flag} '{choice}' is not a split of the data at {self.root}; "
                             f"it has: {', '.join(splits)}")
        return choice

    def split(self, name: str) -> Split:
        if name not in self._splits:
            raise UsageError(
                f"dataset '{self.name}' at {self.root} has no '{name}' split; it has: {', '.join(self.splits())}"
            )
        return self._splits[name]

    def counts(self) -> dict[str, int]:
        """Images per split, in split order: {'train': 48000, 'val': 12000, 'test': 10000}."""
        return {name: len(self._splits[name]) for name in self.splits()}

    def describe(self, name: str, *notes: str) -> str:
        """How many images split `name` has and where they come from, for a command's first line.

        '48000 train (train/)', '12000 val (held out of train: val_split=0.2 and ... has no val/ folder,
        seed 0)', '10000 test (test/; unused)' with the note 'unused'.
        """
        held = self.held_out.get(name)
        where = f"held out of {held.parent}: {held.why}" if held else self.origins.get(name)
        said = "; ".join(n for n in (where, *notes) if n)
        count = f"{len(self.split(name))} {name}"
        return f"{count} ({said})" if said else count

    def give_back(self, used: str | None) -> Source:
        """This source with every held-out validation split except `used` returned to its parent.

        Nothing may be held out that nothing validates on: with `--val-split none` (used=None) or
        validation on another split, a held-out `val` goes back into `train`. A held-out `test` split is
        never given back, so `resnetcli test` never scores images that were trained on.
        """
        back = [h for h in self.held_out.values() if h.split != used and h.split != "test"]
        if not back:
            return self
        splits = dict(self._splits)
        for h in back:
            parent, part = splits[h.parent], splits.pop(h.split)
            splits[h.parent] = _merge(parent, part)
        other = copy.copy(self)
        other._splits = splits
        other.held_out = {k: h for k, h in self.held_out.items() if h not in back}
        other.given_back = [*self.given_back, *(h.split for h in back)]
        return other

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={len(self._splits[s])}" for s in self.splits())
        return f"Source({self.name!r}, root={str(self.root)!r}, classes={self.num_classes}, {sizes})"


def _default(values: Sequence[float], channels: int) -> tuple[float, ...]:
    return tuple(values) if channels == 3 else (sum(values) / len(values),)




def _merge(parent: Split, part: Split) -> Split:
    """parent + part, which were both drawn from one split (a held-out split going back where it came from)."""
    if not (isinstance(parent, SubsetSplit) and isinstance(part, SubsetSplit) and parent.base is part.base):
        raise ValueError("only splits drawn from the same split can be merged")
    indices = sorted(parent.indices + part.indices)
    if indices == list(range(len(parent.base))):
        return parent.base
    return SubsetSplit(parent.base, indices)

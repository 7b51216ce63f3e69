"""Datasets as `train`, `test` and `preprocess` see them: a Source with named Splits of (image, label).

A Source is what a `resnetcli.datasets` entry point builds: `build(root=None, **options) -> Source`.
`open_source(spec)` takes a registered name (`cifar10`, `fashion-mnist`, ...) or a path and picks the
right builder. Images come out as HxWxC uint8 numpy arrays (C = source.channels); augmentation and
tensors are the training side's business.

The built-in builders live in resnetcli/data/sources.py; image decoding in resnetcli/data/images.py.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from resnetcli.errors import DataError, UsageError

#: the order splits are listed in; any other split name follows these
SPLIT_ORDER = ("train", "val", "test")

#: normalization for variable-size photo folders whose statistics were not measured (torchvision's)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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


class Source:
    """A dataset: class names, normalization statistics, and its splits by name.

    mean/std are per channel on the 0-1 scale; image_size is the native square size (32 for CIFAR,
    28 for MNIST) or None when images vary in size.
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

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def splits(self) -> list[str]:
        known = [s for s in SPLIT_ORDER if s in self._splits]
        return known + sorted(s for s in self._splits if s not in SPLIT_ORDER)

    def split(self, name: str) -> Split:
        if name not in self._splits:
            raise UsageError(
                f"dataset '{self.name}' at {self.root} has no '{name}' split; it has: {', '.join(self.splits())}"
            )
        return self._splits[name]

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={len(self._splits[s])}" for s in self.splits())
        return f"Source({self.name!r}, root={str(self.root)!r}, classes={self.num_classes}, {sizes})"


def _default(values: Sequence[float], channels: int) -> tuple[float, ...]:
    return tuple(values) if channels == 3 else (sum(values) / len(values),)


def stratified_split(labels: Sequence[int], fractions: Sequence[float], seed: int) -> list[list[int]]:
    """Indices for each fraction of the whole (the rest comes first), drawn per class with a seeded shuffle.

    stratified_split(labels, [0.2], seed) -> [train_indices, val_indices]. Each part gets round(N * fraction)
    images, spread over the classes in proportion to their sizes (largest remainders, ties broken by
    the seed), and every class keeps at least one image in the first part.
    """
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(int(label), []).append(i)
    rng = random.Random(seed)
    order = sorted(by_class)
    for label in order:
        rng.shuffle(by_class[label])
    tie_break = {label: rng.random() for label in order}
    total = len(labels)
    used = {label: 0 for label in order}
    parts: list[list[int]] = [[] for _ in range(len(fractions) + 1)]
    for k, fraction in enumerate(fractions, start=1):
        quota = {label: len(by_class[label]) * fraction for label in order}
        room = {label: max(len(by_class[label]) - 1 - used[label], 0) for label in order}
        take = {label: min(int(quota[label]), room[label]) for label in order}
        missing = round(total * fraction) - sum(take.values())
        for label in sorted(order, key=lambda c: (-(quota[c] - int(quota[c])), tie_break[c])):
            if missing <= 0:
                break
            if take[label] < room[label]:
                take[label] += 1
                missing -= 1
        for label in order:
            members = by_class[label]
            parts[k].extend(members[used[label]:used[label] + take[label]])
            used[label] += take[label]
    for label in order:
        parts[0].extend(by_class[label][used[label]:])
    return [sorted(p) for p in parts]


def detect_dataset(path: Path) -> str | None:
    """Name of the builder that reads the folder at `path`, or None for a plain class-per-folder tree."""
    names = {path.name}
    children = {p.name for p in path.iterdir()} if path.is_dir() else set()
    if "categories.csv" in children and "train.csv" in children:
        return "processed"
    for marker, builder in (
        ("cifar-10-batches-py", "cifar10"),
        ("cifar-100-python", "cifar100"),
        ("cifar-10-batches-bin", "cifar10-bin"),
    ):
        if marker in names or marker in children:
            return builder
    raw = path / "raw"
    if any(c.startswith("train-images-idx3-ubyte") for c in children) or raw.is_dir() and any(
        p.name.startswith("train-images-idx3-ubyte") for p in raw.iterdir()
    ):
        return "fashion-mnist" if "fashion" in str(path).lower() else "mnist"
    if "FashionMNIST" in children:
        return "fashion-mnist"
    if "MNIST" in children:
        return "mnist"
    return None


def open_source(spec: str | os.PathLike[str], root: str | os.PathLike[str] | None = None,
                **options: Any) -> Source:
    """A registered dataset name (`cifar10`, with its files under `root`) or a path to a dataset folder.

    A path is recognised by its content: a processed folder (categories.csv + train.csv), a folder
    holding cifar-10-batches-py / cifar-100-python / cifar-10-batches-bin or MNIST idx files, and
    otherwise a raw class-per-folder tree.
    """
    from resnetcli.registry import registry, unknown_name_message

    reg = registry("datasets")
    text = str(spec)
    # A registered name wins over a same-named folder in the working directory; write ./name for the folder.
    if text in reg and "/" not in text and os.sep not in text:
        return build_source(text, root, **options)
    path = Path(text).expanduser()
    if not path.exists():
        raise DataError(
            unknown_name_message("dataset", text, reg.names()).replace("unknown dataset", "no dataset named", 1)
            + f". Nor is '{text}' an existing folder"
        )
    if not path.is_dir():
        raise DataError(f"{path} is a file; give a dataset folder or one of: {', '.join(reg.names())}")
    if root is not None:
        raise UsageError(f"--root is for named datasets; '{text}' is already a folder")
    return build_source(detect_dataset(path) or "folder", path, **options)


def build_source(name: str, root: str | os.PathLike[str] | None, **options: Any) -> Source:
    """Call the registered builder `name`, refusing options it does not take with one clear line."""
    from resnetcli.registry import registry

    return registry("datasets").build(name, root, options=options, expect=Source)

"""The in-memory data path for small images: each split decoded once into one uint8 tensor (N, C, H, W), and
whole batches augmented with tensor operations on the main process.

For 28-64 px images a DataLoader worker spends more time calling albumentations per sample than the model
spends on the batch, and on a 2-core machine that worker takes a core from training. Here a batch is one
gather: pad-crop offsets and flips become index arithmetic on the stored images (no padded copy), followed by
normalization, about a millisecond for 128 images.

Resume stays exact: the order is the sampler's (seed, epoch) rule as in engine/data.py, and each batch's
crops and flips come from a torch.Generator seeded with rng.batch_seed(seed, epoch, the batch's first
sample index), the same rule the worker path uses; nothing depends on workers or on the global generators.
Only the pipelines whose every step is expressible this way take this path (`none` and `cifar`); any other
pipeline, plugin or YAML file keeps the DataLoader.
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import albumentations as A
import numpy as np
import torch

from resnetcli.engine.rng import batch_seed
from resnetcli.errors import UsageError

#: the largest side that takes this path by default (CIFAR, MNIST-like, 64 px thumbnails)
MAX_SIDE = 64
#: the share of the free memory the decoded training and validation images may take
MEMORY_SHARE = 0.25


@dataclass(frozen=True)
class BatchAugment:
    """The `cifar` pipeline's steps on a batch: pad by `padding` (zeros, or reflection) and crop back at a
    random offset, then flip horizontally with p=0.5. padding=0 and flip=False is the `none` pipeline."""

    padding: int = 0
    reflect: bool = False
    flip: bool = False


def batch_augment_for(name: str, options: dict[str, Any], train: bool) -> BatchAugment | None:
    """The batch form of a built-in pipeline, or None when `name` has no exact batch form."""
    if name == "none" and not options:
        return BatchAugment()
    if name != "cifar":
        return None
    from resnetcli.augment.pipelines import cifar

    defaults = {key: p.default for key, p in inspect.signature(cifar).parameters.items()
                if key in ("padding", "reflect", "flip")}  # one source for the preset's defaults
    if set(options) - set(defaults):
        return None  # an option this path does not know: the real pipeline decides what it means
    settings = {**defaults, **options}
    if not train:  # cifar evaluates with `none`
        return BatchAugment()
    if not isinstance(settings["padding"], int) or settings["padding"] < 0:
        return None  # let the pipeline report the bad value
    return BatchAugment(int(settings["padding"]), bool(settings["reflect"]), bool(settings["flip"]))


def available_memory() -> int:
    """Bytes of memory available to new allocations (Linux's MemAvailable; else the physical total)."""
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


def _megabytes(count: int) -> str:
    return f"{count / 1e6:.0f} MB" if count >= 1e6 else f"{count / 1e3:.0f} kB"


def decode_split(split: Any, image_size: int, workers: int = 0) -> np.ndarray:
    """Every image of `split` as one (N, S, S, C) uint8 array, S = image_size.

    An image of another size is resized (smaller side) and center-cropped exactly as the `none` and `cifar`
    pipelines' first step does, once here instead of every epoch. Arrays already in memory (CIFAR, MNIST) of
    the right size are gathered without going through load(); files are decoded by a thread pool (the
    decoders release the GIL)."""
    images = getattr(split, "images", None)
    base, indices = getattr(split, "base", None), getattr(split, "indices", None)
    if base is not None and indices is not None:
        images = getattr(base, "images", None)
    if isinstance(images, np.ndarray) and images.ndim == 4 and images.shape[1:3] == (image_size, image_size):
        return np.ascontiguousarray(images if indices is None else images[np.asarray(indices, dtype=np.int64)])
    from resnetcli.augment.pipelines import _resize_center  # the pipelines' own first step

    first = split.load(0)[0]
    out = np.empty((len(split), image_size, image_size, first.shape[2]), dtype=np.uint8)

    def fill(chunk: range) -> None:
        fit = A.Compose(_resize_center(image_size))  # one per thread
        for i in chunk:
            image = split.load(i)[0]
            if image.shape[:2] != (image_size, image_size):
                image = fit(image=image)["image"].reshape(out.shape[1:])
            out[i] = image

    step = 2048
    chunks = [range(start, min(start + step, len(split))) for start in range(0, len(split), step)]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(fill, chunks))
    return out


@dataclass
class MemoryData:
    """The decoded splits and the sentence the run's first line gives about them."""

    train: torch.Tensor  # (N, C, H, W) uint8
    train_labels: torch.Tensor
    val: torch.Tensor | None
    val_labels: torch.Tensor | None
    description: str


def why_not_in_memory(split: Any, val: Any, image_size: int, channels: int,
                      augment: BatchAugment | None) -> str | None:
    """Why this data cannot take the in-memory path (None: it can), before anything is decoded."""
    if augment is None:
        return "only the none and cifar pipelines have a batch form"
    if image_size > MAX_SIDE:
        return f"images of {image_size} px are above {MAX_SIDE} px"
    count = len(split) + (len(val) if val is not None else 0)
    needed = count * channels * image_size * image_size
    budget = int(available_memory() * MEMORY_SHARE)
    if needed > budget:
        return f"{_megabytes(needed)} of images is more than {MEMORY_SHARE:.0%} of the free memory"
    return None


def load_in_memory(train: Any, val: Any, image_size: int, workers: int = 0) -> MemoryData:
    """Decode the training and validation splits at image_size x image_size."""
    decoded = []
    for split in (train, val):
        if split is None:
            decoded.append((None, None))
            continue
        array = decode_split(split, image_size, workers)
        images = torch.from_numpy(array).permute(0, 3, 1, 2)  # a (N, C, H, W) view of the HWC array
        decoded.append((images, torch.as_tensor(split.labels, dtype=torch.int64)))
    (train_images, train_labels), (val_images, val_labels) = decoded
    assert train_images is not None and train_labels is not None
    n, c, h, w = train_images.shape
    size = train_images.numel() + (val_images.numel() if val_images is not None else 0)
    description = (f"data in memory, {n}x{c}x{h}x{w} uint8 ({_megabytes(size)} with validation), "
                   "batch-level augmentation")
    return MemoryData(train_images, train_labels, val_images, val_labels, description)


def _source_rows(offset: torch.Tensor, size: int, padding: int, reflect: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """For crops starting `offset` pixels into the padded image: (B, size) source coordinates in the unpadded
    image, and which of them fall inside it (outside is zero padding; reflection maps them back in)."""
    coords = offset[:, None] - padding + torch.arange(size)
    if reflect:  # BORDER_REFLECT_101: -1 -> 1, size -> size - 2
        coords = coords.abs()
        coords = torch.where(coords >= size, 2 * (size - 1) - coords, coords)
        return coords, torch.ones_like(coords, dtype=torch.bool)
    inside = (coords >= 0) & (coords < size)
    return coords.clamp(0, size - 1), inside


def augment_batch(images: torch.Tensor, augment: BatchAugment, generator: torch.Generator) -> torch.Tensor:
    """Pad-crop and flip a (B, C, H, W) uint8 batch, each image with its own offsets, as one gather.

    The result is (B, C, H, W) in channels_last strides (what the model prefers on CPU)."""
    b, _, h, w = images.shape
    if augment.padding == 0 and not augment.flip:
        return images
    p = augment.padding
    dy = torch.randint(0, 2 * p + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * p + 1, (b,), generator=generator)
    rows, rows_in = _source_rows(dy, h, p, augment.reflect)
    cols, cols_in = _source_rows(dx, w, p, augment.reflect)
    if augment.flip:
        flipped = torch.rand(b, generator=generator) < 0.5
        cols = torch.where(flipped[:, None], cols.flip(1), cols)
        cols_in = torch.where(flipped[:, None], cols_in.flip(1), cols_in)
    batch = torch.arange(b)[:, None, None]
    out = images[batch, :, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    if p and not augment.reflect:
        out = out * (rows_in[:, :, None] & cols_in[:, None, :])[..., None]
    return out.permute(0, 3, 1, 2)


class MemoryBatches:
    """Batches of an in-memory split in the sampler's order, augmented and normalized a batch at a time.

    Iterated like the DataLoader it replaces: (float images, int64 labels) per batch, len() batches."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, *, sampler: Any, batch_size: int,
                 drop_last: bool, augment: BatchAugment, mean: Sequence[float], std: Sequence[float],
                 seed: int) -> None:
        if len(mean) != images.shape[1] or len(std) != images.shape[1]:
            raise UsageError(f"normalization has {len(mean)} channels but the images have {images.shape[1]}")
        self.images, self.labels = images, labels
        self.sampler = sampler
        self.batch_size, self.drop_last = batch_size, drop_last
        self.augment = augment
        self.seed = seed
        # normalize as the pipelines do ((x / 255 - mean) / std), as one multiply-add per pixel
        scale = torch.tensor([1.0 / (255.0 * s) for s in std]).view(1, -1, 1, 1)
        self._scale, self._shift = scale, torch.tensor([-m / s for m, s in zip(mean, std)]).view(1, -1, 1, 1)

    def __len__(self) -> int:
        count = len(self.sampler)
        return count // self.batch_size if self.drop_last else math.ceil(count / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        keys = list(self.sampler)
        pairs = [key if isinstance(key, tuple) else (key, -1) for key in keys]
        order = torch.tensor([index for index, _ in pairs], dtype=torch.int64)
        epoch = pairs[0][1] if pairs else -1
        for start in range(0, len(order), self.batch_size):
            index = order[start:start + self.batch_size]
            if self.drop_last and len(index) < self.batch_size:
                return
            batch = self.images[index]
            generator = torch.Generator().manual_seed(batch_seed(self.seed, epoch, int(index[0])))
            batch = augment_batch(batch, self.augment, generator)
            yield torch.addcmul(self._shift, batch.float(), self._scale), self.labels[index]


def memory_loaders(config: Any, data: Any, sampler: Any, val_sampler: Any,
                   norm: dict[str, list[float]], *, resuming: bool = False) -> tuple[dict[str, Any] | None, str]:
    """({"train": ..., "val": ...} batches, what the first line says) on the in-memory path, or (None, why
    not). config.in_memory: auto decides by the rules above, True insists (a UsageError says why it cannot),
    False keeps the DataLoader."""
    if config.in_memory is False:
        return None, "in_memory is off"
    augment = batch_augment_for(config.augment, config.aug_options, train=True)
    why = why_not_in_memory(data.train, data.val, config.image_size, data.source.channels, augment)
    if why is not None:
        if config.in_memory is True:
            if resuming:  # the run's own setting, not a flag to drop: a resume may not change it
                raise UsageError(f"this run trained on the in-memory path, which it cannot use here: {why}; resume "
                                 "it where it can, or start a new run from its weights (--pretrained CHECKPOINT)")
            raise UsageError(f"--in-memory: {why}; drop --in-memory to use the DataLoader")
        return None, why
    assert augment is not None
    decoded = load_in_memory(data.train, data.val, config.image_size, config.workers or 0)
    common = {"mean": norm["mean"], "std": norm["std"], "seed": config.seed}
    train = MemoryBatches(decoded.train, decoded.train_labels, sampler=sampler, batch_size=config.batch_size,
                          drop_last=config.drop_last, augment=augment, **common)
    val = None
    if decoded.val is not None and decoded.val_labels is not None:
        val = MemoryBatches(decoded.val, decoded.val_labels, sampler=val_sampler,
                            batch_size=config.eval_batch_size or config.batch_size, drop_last=False,
                            augment=BatchAugment(), **common)
    return {"train": train, "val": val}, decoded.description

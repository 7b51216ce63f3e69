"""From a Source split to DataLoaders whose order and augmentation depend only on (seed, epoch).

That is what makes resume exact (engine/rng.py states every rule): the training sampler shuffles with a
generator seeded seed + epoch (torch's DistributedSampler does exactly this, and it also shards across
ranks), and the augmentation pipeline is re-seeded for every batch from (seed, epoch, the batch's first
sample index), whichever loader worker (or none) loads it.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from torch.utils.data.distributed import DistributedSampler

from resnetcli.data.source import Source
from resnetcli.engine.rng import batch_seed, seed_transform, worker_init
from resnetcli.errors import DataError
from resnetcli.signals import held


class AugmentedSplit(Dataset):
    """A Split seen through a pipeline; indexed by (index, epoch) pairs so workers learn the epoch.

    The DataLoader fetches a whole batch through `__getitems__`, which seeds the pipeline once per batch
    (seeding per sample would cost as much as augmenting it).
    """

    def __init__(self, split: Any, transform: Any, seed: int) -> None:
        self.split = split
        self.transform = transform
        self.seed = seed

    def __len__(self) -> int:
        return len(self.split)

    def _load(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self.split.load(index)
        return self.transform(image=image)["image"], int(label)

    def __getitems__(self, keys: Sequence[int | tuple[int, int]]) -> list[tuple[torch.Tensor, int]]:
        pairs = [key if isinstance(key, tuple) else (key, -1) for key in keys]
        if pairs:
            first, epoch = pairs[0]
            seed_transform(self.transform, batch_seed(self.seed, epoch, first))
        return [self._load(index) for index, _ in pairs]

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        return self.__getitems__([key])[0]


class EpochSampler(Sampler[tuple[int, int]]):
    """DistributedSampler's shuffle-and-shard, yielding (index, epoch) pairs."""

    def __init__(self, size: int, *, rank: int, world: int, seed: int, shuffle: bool = True) -> None:
        self.inner = DistributedSampler(
            range(size), num_replicas=world, rank=rank, shuffle=shuffle, seed=seed, drop_last=False
        )
        self.epoch = 0
        self.skip = 0  # samples of this epoch already trained on (a mid-epoch resume: engine/partial.py)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.skip = 0
        self.inner.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((i, self.epoch) for i in itertools.islice(self.inner, self.skip, None))

    def __len__(self) -> int:
        return max(0, len(self.inner) - self.skip)


class ShardSampler(Sampler[int]):
    """Every world-th index from rank, no padding: evaluation sums stay exact after all-reduce."""

    def __init__(self, size: int, *, rank: int, world: int) -> None:
        self.indices = list(range(rank, size, world))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class Loader(DataLoader):
    """A DataLoader whose batch hand-over a stop signal never cuts (resnetcli/signals.py: held)."""

    def __iter__(self) -> Iterator[Any]:
        # DataLoader.__iter__ is fetched under the hold too: with persistent workers it waits for them
        return held(functools.partial(DataLoader.__iter__, self))

    def close(self) -> None:
        """End the persistent workers now, not when garbage collection gets to them: after a stop signal sent
        to the whole process group they are dying already, and until torch has forgotten them its SIGCHLD
        handler raises 'worker killed by signal' wherever the process is (resnetcli/signals.py)."""
        iterator = getattr(self, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()
        self._iterator = None


def make_loader(
    dataset: AugmentedSplit, *, batch_size: int, sampler: Sampler[Any], workers: int, pin_memory: bool,
    drop_last: bool,
) -> DataLoader:
    # its own generator: the workers' base seed must not be drawn from the global torch generator, which
    # would then be consumed once per epoch without workers but once per run with persistent ones
    return Loader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, pin_memory=pin_memory,
        drop_last=drop_last, persistent_workers=workers > 0, worker_init_fn=worker_init if workers else None,
        prefetch_factor=4 if workers > 0 else None, generator=torch.Generator().manual_seed(0),
    )



@dataclass
class TrainingData:
    """The opened source and the splits training uses."""

    source: Any
    train: Any
    val_name: str | None
    val: Any

    @property
    def classes(self) -> list[str]:
        return list(self.source.classes)

    def describe(self) -> str:
        """Every split's size and where it came from, e.g. '48000 train, 12000 val (held out of train: ...),
        10000 test (unused)'."""
        parts = []
        for name in self.source.splits():
            notes = []
            if name not in ("train", self.val_name):
                notes.append("unused")
            elif name == self.val_name and name != "val":
                notes.append("validates")
            parts.append(self.source.describe(name, *notes))
        if self.val_name is None:
            parts.append("no validation")
        return ", ".join(parts)


def choose_val_split(choice: str, source: Source) -> str | None:
    """--val-split: auto is "val", else "test", else none; a name must be one of the data's splits."""
    if choice in ("none", ""):
        return None
    return source.pick_split(None if choice == "auto" else choice, ("val", "test"), "--val-split")


def open_training_data(data: str, options: dict[str, Any], val_choice: str) -> TrainingData:
    """The source named by --data, its train split and the validation split --val-split picks."""
    from resnetcli.data import open_source

    source = open_source(data, **options)
    # nothing may be held out that nothing validates on: such images go back to train (Source.give_back)
    source = source.give_back(choose_val_split(val_choice, source))
    splits = list(source.splits())
    if "train" not in splits:
        raise DataError(f"data {data} has no 'train' split (it has: {', '.join(splits)})")
    train = source.split("train")
    if len(train) == 0:
        raise DataError(f"the train split of {data} is empty")
    val_name = choose_val_split(val_choice, source)
    val = source.split(val_name) if val_name else None
    if val is not None and len(val) == 0:
        val_name, val = None, None
    return TrainingData(source, train, val_name, val)

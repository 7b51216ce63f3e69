"""From a Source split to DataLoaders whose order and augmentation depend only on (seed, epoch).

That is what makes resume exact: the training sampler shuffles with a generator seeded seed + epoch
(torch's DistributedSampler does exactly this, and it also shards across ranks), and each loader worker
re-seeds the augmentation pipeline from (seed, epoch, worker id) when a new epoch's first index arrives.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from torch.utils.data.distributed import DistributedSampler


def derive_seed(*parts: int) -> int:
    """A 32-bit seed from several integers (numpy's SeedSequence mixes them well)."""
    return int(np.random.SeedSequence([abs(int(p)) for p in parts]).generate_state(1)[0])


class AugmentedSplit(Dataset):
    """A Split seen through a pipeline; indexed by (index, epoch) pairs so workers learn the epoch."""

    def __init__(self, split: Any, transform: Any, seed: int) -> None:
        self.split = split
        self.transform = transform
        self.seed = seed
        self._epoch: int | None = None

    def __len__(self) -> int:
        return len(self.split)

    def _reseed(self, epoch: int) -> None:
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else 0
        seed = derive_seed(self.seed, epoch, worker)
        setter = getattr(self.transform, "set_random_seed", None)
        if setter is not None:
            setter(seed)
        # pipelines that draw from the global generators (plugins) are covered too
        random.seed(seed)
        np.random.seed(seed)
        self._epoch = epoch

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        index, epoch = key if isinstance(key, tuple) else (key, -1)
        if epoch != self._epoch:
            self._reseed(epoch)
        image, label = self.split.load(index)
        return self.transform(image=image)["image"], int(label)


class EpochSampler(Sampler[tuple[int, int]]):
    """DistributedSampler's shuffle-and-shard, yielding (index, epoch) pairs."""

    def __init__(self, size: int, *, rank: int, world: int, seed: int, shuffle: bool = True) -> None:
        self.inner = DistributedSampler(
            range(size), num_replicas=world, rank=rank, shuffle=shuffle, seed=seed, drop_last=False
        )
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.inner.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((i, self.epoch) for i in self.inner)

    def __len__(self) -> int:
        return len(self.inner)


class ShardSampler(Sampler[int]):
    """Every world-th index from rank, no padding: evaluation sums stay exact after all-reduce."""

    def __init__(self, size: int, *, rank: int, world: int) -> None:
        self.indices = list(range(rank, size, world))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _worker_init(worker_id: int) -> None:
    # torch already gives each worker its own torch seed; align python and numpy with it
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def make_loader(
    dataset: AugmentedSplit, *, batch_size: int, sampler: Sampler[Any], workers: int, pin_memory: bool,
    drop_last: bool,
) -> DataLoader:
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, pin_memory=pin_memory,
        drop_last=drop_last, persistent_workers=workers > 0, worker_init_fn=_worker_init if workers else None,
        prefetch_factor=4 if workers > 0 else None,
    )


def class_counts(labels: Sequence[int], num_classes: int) -> list[int]:
    counts = [0] * num_classes
    for label in labels:
        counts[int(label)] += 1
    return counts

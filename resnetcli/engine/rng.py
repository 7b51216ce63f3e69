"""Every random-state rule of training in one place (modelled on Lightning's fabric/utilities/seed.py).

What exact resume rests on: each source of randomness is seeded from numbers the checkpoint holds, never
from how the work happened to be split up.
- the global python/numpy/torch generators: `seed_everything(derive_seed(seed, epoch, rank))` at the start
  of every epoch, and `rng_state`/`set_rng_state` in every checkpoint;
- the training order: the sampler's generator, seeded seed + epoch (DistributedSampler's rule);
- augmentation: re-seeded for every batch from (seed, epoch, the batch's first sample index)
  (`batch_seed`), so it does not depend on how many loader workers there are or which one loads a batch;
- mixup: its own generators, seeded from (seed, epoch, rank, 1).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch


def derive_seed(*parts: int) -> int:
    """A 32-bit seed from several integers (numpy's SeedSequence mixes them well)."""
    return int(np.random.SeedSequence([abs(int(p)) for p in parts]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's global generators (every device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def batch_seed(seed: int, epoch: int, first_index: int) -> int:
    """The augmentation seed of one batch: a function of the run's seed, the epoch and which samples it holds."""
    return derive_seed(seed, epoch, first_index)


def seed_transform(transform: Any, seed: int) -> None:
    """Seed an augmentation pipeline: its own generators (albumentations) and the global python/numpy ones
    that plugin pipelines draw from. torch's global generator is left alone: in the main process it is the
    training loop's."""
    setter = getattr(transform, "set_random_seed", None)
    if setter is not None:
        setter(seed)
    random.seed(seed)
    np.random.seed(seed)


def worker_init(worker_id: int) -> None:
    """DataLoader worker_init_fn: torch gives each worker its own seed; align python and numpy with it."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def rng_state() -> dict[str, Any]:
    """Every global RNG state in plain types (python/numpy as lists) and uint8 tensors, for a checkpoint."""
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    return {
        "python": [py_version, list(py_state), py_gauss],
        "numpy": [np_name, np_keys.tolist(), int(np_pos), int(np_has_gauss), float(np_gauss)],
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what `rng_state` returned (CUDA states only onto the same number of devices)."""
    version, values, gauss = state["python"]
    random.setstate((version, tuple(values), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])

"""Class imbalance: per-class loss weights (--class-weights) and a class-balanced sampler
(--balanced-sampler).

Weights are normalised so that the average weight over the training samples is 1 (the loss keeps its
scale, and so does the right learning rate):
  auto        inverse frequency, w_c = N / (C * n_c) (scikit-learn's "balanced")
  effective   the effective number of samples (Cui et al., CVPR 2019): w_c proportional to
              (1 - beta) / (1 - beta^n_c), beta 0.999 or `effective:BETA`
  FILE        a YAML/JSON mapping class: weight, or a CSV of class,weight rows; every class once.

The sampler draws every class equally often (each class's images cycled in a shuffled order, so a
minority class repeats only when it has run out), in an order that depends only on (seed, epoch), sharded
across ranks the way DistributedSampler is: the same rule as engine/data.py's EpochSampler.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch.utils.data import Sampler

from resnetcli.errors import DataError, UsageError

DEFAULT_BETA = 0.999


def class_counts(labels: Sequence[int], num_classes: int) -> list[int]:
    return torch.bincount(torch.as_tensor(list(labels), dtype=torch.long), minlength=num_classes).tolist()


def _normalised(raw: Sequence[float], counts: Sequence[int]) -> list[float]:
    """Scale so that the sample-weighted mean weight is 1."""
    total = sum(counts)
    mean = sum(w * n for w, n in zip(raw, counts, strict=True)) / total
    return [w / mean for w in raw]


def inverse_frequency(counts: Sequence[int]) -> list[float]:
    return _normalised([1.0 / n if n else 0.0 for n in counts], counts)


def effective_number(counts: Sequence[int], beta: float = DEFAULT_BETA) -> list[float]:
    return _normalised([(1.0 - beta) / (1.0 - beta**n) if n else 0.0 for n in counts], counts)


def class_weights(spec: str, labels: Sequence[int], classes: Sequence[str]) -> list[float]:
    """--class-weights auto | effective[:BETA] | FILE, one finite positive weight per class (in class order)."""
    counts = class_counts(labels, len(classes))
    if spec == "auto":
        return inverse_frequency(counts)
    if spec == "effective" or spec.startswith("effective:"):
        raw_beta = spec.partition(":")[2] or str(DEFAULT_BETA)
        try:
            beta = float(raw_beta)
        except ValueError:
            beta = math.nan
        if not 0.0 < beta < 1.0:
            raise UsageError(f"--class-weights {spec}: beta must be a number between 0 and 1 (e.g. effective:0.999)")
        return effective_number(counts, beta)
    return read_weights(Path(spec), classes)


def read_weights(path: Path, classes: Sequence[str]) -> list[float]:
    """A class -> weight file (YAML/JSON mapping, or CSV rows class,weight), checked against the classes."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"--class-weights {path}: no such file (use auto, effective, or a YAML/JSON/CSV file "
                         "of class: weight)") from None
    except OSError as exc:
        raise DataError(f"--class-weights {path}: cannot read it ({exc.strerror or exc})") from exc
    except UnicodeDecodeError:
        raise DataError(f"--class-weights {path}: not a UTF-8 text file (use a YAML/JSON/CSV file of "
                         "class: weight)") from None
    if path.suffix.lower() == ".csv":
        rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
        if rows and rows[0][-1].strip().lower() == "weight":
            rows = rows[1:]  # a header row
        if any(len(r) != 2 for r in rows):
            raise DataError(f"--class-weights {path}: every CSV row must be class,weight")
        pairs = [(r[0].strip(), r[1].strip()) for r in rows]
    else:
        import yaml

        from resnetcli.options import load_yaml

        try:
            data = load_yaml(text)
        except yaml.YAMLError as exc:
            raise DataError(f"--class-weights {path} is not valid YAML/JSON: {' '.join(str(exc).split())}") from None
        if not isinstance(data, dict):
            raise DataError(f"--class-weights {path} must map each class name to its weight")
        pairs = [(str(k), v) for k, v in data.items()]
    return check_weights(pairs, classes, str(path))


def check_weights(pairs: Sequence[tuple[str, object]], classes: Sequence[str], where: str) -> list[float]:
    """One finite weight > 0 for each class, no unknown or repeated names."""
    weights: dict[str, float] = {}
    for name, value in pairs:
        if name not in classes:
            raise DataError(f"--class-weights {where}: '{name}' is not a class of the data "
                            f"({', '.join(list(classes)[:8])}{' ...' if len(classes) > 8 else ''})")
        if name in weights:
            raise DataError(f"--class-weights {where}: class '{name}' is given twice")
        try:
            weight = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            weight = math.nan
        if isinstance(value, bool) or not math.isfinite(weight) or weight <= 0:
            raise DataError(f"--class-weights {where}: the weight of '{name}' must be a finite number > 0, "
                            f"got {value!r}")
        weights[name] = weight
    missing = [c for c in classes if c not in weights]
    if missing:
        raise DataError(f"--class-weights {where}: no weight for {len(missing)} class(es): "
                        f"{', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
    return [weights[c] for c in classes]


class BalancedSampler(Sampler[tuple[int, int]]):
    """Draws classes uniformly: `len(labels)` samples per epoch in all, every class equally often,
    yielding (index, epoch) pairs like EpochSampler; rank r takes every world-th of the epoch's draw."""

    def __init__(self, labels: Sequence[int], *, rank: int, world: int, seed: int) -> None:
        by_class: dict[int, list[int]] = {}
        for index, label in enumerate(labels):
            by_class.setdefault(int(label), []).append(index)
        if not by_class:
            raise DataError("--balanced-sampler: the training split is empty")
        self.members = [by_class[c] for c in sorted(by_class)]  # classes without images are never drawn
        self.size = len(labels)
        self.rank, self.world, self.seed = rank, world, seed
        self.per_rank = math.ceil(self.size / world)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def draw(self) -> list[int]:
        """The whole epoch's indices (all ranks), from a generator seeded seed + epoch."""
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        total = self.per_rank * self.world
        classes = len(self.members)
        # each class total // classes times, the remainder to classes picked at random; then shuffled
        slots = [c for c in range(classes) for _ in range(total // classes)]
        slots += torch.randperm(classes, generator=gen)[: total % classes].tolist()
        slots = [slots[i] for i in torch.randperm(len(slots), generator=gen).tolist()]
        queues: list[list[int]] = [[] for _ in range(classes)]
        indices = []
        for c in slots:
            if not queues[c]:  # this class's images in a fresh shuffled order
                order = torch.randperm(len(self.members[c]), generator=gen).tolist()
                queues[c] = [self.members[c][i] for i in reversed(order)]
            indices.append(queues[c].pop())
        return indices

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((i, self.epoch) for i in self.draw()[self.rank::self.world])

    def __len__(self) -> int:
        return self.per_rank

"""The one rule for holding images out of a split: stratified per class, drawn with a seed.

Every builder that carves a validation (or test) split out of its training images goes through
`hold_out`, which also records how many were held out and why (Source.held_out), so the first line of a
training run can say so and `Source.give_back` can return them when nothing validates on them.
"""

from __future__ import annotations

import operator
import random
from collections.abc import Sequence

from resnetcli.data.source import HeldOut, Split, SubsetSplit
from resnetcli.errors import UsageError


def check_fraction(name: str, value: float) -> float:
    """A split fraction in [0, 1), or one UsageError line naming the option."""
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise UsageError(f"{name} must be in [0, 1), got {value}")
    return value


def check_seed(value: object) -> int:
    """A hold-out seed: a whole number, numpy's included (random.Random would take any string or float)."""
    if not isinstance(value, bool):
        try:
            return operator.index(value)  # type: ignore[arg-type]
        except TypeError:
            pass
    raise UsageError(f"the data option seed must be a whole number, got {value!r}")


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


def hold_out(
    whole: Split, fractions: dict[str, float], seed: int, *, why: str, parent: str = "train",
) -> tuple[dict[str, Split], list[HeldOut]]:
    """Split `whole` into `parent` and one split per nonzero fraction ({'val': 0.2, 'test': 0.1}).

    Returns the splits by name (the parent first) and what was held out; with no nonzero fraction the
    parent is `whole` itself and nothing is held out. `why` says which option asked for it
    (for example 'val_split=0.2, the folder has no val/').
    """
    wanted = {name: f for name, f in fractions.items() if f > 0}
    if not wanted:
        return {parent: whole}, []
    parts = stratified_split(whole.labels, list(wanted.values()), seed)
    splits: dict[str, Split] = {parent: SubsetSplit(whole, parts[0])}
    held: list[HeldOut] = []
    for name, part in zip(wanted, parts[1:]):
        splits[name] = SubsetSplit(whole, part)
        held.append(HeldOut(split=name, parent=parent, count=len(part), why=f"{why}, seed {seed}"))
    return splits, held

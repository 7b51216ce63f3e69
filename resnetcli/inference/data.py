"""The data a checkpoint is tested on: its source and split, labels mapped to the checkpoint's classes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from resnetcli.data.images import adapt_channels
from resnetcli.engine.checkpoint import class_changes
from resnetcli.errors import CheckpointError, DataError, PluginError, UsageError
from resnetcli.inference.restore import Restored
from resnetcli.runs import run_dir_of


def open_data(restored: Restored, spec: str | None) -> Any:
    """The Source to evaluate on: --data, else the one the checkpoint was trained on."""
    from resnetcli.data import open_source

    if spec is None:
        if not restored.data_spec:
            raise UsageError(f"checkpoint {restored.path} does not record its data; pass --data SOURCE")
        try:
            return open_source(training_data_path(restored), **restored.data_options)
        except (UsageError, PluginError) as exc:  # options the dataset does not take: the file is wrong
            raise CheckpointError(
                f"checkpoint {restored.path}: the data options it records ({restored.data_options}) are refused "
                f"({exc}); pass --data SOURCE"
            ) from None
        except DataError as exc:
            raise DataError(
                f"the data {restored.data_spec} it was trained on cannot be opened ({exc}); "
                "pass --data SOURCE"
            ) from None
    return open_source(spec)


def training_data_path(restored: Restored) -> str:
    """The checkpoint's data spec; a relative folder is also looked for from the folder training ran in.

    Training recorded paths as typed, relative to its working folder. That folder is recovered from the
    run folder (config `output`, or `runs_dir/name`) being a suffix of where the checkpoint lies now, so
    `resnetcli test /elsewhere/runs/x` still finds `data/processed`.
    """
    from resnetcli.registry import registry

    spec = str(restored.data_spec)
    path = Path(spec)
    if path.is_absolute() or path.exists() or spec in registry("datasets"):
        return spec  # absolute, found from here, or a registered dataset name
    config = dict(restored.state.get("config") or {})
    run = config.get("output") or (
        str(Path(config.get("runs_dir") or "runs") / config["name"]) if config.get("name") else None)
    here = run_dir_of(restored.path).resolve()
    if run and not Path(run).is_absolute():
        parts = Path(run).parts
        if here.parts[-len(parts):] == parts:
            candidate = Path(*here.parts[: -len(parts)]) / path
            if candidate.exists():
                return str(candidate)
    return spec


def is_training_data(restored: Restored, spec: str | None) -> bool:
    """Whether --data `spec` is the data the checkpoint was trained on, however it is spelled
    (`data/processed/`, an absolute path, a link): what a split trained on means depends on it."""
    if spec is None or spec == restored.data_spec:
        return True
    if not restored.data_spec:
        return False
    given, trained = Path(spec).expanduser(), Path(training_data_path(restored)).expanduser()
    try:
        return given.exists() and trained.exists() and given.resolve() == trained.resolve()
    except (OSError, RuntimeError):  # a link loop: not provably the same
        return False


def choose_split(source: Any, split: str | None) -> str:
    """--split, else 'test' when the data has one, else 'val'."""
    name = source.pick_split(split, ("test", "val"), "--split")
    if name is None:
        raise UsageError(
            f"the data at {source.root} has no test or val split (it has: {', '.join(source.splits())}); "
            "pass --split train to evaluate on training images, or preprocess with a validation split"
        )
    return name


def label_map(checkpoint_classes: Sequence[str], data_classes: Sequence[str], path: Path, where: str) -> list[int]:
    """data label -> checkpoint output index; refuses (listing the difference) when the class sets differ."""
    ckpt, data = list(checkpoint_classes), list(data_classes)
    if ckpt == data:
        return list(range(len(data)))
    detail = class_changes(ckpt, data, "only in the checkpoint", "only in the data")
    if detail or len(set(data)) != len(data):
        if not detail:
            detail.append("the data repeats class names")
        raise CheckpointError(
            f"checkpoint {path} knows {len(ckpt)} classes but the data {where} has {len(data)} "
            f"that differ ({'; '.join(detail)}); evaluate on the data it was trained on"
        )
    # same names, other order (e.g. ids renumbered): compare by name, which is what a label means
    index = {name: i for i, name in enumerate(ckpt)}
    return [index[name] for name in data]


class EvalDataset(Dataset):
    """A Split through the evaluation pipeline, labels mapped to the checkpoint's class indices."""

    def __init__(self, split: Any, transform: Callable[..., dict[str, Any]], channels: int,
                 mapping: Sequence[int]) -> None:
        self.split = split
        self.transform = transform
        self.channels = channels
        self.mapping = list(mapping)

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image, label = self.split.load(i)
        image = adapt_channels(np.asarray(image), self.channels)
        return self.transform(image=image)["image"], self.mapping[int(label)]

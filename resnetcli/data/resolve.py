"""The one rule that turns what a user typed (`--data`, `--input`: a dataset name or a folder) into a Source.

`train`, `test`, `preprocess` and `doctor` all go through `resolve_source`, so a name, a folder and a
mistake mean the same thing, with the same message, in every command.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resnetcli.data.source import Source
from resnetcli.errors import DataError, UsageError


@dataclass(frozen=True)
class SourceSpec:
    """How to build a source: the registered builder, its root (None: the builder's default) and options."""

    name: str
    root: Path | None
    options: dict[str, Any] = field(default_factory=dict)

    def build(self) -> Source:
        return build_source(self.name, self.root, **self.options)


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
    if any(c.startswith("train-images-idx3-ubyte") for c in children) or (raw.is_dir() and any(
        p.name.startswith("train-images-idx3-ubyte") for p in raw.iterdir()
    )):
        return "fashion-mnist" if "fashion" in str(path).lower() else "mnist"
    if "FashionMNIST" in children:
        return "fashion-mnist"
    if "MNIST" in children:
        return "mnist"
    return None


def resolve_source(spec: str | os.PathLike[str], root: str | os.PathLike[str] | None = None,
                   **options: Any) -> SourceSpec:
    """A registered dataset name (its files under `root`) or a dataset folder, recognised by its content.

    A folder holding categories.csv + train.csv is a processed one; cifar-10-batches-py,
    cifar-100-python, cifar-10-batches-bin or MNIST idx files name their builder; anything else is a
    raw class-per-folder tree. A registered name wins over a same-named folder: write ./name for the folder.
    """
    from resnetcli.registry import registry, unknown_name_message

    reg = registry("datasets")
    text = str(spec)
    if text in reg and "/" not in text and os.sep not in text:
        return SourceSpec(text, Path(root).expanduser() if root is not None else None, dict(options))
    path = Path(text).expanduser()
    if not path.exists():
        if "/" in text or os.sep in text:
            raise DataError(f"dataset folder {path} does not exist")
        raise DataError(
            unknown_name_message("dataset", text, reg.names()).replace("unknown dataset", "no dataset named", 1)
            + f"; nor is there a folder '{text}' here"
        )
    if not path.is_dir():
        raise DataError(f"{path} is a file; give a dataset folder or one of: {', '.join(reg.names())}")
    if root is not None:
        raise UsageError(f"--root is for named datasets (for example cifar10 --root DIR); '{text}' is a folder")
    return SourceSpec(detect_dataset(path) or "folder", path, dict(options))


def build_source(name: str, root: str | os.PathLike[str] | None, **options: Any) -> Source:
    """Call the registered builder `name`, refusing options it does not take with one clear line."""
    from resnetcli.registry import registry

    return registry("datasets").build(name, root, options=options, expect=Source)


def open_source(spec: str | os.PathLike[str], root: str | os.PathLike[str] | None = None,
                **options: Any) -> Source:
    """resolve_source + build, warning once for each file the builder set aside (unreadable, empty, ...)."""
    source = resolve_source(spec, root, **options).build()
    warn_set_aside(source)
    return source


def warn_set_aside(source: Source) -> None:
    """One warning per file a builder set aside before use (source.notes['problems'])."""
    from resnetcli.console import warn

    for rel, reason in source.notes.get("problems", []):
        where = rel if os.path.isabs(rel) else str(source.root / rel)
        warn(f"skipped {where}: {reason}")

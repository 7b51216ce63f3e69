"""The `processed` dataset: a folder written by `resnetcli preprocess` (or laid out the same way by hand).

categories.csv (name,id), train/val/test.csv (image,class_id; paths must stay inside the folder),
rgb_val.json (per-channel mean and std on the 0-255 scale, measured on train) and report.json, whose
`smaller_side` (or `image_size`) tells training the size the images were written at.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

from resnetcli.data.holdout import check_fraction, check_seed, hold_out
from resnetcli.data.source import IMAGENET_STD, FileSplit, HeldOut, Source, Split
from resnetcli.errors import DataError, UsageError


def _read_csv(path: Path) -> list[list[str]]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return [row for row in csv.reader(fh) if row and any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot be read as CSV ({exc})") from None


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _read_categories(path: Path) -> list[str]:
    rows = _read_csv(path)
    if rows and len(rows[0]) >= 2 and not _is_int(rows[0][1]):
        rows = rows[1:]  # header
    by_id: dict[int, str] = {}
    for n, row in enumerate(rows, start=2):
        if len(row) < 2 or not _is_int(row[1]):
            raise DataError(f"{path}, row {n}: expected 'name,id', got {','.join(row)!r}")
        class_id = int(row[1])
        if class_id in by_id:
            raise DataError(f"{path}, row {n}: class id {class_id} appears twice")
        if row[0] in by_id.values():  # two ids, one name: predictions could not tell them apart
            raise DataError(f"{path}, row {n}: class name {row[0]!r} appears twice; give each class its own name")
        by_id[class_id] = row[0]
    if sorted(by_id) != list(range(len(by_id))):
        raise DataError(f"{path}: class ids must be 0..{len(by_id) - 1} with none missing")
    if len(by_id) < 2:
        raise DataError(f"{path}: lists {len(by_id)} class(es); a classifier needs at least two")
    return [by_id[i] for i in range(len(by_id))]


def _read_split_csv(root: Path, real_root: Path, split: str, num_classes: int) -> tuple[list[str], list[int]]:
    path = root / f"{split}.csv"
    rows = _read_csv(path)
    if rows and len(rows[0]) >= 2 and not _is_int(rows[0][1]):
        rows = rows[1:]
    paths: list[str] = []
    labels: list[int] = []
    real_dirs: dict[str, str] = {}
    for n, row in enumerate(rows, start=2):
        if len(row) < 2 or not _is_int(row[1]):
            raise DataError(f"{path}, row {n}: expected 'image,class_id', got {','.join(row)!r}")
        image, label = row[0].strip(), int(row[1])
        if not 0 <= label < num_classes:
            raise DataError(f"{path}, row {n}: class id {label} is not in categories.csv (0..{num_classes - 1})")
        if "/" not in image and "\\" not in image and (root / split / image).exists():
            image = f"{split}/{image}"  # the seed's CSVs name the file only, inside its split folder
        inside = _inside(real_root, image, real_dirs)
        if inside is None:
            raise DataError(f"{path}, row {n}: '{row[0]}' points outside the dataset folder {root}; refusing it")
        paths.append(inside)
        labels.append(label)
    return paths, labels


def _inside(real_root: Path, image: str, real_dirs: dict[str, str]) -> str | None:
    """`image` relative to the root after resolving '..' and symlinks, or None if it leaves the root.

    Resolving every path in full costs seconds on a 30,000-row CSV; folders are resolved once each
    (cached in real_dirs) and only the files that are themselves symlinks are followed.
    """
    if os.path.isabs(image):
        return None
    prefix = str(real_root) + os.sep
    norm = os.path.normpath(prefix + image)
    if not norm.startswith(prefix):
        return None
    folder, name = os.path.split(norm)
    real_folder = real_dirs.get(folder)
    if real_folder is None:
        real_folder = real_dirs[folder] = os.path.realpath(folder)
    target = real_folder + os.sep + name
    if os.path.islink(target):
        target = os.path.realpath(target)
    if not target.startswith(prefix):
        return None
    return target[len(prefix):].replace(os.sep, "/")


def read_stats(path: Path) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None, int | None]:
    """(mean, std, channels) on the 0-1 scale from an rgb_val.json (0-255 scale), or Nones if absent."""
    if not path.is_file():
        return None, None, None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); run `resnetcli preprocess` again") from None
    try:
        if "mean" in data:
            mean = tuple(float(v) / 255.0 for v in data["mean"])
        else:  # the seed's format: {"R": .., "G": .., "B": ..}
            mean = tuple(float(data[k]) / 255.0 for k in ("R", "G", "B"))
        std = tuple(float(v) / 255.0 for v in data["std"]) if "std" in data else None
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{path}: expected per-channel 'mean' and 'std' (0-255 scale)") from None
    if len(mean) not in (1, 3):
        raise DataError(f"{path}: 'mean' has {len(mean)} values; expected 1 (gray) or 3 (RGB)")
    if std is not None and len(std) != len(mean):
        raise DataError(f"{path}: 'mean' has {len(mean)} values but 'std' has {len(std)}")
    # training divides by std: a zero, negative or non-finite value would train on inf/NaN inputs
    if not all(math.isfinite(v) for v in mean) or (std is not None and not all(
            math.isfinite(v) and v > 0 for v in std)):
        raise DataError(f"{path}: 'mean' must be finite and 'std' finite and positive, got {data.get('mean')} / "
                        f"{data.get('std')}; run `resnetcli preprocess` again")
    return mean, std, len(mean)


def written_side(report: dict[str, Any]) -> int | None:
    """The smaller side every image of a processed folder shares, from its report.json; None if they vary.

    `smaller_side` is written since this rule exists; older reports give it through `image_size` (square
    images) or an integer `size` (smaller side, as `preprocess --size N` writes it).
    """
    for key in ("smaller_side", "image_size", "size"):
        value = report.get(key)
        if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
            value = min(value)  # --size HxW
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _read_report(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # the report is informative only
    return data if isinstance(data, dict) else {}


def processed(root: str | os.PathLike[str] | None = None, *, val_split: float = 0.0, seed: int = 0) -> Source:
    """A folder written by `resnetcli preprocess` (categories.csv, train/val/test.csv, rgb_val.json).

    val_split holds out part of train.csv for validation, only when the folder has no val.csv.
    """
    val_split, seed = check_fraction("val_split", val_split), check_seed(seed)
    if root is None:
        raise UsageError("the 'processed' dataset needs its folder: pass the folder as the dataset")
    root = Path(root)
    if not (root / "categories.csv").is_file():
        raise DataError(f"{root} has no categories.csv; is it a folder written by `resnetcli preprocess`?")
    classes = _read_categories(root / "categories.csv")
    mean, std, channels = read_stats(root / "rgb_val.json")
    channels = channels or 3
    if std is None:
        std = IMAGENET_STD if channels == 3 else (sum(IMAGENET_STD) / 3,)
    real_root = root.resolve()
    splits: dict[str, Split] = {}
    for split in ("train", "val", "test"):
        if (root / f"{split}.csv").is_file():
            paths, labels = _read_split_csv(root, real_root, split, len(classes))
            splits[split] = FileSplit(real_root, paths, labels, channels=channels)
    if "train" not in splits:
        raise DataError(f"{root} has no train.csv; run `resnetcli preprocess` again")
    held: list[HeldOut] = []
    if "val" not in splits:
        carved, held = hold_out(splits["train"], {"val": val_split}, seed,
                                why=f"val_split={val_split:g} and {root} has no val.csv")
        splits.update(carved)
    return Source(
        name="processed", root=root, classes=classes, splits=splits, channels=channels,
        mean=mean, std=std, image_size=written_side(_read_report(root / "report.json")), held_out=held,
        origins={split: f"{split}.csv" for split in splits if split not in {h.split for h in held}},
    )

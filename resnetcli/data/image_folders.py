"""The `folder` and `caltech256` datasets: class-per-folder image trees, decoded on every load.

A tree already split on disk (train/ val/ test/) is used as it is; otherwise validation (and test)
images are held out with resnetcli.data.holdout. Files that cannot be images are set aside before use,
each with its reason in source.notes['problems'] (open_source warns about each). Normalization is
ImageNet's: measuring thousands of large photos at every start would cost more than it gains; run
`preprocess` to get measured statistics.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from pathlib import Path

from resnetcli.data.download import dataset_root, fetch
from resnetcli.data.folders import ClassTree, scan_class_tree
from resnetcli.data.headers import set_aside_unreadable
from resnetcli.data.holdout import check_fraction, check_seed, hold_out
from resnetcli.data.images import dataset_channels, parse_channels, stored_header
from resnetcli.data.source import FileSplit, HeldOut, Source, Split
from resnetcli.errors import DataError, UsageError

#: Caltech-256's background class, left out unless include_clutter=True
CALTECH_CLUTTER = "257.clutter"


def _presplit_dirs(root: Path) -> dict[str, Path]:
    """{'train': root/train, 'val': root/val, ...} when the tree is already split, else {}."""
    aliases = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}
    found: dict[str, Path] = {}
    for split, names in aliases.items():
        for n in names:
            if (root / n).is_dir():
                found[split] = root / n
                break
    if "train" in found and len(found) > 1:
        return found
    return {}


def _check_side(value: object) -> int | None:
    """decode_size as a whole positive number of pixels (None stays None), or one UsageError line."""
    if value is None:
        return None
    try:
        side = int(value)  # type: ignore[call-overload]
        valid = side > 0 and side == float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):  # 'abc', inf, nan
        valid = False
    if not valid or isinstance(value, bool):
        raise UsageError(f"decode_size must be a positive whole number of pixels, got {value}")
    return side


def _image_folder(
    name: str,
    root: Path,
    *,
    val_split: float,
    test_split: float,
    seed: int,
    label_pattern: str | None,
    exclude_classes: Sequence[str],
    test_root: str | os.PathLike[str] | None,
    decode_size: int | None,
    check_images: bool,
    channels: int | str,
) -> Source:
    val_split, seed = check_fraction("val_split", val_split), check_seed(seed)
    wanted = parse_channels(channels, "channels")
    test_split = check_fraction("test_split", test_split)
    decode_size = _check_side(decode_size)
    if val_split + test_split >= 1.0:
        raise UsageError(f"val_split + test_split must leave images to train on, got {val_split} + {test_split}")
    if isinstance(exclude_classes, str):
        exclude_classes = [exclude_classes]
    scan = dict(label_pattern=label_pattern, exclude_classes=tuple(exclude_classes))
    problems: list[tuple[str, str]] = []
    ignored: list[str] = []
    made: list[FileSplit] = []
    judged: list[int] = []  # the channels of each file whose header was read, for channels='auto'
    unjudged: list[Path] = []

    def files(tree: ClassTree, base: Path, prefix: str = "") -> FileSplit:
        """The split of a scanned tree (paths `prefix + relative path` under `base`), noting what it set aside."""
        if check_images:
            tree = set_aside_unreadable(tree)
        noted = prefix if base == root else str(base) + os.sep  # notes are relative to the source's root
        problems.extend((noted + p, r) for p, r in tree.problems)
        ignored.extend(noted + p for p in tree.ignored)
        split = FileSplit(base, [prefix + p for p, _ in tree.files], [c for _, c in tree.files],
                          decode_size=decode_size)
        if tree.stored is not None:
            judged.extend(tree.stored)
        else:
            unjudged.extend(split.path(i) for i in range(len(split)))
        made.append(split)
        return split

    splits: dict[str, Split] = {}
    held: list[HeldOut] = []
    origins: dict[str, str] = {}
    presplit = _presplit_dirs(root)
    if presplit:
        # Already split on disk (train/ val/ test/): use it as it is, holding out val only if it has none.
        train_tree = scan_class_tree(presplit["train"], **scan)
        classes = train_tree.classes
        for split, folder in presplit.items():
            tree = train_tree if split == "train" else scan_class_tree(folder, classes=classes, **scan)
            splits[split] = files(tree, root, folder.name + "/")
            origins[split] = folder.name + "/"
        if "val" not in splits:
            carved, held = hold_out(splits["train"], {"val": val_split}, seed,
                                    why=f"val_split={val_split:g} and {root} has no val/ folder")
            splits.update(carved)
    else:
        tree = scan_class_tree(root, **scan)
        classes = tree.classes
        splits, held = hold_out(files(tree, root, ""), {"val": val_split, "test": test_split}, seed,
                                why=f"val_split={val_split:g}, test_split={test_split:g}")
        origins["train"] = f"{root.name}/"

    if test_root is not None:
        if "test" in splits:
            raise UsageError(f"{root} already has a test split; leave out the separate test folder or test_split")
        test_root = Path(test_root)
        tree = scan_class_tree(test_root, classes=classes, **scan)
        splits["test"] = files(tree, test_root)
        origins["test"] = str(test_root)

    if len(splits["train"]) == 0:
        raise DataError(f"{root} has no readable image files to train on")
    if wanted == "auto":  # preprocess's rule, so a raw folder and its preprocessed copy build the same network
        wanted = dataset_channels(itertools.chain(judged, (stored_header(p)[1] for p in unjudged)))
    for split in made:
        split.channels = wanted
    return Source(
        name=name, root=root, classes=classes, splits=splits, channels=wanted, image_size=None,
        notes={"problems": problems, "ignored": ignored}, held_out=held, origins=origins,
    )


def folder(
    root: str | os.PathLike[str] | None = None,
    *,
    val_split: float = 0.2,
    test_split: float = 0.0,
    seed: int = 0,
    label_pattern: str | None = None,
    exclude_classes: Sequence[str] = (),
    test_root: str | os.PathLike[str] | None = None,
    decode_size: int | None = None,
    check_images: bool = True,
    channels: int | str = "auto",
) -> Source:
    """A raw class-per-folder image tree (Caltech layout, 'NNN.name' -> 'name'), split by a seed.

    Uses root/train, root/val, root/test as given when they exist; otherwise draws a stratified
    val (and test) split with `seed`. test_root: a separate tree for the test split. decode_size:
    decode big JPEGs at a reduced scale, never below this smaller side. check_images: open every
    file's header first and set aside those that are not images. channels: 1, 3 or auto, as
    `preprocess --channels` (auto: 1 when every file is stored gray, else 3).
    """
    if root is None:
        raise UsageError("the 'folder' dataset needs a folder: pass it as the dataset (or --root)")
    return _image_folder(
        "folder", Path(root), val_split=val_split, test_split=test_split, seed=seed,
        label_pattern=label_pattern, exclude_classes=exclude_classes, test_root=test_root,
        decode_size=decode_size, check_images=check_images, channels=channels,
    )


def caltech256(
    root: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    val_split: float = 0.2,
    test_split: float = 0.0,
    seed: int = 0,
    include_clutter: bool = False,
    exclude_classes: Sequence[str] = (),
    decode_size: int | None = None,
    check_images: bool = True,
    channels: int | str = "auto",
) -> Source:
    """Caltech-256 (30,607 photos, 256 classes + clutter) in torchvision's layout; download=True fetches it."""
    base = dataset_root(root)
    candidates = [base / "caltech256" / "256_ObjectCategories", base / "256_ObjectCategories", base]
    found = next((c for c in candidates if c.name == "256_ObjectCategories" and c.is_dir()), None)
    if found is None and download:
        from torchvision.datasets import Caltech256

        fetch("Caltech-256", base, lambda: Caltech256(str(base), download=True),
              f"put 256_ObjectCategories/ (from 256_ObjectCategories.tar) in {base / 'caltech256'}")
        found = next((c for c in candidates if c.name == "256_ObjectCategories" and c.is_dir()), None)
    if found is None:
        raise DataError(
            f"Caltech-256 not found: expected {candidates[0]}; put the extracted 256_ObjectCategories/ there, "
            "pass --root DIR holding caltech256/256_ObjectCategories, or set download=true (network)"
        )
    if isinstance(exclude_classes, str):
        exclude_classes = [exclude_classes]
    excluded = tuple(exclude_classes) + (() if include_clutter else (CALTECH_CLUTTER,))
    return _image_folder(
        "caltech256", found, val_split=val_split, test_split=test_split, seed=seed, label_pattern=None,
        exclude_classes=excluded, test_root=None, decode_size=decode_size, check_images=check_images,
        channels=channels,
    )

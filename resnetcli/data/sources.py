"""The built-in datasets, registered in pyproject.toml under `resnetcli.datasets`.

Each builder is `name(root=None, **options) -> Source`; the first docstring line is what
`resnetcli list datasets` shows. Normalization statistics:

- processed: read from the folder's rgb_val.json (measured on its train split by `preprocess`);
- cifar10, cifar100, cifar10-bin, mnist, fashion-mnist: computed exactly from the training images
  when the files are read (a histogram per channel, well under a second);
- folder, caltech256: ImageNet's mean/std (torchvision's), because measuring thousands of large
  photos at every start would cost more than it gains; run `preprocess` to get measured ones.

Named datasets look for their files under `root`, by default $RESNETCLI_DATA or
~/.cache/resnetcli/datasets (Fashion-MNIST and MNIST also where Debian's dataset packages put them).
Nothing downloads unless asked (`download=True`, or `resnetcli preprocess --input NAME`).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from resnetcli.data import (
    IMAGENET_STD,
    ArraySplit,
    FileSplit,
    Source,
    Split,
    SubsetSplit,
    stratified_split,
)
from resnetcli.data.folders import scan_class_tree
from resnetcli.data.formats import (
    channel_stats,
    read_cifar_batches,
    read_cifar_bin,
    read_cifar_meta,
    read_idx,
)
from resnetcli.errors import DataError, UsageError

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
MNIST_CLASSES = [str(d) for d in range(10)]

#: where Debian's dataset-fashion-mnist installs its idx files
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
DEBIAN_MNIST = Path("/usr/share/datasets/mnist")

#: seconds a download may wait on a silent connection before giving up
DOWNLOAD_TIMEOUT = 60.0


def data_home() -> Path:
    """Default root for named datasets: $RESNETCLI_DATA, else ~/.cache/resnetcli/datasets."""
    return Path(os.environ.get("RESNETCLI_DATA") or "~/.cache/resnetcli/datasets").expanduser()


def _check_fraction(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise UsageError(f"{name} must be in [0, 1), got {value}")
    return value


def _download(what: str, root: Path, fetch: Callable[[], object], hint: str) -> None:
    """Run a torchvision download; any failure (no network, bad checksum) becomes one clear line."""
    import socket

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT)  # a firewalled network must fail, not hang forever
    try:
        fetch()
    except Exception as exc:  # urllib, ssl, checksum, disk: all mean "could not get the files"
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        raise DataError(
            f"{what} was not found under {root} and downloading it failed ({reason}); "
            f"without a network, {hint}"
        ) from None
    finally:
        socket.setdefaulttimeout(previous)


# ---------------------------------------------------------------------------------------------------------
# image folders


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
    decode_size: int | None = None,
) -> Source:
    val_split = _check_fraction("val_split", val_split)
    if decode_size is not None and int(decode_size) <= 0:
        raise UsageError(f"decode_size must be a positive number of pixels, got {decode_size}")
    test_split = _check_fraction("test_split", test_split)
    if val_split + test_split >= 1.0:
        raise UsageError(f"val_split + test_split must leave images to train on, got {val_split} + {test_split}")
    if isinstance(exclude_classes, str):
        exclude_classes = [exclude_classes]
    scan = dict(label_pattern=label_pattern, exclude_classes=tuple(exclude_classes))
    problems: list[tuple[str, str]] = []
    ignored: list[str] = []
    splits: dict[str, Split] = {}

    presplit = _presplit_dirs(root)
    if presplit:
        # Already split on disk (train/ val/ test/): use it as it is.
        train_tree = scan_class_tree(presplit["train"], **scan)
        classes = train_tree.classes
        for split, folder in presplit.items():
            tree = train_tree if split == "train" else scan_class_tree(folder, classes=classes, **scan)
            prefix = folder.name + "/"
            splits[split] = FileSplit(root, [prefix + p for p, _ in tree.files], [c for _, c in tree.files],
                                      decode_size=decode_size)
            problems += [(prefix + p, r) for p, r in tree.problems]
            ignored += [prefix + p for p in tree.ignored]
        if "val" not in splits and val_split > 0:
            keep, held = stratified_split(splits["train"].labels, [val_split], seed)
            base = splits["train"]
            splits["train"], splits["val"] = SubsetSplit(base, keep), SubsetSplit(base, held)
    else:
        tree = scan_class_tree(root, **scan)
        classes = tree.classes
        problems += tree.problems
        ignored += tree.ignored
        every = FileSplit(root, [p for p, _ in tree.files], [c for _, c in tree.files],
                          decode_size=decode_size)
        fractions = [f for f in (val_split, test_split) if f > 0]
        parts = stratified_split(every.labels, fractions, seed)
        splits["train"] = SubsetSplit(every, parts[0])
        names = [n for n, f in (("val", val_split), ("test", test_split)) if f > 0]
        for split, part in zip(names, parts[1:]):
            splits[split] = SubsetSplit(every, part)

    if test_root is not None:
        if "test" in splits:
            raise UsageError(f"{root} already has a test split; leave out the separate test folder or test_split")
        test_root = Path(test_root)
        tree = scan_class_tree(test_root, classes=classes, **scan)
        splits["test"] = FileSplit(test_root, [p for p, _ in tree.files], [c for _, c in tree.files],
                                   decode_size=decode_size)
        problems += [(str(test_root / p), r) for p, r in tree.problems]
        ignored += [str(test_root / p) for p in tree.ignored]

    if len(splits["train"]) == 0:
        raise DataError(f"{root} has no readable image files to train on")
    return Source(
        name=name, root=root, classes=classes, splits=splits, channels=3, image_size=None,
        notes={"problems": problems, "ignored": ignored},
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
) -> Source:
    """A raw class-per-folder image tree (Caltech layout, 'NNN.name' -> 'name'), split by a seed.

    Uses root/train, root/val, root/test as given when they exist; otherwise draws a stratified
    val (and test) split with `seed`. test_root: a separate tree for the test split. decode_size:
    decode big JPEGs at a reduced scale, never below this smaller side.
    """
    if root is None:
        raise UsageError("the 'folder' dataset needs a folder: pass it as the dataset (or --root)")
    return _image_folder(
        "folder", Path(root), val_split=val_split, test_split=test_split, seed=seed,
        label_pattern=label_pattern, exclude_classes=exclude_classes, test_root=test_root,
        decode_size=decode_size,
    )


def caltech256(
    root: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    val_split: float = 0.2,
    test_split: float = 0.0,
    seed: int = 0,
    include_clutter: bool = False,
    decode_size: int | None = None,
) -> Source:
    """Caltech-256 (30,607 photos, 256 classes + clutter) in torchvision's layout; download=True fetches it."""
    base = Path(root).expanduser() if root is not None else data_home()
    candidates = [base / "caltech256" / "256_ObjectCategories", base / "256_ObjectCategories", base]
    found = next((c for c in candidates if c.name == "256_ObjectCategories" and c.is_dir()), None)
    if found is None and download:
        from torchvision.datasets import Caltech256

        _download("Caltech-256", base, lambda: Caltech256(str(base), download=True),
                  f"put 256_ObjectCategories/ (from 256_ObjectCategories.tar) in {base / 'caltech256'}")
        found = next((c for c in candidates if c.name == "256_ObjectCategories" and c.is_dir()), None)
    if found is None:
        raise DataError(
            f"Caltech-256 not found: expected {candidates[0]}; put the extracted 256_ObjectCategories/ there, "
            "pass --root DIR holding caltech256/256_ObjectCategories, or set download=true (network)"
        )
    return _image_folder(
        "caltech256", found, val_split=val_split, test_split=test_split, seed=seed, label_pattern=None,
        exclude_classes=() if include_clutter else ("257.clutter",), test_root=None, decode_size=decode_size,
    )


# ---------------------------------------------------------------------------------------------------------
# the processed layout written by `resnetcli preprocess`


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
    if std is not None and len(std) != len(mean):
        raise DataError(f"{path}: 'mean' has {len(mean)} values but 'std' has {len(std)}")
    return mean, std, len(mean)


def processed(root: str | os.PathLike[str] | None = None, *, val_split: float = 0.0, seed: int = 0) -> Source:
    """A folder written by `resnetcli preprocess` (categories.csv, train/val/test.csv, rgb_val.json).

    val_split holds out part of train.csv for validation, only when the folder has no val.csv.
    """
    val_split = _check_fraction("val_split", val_split)
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
    if "val" not in splits and val_split > 0:
        keep, held = stratified_split(splits["train"].labels, [val_split], seed)
        base = splits["train"]
        splits["train"], splits["val"] = SubsetSplit(base, keep), SubsetSplit(base, held)
    image_size = None
    report = root / "report.json"
    if report.is_file():
        try:
            value = json.loads(report.read_text(encoding="utf-8")).get("image_size")
            image_size = int(value) if value else None
        except (OSError, ValueError, AttributeError, TypeError):
            image_size = None  # the report is informative only
    return Source(
        name="processed", root=root, classes=classes, splits=splits, channels=channels,
        mean=mean, std=std, image_size=image_size,
    )


# ---------------------------------------------------------------------------------------------------------
# array datasets


def _array_source(
    name: str,
    root: Path,
    classes: list[str],
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    *,
    val_split: float,
    seed: int,
) -> Source:
    val_split = _check_fraction("val_split", val_split)
    for split, (images, labels) in (("train", train), ("test", test)):
        if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
            raise DataError(f"{name} at {root}: {split} labels run outside 0..{len(classes) - 1}")
    images, labels = train
    if images.ndim == 3:
        images = images[..., None]
    mean, std = channel_stats(images)
    whole = ArraySplit(images, labels)
    splits: dict[str, Split] = {}
    if val_split > 0:
        keep, held = stratified_split(whole.labels, [val_split], seed)
        splits["train"], splits["val"] = SubsetSplit(whole, keep), SubsetSplit(whole, held)
    else:
        splits["train"] = whole
    splits["test"] = ArraySplit(*test)
    return Source(
        name=name, root=root, classes=classes, splits=splits, channels=images.shape[-1],
        mean=mean, std=std, image_size=images.shape[1],
    )


def _find_dir(candidates: list[Path], required: Sequence[str]) -> Path | None:
    for c in candidates:
        if all((c / r).is_file() for r in required):
            return c
    return None


def _torchvision_fetch(dataset: str, base: Path) -> Callable[[], object]:
    """torchvision's downloader for `dataset` (imported only when a download is asked for)."""

    def fetch() -> object:
        import torchvision.datasets

        return getattr(torchvision.datasets, dataset)(str(base), train=True, download=True)

    return fetch


def _locate(
    what: str, base: Path, folder: str, required: Sequence[str], *, expected: str, archive: str,
    fetch: Callable[[], object] | None = None, downloadable: bool = True,
) -> Path:
    """The folder holding `required` (base/folder or base itself), downloading first when `fetch` is given."""
    candidates = [base / folder, base]
    found = _find_dir(candidates, required)
    if found is None and fetch is not None:
        _download(what, base, fetch, f"put {folder}/ (from {archive}) in {base}")
        found = _find_dir(candidates, required)
    if found is None:
        how = ", or set download=true (network)" if downloadable else ""
        raise DataError(
            f"{what} not found: expected {candidates[0]}/{expected} (from {archive}); "
            f"pass --root DIR holding {folder}{how}"
        )
    return found


def cifar10(
    root: str | os.PathLike[str] | None = None, *, download: bool = False, val_split: float = 0.0, seed: int = 0
) -> Source:
    """CIFAR-10 (60,000 32x32 colour images, 10 classes) in torchvision's python format."""
    base = Path(root).expanduser() if root is not None else data_home()
    found = _locate(
        "CIFAR-10", base, "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"],
        expected="data_batch_1..5, test_batch, batches.meta", archive="cifar-10-python.tar.gz",
        fetch=_torchvision_fetch("CIFAR10", base) if download else None,
    )
    classes = read_cifar_meta(found / "batches.meta", "label_names")
    train = read_cifar_batches([found / f"data_batch_{i}" for i in range(1, 6)], "labels")
    test = read_cifar_batches([found / "test_batch"], "labels")
    return _array_source("cifar10", found, classes, train, test, val_split=val_split, seed=seed)


def cifar100(
    root: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    label_type: str = "fine",
    val_split: float = 0.0,
    seed: int = 0,
) -> Source:
    """CIFAR-100 (60,000 32x32 colour images, 100 fine or 20 coarse classes) in torchvision's python format."""
    if label_type not in ("fine", "coarse"):
        raise UsageError(f"cifar100 label_type must be 'fine' or 'coarse', got '{label_type}'")
    base = Path(root).expanduser() if root is not None else data_home()
    found = _locate(
        "CIFAR-100", base, "cifar-100-python", ["train", "test", "meta"],
        expected="train, test, meta", archive="cifar-100-python.tar.gz",
        fetch=_torchvision_fetch("CIFAR100", base) if download else None,
    )
    classes = read_cifar_meta(found / "meta", f"{label_type}_label_names")
    key = f"{label_type}_labels"
    train = read_cifar_batches([found / "train"], key)
    test = read_cifar_batches([found / "test"], key)
    return _array_source("cifar100", found, classes, train, test, val_split=val_split, seed=seed)


def cifar10_bin(root: str | os.PathLike[str] | None = None, *, val_split: float = 0.0, seed: int = 0) -> Source:
    """CIFAR-10 in its binary format (cifar-10-batches-bin: 1 label byte + 3072 pixel bytes per record)."""
    base = Path(root).expanduser() if root is not None else data_home()
    found = _locate(
        "CIFAR-10 binary", base, "cifar-10-batches-bin", [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"],
        expected="data_batch_1..5.bin and test_batch.bin", archive="cifar-10-binary.tar.gz", downloadable=False,
    )
    meta = found / "batches.meta.txt"
    if meta.is_file():
        classes = [line.strip() for line in meta.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    train = read_cifar_bin([found / f"data_batch_{i}.bin" for i in range(1, 6)])
    test = read_cifar_bin([found / "test_batch.bin"])
    return _array_source("cifar10-bin", found, classes, train, test, val_split=val_split, seed=seed)


_IDX = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _idx_file(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):  # some mirrors write 'train-images.idx3-ubyte'
        if (folder / name).is_file():
            return folder / name
    return None


def _find_idx_dir(candidates: list[Path]) -> Path | None:
    for c in candidates:
        if all(_idx_file(c, stem) for pair in _IDX.values() for stem in pair):
            return c
    return None


def _read_idx_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    images_file, labels_file = (_idx_file(folder, stem) for stem in _IDX[split])
    images, labels = read_idx(images_file), read_idx(labels_file)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(
            f"{folder}: {split} images {images.shape} and labels {labels.shape} do not match (N x H x W and N)"
        )
    return images[..., None], labels.astype(np.int64)


def _idx_source(
    name: str, title: str, classes: list[str], torchvision_name: str, debian: Path,
    root: str | os.PathLike[str] | None, download: bool, val_split: float, seed: int,
) -> Source:
    base = Path(root).expanduser() if root is not None else data_home()
    candidates = [base, base / torchvision_name / "raw", base / name, base / "raw"]
    if root is None:
        candidates.insert(0, debian)
    found = _find_idx_dir(candidates)
    if found is None and download:
        import torchvision.datasets

        dataset = getattr(torchvision.datasets, torchvision_name)
        _download(title, base, lambda: dataset(str(base), train=True, download=True),
                  f"put the four idx files (train-images-idx3-ubyte.gz, ...) in {base / torchvision_name / 'raw'}")
        found = _find_idx_dir(candidates)
    if found is None:
        where = ", ".join(str(c) for c in candidates[:3])
        raise DataError(
            f"{title} not found: looked for train-images-idx3-ubyte[.gz] and the other idx files in {where}; "
            "pass --root DIR holding them, or set download=true (network)"
        )
    train, test = _read_idx_split(found, "train"), _read_idx_split(found, "test")
    return _array_source(name, found, classes, train, test, val_split=val_split, seed=seed)


def mnist(
    root: str | os.PathLike[str] | None = None, *, download: bool = False, val_split: float = 0.0, seed: int = 0
) -> Source:
    """MNIST handwritten digits (70,000 28x28 grayscale images, 10 classes) from idx files."""
    return _idx_source("mnist", "MNIST", MNIST_CLASSES, "MNIST", DEBIAN_MNIST, root, download, val_split, seed)


def fashion_mnist(
    root: str | os.PathLike[str] | None = None, *, download: bool = False, val_split: float = 0.0, seed: int = 0
) -> Source:
    """Fashion-MNIST (70,000 28x28 grayscale clothing images, 10 classes) from idx files (Debian's by default)."""
    return _idx_source(
        "fashion-mnist", "Fashion-MNIST", FASHION_MNIST_CLASSES, "FashionMNIST", DEBIAN_FASHION_MNIST,
        root, download, val_split, seed,
    )

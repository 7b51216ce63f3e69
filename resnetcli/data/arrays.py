"""The datasets held in memory: CIFAR-10/100 (python and binary formats), MNIST and Fashion-MNIST.

Normalization statistics are computed exactly from the training images when the files are read (a
histogram per channel, well under a second). Fashion-MNIST and MNIST are also found where Debian's
dataset packages put them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from resnetcli.data.download import dataset_root, fetch
from resnetcli.data.formats import channel_stats, read_cifar_batches, read_cifar_bin, read_cifar_meta, read_idx
from resnetcli.data.holdout import check_fraction, check_seed, hold_out
from resnetcli.data.source import ArraySplit, Source
from resnetcli.errors import DataError, UsageError

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
MNIST_CLASSES = [str(d) for d in range(10)]

#: where Debian's dataset-fashion-mnist installs its idx files
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
DEBIAN_MNIST = Path("/usr/share/datasets/mnist")


def _array_source(
    name: str,
    root: Path,
    classes: list[str],
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    *,
    val_split: float,
    seed: int,
    origins: tuple[str, str],
) -> Source:
    """A source of in-memory train and test arrays; origins: the files each was read from."""
    val_split, seed = check_fraction("val_split", val_split), check_seed(seed)
    for split, (_, labels) in (("train", train), ("test", test)):
        if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
            raise DataError(f"{name} at {root}: {split} labels run outside 0..{len(classes) - 1}")
    images, labels = train
    if images.ndim == 3:
        images = images[..., None]
    mean, std = channel_stats(images)
    splits, held = hold_out(ArraySplit(images, labels), {"val": val_split}, seed, why=f"val_split={val_split:g}")
    splits["test"] = ArraySplit(*test)
    return Source(
        name=name, root=root, classes=classes, splits=splits, channels=images.shape[-1],
        mean=mean, std=std, image_size=images.shape[1], held_out=held,
        origins={"train": origins[0], "test": origins[1]},
    )


def _find_dir(candidates: list[Path], required: Sequence[str]) -> Path | None:
    for c in candidates:
        if all((c / r).is_file() for r in required):
            return c
    return None


def _torchvision_fetch(dataset: str, base: Path) -> Callable[[], object]:
    """torchvision's downloader for `dataset` (imported only when a download is asked for)."""

    def run() -> object:
        import torchvision.datasets

        return getattr(torchvision.datasets, dataset)(str(base), train=True, download=True)

    return run


def _locate(
    what: str, base: Path, folder: str, required: Sequence[str], *, expected: str, archive: str,
    downloader: Callable[[], object] | None = None, downloadable: bool = True,
) -> Path:
    """The folder holding `required` (base/folder or base itself), downloading first when `downloader` is given."""
    candidates = [base / folder, base]
    found = _find_dir(candidates, required)
    if found is None and downloader is not None:
        fetch(what, base, downloader, f"put {folder}/ (from {archive}) in {base}")
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
    base = dataset_root(root)
    found = _locate(
        "CIFAR-10", base, "cifar-10-batches-py",
        [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"],
        expected="data_batch_1..5, test_batch, batches.meta", archive="cifar-10-python.tar.gz",
        downloader=_torchvision_fetch("CIFAR10", base) if download else None,
    )
    classes = read_cifar_meta(found / "batches.meta", "label_names")
    train = read_cifar_batches([found / f"data_batch_{i}" for i in range(1, 6)], "labels")
    test = read_cifar_batches([found / "test_batch"], "labels")
    return _array_source("cifar10", found, classes, train, test, val_split=val_split, seed=seed,
                         origins=("data_batch_1..5", "test_batch"))


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
    base = dataset_root(root)
    found = _locate(
        "CIFAR-100", base, "cifar-100-python", ["train", "test", "meta"],
        expected="train, test, meta", archive="cifar-100-python.tar.gz",
        downloader=_torchvision_fetch("CIFAR100", base) if download else None,
    )
    classes = read_cifar_meta(found / "meta", f"{label_type}_label_names")
    key = f"{label_type}_labels"
    train = read_cifar_batches([found / "train"], key)
    test = read_cifar_batches([found / "test"], key)
    return _array_source("cifar100", found, classes, train, test, val_split=val_split, seed=seed,
                         origins=("train", "test"))


def cifar10_bin(root: str | os.PathLike[str] | None = None, *, val_split: float = 0.0, seed: int = 0) -> Source:
    """CIFAR-10 in its binary format (cifar-10-batches-bin: 1 label byte + 3072 pixel bytes per record)."""
    base = dataset_root(root)
    found = _locate(
        "CIFAR-10 binary", base, "cifar-10-batches-bin",
        [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"],
        expected="data_batch_1..5.bin and test_batch.bin", archive="cifar-10-binary.tar.gz", downloadable=False,
    )
    meta = found / "batches.meta.txt"
    if meta.is_file():
        classes = [line.strip() for line in meta.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    train = read_cifar_bin([found / f"data_batch_{i}.bin" for i in range(1, 6)])
    test = read_cifar_bin([found / "test_batch.bin"])
    return _array_source("cifar10-bin", found, classes, train, test, val_split=val_split, seed=seed,
                         origins=("data_batch_1..5.bin", "test_batch.bin"))


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
    base = dataset_root(root)
    candidates = [base, base / torchvision_name / "raw", base / name, base / "raw"]
    if root is None:
        candidates.insert(0, debian)
    found = _find_idx_dir(candidates)
    if found is None and download:
        import torchvision.datasets

        dataset = getattr(torchvision.datasets, torchvision_name)
        fetch(title, base, lambda: dataset(str(base), train=True, download=True),
                  f"put the four idx files (train-images-idx3-ubyte.gz, ...) in {base / torchvision_name / 'raw'}")
        found = _find_idx_dir(candidates)
    if found is None:
        where = ", ".join(str(c) for c in candidates[:3])
        raise DataError(
            f"{title} not found: looked for train-images-idx3-ubyte[.gz] and the other idx files in {where}; "
            "pass --root DIR holding them, or set download=true (network)"
        )
    train, test = _read_idx_split(found, "train"), _read_idx_split(found, "test")
    return _array_source(name, found, classes, train, test, val_split=val_split, seed=seed,
                         origins=("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"))


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

"""Readers for the array dataset formats: CIFAR python pickles, CIFAR-10 binary, MNIST idx.

Each returns (N, H, W, C) uint8 images and int64 labels, validated against the format's own header or
record size, so a truncated download gives one clear DataError naming the file.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from resnetcli.data.source import MIN_STD
from resnetcli.errors import DataError

#: the only globals a CIFAR python batch needs: numpy arrays (written by numpy 1.x or 2.x) and dtypes
_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),  # protocol-5 pickles
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("_codecs", "encode"),  # how protocol-2 pickles spell bytes
    ("numpy", "dtype"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """CIFAR's python format is a pickle; refuse anything but plain containers and numpy arrays in it."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (not part of a CIFAR batch)")


def _key(d: dict, name: str) -> Any:
    # The original batches were written by Python 2: keys may be bytes.
    if name in d:
        return d[name]
    if name.encode() in d:
        return d[name.encode()]
    raise KeyError(name)


def read_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            data = _NumpyOnlyUnpickler(fh, encoding="latin1").load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DataError(f"{path}: not a readable CIFAR python batch ({exc}); download the dataset again") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: not a CIFAR python batch (a {type(data).__name__}, not a dict)")
    return data


def read_cifar_batches(paths: list[Path], label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate CIFAR python batches: 'data' (N x 3072, channel-major) and `label_key`."""
    images, labels = [], []
    for path in paths:
        batch = read_pickle(path)
        try:
            data = np.asarray(_key(batch, "data"))
            lab = np.asarray(_key(batch, label_key))
        except KeyError as exc:
            raise DataError(f"{path}: CIFAR batch without a '{exc.args[0]}' entry") from None
        except (ValueError, TypeError) as exc:  # ragged or odd objects in a crafted pickle
            raise DataError(f"{path}: CIFAR batch entries are not arrays of numbers ({exc})") from None
        # checked, not cast: a cast to uint8 wraps 300 to 44 silently (or raises OverflowError for a list)
        out_of_range = data.dtype.kind in "iu" and data.size > 0 and (data.min() < 0 or data.max() > 255)
        if data.dtype.kind not in "iu" or lab.dtype.kind not in "iu" or out_of_range:
            raise DataError(f"{path}: CIFAR pixels must be whole numbers from 0 to 255 and labels whole numbers")
        data, lab = data.astype(np.uint8), lab.astype(np.int64)
        if data.ndim != 2 or data.shape[1] != 3072 or len(lab) != len(data):
            raise DataError(f"{path}: expected N x 3072 pixels and N labels, got {data.shape} and {lab.shape}")
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(lab)
    return np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels)


def read_cifar_meta(path: Path, key: str) -> list[str]:
    meta = read_pickle(path)
    try:
        names = _key(meta, key)
    except KeyError:
        raise DataError(f"{path}: no '{key}' entry") from None
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


#: CIFAR-10 binary: one label byte, then 3072 pixel bytes (1024 R, 1024 G, 1024 B, row-major)
CIFAR_BIN_RECORD = 1 + 3072


def read_cifar_bin(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for path in paths:
        raw = np.fromfile(path, dtype=np.uint8)
        if raw.size == 0 or raw.size % CIFAR_BIN_RECORD:
            raise DataError(
                f"{path}: {raw.size} bytes is not a whole number of {CIFAR_BIN_RECORD}-byte CIFAR-10 records "
                "(truncated download?)"
            )
        records = raw.reshape(-1, CIFAR_BIN_RECORD)
        labels.append(records[:, 0].astype(np.int64))
        images.append(records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels)


def _read_maybe_gz(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot be read ({exc}); download the dataset again") from None


def read_idx(path: Path) -> np.ndarray:
    """An idx file (MNIST's format): magic 0x0000 0x08 ndim, big-endian dims, then unsigned bytes."""
    data = _read_maybe_gz(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{path}: not an idx file (bad magic number)")
    if data[2] != 0x08:
        raise DataError(f"{path}: idx element type 0x{data[2]:02x} is not unsigned bytes (0x08)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated idx header")
    dims = tuple(int.from_bytes(data[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim))
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        raise DataError(f"{path}: idx header says {dims} ({expected} bytes) but the file has {len(data)} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and std on the 0-1 scale of (N, H, W, C) uint8 images, via histograms
    (a channel that never varies gets MIN_STD)."""
    levels = np.arange(256, dtype=np.float64)
    means, stds = [], []
    for c in range(images.shape[-1]):
        counts = np.bincount(np.ascontiguousarray(images[..., c]).ravel(), minlength=256).astype(np.float64)
        total = counts.sum()
        mean = float(counts @ levels / total)
        var = float(counts @ (levels - mean) ** 2 / total)
        means.append(mean / 255.0)
        stds.append(max(var ** 0.5 / 255.0, MIN_STD))
    return tuple(means), tuple(stds)

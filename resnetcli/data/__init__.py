"""Datasets as `train`, `test` and `preprocess` see them: a Source with named Splits of (image, label).

A Source is what a `resnetcli.datasets` entry point builds: `build(root=None, **options) -> Source`.
`open_source(spec)` takes a registered name (`cifar10`, `fashion-mnist`, ...) or a path and picks the
right builder. Images come out as HxWxC uint8 numpy arrays (C = source.channels); augmentation and
tensors are the training side's business.

Where things are: source.py (Source, the Split kinds), resolve.py (name or folder -> builder),
holdout.py (the one stratified hold-out rule), folders.py (scanning class-per-folder trees),
images.py (decoding), formats.py (CIFAR and idx files); the built-in builders are image_folders.py,
processed.py and arrays.py.
"""

from resnetcli.data.holdout import hold_out, stratified_split
from resnetcli.data.resolve import SourceSpec, build_source, detect_dataset, open_source, resolve_source
from resnetcli.data.source import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    SPLIT_ORDER,
    ArraySplit,
    FileSplit,
    HeldOut,
    Source,
    Split,
    SubsetSplit,
)

__all__ = [
    "IMAGENET_MEAN", "IMAGENET_STD", "SPLIT_ORDER", "ArraySplit", "FileSplit", "HeldOut", "Source", "SourceSpec",
    "Split", "SubsetSplit", "build_source", "detect_dataset", "hold_out", "open_source", "resolve_source",
    "stratified_split",
]

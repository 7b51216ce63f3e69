"""Built-in pipelines: none, cifar, caltech (seed 002) and imagenet; plus pipelines read from YAML files.

Every pipeline first brings an image of any size to image_size (so raw folders of mixed sizes batch),
then augments (training only), then normalizes with the dataset's own mean/std and converts to a tensor.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import albumentations as A
import cv2
import yaml
from albumentations.pytorch import ToTensorV2

from resnetcli.errors import UsageError
from resnetcli.options import load_yaml

#: seed 002 (and AlexNet) resized the smaller side to 256 and cropped 224
_CROP_RATIO = 224 / 256


def _tail(mean: Sequence[float], std: Sequence[float]) -> list[A.BasicTransform]:
    # max_pixel_value=255: mean/std are on the 0-1 scale, images are uint8
    return [A.Normalize(mean=tuple(mean), std=tuple(std), max_pixel_value=255.0), ToTensorV2()]


def _resize_center(size: int, resize: int | None = None) -> list[A.BasicTransform]:
    """Smaller side to `resize` (default size), then a center crop: a no-op on images already size x size."""
    return [A.SmallestMaxSize(max_size=resize or size), A.CenterCrop(height=size, width=size)]


def none(*, train: bool, image_size: int, mean: Sequence[float], std: Sequence[float]) -> A.Compose:
    """No augmentation: resize (smaller side) and center-crop to image_size, normalize."""
    return A.Compose([*_resize_center(image_size), *_tail(mean, std)])


def cifar(
    *, train: bool, image_size: int, mean: Sequence[float], std: Sequence[float], padding: int = 4,
    reflect: bool = False, flip: bool = True,
) -> A.Compose:
    """CIFAR: pad 4 (zeros, or reflection with reflect=true as in seed 000) + random crop + flip, normalize."""
    if not train:
        return none(train=False, image_size=image_size, mean=mean, std=std)
    border = cv2.BORDER_REFLECT_101 if reflect else cv2.BORDER_CONSTANT
    ops: list[A.BasicTransform] = [
        *_resize_center(image_size),
        A.PadIfNeeded(min_height=image_size + 2 * padding, min_width=image_size + 2 * padding, border_mode=border,
                      fill=0),
        A.RandomCrop(height=image_size, width=image_size),
    ]
    if flip:
        ops.append(A.HorizontalFlip(p=0.5))
    return A.Compose([*ops, *_tail(mean, std)])


def caltech(
    *, train: bool, image_size: int, mean: Sequence[float], std: Sequence[float], shift: float = 0.0625,
    scale: float = 0.1, rotate: float = 15.0, equalize: bool = True,
) -> A.Compose:
    """Seed 002: random crop (224 of 256), shift-scale-rotate, brightness-contrast, equalize, flip, normalize."""
    resize = round(image_size / _CROP_RATIO)
    if not train:
        return A.Compose([*_resize_center(image_size, resize), *_tail(mean, std)])
    ops: list[A.BasicTransform] = [
        A.SmallestMaxSize(max_size=resize),
        A.RandomCrop(height=image_size, width=image_size),
        # ShiftScaleRotate's 2.x replacement (ShiftScaleRotate is deprecated in albumentations 2)
        A.Affine(translate_percent=(-shift, shift), scale=(1 - scale, 1 + scale), rotate=(-rotate, rotate),
                 border_mode=cv2.BORDER_CONSTANT, p=0.5),
        A.RandomBrightnessContrast(p=0.5),
    ]
    if equalize:
        ops.append(A.Equalize(p=0.2))
    ops.append(A.HorizontalFlip(p=0.5))
    return A.Compose([*ops, *_tail(mean, std)])


def imagenet(
    *, train: bool, image_size: int, mean: Sequence[float], std: Sequence[float],
    scale: tuple[float, float] = (0.08, 1.0), crop_ratio: float = 0.875,
) -> A.Compose:
    """ImageNet (torchvision reference): RandomResizedCrop + flip; eval resize to size/0.875 + center crop."""
    if not train:
        return A.Compose([*_resize_center(image_size, round(image_size / crop_ratio)), *_tail(mean, std)])
    return A.Compose([
        A.RandomResizedCrop(size=(image_size, image_size), scale=tuple(scale)),
        A.HorizontalFlip(p=0.5),
        *_tail(mean, std),
    ])


def _names(transform: Any) -> set[str]:
    found = {type(transform).__name__}
    for child in getattr(transform, "transforms", []) or []:
        found |= _names(child)
    return found


def load_pipeline_file(
    path: str | os.PathLike[str], *, train: bool, image_size: int, mean: Sequence[float], std: Sequence[float]
) -> A.Compose:
    """A pipeline serialized by albumentations (A.to_dict, saved as YAML).

    The file is either one serialized transform (used for training; evaluation then uses `none`), or a
    mapping with `train` and `eval` keys each holding one. Normalize + ToTensorV2 are appended when the
    file's pipeline has neither, so the file can stay about augmentation only.
    """
    path = Path(path)
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"augmentation file {path} is not a UTF-8 text file (give an albumentations YAML)") from None
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"cannot read augmentation file {path}: {exc}") from exc
    if not isinstance(data, Mapping):
        raise UsageError(f"augmentation file {path} must hold a serialized albumentations pipeline (a mapping)")
    if "train" in data or "eval" in data:
        part = data.get("train" if train else "eval")
        if part is None:
            if train:
                raise UsageError(f"augmentation file {path} has no 'train' pipeline")
            return none(train=False, image_size=image_size, mean=mean, std=std)
    elif train:
        part = data
    else:
        return none(train=False, image_size=image_size, mean=mean, std=std)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # defaults albumentations fills in; errors still raise
            loaded = A.from_dict(dict(part))
    except Exception as exc:  # albumentations raises assorted errors for a bad spec
        raise UsageError(
            f"augmentation file {path} is not a valid albumentations pipeline ({type(exc).__name__}: {exc})"
        ) from exc
    names = _names(loaded)
    if "ToTensorV2" in names:
        return loaded if isinstance(loaded, A.Compose) else A.Compose([loaded])
    tail = [ToTensorV2()] if "Normalize" in names else _tail(mean, std)
    return A.Compose([loaded, *tail])


def build_pipeline(
    name: str, *, train: bool, image_size: int, mean: Sequence[float], std: Sequence[float],
    options: Mapping[str, Any] | None = None,
) -> Any:
    """A registered pipeline by name, or a pipeline file (a name ending in .yaml/.yml or an existing file)."""
    from resnetcli.registry import registry

    if name.endswith((".yaml", ".yml")) or os.sep in name or Path(name).is_file():
        if not Path(name).is_file():
            raise UsageError(f"augmentation file {name} does not exist")
        if options:
            raise UsageError("--aug-option applies to named pipelines, not to a pipeline file")
        return load_pipeline_file(name, train=train, image_size=image_size, mean=mean, std=std)
    return registry("augmentations").build(name, options=options, train=train, image_size=image_size,
                                           mean=tuple(mean), std=tuple(std))

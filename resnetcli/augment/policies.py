"""Stronger pipelines: torchvision's learned and random policies (RandAugment, TrivialAugmentWide,
AutoAugment) and random erasing, on top of the cifar/imagenet crop-and-flip.

albumentations 2 has no RandAugment, TrivialAugment or AutoAugment, so the policy is torchvision.transforms.v2's
own, run on the uint8 image inside an albumentations transform. torchvision draws from torch's global
generator; here it draws from a generator seeded by the pipeline's own random generator instead, so the
pipeline stays a function of the seed engine/data.py gives every batch (exact resume) and the training loop's
torch generator is left alone. Random erasing is albumentations' Erasing, placed after Normalize so its fill
of 0 is the dataset's mean colour (as timm and torchvision erase normalized tensors).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import albumentations as A
import numpy as np
import torch
from albumentations.pytorch import ToTensorV2
from torchvision.transforms import v2

from resnetcli.augment.pipelines import cifar, imagenet
from resnetcli.errors import UsageError

#: up to this size the base is cifar's pad-and-crop, above it imagenet's random resized crop (train's default rule)
_SMALL_IMAGE = 64


class TorchvisionPolicy(A.ImageOnlyTransform):
    """A torchvision v2 policy on an HxWxC uint8 image, seeded from the pipeline's random generator."""

    def __init__(self, policy: Any, p: float = 1.0) -> None:
        super().__init__(p=p)
        self.policy = policy

    def get_params(self) -> dict[str, Any]:
        return {"torch_seed": int(self.random_generator.integers(2**63 - 1))}

    def apply(self, img: np.ndarray, torch_seed: int = 0, **params: Any) -> np.ndarray:
        gray = img.ndim == 2
        tensor = torch.from_numpy(np.ascontiguousarray(img[..., None] if gray else img)).permute(2, 0, 1)
        with torch.random.fork_rng(devices=[]):  # torch's global generator is the training loop's
            torch.manual_seed(torch_seed)
            out = self.policy(tensor).permute(1, 2, 0).numpy()
        return out[..., 0] if gray else out

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("policy",)


def _strong(policy: Any, *, train: bool, image_size: int, mean: Sequence[float], std: Sequence[float],
            erasing: float) -> A.Compose:
    """The base pipeline with `policy` before Normalize and random erasing (probability `erasing`) after it."""
    base = (cifar if image_size <= _SMALL_IMAGE else imagenet)(train=train, image_size=image_size, mean=mean, std=std)
    if not train:
        return base
    *geometry, normalize, to_tensor = base.transforms  # every built-in pipeline ends in Normalize, ToTensorV2
    assert isinstance(normalize, A.Normalize) and isinstance(to_tensor, ToTensorV2)
    ops = [*geometry]
    if policy is not None:
        ops.append(TorchvisionPolicy(policy))
    ops.append(normalize)
    if erasing > 0:
        ops.append(A.Erasing(p=erasing, fill=0))
    return A.Compose([*ops, to_tensor])


def randaugment(*, train: bool, image_size: int, mean: Sequence[float], std: Sequence[float], num_ops: int = 2,
                magnitude: int = 9, erasing: float = 0.0) -> A.Compose:
    """RandAugment (Cubuk et al. 2020; torchvision v2): num_ops random ops of one magnitude, after crop + flip."""
    return _strong(v2.RandAugment(num_ops=num_ops, magnitude=magnitude), train=train, image_size=image_size,
                   mean=mean, std=std, erasing=erasing)


def trivialaugment(*, train: bool, image_size: int, mean: Sequence[float], std: Sequence[float],
                   erasing: float = 0.0) -> A.Compose:
    """TrivialAugmentWide (Müller & Hutter 2021; torchvision v2): one random op, random strength, after crop + flip."""
    return _strong(v2.TrivialAugmentWide(), train=train, image_size=image_size, mean=mean, std=std, erasing=erasing)


def autoaugment(*, train: bool, image_size: int, mean: Sequence[float], std: Sequence[float],
                policy: str = "imagenet", erasing: float = 0.0) -> A.Compose:
    """AutoAugment (Cubuk et al. 2019; torchvision v2): a learned policy (imagenet, cifar10 or svhn)."""
    policies = {p.name.lower(): p for p in v2.AutoAugmentPolicy}
    if policy not in policies:
        raise UsageError(f"autoaugment policy '{policy}' is not one of {', '.join(sorted(policies))}")
    return _strong(v2.AutoAugment(policies[policy]), train=train, image_size=image_size, mean=mean, std=std,
                   erasing=erasing)


def erasing(*, train: bool, image_size: int, mean: Sequence[float], std: Sequence[float],
            p: float = 0.25) -> A.Compose:
    """Random erasing (Zhong et al. 2020) with probability p, after crop + flip; the erased box is the mean colour."""
    return _strong(None, train=train, image_size=image_size, mean=mean, std=std, erasing=p)

"""Seed 000's Bag-of-Tricks networks as a table of variants over resnetcli's ResNet class.

Layout follows the seed's tf.keras code (iamVarunAnand/image_classification): pre-activation blocks,
a single 3x3 stem conv for CIFAR, ResNet-D shortcuts (2x2 average pool, then 1x1 conv + BN) taken from
the pre-activated input, Squeeze-Excite (ratio 16, no biases) on the residual branch before the addition,
and a head of concatenated global average and max pooling.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from resnetcli.models import ResNet, build_resnet, se_layer

_X: dict[str, Any] = dict(stem="cifar", shortcut="D", head="avgmax", default_input_size=32)
_IMAGENET_D: dict[str, Any] = dict(stem="deep", stem_width=64, shortcut="D", default_input_size=224)
_MISH: dict[str, Any] = dict(act_layer=nn.Mish)
# The seed's SE squeezes with ReLU even in its Mish networks, and its dense layers have no bias.
_SE: dict[str, Any] = dict(attn_layer=se_layer(16, bias=False, act_layer=nn.ReLU))
# ResNeXt29 16x2d: 16 groups of 2 channels at 64 filters (and 4 at 256), the seed's [64, 64, 128, 256]
_NEXT: dict[str, Any] = dict(_X, block="preact_bottleneck", stem_width=64, reduction=1, groups=16, base_width=2,
                             stages=[(64, 3), (128, 3), (256, 3)])


def _basic(depth: int) -> dict[str, Any]:
    n = (depth - 2) // 6
    return dict(_X, block="preact_basic", stem_width=16, stages=[(16, n), (32, n), (64, n)])


VARIANTS: dict[str, dict[str, Any]] = {
    **{f"xresnet{d}": _basic(d) for d in (20, 32, 44, 56)},
    **{f"mxresnet{d}": dict(_basic(d), **_MISH) for d in (20, 32, 44, 56)},
    **{f"se_mxresnet{d}": dict(_basic(d), **_MISH, **_SE) for d in (20, 32, 44, 56)},
    "xresnet29": dict(_X, block="preact_bottleneck", stem_width=64, stages=[(64, 3), (128, 3), (256, 3)]),
    "xresnext29_16x2d": _NEXT,
    "mxresnext29_16x2d": dict(_NEXT, **_MISH),
    "se_mxresnext29_16x2d": dict(_NEXT, **_MISH, **_SE),
    # The paper's own ImageNet networks: ResNet-C deep stem (3x3 convs 32-32-64) + ResNet-D shortcuts,
    # post-activation as in its Table 5 (timm's resnet18d / resnet50d have the same parameters).
    "resnet18d": dict(_IMAGENET_D, block="basic", stages=[(64, 2), (128, 2), (256, 2), (512, 2)]),
    "resnet50d": dict(_IMAGENET_D, block="bottleneck", stages=[(256, 3), (512, 4), (1024, 6), (2048, 3)]),
}


def create(name: str, num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """Build the table variant `name` with the user's options applied."""
    return build_resnet(VARIANTS[name], num_classes, in_channels, options, arch=name)


def xresnet20(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """XResNet-20 (seed 000): pre-act, ResNet-D shortcuts, avg+max head; 0.27M params; 32 px."""
    return create("xresnet20", num_classes, in_channels, **options)


def xresnet32(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """XResNet-32 (seed 000): pre-act, ResNet-D shortcuts, avg+max head; 0.47M params; 32 px."""
    return create("xresnet32", num_classes, in_channels, **options)


def xresnet44(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """XResNet-44 (seed 000): pre-act, ResNet-D shortcuts, avg+max head; 0.66M params; 32 px."""
    return create("xresnet44", num_classes, in_channels, **options)


def xresnet56(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """XResNet-56 (seed 000): pre-act, ResNet-D shortcuts, avg+max head; 0.86M params; 32 px."""
    return create("xresnet56", num_classes, in_channels, **options)


def mxresnet20(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """MXResNet-20 (seed 000): XResNet-20 with Mish activations; 0.27M params; 32 px."""
    return create("mxresnet20", num_classes, in_channels, **options)


def mxresnet32(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """MXResNet-32 (seed 000): XResNet-32 with Mish activations; 0.47M params; 32 px."""
    return create("mxresnet32", num_classes, in_channels, **options)


def mxresnet44(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """MXResNet-44 (seed 000): XResNet-44 with Mish activations; 0.66M params; 32 px."""
    return create("mxresnet44", num_classes, in_channels, **options)


def mxresnet56(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """MXResNet-56 (seed 000): XResNet-56 with Mish activations; 0.86M params; 32 px."""
    return create("mxresnet56", num_classes, in_channels, **options)


def se_mxresnet20(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """SE-MXResNet-20 (seed 000): MXResNet-20 with Squeeze-Excite; 0.27M params, 93.10% on CIFAR-10; 32 px."""
    return create("se_mxresnet20", num_classes, in_channels, **options)


def se_mxresnet32(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """SE-MXResNet-32 (seed 000): MXResNet-32 with Squeeze-Excite; 0.47M params, 93.80% on CIFAR-10; 32 px."""
    return create("se_mxresnet32", num_classes, in_channels, **options)


def se_mxresnet44(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """SE-MXResNet-44 (seed 000): MXResNet-44 with Squeeze-Excite; 0.67M params, 93.88% on CIFAR-10; 32 px."""
    return create("se_mxresnet44", num_classes, in_channels, **options)


def se_mxresnet56(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """SE-MXResNet-56 (seed 000): MXResNet-56 with Squeeze-Excite; 0.86M params, 94.36% on CIFAR-10; 32 px."""
    return create("se_mxresnet56", num_classes, in_channels, **options)


def xresnet29(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """XResNet-29 (seed 000): pre-act bottlenecks, filters 64-128-256; 0.31M params; 32 px."""
    return create("xresnet29", num_classes, in_channels, **options)


def xresnext29_16x2d(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """XResNeXt-29 16x2d (seed 000): cardinality 16, bottleneck width 2; 0.32M params, 93.30%; 32 px."""
    return create("xresnext29_16x2d", num_classes, in_channels, **options)


def mxresnext29_16x2d(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """MXResNeXt-29 16x2d (seed 000): XResNeXt-29 16x2d with Mish; 0.32M params; 32 px."""
    return create("mxresnext29_16x2d", num_classes, in_channels, **options)


def se_mxresnext29_16x2d(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """SE-MXResNeXt-29 16x2d (seed 000): with Mish and Squeeze-Excite; 0.36M params, 94.68%; 32 px."""
    return create("se_mxresnext29_16x2d", num_classes, in_channels, **options)


def resnet18d(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """ResNet-18-D (Bag of Tricks, He et al. 2018): deep stem + avg-pool shortcuts, ImageNet-style; 224 px."""
    return create("resnet18d", num_classes, in_channels, **options)


def resnet50d(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """ResNet-50-D (Bag of Tricks, He et al. 2018): deep stem + avg-pool shortcuts, ImageNet-style; 224 px."""
    return create("resnet50d", num_classes, in_channels, **options)

"""ResNet building blocks (public, for plugins) and the one ResNet class; the built-in variants live in zoo.py."""

from resnetcli.models.blocks import (
    BLOCKS,
    BasicBlock,
    Bottleneck,
    PreActBasicBlock,
    PreActBottleneck,
    bottleneck_width,
)
from resnetcli.models.layers import (
    ACTIVATIONS,
    AvgMaxPool,
    ShortcutA,
    SqueezeExcite,
    conv1x1,
    conv3x3,
    init_weights,
    make_shortcut,
    make_stem,
)
from resnetcli.models.resnet import OPTION_NAMES, ResNet, build_resnet, se_layer

__all__ = [
    "ACTIVATIONS",
    "BLOCKS",
    "OPTION_NAMES",
    "AvgMaxPool",
    "BasicBlock",
    "Bottleneck",
    "PreActBasicBlock",
    "PreActBottleneck",
    "ResNet",
    "ShortcutA",
    "SqueezeExcite",
    "bottleneck_width",
    "build_resnet",
    "conv1x1",
    "conv3x3",
    "init_weights",
    "make_shortcut",
    "make_stem",
    "se_layer",
]

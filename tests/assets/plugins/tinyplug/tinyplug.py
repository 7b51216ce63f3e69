"""A complete resnetcli plugin: one architecture, registered through an entry point."""

from torch import nn


def build(num_classes: int, in_channels: int = 3, width: int = 8) -> nn.Module:
    """TinyNet: two 3x3 convolutions and a linear head (plugin example)."""
    model = nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
        nn.Conv2d(width, width, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(width, num_classes),
    )
    model.default_input_size = 32  # what `summarize` and `train` use when no size is given
    return model

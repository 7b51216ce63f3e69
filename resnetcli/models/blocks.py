"""Residual blocks: post-activation (He et al. 2015) and pre-activation (He et al. 2016), basic and bottleneck.

Every block maps in_channels -> out_channels at a given stride, takes its shortcut module ready-made
(`downsample`, None for the identity), and takes layer *types* so that Mish, Squeeze-Excite or another
norm are parameters, not copies. `residual=False` drops the shortcut: the plain networks of seed 004.
Attribute names follow torchvision (conv1, bn1, ..., downsample) so its checkpoints load unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from resnetcli.errors import UsageError
from resnetcli.models.layers import conv1x1, conv3x3, make_act

NormLayer = Callable[[int], nn.Module]
AttnLayer = Callable[[int], nn.Module]


def bottleneck_width(out_channels: int, reduction: int, base_width: int, groups: int) -> int:
    """Width of a bottleneck's 3x3 conv: out/reduction at base_width 64, scaled for ResNeXt (torchvision's rule)."""
    width = int(out_channels / reduction * (base_width / 64.0)) * groups
    if width < 1:
        raise UsageError(
            f"bottleneck of {out_channels} channels with reduction {reduction}, base_width {base_width} and "
            f"groups {groups} has no channels left; raise base_width"
        )
    return width


class _Block(nn.Module):
    """What every block shares: the optional shortcut and the final addition."""

    #: pre-activation blocks normalise their input themselves, so the network adds a final BN-act
    preact: bool = False
    se: nn.Module | None  # set by each block: squeeze-excite on the residual branch, or None

    def __init__(self, downsample: nn.Module | None, residual: bool) -> None:
        super().__init__()
        self.downsample = downsample
        self.residual = residual

    def _add(self, out: torch.Tensor, x: torch.Tensor, shortcut_input: torch.Tensor | None = None) -> torch.Tensor:
        """The residual branch `out` (squeeze-excited when the block has SE) plus the shortcut.

        The shortcut is `x`, or the downsampled `shortcut_input` (pre-act blocks pass their pre-activated
        input) or `x`; with residual=False there is no shortcut.
        """
        if self.se is not None:
            out = self.se(out)
        if not self.residual:
            return out
        if self.downsample is None:
            return out + x
        return out + self.downsample(x if shortcut_input is None else shortcut_input)

    def zero_init_last(self) -> None:
        """Start the residual branch at zero so each block begins as the identity (Goyal et al. 2017)."""


class BasicBlock(_Block):
    """Two 3x3 convs, BN-act after each; the second activation follows the addition."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        groups: int = 1,
        base_width: int = 64,
        reduction: int = 1,
        act_layer: type[nn.Module] = nn.ReLU,
        norm_layer: NormLayer = nn.BatchNorm2d,
        attn_layer: AttnLayer | None = None,
        residual: bool = True,
    ) -> None:
        super().__init__(downsample, residual)
        if groups != 1 or base_width != 64 or reduction != 1:
            raise UsageError("basic blocks take no groups/base_width/reduction; use a bottleneck block for ResNeXt")
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = norm_layer(out_channels)
        self.act1 = make_act(act_layer)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.bn2 = norm_layer(out_channels)
        self.se = attn_layer(out_channels) if attn_layer else None
        self.act2 = make_act(act_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act2(self._add(out, x))

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn2.weight)


class Bottleneck(_Block):
    """1x1 reduce -> 3x3 (grouped for ResNeXt) -> 1x1 expand, BN-act after each.

    The stride sits in the 3x3 conv (ResNet V1.5, as torchvision), which is more accurate than the paper's 1x1.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        groups: int = 1,
        base_width: int = 64,
        reduction: int = 4,
        act_layer: type[nn.Module] = nn.ReLU,
        norm_layer: NormLayer = nn.BatchNorm2d,
        attn_layer: AttnLayer | None = None,
        residual: bool = True,
    ) -> None:
        super().__init__(downsample, residual)
        width = bottleneck_width(out_channels, reduction, base_width, groups)
        self.conv1 = conv1x1(in_channels, width)
        self.bn1 = norm_layer(width)
        self.act1 = make_act(act_layer)
        self.conv2 = conv3x3(width, width, stride, groups)
        self.bn2 = norm_layer(width)
        self.act2 = make_act(act_layer)
        self.conv3 = conv1x1(width, out_channels)
        self.bn3 = norm_layer(out_channels)
        self.se = attn_layer(out_channels) if attn_layer else None
        self.act3 = make_act(act_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.act3(self._add(out, x))

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.bn3.weight)


class PreActBasicBlock(_Block):
    """BN-act-conv3x3 twice (identity mappings, He et al. 2016); nothing after the addition.

    A shortcut that changes the shape (A, B or D) sees the pre-activated input, as in the paper's code
    and seed 000; the identity shortcut sees the raw input.
    """

    preact = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        groups: int = 1,
        base_width: int = 64,
        reduction: int = 1,
        act_layer: type[nn.Module] = nn.ReLU,
        norm_layer: NormLayer = nn.BatchNorm2d,
        attn_layer: AttnLayer | None = None,
        residual: bool = True,
    ) -> None:
        super().__init__(downsample, residual)
        if groups != 1 or base_width != 64 or reduction != 1:
            raise UsageError("basic blocks take no groups/base_width/reduction; use a bottleneck block for ResNeXt")
        self.bn1 = norm_layer(in_channels)
        self.act1 = make_act(act_layer)
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn2 = norm_layer(out_channels)
        self.act2 = make_act(act_layer)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.se = attn_layer(out_channels) if attn_layer else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.act1(self.bn1(x))
        out = self.conv1(pre)
        out = self.conv2(self.act2(self.bn2(out)))
        return self._add(out, x, pre)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.conv2.weight)


class PreActBottleneck(_Block):
    """BN-act-conv 1x1 -> 3x3 -> 1x1 at 1/reduction width (seed 002's block; ResNeXt with groups)."""

    preact = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        groups: int = 1,
        base_width: int = 64,
        reduction: int = 4,
        act_layer: type[nn.Module] = nn.ReLU,
        norm_layer: NormLayer = nn.BatchNorm2d,
        attn_layer: AttnLayer | None = None,
        residual: bool = True,
    ) -> None:
        super().__init__(downsample, residual)
        width = bottleneck_width(out_channels, reduction, base_width, groups)
        self.bn1 = norm_layer(in_channels)
        self.act1 = make_act(act_layer)
        self.conv1 = conv1x1(in_channels, width)
        self.bn2 = norm_layer(width)
        self.act2 = make_act(act_layer)
        self.conv2 = conv3x3(width, width, stride, groups)
        self.bn3 = norm_layer(width)
        self.act3 = make_act(act_layer)
        self.conv3 = conv1x1(width, out_channels)
        self.se = attn_layer(out_channels) if attn_layer else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.act1(self.bn1(x))
        out = self.conv1(pre)
        out = self.conv2(self.act2(self.bn2(out)))
        out = self.conv3(self.act3(self.bn3(out)))
        return self._add(out, x, pre)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.conv3.weight)


BLOCKS: dict[str, type[_Block]] = {
    "basic": BasicBlock,
    "bottleneck": Bottleneck,
    "preact_basic": PreActBasicBlock,
    "preact_bottleneck": PreActBottleneck,
}

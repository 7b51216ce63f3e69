"""Small building blocks shared by every ResNet: convolutions, shortcuts, Squeeze-Excite, stems, heads, init."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from resnetcli.errors import UsageError

#: activation names accepted as strings (for `--arch-option act_layer=mish`)
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "mish": nn.Mish,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
}

#: A: parameter-free (subsample + zero-padded channels), B: 1x1 projection + BN,
#: B3: 3x3 projection + BN (seed 003), D: 2x2 average pool then 1x1 projection + BN (ResNet-D / XResNet)
SHORTCUTS = ("A", "B", "B3", "D")
STEMS = ("imagenet", "cifar", "deep")
HEADS = ("avg", "max", "avgmax")
INITS = ("kaiming", "xavier")


def resolve_act(act_layer: type[nn.Module] | str) -> type[nn.Module]:
    """An activation type from a type or its name ("relu", "mish", ...)."""
    if isinstance(act_layer, str):
        try:
            return ACTIVATIONS[act_layer.lower()]
        except KeyError:
            raise UsageError(
                f"unknown activation '{act_layer}'; choose one of {', '.join(ACTIVATIONS)}"
            ) from None
    return act_layer


def make_act(act_layer: type[nn.Module]) -> nn.Module:
    # inplace saves memory where the activation supports it; Mish, GELU and friends may not.
    try:
        return act_layer(inplace=True)
    except TypeError:
        return act_layer()


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1, dilation: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding, no bias (a BatchNorm follows or precedes it)."""
    return nn.Conv2d(
        in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation,
        groups=groups, bias=False, dilation=dilation,
    )


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution, no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class ShortcutA(nn.Module):
    """Option A of He et al. 2015: identity with stride-2 subsampling and zero-padded extra channels (no parameters)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise UsageError(f"shortcut A cannot reduce channels ({in_channels} -> {out_channels}); use shortcut=B")
        self.stride = stride
        self.extra = out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        # Pad half the new channels on each side (as in the common CIFAR reference code).
        before = self.extra // 2
        return F.pad(x, (0, 0, 0, 0, before, self.extra - before))

    def extra_repr(self) -> str:
        return f"stride={self.stride}, extra_channels={self.extra}"


def make_shortcut(
    kind: str, in_channels: int, out_channels: int, stride: int, norm_layer: Callable[[int], nn.Module]
) -> nn.Module | None:
    """The shortcut module for a block whose shape changes; None when the identity fits."""
    if stride == 1 and in_channels == out_channels:
        return None
    if kind == "A":
        return ShortcutA(in_channels, out_channels, stride)
    if kind == "B":
        # Sequential of (conv, bn) keeps torchvision's state_dict keys: downsample.0 / downsample.1
        return nn.Sequential(conv1x1(in_channels, out_channels, stride), norm_layer(out_channels))
    if kind == "B3":
        return nn.Sequential(conv3x3(in_channels, out_channels, stride), norm_layer(out_channels))
    if kind == "D":
        # Bag of Tricks (ResNet-D): average-pool first so the 1x1 projection sees every input pixel.
        pool: nn.Module = (
            nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False) if stride > 1 else nn.Identity()
        )
        return nn.Sequential(pool, conv1x1(in_channels, out_channels), norm_layer(out_channels))
    raise UsageError(f"unknown shortcut '{kind}'; choose one of {', '.join(SHORTCUTS)}")


class SqueezeExcite(nn.Module):
    """Squeeze-and-Excitation (Hu et al. 2017): channel weights from globally pooled features."""

    def __init__(
        self,
        channels: int,
        ratio: int = 16,
        act_layer: type[nn.Module] = nn.ReLU,
        bias: bool = True,
    ) -> None:
        super().__init__()
        hidden = max(1, channels // ratio)
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1, bias=bias)
        self.act = make_act(act_layer)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1, bias=bias)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.fc2(self.act(self.fc1(s))))


def make_stem(
    kind: str,
    in_channels: int,
    width: int,
    *,
    preact: bool,
    act_layer: type[nn.Module],
    norm_layer: Callable[[int], nn.Module],
) -> OrderedDict[str, nn.Module]:
    """The named stem layers (names follow torchvision so ImageNet checkpoints load unchanged).

    Pre-activation networks leave the stem's BN-ReLU to the first block (He et al. 2016, timm ResNetV2).
    """
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    if kind == "imagenet":
        layers["conv1"] = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
        if not preact:
            layers["bn1"] = norm_layer(width)
            layers["act"] = make_act(act_layer)
        layers["maxpool"] = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    elif kind == "cifar":
        layers["conv1"] = conv3x3(in_channels, width)
        if not preact:
            layers["bn1"] = norm_layer(width)
            layers["act"] = make_act(act_layer)
    elif kind == "deep":
        # Bag of Tricks (ResNet-C): three 3x3 convs replace the 7x7 at the same receptive field.
        mid = width // 2
        widths = [in_channels, mid, mid, width]
        convs: list[nn.Module] = []
        for i in range(3):
            convs += [conv3x3(widths[i], widths[i + 1], stride=2 if i == 0 else 1), norm_layer(widths[i + 1]),
                      make_act(act_layer)]
        layers["stem"] = nn.Sequential(*convs)
        layers["maxpool"] = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    else:
        raise UsageError(f"unknown stem '{kind}'; choose one of {', '.join(STEMS)}")
    return layers


class AvgMaxPool(nn.Module):
    """Concatenated global average and max pooling (fastai's head, used by seed 000's XResNets)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.adaptive_avg_pool2d(x, 1), F.adaptive_max_pool2d(x, 1)], dim=1)


def make_pool(kind: str) -> tuple[nn.Module, int]:
    """(global pooling module, feature multiplier)."""
    if kind == "avg":
        return nn.AdaptiveAvgPool2d(1), 1
    if kind == "max":
        return nn.AdaptiveMaxPool2d(1), 1
    if kind == "avgmax":
        return AvgMaxPool(), 2
    raise UsageError(f"unknown head '{kind}'; choose one of {', '.join(HEADS)}")


def init_weights(model: nn.Module, scheme: str = "kaiming") -> None:
    """Kaiming-normal (fan_out, as torchvision) or Xavier-normal (seed 002) conv weights; BN to identity."""
    if scheme not in INITS:
        raise UsageError(f"unknown init '{scheme}'; choose one of {', '.join(INITS)}")
    if any(p.is_meta for p in model.parameters()):
        # shapes only (summarize): no values to draw, and torch's meta normal_ imports torch._dynamo (1.3 s)
        return
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            if scheme == "kaiming":
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            else:
                nn.init.xavier_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and scheme == "xavier":
            nn.init.xavier_normal_(m.weight)
            nn.init.zeros_(m.bias)

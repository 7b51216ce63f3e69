"""One ResNet class for every family: a stem, stages of blocks, a pooling head. Variants are data (zoo.py).

The network is an nn.Sequential with torchvision's names (conv1, bn1, maxpool, layer1..layerN, avgpool, fc),
so a torchvision checkpoint of the same network loads with strict=True, and summaries read naturally.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from torch import nn

from resnetcli.errors import UsageError
from resnetcli.models.blocks import BLOCKS, AttnLayer, NormLayer, _Block
from resnetcli.models.layers import (
    SqueezeExcite,
    init_weights,
    make_act,
    make_pool,
    make_shortcut,
    make_stem,
    resolve_act,
)

#: (output channels, blocks) or (output channels, blocks, stride); strides default to 1 then 2, 2, ...
StageSpec = tuple[int, int] | tuple[int, int, int]


class ResNet(nn.Sequential):
    """A residual network assembled from a block type, a stage table and a few switches."""

    def __init__(
        self,
        block: type[_Block] | str,
        stages: Sequence[StageSpec],
        *,
        num_classes: int,
        in_channels: int = 3,
        stem: str = "imagenet",
        stem_width: int = 64,
        stem_dropout: float = 0.0,
        shortcut: str = "B",
        plain: bool = False,
        act_layer: type[nn.Module] | str = nn.ReLU,
        norm_layer: NormLayer = nn.BatchNorm2d,
        attn_layer: AttnLayer | None = None,
        groups: int = 1,
        base_width: int = 64,
        reduction: int | None = None,
        head: str = "avg",
        drop_rate: float = 0.0,
        zero_init_residual: bool = False,
        init: str = "kaiming",
        default_input_size: int = 224,
    ) -> None:
        block_cls = _resolve_block(block)
        act = resolve_act(act_layer)
        _check_positive(num_classes=num_classes, in_channels=in_channels, stem_width=stem_width, groups=groups,
                        base_width=base_width, default_input_size=default_input_size)
        if not stages:
            raise UsageError("a ResNet needs at least one stage")
        for p, what in ((stem_dropout, "stem_dropout"), (drop_rate, "drop_rate")):
            if not 0.0 <= p < 1.0:
                raise UsageError(f"{what} must be in [0, 1), got {p}")
        block_args: dict[str, Any] = dict(groups=groups, base_width=base_width, act_layer=act,
                                          norm_layer=norm_layer, attn_layer=attn_layer, residual=not plain)
        if reduction is not None:
            _check_positive(reduction=reduction)
            block_args["reduction"] = reduction

        layers = make_stem(stem, in_channels, stem_width, preact=block_cls.preact, act_layer=act,
                           norm_layer=norm_layer)
        if stem_dropout:
            layers["dropout"] = nn.Dropout2d(stem_dropout)
        channels = stem_width
        for i, spec in enumerate(stages):
            out_channels, n_blocks, stride = _stage(spec, i)
            blocks: list[nn.Module] = []
            for j in range(n_blocks):
                s = stride if j == 0 else 1
                downsample = None if plain else make_shortcut(shortcut, channels, out_channels, s, norm_layer)
                blocks.append(block_cls(channels, out_channels, s, downsample, **block_args))
                channels = out_channels
            layers[f"layer{i + 1}"] = nn.Sequential(*blocks)
        if block_cls.preact:
            # Pre-activation blocks end on a sum; normalise it once before pooling (He et al. 2016).
            layers["final_bn"] = norm_layer(channels)
            layers["final_act"] = make_act(act)
        pool, multiplier = make_pool(head)
        layers["avgpool" if head == "avg" else "pool"] = pool
        layers["flatten"] = nn.Flatten(1)
        if drop_rate:
            layers["dropout_fc"] = nn.Dropout(drop_rate)
        layers["fc"] = nn.Linear(channels * multiplier, num_classes)
        super().__init__(layers)

        self.num_features = channels * multiplier
        self.default_input_size = default_input_size
        init_weights(self, init)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, _Block):
                    m.zero_init_last()


def _resolve_block(block: type[_Block] | str) -> type[_Block]:
    if isinstance(block, str):
        try:
            return BLOCKS[block]
        except KeyError:
            raise UsageError(f"unknown block '{block}'; choose one of {', '.join(BLOCKS)}") from None
    return block


def _stage(spec: StageSpec, index: int) -> tuple[int, int, int]:
    if len(spec) == 2:
        channels, n = spec  # type: ignore[misc]
        stride = 1 if index == 0 else 2
    else:
        channels, n, stride = spec  # type: ignore[misc]
    if channels < 1 or n < 1 or stride < 1:
        raise UsageError(f"stage {index + 1} needs positive channels, blocks and stride, got {spec}")
    return channels, n, stride


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UsageError(f"{name} must be a positive integer, got {value!r}")


#: options a user may pass to any builder (`--arch-option KEY=VALUE`); `se_ratio` adds Squeeze-Excite blocks
OPTION_NAMES: frozenset[str] = frozenset(
    name
    for name in inspect.signature(ResNet.__init__).parameters
    # layer factories are for code (plugins), not the command line; `se_ratio` is the CLI's way to add SE
    if name not in {"self", "block", "stages", "num_classes", "in_channels", "norm_layer", "attn_layer"}
) | {"se_ratio"}


def build_resnet(
    variant: dict[str, Any],
    num_classes: int,
    in_channels: int,
    options: dict[str, Any],
    *,
    arch: str = "this network",
    also_accepted: tuple[str, ...] = (),
) -> ResNet:
    """Merge a variant's table row with the user's options (options win) and construct it.

    `also_accepted` names options the caller consumed itself, so the error message lists them too.
    """
    unknown = sorted(set(options) - OPTION_NAMES)
    if unknown:
        accepted = ", ".join(sorted(OPTION_NAMES | set(also_accepted)))
        raise UsageError(f"{arch} does not accept option(s) {', '.join(unknown)}; accepted: {accepted}")
    args = {**variant, **options}
    se_ratio = args.pop("se_ratio", 0)
    if se_ratio:
        if not isinstance(se_ratio, int) or isinstance(se_ratio, bool) or se_ratio < 1:
            raise UsageError(f"se_ratio must be a positive integer (the squeeze factor), got {se_ratio!r}")
        args.setdefault("attn_layer", partial(SqueezeExcite, ratio=se_ratio))
    return ResNet(num_classes=num_classes, in_channels=in_channels, **args)


def se_layer(ratio: int = 16, *, bias: bool = True, act_layer: type[nn.Module] = nn.ReLU) -> Callable[[int], nn.Module]:
    """An attn_layer factory for Squeeze-Excite with the given squeeze ratio."""
    return partial(SqueezeExcite, ratio=ratio, bias=bias, act_layer=act_layer)

"""The built-in architectures: a table of variants, and one thin builder per registered name.

Each builder is `build(num_classes, in_channels=3, **options) -> nn.Module`; options (for example
`shortcut="B"`, `act_layer="mish"`, `init="xavier"`, `zero_init_residual=True`) override the table row.
Two seeds use the name "ResNet20" for different networks: `resnet20` is the 0.27M-parameter CIFAR network
(He et al. 2015, seeds 000 and 004); seed 002's 20-layer pre-activation bottleneck network with 128-1024
channels is `resnet20_bottleneck`.
"""

from __future__ import annotations

from typing import Any

from resnetcli.errors import UsageError
from resnetcli.models.resnet import ResNet, build_resnet

_IMAGENET: dict[str, Any] = dict(stem="imagenet", stem_width=64, shortcut="B", default_input_size=224)
_CIFAR: dict[str, Any] = dict(stem="cifar", stem_width=16, shortcut="A", default_input_size=32)

VARIANTS: dict[str, dict[str, Any]] = {
    # He et al. 2015, ImageNet; identical to torchvision's (same parameters and state_dict keys).
    "resnet18": dict(_IMAGENET, block="basic", stages=[(64, 2), (128, 2), (256, 2), (512, 2)]),
    "resnet34": dict(_IMAGENET, block="basic", stages=[(64, 3), (128, 4), (256, 6), (512, 3)]),
    "resnet50": dict(_IMAGENET, block="bottleneck", stages=[(256, 3), (512, 4), (1024, 6), (2048, 3)]),
    "resnet101": dict(_IMAGENET, block="bottleneck", stages=[(256, 3), (512, 4), (1024, 23), (2048, 3)]),
    "resnet152": dict(_IMAGENET, block="bottleneck", stages=[(256, 3), (512, 8), (1024, 36), (2048, 3)]),
    # He et al. 2016 (identity mappings), seed 002: pre-activation bottlenecks at 1/4 width.
    "preact_resnet50": dict(_IMAGENET, block="preact_bottleneck",
                            stages=[(256, 3), (512, 4), (1024, 6), (2048, 3)]),
    "resnet26": dict(_IMAGENET, block="preact_bottleneck", stages=[(128, 2), (256, 2), (512, 2), (1024, 2)]),
    "resnet20_bottleneck": dict(_IMAGENET, block="preact_bottleneck",
                                stages=[(128, 1), (256, 2), (512, 2), (1024, 1)]),
    # Seed 003: four stages of 32-64-128-256 basic blocks, Dropout2d after the stem, 3x3 projection
    # shortcuts and a max-pool head. (The seed also left out the ReLU after each addition; we keep it.)
    "cifar4stage_resnet": dict(_CIFAR, block="basic", stem_width=32, stem_dropout=0.02, shortcut="B3",
                               head="max", stages=[(32, 2), (64, 4), (128, 4), (256, 2)]),
}


#: the deepest CIFAR ResNet of He et al. 2016 and a width far past any paper's: beyond them memory runs out
#: before the network is even built
MAX_CIFAR_DEPTH = 1202
MAX_CIFAR_WIDTH = 256


def cifar_variant(depth: int, *, preact: bool = False, width: int = 16) -> dict[str, Any]:
    """The table row of a CIFAR ResNet of depth 6n+2: three stages of n basic blocks at width, 2x, 4x."""
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 8 or (depth - 2) % 6:
        raise UsageError(
            f"CIFAR ResNet depth must be 6n+2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, ...), got {depth!r}"
        )
    if depth > MAX_CIFAR_DEPTH:
        raise UsageError(f"CIFAR ResNet depth is at most {MAX_CIFAR_DEPTH} (the deepest He et al. trained), "
                         f"got {depth}")
    if not isinstance(width, int) or isinstance(width, bool) or not 1 <= width <= MAX_CIFAR_WIDTH:
        raise UsageError(f"CIFAR ResNet width must be an integer from 1 to {MAX_CIFAR_WIDTH}, got {width!r}")
    n = (depth - 2) // 6
    return dict(_CIFAR, block="preact_basic" if preact else "basic", stem_width=width,
                stages=[(width, n), (2 * width, n), (4 * width, n)])


def create(name: str, num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """Build the table variant `name` with the user's options applied."""
    return build_resnet(VARIANTS[name], num_classes, in_channels, options, arch=name)


def _cifar(name: str, depth: int, num_classes: int, in_channels: int, options: dict[str, Any],
           **fixed: Any) -> ResNet:
    preact = options.pop("preact", fixed.pop("preact", False))
    width = options.pop("width", 16)
    return build_resnet({**cifar_variant(depth, preact=bool(preact), width=width), **fixed}, num_classes,
                        in_channels, options, arch=name,
                        also_accepted=("preact", "width", "depth") if name == "cifar_resnet" else ("preact", "width"))


# --- ImageNet family ------------------------------------------------------------------------------------

def resnet18(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """ResNet-18 (He et al. 2015), ImageNet-style, torchvision-compatible weights; 224 px."""
    return create("resnet18", num_classes, in_channels, **options)


def resnet34(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """ResNet-34 (He et al. 2015), ImageNet-style, torchvision-compatible weights; 224 px."""
    return create("resnet34", num_classes, in_channels, **options)


def resnet50(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """ResNet-50 (He et al. 2015, V1.5 stride), ImageNet-style, torchvision-compatible weights; 224 px."""
    return create("resnet50", num_classes, in_channels, **options)


def resnet101(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """ResNet-101 (He et al. 2015, V1.5 stride), ImageNet-style, torchvision-compatible weights; 224 px."""
    return create("resnet101", num_classes, in_channels, **options)


def resnet152(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """ResNet-152 (He et al. 2015, V1.5 stride), ImageNet-style, torchvision-compatible weights; 224 px."""
    return create("resnet152", num_classes, in_channels, **options)


# --- Pre-activation bottleneck family (seed 002) -----------------------------------------------------------

def preact_resnet50(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """Pre-activation ResNet-50 (identity mappings, He et al. 2016; seed 002's table); 224 px.

    Options: init="kaiming" (default) or "xavier" (Xavier-normal, as seed 002 trained it).
    """
    return create("preact_resnet50", num_classes, in_channels, **options)


def resnet26(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """Seed 002's ResNet26: pre-act bottleneck stages (128,2),(256,2),(512,2),(1024,2); 224 px.

    Options: init="kaiming" (default) or "xavier" (Xavier-normal, as seed 002 trained it).
    """
    return create("resnet26", num_classes, in_channels, **options)


def resnet20_bottleneck(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """Seed 002's "ResNet20": pre-act bottleneck stages (128,1),(256,2),(512,2),(1024,1); 224 px (not CIFAR resnet20).

    Options: init="kaiming" (default) or "xavier" (Xavier-normal, as seed 002 trained it).
    """
    return create("resnet20_bottleneck", num_classes, in_channels, **options)


# --- CIFAR family (seeds 000, 003, 004) --------------------------------------------------------------------

def cifar_resnet(num_classes: int, in_channels: int = 3, *, depth: int = 20, **options: Any) -> ResNet:
    """CIFAR ResNet of any depth 6n+2 (option depth=N; also preact, plain, shortcut=A|B, width); 32 px."""
    return _cifar("cifar_resnet", depth, num_classes, in_channels, options)


def resnet20(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """CIFAR ResNet-20 (He et al. 2015; 0.27M params, option-A shortcuts); 32 px. Seed 002's is resnet20_bottleneck."""
    return _cifar("resnet20", 20, num_classes, in_channels, options)


def resnet32(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """CIFAR ResNet-32 (He et al. 2015; 0.46M params, option-A shortcuts); 32 px."""
    return _cifar("resnet32", 32, num_classes, in_channels, options)


def resnet44(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """CIFAR ResNet-44 (He et al. 2015; 0.66M params, option-A shortcuts); 32 px."""
    return _cifar("resnet44", 44, num_classes, in_channels, options)


def resnet56(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """CIFAR ResNet-56 (He et al. 2015; 0.85M params, option-A shortcuts); 32 px."""
    return _cifar("resnet56", 56, num_classes, in_channels, options)


def resnet110(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """CIFAR ResNet-110 (He et al. 2015; 1.7M params, option-A shortcuts); 32 px."""
    return _cifar("resnet110", 110, num_classes, in_channels, options)


def resnet1202(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """CIFAR ResNet-1202 (He et al. 2015; 19.4M params, option-A shortcuts); 32 px."""
    return _cifar("resnet1202", 1202, num_classes, in_channels, options)


def preact_resnet20(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """Pre-activation CIFAR ResNet-20 (BN-ReLU before each conv, He et al. 2016; seed 004); 32 px."""
    return _cifar("preact_resnet20", 20, num_classes, in_channels, options, preact=True)


def preact_resnet110(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """Pre-activation CIFAR ResNet-110 (BN-ReLU before each conv, He et al. 2016; seed 004); 32 px."""
    return _cifar("preact_resnet110", 110, num_classes, in_channels, options, preact=True)


def plain20(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """Plain 20-layer CIFAR network: resnet20 without shortcuts (seed 004's ablation); 32 px."""
    return _cifar("plain20", 20, num_classes, in_channels, options, plain=True)


def plain56(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """Plain 56-layer CIFAR network: resnet56 without shortcuts (seed 004's ablation); 32 px."""
    return _cifar("plain56", 56, num_classes, in_channels, options, plain=True)


def plain110(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """Plain 110-layer CIFAR network: resnet110 without shortcuts (seed 004's ablation); 32 px."""
    return _cifar("plain110", 110, num_classes, in_channels, options, plain=True)


def cifar4stage_resnet(num_classes: int, in_channels: int = 3, **options: Any) -> ResNet:
    """Seed 003's CIFAR-100 net: 4 stages 32-64-128-256 of [2,4,4,2] basic blocks, Dropout2d stem; 32 px."""
    return create("cifar4stage_resnet", num_classes, in_channels, **options)

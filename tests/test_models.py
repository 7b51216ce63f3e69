"""Every registered architecture builds, runs forward and backward, and has the parameter count its source gives."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from resnetcli.errors import UsageError
from resnetcli.models import BasicBlock, Bottleneck, PreActBasicBlock, ResNet, ShortcutA, zoo
from resnetcli.registry import registry

ARCHS = registry("architectures").names()
OURS = {"resnetcli", "resnetcli-bag-of-tricks"}

# (expected parameters at 10 classes, relative tolerance, source). Exact where the source is exact.
PARAMS_10: dict[str, tuple[int, float, str]] = {
    # He et al. 2015, Table 6 (option A): 0.27M, 0.46M, 0.66M, 0.85M, 1.7M, 19.4M
    "resnet20": (270_000, 0.01, "He et al. 2015"),
    "resnet32": (460_000, 0.02, "He et al. 2015"),
    "resnet44": (660_000, 0.01, "He et al. 2015"),
    "resnet56": (850_000, 0.01, "He et al. 2015"),
    "resnet110": (1_700_000, 0.02, "He et al. 2015"),
    "resnet1202": (19_400_000, 0.01, "He et al. 2015"),
    "cifar_resnet": (270_000, 0.01, "He et al. 2015 (default depth 20)"),
    # plain and pre-activation networks have the same weights as their residual twins (option A adds none)
    "plain20": (270_000, 0.01, "He et al. 2015"),
    "plain56": (850_000, 0.01, "He et al. 2015"),
    "plain110": (1_700_000, 0.02, "He et al. 2015"),
    "preact_resnet20": (270_000, 0.01, "He et al. 2016"),
    "preact_resnet110": (1_700_000, 0.02, "He et al. 2016"),
    # seed 000's tables (Bag of Tricks plugin), within 3%
    "xresnet20": (270_000, 0.03, "seed 000"),
    "mxresnet20": (270_000, 0.03, "seed 000"),
    "se_mxresnet20": (270_000, 0.03, "seed 000"),
    "se_mxresnet32": (470_000, 0.03, "seed 000"),
    "se_mxresnet44": (670_000, 0.03, "seed 000"),
    "se_mxresnet56": (860_000, 0.03, "seed 000"),
    "xresnet32": (470_000, 0.03, "seed 000 (as se_mxresnet32, less SE)"),
    "xresnet44": (670_000, 0.03, "seed 000 (as se_mxresnet44, less SE)"),
    "xresnet56": (860_000, 0.03, "seed 000 (as se_mxresnet56, less SE)"),
    "mxresnet32": (470_000, 0.03, "seed 000"),
    "mxresnet44": (670_000, 0.03, "seed 000"),
    "mxresnet56": (860_000, 0.03, "seed 000"),
    "xresnet29": (310_000, 0.03, "seed 000"),
    "xresnext29_16x2d": (320_000, 0.03, "seed 000"),
    "mxresnext29_16x2d": (320_000, 0.03, "seed 000 (as xresnext29_16x2d)"),
    "se_mxresnext29_16x2d": (360_000, 0.03, "seed 000"),
    # no published count: seed 003's network, counted by hand from its code (conv3x3 shortcuts included)
    "cifar4stage_resnet": (3_880_490, 0.0, "seed 003's code"),
}
PARAMS_1000: dict[str, int] = {
    # torchvision's counts, exactly
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    # Bag of Tricks ResNet-D, as timm's resnet18d / resnet50d
    "resnet18d": 11_708_744,
    "resnet50d": 25_576_264,
}
PARAMS_256: dict[str, int] = {
    # seed 002's pre-activation ResNet-50 on Caltech-256: torchvision's trunk (23,508,032) + 2048 x 256 + 256
    "preact_resnet50": 24_032_576,
    # no published counts; pinned from the stage tables so that a change is noticed
    "resnet26": 3_768_896,
    "resnet20_bottleneck": 2_633_920,
}


pytestmark = pytest.mark.usefixtures("one_thread")


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def tiny_size(model: nn.Module) -> int:
    # ImageNet-style nets downsample 32x; CIFAR-style 4x. Both still end above 1x1 or at it.
    return 32 if getattr(model, "default_input_size", 224) >= 64 else 8


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize(("num_classes", "in_channels"), [(10, 1), (1000, 3)])
def test_builds_runs_forward_and_backward(arch: str, num_classes: int, in_channels: int) -> None:
    model = registry("architectures").get(arch)(num_classes, in_channels)
    assert isinstance(getattr(model, "default_input_size", None), int)
    size = tiny_size(model)
    x = torch.randn(2, in_channels, size, size)
    y = model(x)
    assert y.shape == (2, num_classes)
    y.logsumexp(1).sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize(("num_classes", "in_channels"), [(1000, 1), (10, 3)])
def test_builds_for_other_heads_and_channels(arch: str, num_classes: int, in_channels: int) -> None:
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        model = registry("architectures").get(arch)(num_classes, in_channels)
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    last_linear = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    assert first_conv.in_channels == in_channels
    assert last_linear.out_features == num_classes


@pytest.mark.parametrize("arch", [a for a in ARCHS if registry("architectures").entry(a).distribution in OURS])
def test_parameter_count_matches_source(arch: str) -> None:
    entry = registry("architectures").get(arch)

    def build(num_classes: int) -> nn.Module:
        with torch.device("meta"):  # counting needs shapes only
            return entry(num_classes)

    if arch in PARAMS_1000:
        assert n_params(build(1000)) == PARAMS_1000[arch]
    elif arch in PARAMS_256:
        assert n_params(build(256)) == PARAMS_256[arch]
    else:
        assert arch in PARAMS_10, f"{arch} has no expected parameter count in this test"
        expected, tol, source = PARAMS_10[arch]
        got = n_params(build(10))
        assert abs(got - expected) <= tol * expected, f"{arch}: {got:,} params, {source} gives {expected:,}"


@pytest.mark.parametrize("arch", ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"])
def test_loads_torchvision_state_dict_strictly(arch: str) -> None:
    reference = getattr(torchvision.models, arch)(weights=None).eval()
    model = getattr(zoo, arch)(1000).eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))


def test_cifar_depth_is_any_6n_plus_2() -> None:
    model = zoo.cifar_resnet(10, depth=14)
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 6  # n = 2 per stage, 3 stages
    assert n_params(zoo.cifar_resnet(10, depth=110)) == n_params(zoo.resnet110(10))
    with pytest.raises(UsageError, match="6n\\+2"):
        zoo.cifar_resnet(10, depth=21)


def test_option_a_has_no_parameters_and_option_b_projects() -> None:
    a = zoo.resnet20(10)
    b = zoo.resnet20(10, shortcut="B")
    assert sum(isinstance(m, ShortcutA) for m in a.modules()) == 2
    # two 1x1 projections + BN: 16->32 and 32->64
    assert n_params(b) - n_params(a) == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    x = torch.arange(2 * 16 * 4 * 4, dtype=torch.float32).reshape(2, 16, 4, 4)
    y = ShortcutA(16, 32, 2)(x)
    assert y.shape == (2, 32, 2, 2)
    assert torch.equal(y[:, 8:24], x[:, :, ::2, ::2]) and y[:, :8].abs().sum() == 0


def test_plain_network_drops_every_shortcut() -> None:
    plain = zoo.plain20(10).eval()
    residual = zoo.resnet20(10).eval()
    residual.load_state_dict(plain.state_dict())
    assert all(not m.residual for m in plain.modules() if isinstance(m, BasicBlock))
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert not torch.allclose(plain(x), residual(x))


def test_preact_blocks_and_final_norm() -> None:
    model = zoo.preact_resnet20(10)
    assert sum(isinstance(m, PreActBasicBlock) for m in model.modules()) == 9
    assert isinstance(model.final_bn, nn.BatchNorm2d)
    assert not hasattr(model, "bn1")  # the first block normalises the stem's output


def test_init_is_selectable() -> None:
    torch.manual_seed(0)
    k1 = zoo.resnet26(10).layer1[0].conv1.weight.std().item()
    x1 = zoo.resnet26(10, init="xavier").layer1[0].conv1.weight.std().item()
    assert k1 == pytest.approx((2 / 32) ** 0.5, rel=0.1)  # Kaiming fan_out of a 64->32 1x1 conv
    assert x1 == pytest.approx((2 / (64 + 32)) ** 0.5, rel=0.1)
    with pytest.raises(UsageError, match="init"):
        zoo.resnet26(10, init="orthogonal")


def test_zero_init_residual_zeroes_last_bn() -> None:
    model = zoo.resnet50(10, zero_init_residual=True)
    last = [m.bn3.weight for m in model.modules() if isinstance(m, Bottleneck)]
    assert len(last) == 16 and all(torch.count_nonzero(w) == 0 for w in last)
    assert torch.count_nonzero(zoo.resnet50(10).layer1[0].bn3.weight) > 0
    preact = zoo.preact_resnet20(10, zero_init_residual=True)
    assert all(torch.count_nonzero(m.conv2.weight) == 0 for m in preact.modules() if isinstance(m, PreActBasicBlock))


def test_options_are_validated() -> None:
    with pytest.raises(UsageError, match="colour"):
        zoo.resnet18(10, colour="red")
    with pytest.raises(UsageError, match="shortcut 'Z'"):
        zoo.resnet20(10, shortcut="Z")
    with pytest.raises(UsageError, match="num_classes"):
        zoo.resnet20(0)
    with pytest.raises(UsageError, match="attn_layer"):
        zoo.resnet20(10, attn_layer="se")  # factories are for code; the command line uses se_ratio
    with pytest.raises(UsageError, match="no channels left"):
        zoo.resnet50(10, reduction=512)
    se = zoo.resnet20(10, se_ratio=4)
    assert n_params(se) - n_params(zoo.resnet20(10)) == sum(
        2 * c * (c // 4) + c + c // 4 for c in [16] * 3 + [32] * 3 + [64] * 3)
    mish = zoo.resnet20(10, act_layer="mish")
    assert any(isinstance(m, nn.Mish) for m in mish.modules())


def test_seed_003_layout() -> None:
    model = zoo.cifar4stage_resnet(100)
    assert isinstance(model.dropout, nn.Dropout2d) and model.dropout.p == 0.02
    assert [len(getattr(model, f"layer{i}")) for i in range(1, 5)] == [2, 4, 4, 2]
    assert model.layer1[0].downsample is None
    assert model.layer2[0].downsample[0].kernel_size == (3, 3)
    assert model.fc.in_features == 256 and isinstance(model.pool, nn.AdaptiveMaxPool2d)


def test_cifar_width_and_preact_switches() -> None:
    wide = zoo.resnet20(10, width=32, preact=True)
    assert wide.layer3[0].conv1.out_channels == 128
    assert isinstance(wide.layer1[0], PreActBasicBlock)
    with pytest.raises(UsageError, match="width"):
        zoo.resnet20(10, width=0)
    with pytest.raises(UsageError, match="preact, reduction"):
        zoo.resnet20(10, depth=32)  # only cifar_resnet takes a depth; the message lists what is accepted


def test_deep_stem_and_resnet_d_shortcut() -> None:
    model = ResNet("bottleneck", [(256, 1), (512, 1)], num_classes=10, stem="deep", shortcut="D")
    convs = [m for m in model.stem if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0]) for c in convs] == [(3, 32, 2), (32, 32, 1), (32, 64, 1)]
    pool, conv, _ = model.layer2[0].downsample
    assert isinstance(pool, nn.AvgPool2d) and conv.stride == (1, 1) and conv.kernel_size == (1, 1)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_resnet_class_is_public_for_plugins() -> None:
    model = ResNet("preact_bottleneck", [(64, 1), (128, 1)], num_classes=5, stem="deep", stem_width=32,
                   shortcut="D", groups=8, base_width=4, head="avgmax", act_layer=nn.Mish, default_input_size=64)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5)
    assert model.fc.in_features == 2 * 128

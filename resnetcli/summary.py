"""Layer-by-layer summaries of any registered architecture: output sizes, kernels, parameters, MACs, memory.

The numbers come from running the network once, with hooks, on a tensor of the requested size: on the
`meta` device when the network allows it (no memory, no arithmetic), else on a zero image on the CPU.
So the summary is true for plugin architectures too, not just the ones resnetcli knows how to read.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from resnetcli.errors import ResnetCliError, UsageError

#: containers whose children are shown at the container's own level (stages are lists of blocks)
_TRANSPARENT = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


@dataclass
class LayerRow:
    """One row: a layer or block, as it ran."""

    name: str
    type: str
    depth: int
    output_shape: list[int]  # H, W, C for feature maps; features for vectors; batch dimension removed
    kernel: int | list[int] | None = None
    kernels: int | None = None  # number of kernels (output channels or features)
    stride: int | list[int] | None = None
    padding: int | list[int] | None = None
    params: int = 0


@dataclass
class Summary:
    arch: str
    num_classes: int | None
    in_channels: int
    input_size: int
    depth: int
    total_params: int
    trainable_params: int
    non_trainable_params: int
    macs: int  # multiply-accumulates of convolutions and linear layers, one image
    activation_bytes: int  # outputs of every leaf layer for one image (float32), as a forward pass keeps them
    layers: list[LayerRow] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: far above any dataset's class count (ImageNet-21k: 21,841) and any image's channels
MAX_CLASSES = 1_000_000
MAX_IN_CHANNELS = 64


def summarize_arch(
    arch: str,
    *,
    num_classes: int | None = None,
    input_size: int | None = None,
    in_channels: int = 3,
    depth: int = 1,
    options: dict[str, Any] | None = None,
) -> Summary:
    """Build the registered architecture `arch` and summarise it.

    num_classes defaults to 1000 for ImageNet-style networks and 10 for CIFAR-style ones; input_size to the
    network's `default_input_size` (224 when it declares none).
    """
    from resnetcli.registry import registry

    entry = registry("architectures").entry(arch)
    options = dict(options or {})
    # bounded: a head of 10^16 classes overflows even the meta device's size arithmetic
    if num_classes is not None and not 1 <= num_classes <= MAX_CLASSES:
        raise UsageError(f"--num-classes must be 1..{MAX_CLASSES}, got {num_classes}")
    if not 1 <= in_channels <= MAX_IN_CHANNELS:
        raise UsageError(f"--in-channels must be 1..{MAX_IN_CHANNELS}, got {in_channels}")

    def make(n: int, device: str) -> nn.Module:
        with torch.device(device):
            return entry.build(n, in_channels, options=options, expect=nn.Module)

    device = "meta"
    try:
        model = make(num_classes or 1000, device)
    except UsageError:
        raise
    except Exception:  # a plugin that cannot be built on the meta device (PluginError) is built for real
        device = "cpu"
        model = make(num_classes or 1000, device)
    default_size = int(getattr(model, "default_input_size", 224))
    if num_classes is None:
        num_classes = 1000 if default_size >= 64 else 10
        if num_classes != 1000:
            model = make(num_classes, device)
    size = input_size or default_size

    def describe(network: nn.Module) -> Summary:
        return summarize_model(network, input_size=size, in_channels=in_channels, depth=depth, arch=arch,
                               num_classes=num_classes)

    if device == "meta" and size <= _REAL_PASS_SIZE and sum(p.numel() for p in model.parameters()) <= _REAL_PASS_PARAMS:
        try:
            return describe(_zeros_on_cpu(model))
        except ResnetCliError:
            raise
        except Exception:  # an operation that zero weights upset: the meta pass below may still work
            model = make(num_classes, device)
    try:
        return describe(model)
    except ResnetCliError:
        raise
    except Exception:
        if device == "cpu":
            raise
    # Some operation had no meta kernel: run it for real on a zero image.
    return describe(make(num_classes, "cpu"))


#: up to this input size and parameter count, the shapes come from a real pass over zero weights on the CPU
#: (0.2 s for resnet50 at 224 px); a pass on the meta device costs no memory or arithmetic at any size, but torch
#: imports torch._dynamo for its batch-norm shape rule, 1.3 s of every `resnetcli summarize`
_REAL_PASS_SIZE = 256
_REAL_PASS_PARAMS = 100_000_000


def _zeros_on_cpu(model: nn.Module) -> nn.Module:
    """A meta-device `model` given CPU memory, all zeros (uninitialised memory could hold slow denormals)."""
    model = model.to_empty(device="cpu")
    with torch.no_grad():
        for tensor in (*model.parameters(), *model.buffers()):
            tensor.zero_()
    return model


def summarize_model(
    model: nn.Module,
    *,
    input_size: int,
    in_channels: int = 3,
    depth: int = 1,
    arch: str = "model",
    num_classes: int | None = None,
) -> Summary:
    """Run `model` once on a 1 x in_channels x input_size x input_size tensor and describe every layer."""
    from resnetcli.engine.checkpoint import MAX_IMAGE_SIZE

    if not 1 <= input_size <= MAX_IMAGE_SIZE:  # the largest input a run may train at (--image-size)
        raise UsageError(f"--input-size must be 1..{MAX_IMAGE_SIZE}, got {input_size}")
    if depth < 1:
        raise UsageError(f"--depth must be at least 1, got {depth}")
    levels = _display_levels(model)
    rows: list[LayerRow] = [LayerRow(name="input", type="Input", depth=0, output_shape=[input_size, input_size,
                                                                                       in_channels])]
    totals = {"macs": 0, "activations": 0}
    open_rows: dict[int, list[LayerRow | None]] = {}

    def pre_hook(module: nn.Module, _inputs: Any) -> None:
        name, level = levels[id(module)]
        row = None
        if level <= depth:
            row = LayerRow(name=name, type=type(module).__name__, depth=level, output_shape=[],
                           params=sum(p.numel() for p in module.parameters()), **_geometry(module))
            rows.append(row)  # appended on entry, so a block precedes its inner layers
        open_rows.setdefault(id(module), []).append(row)

    def post_hook(module: nn.Module, _inputs: Any, output: Any) -> None:
        row = open_rows[id(module)].pop()
        tensor = _first_tensor(output)
        if tensor is None:
            return
        shape = list(tensor.shape[1:])
        if row is not None:
            row.output_shape = [*shape[1:], shape[0]] if len(shape) == 3 else shape
        if not any(True for _ in module.children()):
            totals["activations"] += tensor[0].numel() * tensor.element_size()
        totals["macs"] += _macs(module, tensor)

    handles = []
    for module in model.modules():
        if id(module) in levels:
            handles.append(module.register_forward_pre_hook(pre_hook))
            handles.append(module.register_forward_hook(post_hook))
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, in_channels, input_size, input_size, device=device))
    except RuntimeError as exc:
        if device.type != "meta" and "too small" in str(exc):
            raise UsageError(f"input size {input_size} is too small for {arch}; try --input-size "
                             f"{getattr(model, 'default_input_size', 224)}") from exc
        raise
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)

    params = list(model.parameters())
    trainable = sum(p.numel() for p in params if p.requires_grad)
    total = sum(p.numel() for p in params)
    return Summary(
        arch=arch, num_classes=num_classes, in_channels=in_channels, input_size=input_size, depth=depth,
        total_params=total, trainable_params=trainable, non_trainable_params=total - trainable,
        macs=totals["macs"], activation_bytes=totals["activations"], layers=rows,
    )


def _display_levels(model: nn.Module) -> dict[int, tuple[str, int]]:
    """id(module) -> (qualified name, display level); plain containers pass their children up a level."""
    levels: dict[int, tuple[str, int]] = {}

    def walk(module: nn.Module, prefix: str, level: int) -> None:
        for child_name, child in module.named_children():
            name = f"{prefix}.{child_name}" if prefix else child_name
            if id(child) in levels:
                continue  # a shared module is reported where it first appears
            if type(child) in _TRANSPARENT:
                walk(child, name, level)
            else:
                levels[id(child)] = (name, level + 1)
                walk(child, name, level + 1)

    walk(model, "", 0)
    return levels


def _pair(value: Any) -> int | list[int] | None:
    if value is None:
        return None
    if isinstance(value, tuple | list):
        return int(value[0]) if len(set(value)) == 1 else [int(v) for v in value]
    return int(value) if isinstance(value, int) else None


def _geometry(module: nn.Module) -> dict[str, Any]:
    if isinstance(module, nn.Conv2d):
        return dict(kernel=_pair(module.kernel_size), kernels=module.out_channels, stride=_pair(module.stride),
                    padding=_pair(module.padding) if not isinstance(module.padding, str) else None)
    if isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
        return dict(kernel=_pair(module.kernel_size), stride=_pair(module.stride), padding=_pair(module.padding))
    if isinstance(module, nn.Linear):
        return dict(kernels=module.out_features)
    return {}


def _first_tensor(output: Any) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, tuple | list):
        return next((o for o in output if isinstance(o, torch.Tensor)), None)
    if isinstance(output, dict):
        return next((o for o in output.values() if isinstance(o, torch.Tensor)), None)
    return None


def _macs(module: nn.Module, output: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        per_output = (module.in_channels // module.groups) * module.kernel_size[0] * module.kernel_size[1]
        return output[0].numel() * per_output
    if isinstance(module, nn.Linear):
        return output[0].numel() * module.in_features
    return 0


# --- rendering -----------------------------------------------------------------------------------------


def human(n: float, unit: str = "") -> str:
    """1234567 -> '1.23 M'."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= factor:
            return f"{n / factor:.2f} {prefix}{unit}"
    return f"{n:.0f} {unit}".rstrip()


def _bytes(n: int) -> str:
    return f"{n / 2**20:.2f} MiB"


def _shape(shape: list[int], sep: str = " x ") -> str:
    return sep.join(str(s) for s in shape)


def _cell(value: int | list[int] | None) -> str:
    if value is None:
        return ""
    return "x".join(str(v) for v in value) if isinstance(value, list) else str(value)


def _cells(row: LayerRow) -> list[str]:
    return [
        ("  " * max(row.depth - 1, 0)) + (row.name.rsplit(".", 1)[-1] if row.depth > 1 else row.name),
        row.type, _shape(row.output_shape, "x"), _cell(row.kernel),
        _cell(row.kernels), _cell(row.stride), _cell(row.padding), f"{row.params:,}" if row.depth else "",
    ]


_HEADERS = ["Layer", "Type", "Output HxWxC", "Kernel", "Kernels", "Stride", "Pad", "Params"]


def _totals(summary: Summary) -> list[tuple[str, str]]:
    return [
        ("Parameters", f"{summary.total_params:,} ({summary.trainable_params:,} trainable, "
                       f"{summary.non_trainable_params:,} non-trainable)"),
        ("MACs", f"{human(summary.macs)} ({summary.macs:,} multiply-accumulates, conv + linear)"),
        ("Activation memory", f"{_bytes(summary.activation_bytes)} for one image (forward outputs)"),
        ("Input", f"{summary.input_size} x {summary.input_size} x {summary.in_channels}"),
    ]


def render_table(summary: Summary) -> Any:
    """A rich renderable: the layer table with the totals beneath it."""
    from rich import box
    from rich.console import Group
    from rich.table import Table

    from resnetcli.console import escape

    # a plugin names the architecture and its layers' types: shown as named (resnetcli/console.py: escape)
    title = f"{summary.arch} ({summary.num_classes} classes)" if summary.num_classes else summary.arch
    table = Table(title=escape(title), box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    cells = [_cells(row) for row in summary.layers]
    for i, header in enumerate(_HEADERS):
        # Numbers must never be cut; names and types may be shortened on a narrow terminal.
        width = max(len(header), *(len(c[i]) for c in cells))
        width = min(width, 14) if i == 0 else None if i == 1 else width
        table.add_column(header, justify="right" if header in {"Params", "Kernels"} else "left",
                         no_wrap=True, overflow="ellipsis", min_width=width)
    for row_cells in cells:
        table.add_row(*map(escape, row_cells))
    totals = Table.grid(padding=(0, 2))
    totals.add_column(style="bold")
    totals.add_column()
    for key, value in _totals(summary):
        totals.add_row(key, value)
    return Group(table, totals)


def render_markdown(summary: Summary) -> str:
    lines = [f"### {summary.arch}", "", "| " + " | ".join(_HEADERS) + " |", "|" + "---|" * len(_HEADERS)]
    for row in summary.layers:
        cells = _cells(row)
        cells[0] = cells[0].strip()
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines.append("")
    lines += [f"- **{key}**: {value}" for key, value in _totals(summary)]
    return "\n".join(lines) + "\n"


def render_json(summary: Summary) -> str:
    return json.dumps(summary.to_dict(), indent=2)

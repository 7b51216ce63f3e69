"""Starting a network from trained weights: a torchvision weights name, a weights file, or another run.

`load_pretrained(model, SOURCE, arch=...)` copies every tensor of SOURCE into `model` by name and shape.
The classifier is the one exception: it is kept fresh (as the model was initialised) for the data's
classes, unless SOURCE names exactly the same classes in the same order. Everything else must match, or
the error lists what does not; `strict=False` loads what matches and reports the rest.

SOURCE is one of
- a torchvision weights name for the ImageNet family (`IMAGENET1K_V1`, `IMAGENET1K_V2`, `DEFAULT`, or
  `ResNet50_Weights.IMAGENET1K_V2`): fetched and cached by torchvision's own weights API;
- a torchvision-format `.pth` state dict (read with weights_only=True), or a `.safetensors` file (those
  `resnetcli export` writes also carry classes and normalization);
- a resnetcli checkpoint of another run (transfer between datasets).

Normalization travels with the weights when they carry it (torchvision's ImageNet statistics, a
checkpoint's, an exported file's): mean/std on the 0-1 scale, as resnetcli stores them. RGB weights start
a grayscale (1-channel) network too: its input convolution gets the RGB filters summed (see _adapt_channels).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from resnetcli.errors import CheckpointError, UsageError
from resnetcli.export.formats import CARD_KEY

#: resnetcli architectures whose torchvision namesakes have the same state_dict (tests/test_models.py)
TORCHVISION_ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
#: key in a .safetensors file's metadata under which `resnetcli export` stores classes, normalization, ...
SAFETENSORS_KEY = CARD_KEY
#: mismatches named in an error line before "and N more"
_SHOWN = 4


@dataclass
class Weights:
    """Tensors read from a SOURCE, with what they say about themselves."""

    source: str
    tensors: dict[str, torch.Tensor]
    normalization: dict[str, list[float]] | None = None
    classes: list[str] | None = None


@dataclass
class PretrainedReport:
    """What load_pretrained did: tensors copied, the classifier kept fresh, and (non-strict) what was not used."""

    source: str
    loaded: list[str]
    head: list[str]
    skipped: list[str] = field(default_factory=list)  # "name (why)" for source tensors not used
    missing: list[str] = field(default_factory=list)  # model tensors the source lacks: left as initialised
    adapted: list[str] = field(default_factory=list)  # input convolutions converted between RGB and gray
    normalization: dict[str, list[float]] | None = None
    classes: list[str] | None = None

    def summary(self) -> str:
        """One line for the training log."""
        line = f"pretrained weights from {self.source}: {len(self.loaded)} tensors loaded"
        if self.head:
            line += f", new classifier ({', '.join(self.head)})"
        if self.adapted:
            line += f", {', '.join(self.adapted)}"
        if self.skipped:
            line += f", {len(self.skipped)} skipped ({_shown(self.skipped)})"
        if self.missing:
            line += f", {len(self.missing)} left as initialised ({_shown(self.missing)})"
        if self.normalization:
            norm = self.normalization
            line += f"; their normalization mean={_fmt(norm['mean'])} std={_fmt(norm['std'])}"
        return line


def classifier_name(model: nn.Module) -> str:
    """The name of the network's classifier: its last nn.Linear (`fc` in every resnetcli ResNet)."""
    names = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not names:
        raise UsageError(f"{type(model).__name__} has no nn.Linear classifier to replace for the data's classes")
    return names[-1]


def load_pretrained(
    model: nn.Module,
    source: str | os.PathLike[str],
    *,
    arch: str | None = None,
    classes: Sequence[str] | None = None,
    strict: bool = True,
    progress: bool = False,
) -> PretrainedReport:
    """Copy SOURCE's tensors into `model` (see the module docstring); returns what was done."""
    weights = read_weights(source, arch=arch, progress=progress)
    return apply_weights(model, weights, classes=classes, strict=strict)


def apply_weights(
    model: nn.Module, weights: Weights, *, classes: Sequence[str] | None = None, strict: bool = True
) -> PretrainedReport:
    """Match `weights` to `model` by name and shape; the classifier stays fresh unless the classes agree."""
    own = model.state_dict()
    tensors = _strip_wrappers(weights.tensors, own)
    head = classifier_name(model)
    keep_head = classes is not None and weights.classes is not None and list(classes) == list(weights.classes)

    def is_head(key: str) -> bool:
        return key.startswith(f"{head}.")

    tensors, normalization, adapted = _adapt_channels(tensors, own, weights.normalization)
    wrong = [k for k in own if k in tensors and tuple(tensors[k].shape) != tuple(own[k].shape) and not is_head(k)]
    missing = [k for k in own if k not in tensors and not is_head(k)]
    unexpected = [k for k in tensors if k not in own and not is_head(k)]
    if strict and (wrong or missing or unexpected):
        parts = []
        shapes = [f"{k} {tuple(tensors[k].shape)} vs {tuple(own[k].shape)}" for k in wrong]
        for label, items in (("wrong shape", shapes), ("missing", missing), ("unexpected", unexpected)):
            if items:
                parts.append(f"{len(items)} {label} ({_shown(items)})")
        raise CheckpointError(
            f"pretrained weights {weights.source} do not fit this network beyond its classifier "
            f"'{head}': {'; '.join(parts)}; pick weights of the same architecture, or pass "
            "--no-pretrained-strict to load only the tensors that match"
        )
    take = {k: v for k, v in tensors.items() if k in own and k not in wrong and (keep_head or not is_head(k))}
    head_fits = all(k in tensors and tuple(tensors[k].shape) == tuple(own[k].shape) for k in own if is_head(k))
    if keep_head and not head_fits:
        take = {k: v for k, v in take.items() if not is_head(k)}
        keep_head = False
    with torch.no_grad():
        model.load_state_dict(take, strict=False)
    return PretrainedReport(
        source=weights.source,
        loaded=list(take),
        head=[] if keep_head else [k for k in own if is_head(k)],
        skipped=[f"{k} (shape {tuple(tensors[k].shape)} vs {tuple(own[k].shape)})" for k in wrong]
        + [f"{k} (not in this network)" for k in unexpected],
        missing=missing,
        adapted=adapted,
        normalization=normalization,
        classes=weights.classes,
    )


def _adapt_channels(
    tensors: dict[str, torch.Tensor], own: Mapping[str, torch.Tensor], norm: dict[str, list[float]] | None,
) -> tuple[dict[str, torch.Tensor], dict[str, list[float]] | None, list[str]]:
    """RGB weights for a grayscale network (and back): the input convolution's filters, and the normalization.

    As if the gray image were repeated on the three color channels (timm's adapt_input_conv): a 1-channel
    filter is the sum of the RGB filters, each scaled by std/std_c so that one mean/std (the averages) serves;
    exact when the channels' means agree. Gray weights for an RGB network are spread evenly over the channels.
    """
    adapted: list[str] = []
    out = dict(tensors)
    channels = 0  # the network's input channels, once an input convolution was adapted
    for key, mine in own.items():
        theirs = out.get(key)
        if theirs is None or theirs.ndim != 4 or mine.ndim != 4 or theirs.shape == mine.shape:
            continue
        pair = (theirs.shape[1], mine.shape[1])
        if pair not in ((3, 1), (1, 3)) or (theirs.shape[0], *theirs.shape[2:]) != (mine.shape[0], *mine.shape[2:]):
            continue
        if pair == (3, 1):
            scale = torch.ones(3)
            if norm is not None and len(norm["std"]) == 3:
                std = torch.tensor(norm["std"], dtype=torch.float64)
                scale = (std.mean() / std).float()
            out[key] = (theirs.float() * scale.view(1, 3, 1, 1)).sum(1, keepdim=True).to(theirs.dtype)
        else:
            out[key] = theirs.repeat(1, 3, 1, 1) / 3
        adapted.append(f"{key} ({pair[0]} -> {pair[1]} channels)")
        channels = pair[1]
    if norm is not None:
        if channels == 1 and len(norm["mean"]) == 3:
            norm = {k: [sum(v) / 3] for k, v in norm.items()}
        elif channels == 3 and len(norm["mean"]) == 1:
            norm = {k: v * 3 for k, v in norm.items()}
    return out, norm, adapted


# -------------------------------------------------------------------------------------------- reading


def check_source(source: str | os.PathLike[str], *, arch: str | None = None) -> None:
    """Refuse a SOURCE that cannot work (no such file, a weights name for another network) without reading it."""
    path = Path(source).expanduser()
    if path.is_file():
        return
    if path.suffix.lower() in (".pth", ".pt", ".safetensors", ".bin") or os.sep in str(source):
        raise CheckpointError(f"pretrained weights file {source} does not exist")
    _torchvision_weights(str(source), arch)


def read_weights(source: str | os.PathLike[str], *, arch: str | None = None, progress: bool = False) -> Weights:
    """The tensors (and classes, normalization) of a file, a resnetcli checkpoint or a torchvision weights name."""
    path = Path(source).expanduser()
    if path.is_file():
        if path.suffix.lower() == ".safetensors":
            return _read_safetensors(path)
        return _read_torch_file(path)
    check_source(source, arch=arch)
    return _read_torchvision(str(source), arch, progress)


def _read_safetensors(path: Path) -> Weights:
    try:
        from safetensors import SafetensorError, safe_open
    except ImportError:
        raise UsageError(
            f"reading {path} needs the safetensors package: pip install 'resnetcli[export]'"
        ) from None
    try:
        with safe_open(str(path), framework="pt") as fh:
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
            meta = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"pretrained weights file {path} is not a readable safetensors file ({exc})") from None
    carried = _card_fields(meta.get(SAFETENSORS_KEY), path)
    return Weights(str(path), tensors, carried.get("normalization"), carried.get("classes"))


def _card_fields(text: str | None, path: Path) -> dict[str, Any]:
    """Classes and normalization from a .safetensors file's model card, checked as a checkpoint's are: the
    file may come from anywhere, and training divides by its std."""
    from pydantic import ValidationError

    from resnetcli.engine.checkpoint import Normalization, describe

    if not text:
        return {}
    try:
        card = json.loads(text)
    except json.JSONDecodeError:
        raise CheckpointError(f"{path}: its '{SAFETENSORS_KEY}' metadata is not JSON") from None
    if not isinstance(card, dict):
        raise CheckpointError(f"{path}: its '{SAFETENSORS_KEY}' metadata is not a model card (a JSON object)")
    fields: dict[str, Any] = {}
    norm = card.get("preprocessing")
    if isinstance(norm, dict) and "mean" in norm and "std" in norm:
        try:
            checked = Normalization.model_validate({"mean": norm["mean"], "std": norm["std"]})
        except ValidationError as exc:
            raise CheckpointError(f"{path}: its model card's normalization is invalid: {describe(exc)}") from None
        if len(checked.mean) != len(checked.std) or len(checked.mean) not in (1, 3):
            raise CheckpointError(f"{path}: its model card's normalization has {len(checked.mean)} means and "
                                  f"{len(checked.std)} stds; expected 1 (gray) or 3 (RGB) of each")
        fields["normalization"] = {"mean": list(checked.mean), "std": list(checked.std)}
    if isinstance(card.get("classes"), list):
        fields["classes"] = [str(c) for c in card["classes"]]
    return fields


def _read_torch_file(path: Path) -> Weights:
    from resnetcli.engine.checkpoint import FORMAT, load_checkpoint, read_torch_file

    data = read_torch_file(path, "pretrained weights file",
                           "give a state_dict saved with torch.save, or a .safetensors file")
    if isinstance(data, Mapping) and data.get("format") == FORMAT:
        state = load_checkpoint(path)  # the one set of checks every resnetcli checkpoint goes through
        norm = state.get("normalization") or None
        return Weights(str(path), dict(state["model"]), norm and {k: list(v) for k, v in norm.items()},
                       [str(c) for c in state["classes"]])
    # a bare state_dict, or one wrapped the way many training scripts save it
    for key in ("state_dict", "model"):
        if isinstance(data, Mapping) and isinstance(data.get(key), Mapping):
            data = data[key]
            break
    if not isinstance(data, Mapping) or not data or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(
            f"pretrained weights file {path} holds no state_dict (a mapping of names to tensors)"
        )
    return Weights(str(path), {str(k): v for k, v in data.items()})


def _torchvision_weights(name: str, arch: str | None) -> Any:
    """The torchvision weights enum member `name` means for `arch`; nothing is downloaded."""
    import torchvision

    if arch not in TORCHVISION_ARCHS:
        raise UsageError(
            f"--pretrained {name}: not a file, and torchvision weights names are for "
            f"{', '.join(TORCHVISION_ARCHS)} (not {arch or 'this architecture'}); give a .pth, .safetensors "
            "or checkpoint file"
        )
    enum = torchvision.models.get_model_weights(arch)
    member = name.split(".", 1)[1] if name.startswith(f"{enum.__name__}.") else name
    choices = ["DEFAULT", *enum.__members__]
    if member not in choices:
        raise UsageError(
            f"--pretrained {name}: no such file, nor torchvision weights of {arch}; choose a file or one of "
            f"{', '.join(choices)}"
        )
    return enum.DEFAULT if member == "DEFAULT" else enum[member]


def _read_torchvision(name: str, arch: str | None, progress: bool) -> Weights:
    weights = _torchvision_weights(name, arch)
    enum = type(weights)
    cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    try:
        tensors = torch.hub.load_state_dict_from_url(
            weights.url, progress=progress, check_hash=True, weights_only=True, map_location="cpu"
        )
    except OSError as exc:  # URLError, timeouts, no route: one line saying where the file goes
        reason = getattr(exc, "reason", None) or exc.strerror or exc
        raise CheckpointError(
            f"cannot download torchvision weights {enum.__name__}.{weights.name} from {weights.url} ({reason}); "
            f"without a network, copy that file to {cache}, or pass a local file: --pretrained FILE"
        ) from None
    except RuntimeError as exc:  # check_hash: a damaged cached file
        raise CheckpointError(
            f"torchvision weights at {cache} are damaged ({str(exc).splitlines()[0]}); delete the file and retry"
        ) from None
    transform = weights.transforms()
    norm = {"mean": [float(v) for v in transform.mean], "std": [float(v) for v in transform.std]}
    return Weights(f"torchvision {enum.__name__}.{weights.name}", dict(tensors), norm,
                   list(weights.meta.get("categories") or []) or None)


# -------------------------------------------------------------------------------------------- helpers


def _strip_wrappers(tensors: Mapping[str, torch.Tensor], own: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Names saved from DDP (`module.`) or torch.compile (`_orig_mod.`) wrappers, unwrapped."""
    out = dict(tensors)
    for prefix in ("module.", "_orig_mod."):
        if out and all(k.startswith(prefix) for k in out) and not any(k.startswith(prefix) for k in own):
            out = {k[len(prefix):]: v for k, v in out.items()}
    return out


def _shown(items: Sequence[str]) -> str:
    return ", ".join(items[:_SHOWN]) + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def _fmt(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.3f}" for v in values) + ")"

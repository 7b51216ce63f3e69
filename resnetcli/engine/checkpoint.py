"""Checkpoints: one typed description of their contents, checked when written and when read.

A checkpoint is a dict of plain types and tensors only, so `torch.load(weights_only=True)` reads it and a
file that smuggles in any other pickled object is refused instead of executed. `Checkpoint` below lists
every field with its type and range; `save_checkpoint` and `load_checkpoint` both validate against it, so a
crafted or damaged file is refused as one `CheckpointError` line naming the field, and a bad state (NaN
weights, std 0) never replaces a good checkpoint. Only format, version, epoch, model, classes and arch are
required (checkpoints of older resnetcli versions may lack the rest); a field that is present is checked.

Units: best_metric is validation top-1 accuracy in percent (0-100), like every metric resnetcli reports.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from resnetcli.errors import CheckpointError
from resnetcli.io import atomic_path

FORMAT = "resnetcli-checkpoint"
VERSION = 1
#: smallest and largest input side a checkpoint may ask for (a crafted 10^6 px would exhaust memory)
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 8, 1024

_STRICT = ConfigDict(strict=True, arbitrary_types_allowed=True, extra="allow")
NonEmptyStr = Annotated[str, Field(min_length=1)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0)]
ImageSize = Annotated[int, Field(ge=MIN_IMAGE_SIZE, le=MAX_IMAGE_SIZE)]


class Arch(BaseModel):
    """How to rebuild the network: a registered architecture called with these arguments."""

    model_config = _STRICT
    name: NonEmptyStr
    num_classes: Annotated[int, Field(ge=1)]
    in_channels: Literal[1, 3] = 3
    options: dict[str, Any] = Field(default_factory=dict)


class Normalization(BaseModel):
    """Per-channel mean and std the inputs were normalized with."""

    model_config = _STRICT
    mean: list[FiniteFloat]
    std: list[Annotated[float, Field(gt=0, allow_inf_nan=False)]]


class DataInfo(BaseModel):
    """What the network was trained on, as far as evaluating it needs."""

    model_config = _STRICT
    image_size: ImageSize | None = None
    channels: Literal[1, 3] | None = None
    source: str | None = None
    spec: str | None = None
    augment: str | None = None
    train_size: Count | None = None
    val_split: str | None = None
    #: the splits whose images were trained on: train, plus held-out splits given back (--val-split none);
    #: `test` refuses to score these (None: a checkpoint from before this was recorded)
    trained_on: list[str] | None = None


class ConfigView(BaseModel):
    """The resolved training config; the keys `test`/`predict` read are typed, the rest is TrainConfig's."""

    model_config = _STRICT
    data: str | None = None
    data_options: dict[str, Any] = Field(default_factory=dict)
    augment: str | None = None
    aug_options: dict[str, Any] = Field(default_factory=dict)
    image_size: ImageSize | None = None
    epochs: Annotated[int, Field(ge=1)] | None = None
    output: str | None = None
    runs_dir: str | None = None
    name: str | None = None


class RngState(BaseModel):
    """engine/rng.py's rng_state(): python and numpy states as lists, torch's as uint8 tensors."""

    model_config = _STRICT
    python: list[Any] = Field(min_length=3, max_length=3)
    numpy: list[Any] = Field(min_length=5, max_length=5)
    torch: torch.Tensor
    cuda: list[torch.Tensor] = Field(default_factory=list)

    @field_validator("torch")
    @classmethod
    def _byte_tensor(cls, value: torch.Tensor) -> torch.Tensor:
        if value.dtype != torch.uint8:
            raise ValueError(f"must be a uint8 tensor, not {value.dtype}")
        return value

    @field_validator("python")
    @classmethod
    def _python_state(cls, value: list[Any]) -> list[Any]:
        # random.getstate(): (version, 625 ints, gauss or None)
        version, state, gauss = value
        if not (_is_int(version) and isinstance(state, (list, tuple)) and all(_is_int(v) for v in state)
                and (gauss is None or isinstance(gauss, float))):
            raise ValueError("must be [version, [int, ...], float or None] (random.getstate())")
        return value

    @field_validator("numpy")
    @classmethod
    def _numpy_state(cls, value: list[Any]) -> list[Any]:
        # numpy.random.get_state(): ("MT19937", 624 ints, pos, has_gauss, cached_gaussian)
        name, keys, pos, has_gauss, cached = value
        if not (isinstance(name, str) and isinstance(keys, (list, tuple)) and all(_is_int(k) for k in keys)
                and _is_int(pos) and _is_int(has_gauss) and isinstance(cached, float)):
            raise ValueError("must be [name, [int, ...], int, int, float] (numpy.random.get_state())")
        return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def non_finite_weight(weights: dict[str, torch.Tensor]) -> str | None:
    """The name of the first floating-point tensor holding NaN or infinity, or None when all are finite."""
    floats = {name: tensor for name, tensor in weights.items() if tensor.is_floating_point()}
    if not floats:
        return None
    # One fused norm of every tensor first (NaN and infinity reach it): a tenth of an isfinite per tensor, which
    # was 30 ms for a ResNet-18 at every epoch and checkpoint load. A norm past float32's range is no proof, so
    # a non-finite total is confirmed tensor by tensor.
    from torch.nn.utils import get_total_norm

    if bool(torch.isfinite(get_total_norm(list(floats.values())))):
        return None
    return next((name for name, tensor in floats.items() if not bool(torch.isfinite(tensor).all())), None)


def _finite(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state_dict with weights, all finite (a diverged run's NaNs never replace a good checkpoint)."""
    if not weights:
        raise ValueError("holds no weights")
    bad = non_finite_weight(weights)
    if bad is not None:
        raise ValueError(f"weight {bad} holds NaN or infinite values (the training diverged)")
    return weights


class EmaState(BaseModel):
    """engine/ema.py (--ema): `model` then holds the average; these are the raw training weights."""

    model_config = _STRICT
    decay: Annotated[float, Field(gt=0, lt=1)]
    n_averaged: Count  # optimizer steps averaged so far
    weights: dict[str, torch.Tensor]

    _finite_weights = field_validator("weights")(_finite)


class EarlyStopState(BaseModel):
    """engine/early_stop.py (--early-stop): the best value of the watched metric and the epochs since."""

    model_config = _STRICT
    metric: Literal["val_acc", "val_loss"]
    best: FiniteFloat | None = None
    best_epoch: Count | None = None
    bad_epochs: Count = 0


class PartialEpoch(BaseModel):
    """engine/partial.py (--checkpoint-every-steps): how far the epoch after `epoch` got when last.pt was written
    inside it, and what resuming it exactly needs."""

    model_config = ConfigDict(strict=True, arbitrary_types_allowed=True, extra="forbid")  # EpochProgress(**it)
    epoch: Annotated[int, Field(ge=1)]
    step: Annotated[int, Field(ge=1)]  # batches done in it
    updates: Count  # optimizer steps taken in it
    loss_sum: FiniteFloat
    correct_sum: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    seen: Annotated[int, Field(ge=1)]
    lr_start: FiniteFloat
    mix_numpy: dict[str, Any]
    mix_torch: torch.Tensor

    @field_validator("mix_numpy")
    @classmethod
    def _numpy_generator_state(cls, value: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        try:  # the one test that cannot drift from numpy: the state loads into the generator it is for
            np.random.default_rng().bit_generator.state = value
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"is not a numpy PCG64 state ({exc})") from None
        return value

    @field_validator("mix_torch")
    @classmethod
    def _torch_generator_state(cls, value: torch.Tensor) -> torch.Tensor:
        try:
            torch.Generator().set_state(value)
        except (TypeError, RuntimeError) as exc:
            raise ValueError(f"is not a torch.Generator state ({exc})") from None
        return value


class Checkpoint(BaseModel):
    """Every field of a resnetcli checkpoint (FORMAT, VERSION), with its type and range."""

    model_config = _STRICT
    format: Literal["resnetcli-checkpoint"]
    version: Annotated[int, Field(ge=1, le=VERSION)]
    epoch: Count  # epochs completed
    global_step: Count = 0  # optimizer steps taken
    model: dict[str, torch.Tensor]  # state_dict, unwrapped from DDP / torch.compile
    optimizer: dict[str, Any] | None = None  # optimizer.state_dict()
    scheduler: dict[str, Any] | None = None
    scaler: dict[str, Any] | None = None  # GradScaler.state_dict()
    best_metric: FiniteFloat | None = None  # best validation top-1 so far, percent
    best_epoch: Count | None = None
    rng: RngState | None = None
    classes: list[NonEmptyStr] = Field(min_length=1)
    normalization: Normalization | None = None
    arch: Arch
    data: DataInfo | None = None
    config: ConfigView | None = None
    metrics: dict[str, Any] | None = None  # the last epoch's metrics row
    partial_epoch: PartialEpoch | None = None  # written inside epoch `epoch` + 1 (--checkpoint-every-steps)
    ema: EmaState | None = None  # --ema: `model` holds the averaged weights, ema.weights the raw ones
    early_stop: EarlyStopState | None = None  # --early-stop's counters

    _finite_weights = field_validator("model")(_finite)

    @field_validator("optimizer")
    @classmethod
    def _optimizer_shape(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and not (isinstance(value.get("state"), dict)
                                      and isinstance(value.get("param_groups"), list)):
            raise ValueError("must be an optimizer state_dict (with 'state' and 'param_groups')")
        return value

    @field_validator("classes")
    @classmethod
    def _unique(cls, classes: list[str]) -> list[str]:
        repeated = sorted({c for c in classes if classes.count(c) > 1})
        if repeated:
            raise ValueError(f"repeats class names: {', '.join(repeated[:5])}")
        return classes

    @model_validator(mode="after")
    def _consistent(self) -> Checkpoint:
        if self.arch.num_classes != len(self.classes):
            raise FieldProblem("arch.num_classes", f"is {self.arch.num_classes} but there are {len(self.classes)} "
                               "class names")
        channels = self.arch.in_channels
        if self.normalization is not None:
            for key in ("mean", "std"):
                values = getattr(self.normalization, key)
                if len(values) != channels:
                    raise FieldProblem(f"normalization.{key}",
                                       f"has {len(values)} values for {channels} input channel(s)")
        if self.data is not None and self.data.channels not in (None, channels):
            raise FieldProblem("data.channels", f"is {self.data.channels} but arch.in_channels is {channels}")
        if self.partial_epoch is not None and self.partial_epoch.epoch != self.epoch + 1:
            raise FieldProblem("partial_epoch.epoch", f"is {self.partial_epoch.epoch}, not the one after {self.epoch}")
        if self.best_epoch is not None and self.best_epoch > self.epoch:
            raise FieldProblem("best_epoch", f"{self.best_epoch} is after the last epoch, {self.epoch}")
        if self.early_stop is not None and (self.early_stop.best_epoch or 0) > self.epoch:
            raise FieldProblem("early_stop.best_epoch",
                               f"{self.early_stop.best_epoch} is after the last epoch, {self.epoch}")
        if self.ema is not None and (self.ema.weights.keys() != self.model.keys() or any(
                tensor.shape != self.model[key].shape for key, tensor in self.ema.weights.items())):
            # model is checked against the network when loaded; the raw weights must match it tensor for tensor
            raise FieldProblem("ema.weights", "does not hold the same tensors as model")
        return self


class FieldProblem(ValueError):
    """A rule between fields, reported under the field it names."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_contents(state: Mapping[str, Any], path: Path) -> None:
    """Validate `state` against `Checkpoint`; the first problem becomes one CheckpointError line."""
    if not isinstance(state, Mapping) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a resnetcli checkpoint")
    if isinstance(state.get("version"), int) and not isinstance(state["version"], bool) and state["version"] > VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {state['version']}; this resnetcli reads up to {VERSION}"
        )
    try:
        Checkpoint.model_validate(dict(state))
    except ValidationError as exc:
        raise CheckpointError(f"checkpoint {path} is invalid: {describe(exc)}") from None


def describe(exc: ValidationError) -> str:
    """pydantic's first error as 'field a.b: message (found 'x')', plus how many more there were."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or "contents"
    problem = (first.get("ctx") or {}).get("error")
    if isinstance(problem, FieldProblem):
        where = problem.field
    message = first["msg"].removeprefix("Value error, ")
    text = f"field '{where}': {message}"
    if first["type"] not in ("missing", "value_error") and "input" in first:
        found = first["input"]
        shown = f"a {type(found).__name__}" if isinstance(found, (dict, list, torch.Tensor)) else repr(found)
        text += f" (found {shown[:60]})"
    if len(errors) > 1:
        text += f"; and {len(errors) - 1} more problem(s)"
    return text


def class_changes(old: Sequence[str], new: Sequence[str], old_label: str, new_label: str) -> list[str]:
    """What two class lists do not share, e.g. ["only in the checkpoint: a, b", "only in the data: c"]."""
    changes = []
    for label, ours, theirs in ((old_label, old, new), (new_label, new, old)):
        extra = [c for c in ours if c not in theirs]
        if extra:
            shown = ", ".join(extra[:6]) + (f" and {len(extra) - 6} more" if len(extra) > 6 else "")
            changes.append(f"{label}: {shown}")
    return changes


def save_checkpoint(state: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Validate `state`, then write it to `path` atomically (temporary file, fsync, rename)."""
    path = Path(path)
    state = {"format": FORMAT, "version": VERSION, **state}
    try:
        check_contents(state, path)
    except CheckpointError as exc:
        raise CheckpointError(f"{exc}; not written, the previous checkpoint is intact") from None
    try:
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
    except (OSError, RuntimeError) as exc:  # torch.save reports a full disk as RuntimeError
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
        raise CheckpointError(
            f"could not write checkpoint {path}: {reason}; the previous checkpoint is intact"
        ) from exc
    # a process killed in the middle of a save leaves its temporary file behind: the next save clears them
    for stale in path.parent.glob(".*.pt.*.tmp"):
        stale.unlink(missing_ok=True)
    return path


def read_torch_file(path: Path, what: str, advice: str, map_location: str | torch.device = "cpu") -> Any:
    """torch.load(weights_only=True) of a torch.save archive; damage or unsafe content is one CheckpointError line.

    The one safe reader for every .pt/.pth the tool opens (checkpoints, pretrained weights). `what` names
    the file in messages ("checkpoint", "pretrained weights file"), `advice` says what to do instead.
    """
    if not zipfile.is_zipfile(path):
        # torch.save writes a zip archive; anything else (cut short, empty, random bytes) is damaged. Checked
        # first because torch reports random bytes as a refused pickle, with advice to load it unsafely.
        raise CheckpointError(
            f"{what} {path} is truncated or corrupt and cannot be read (not a complete torch archive); {advice}"
        )
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refuses anything but tensors and plain containers: never execute it. Keep only the
        # reason from torch's message (the rest advises weights_only=False, and holds terminal escapes).
        found = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\. Please use|\n|$)", str(exc))
        reason = re.sub(r"\x1b\[[0-9;]*m", "", found.group(1)).strip() if found else "unsupported content"
        raise CheckpointError(
            f"{what} {path} holds objects other than tensors and plain types and was refused "
            f"(weights_only loading: {reason}); {advice}"
        ) from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{what} {path} is truncated or corrupt and cannot be read ({type(exc).__name__}); {advice}"
        ) from exc


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and validate a resnetcli checkpoint safely; any problem becomes one CheckpointError line."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    state = read_torch_file(path, "checkpoint", "use another checkpoint or retrain", map_location)
    check_contents(state, path)
    return state


def load_weights(model: torch.nn.Module, weights: Mapping[str, torch.Tensor], path: Path, arch: str) -> None:
    """load_state_dict(strict=True), with every missing, unexpected or wrongly shaped tensor on one line."""
    own = model.state_dict()
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    wrong = [
        f"{k} {tuple(weights[k].shape)} vs {tuple(own[k].shape)}"
        for k in own if k in weights and tuple(weights[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or wrong:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if items:
                shown = ", ".join(items[:3]) + (f" and {len(items) - 3} more" if len(items) > 3 else "")
                parts.append(f"{len(items)} {label} ({shown})")
        raise CheckpointError(
            f"checkpoint {path}: its weights do not fit a '{arch}' network: {'; '.join(parts)}; "
            "was it written by another architecture or another version of its plugin?"
        )
    try:
        model.load_state_dict(dict(weights), strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path}: weights do not load into '{arch}': {exc}") from None

"""The training configuration: one dataclass holding every option of `resnetcli train`.

Precedence, lowest first: the dataclass defaults < the checkpoint's config (when resuming) < a YAML file
(--config, a path or a shipped recipe name) < the flags the user actually typed. Everything here is plain
Python (no torch), so `--print-config` answers at once.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from resnetcli.errors import UsageError
from resnetcli.options import load_yaml as parse_yaml


@dataclass
class TrainConfig:
    """Every option of a training run (the resolved copy is written to RUN_DIR/config.yaml)."""

    # what to train on, and what
    data: str | None = None
    data_options: dict[str, Any] = field(default_factory=dict)
    val_split: str = "auto"  # auto: "val", else "test", else no validation
    arch: str | None = None
    arch_options: dict[str, Any] = field(default_factory=dict)
    # optimization
    optimizer: str = "sgd"
    optimizer_options: dict[str, Any] = field(default_factory=dict)
    lr: float | None = None  # None: the optimizer's usual rate (0.1 for SGD, 1e-3 for Adam/AdamW, 0.01 RMSprop)
    weight_decay: float = 1e-4
    momentum: float | None = None  # None: the optimizer's default (0.9 for SGD)
    decay_bn_bias: bool = True
    scheduler: str = "cosine"
    sched_options: dict[str, Any] = field(default_factory=dict)
    warmup_epochs: float = 0.0
    epochs: int = 30
    batch_size: int = 128
    eval_batch_size: int | None = None
    drop_last: bool = True
    grad_clip: float | None = None
    # data pipeline and batch-level tricks
    augment: str | None = None  # None: cifar for images up to 64 px, imagenet above
    aug_options: dict[str, Any] = field(default_factory=dict)
    image_size: int | None = None
    mixup: float = 0.0
    label_smoothing: float = 0.0
    # bookkeeping
    output: str | None = None
    runs_dir: str = "runs"
    name: str | None = None
    resume: str | None = None
    overwrite: bool = False  # start over in an --output folder that already holds a run
    checkpoint_every: int = 0
    log_level: str = "INFO"
    log_every: int = 20
    tensorboard: bool = True
    plot: bool = True
    max_steps: int | None = None  # at most this many training batches per epoch (smoke tests)
    # speed and scale
    seed: int = 0
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    amp: bool = False
    amp_dtype: Literal["bf16", "fp16"] = "bf16"
    channels_last: bool = False
    compile: bool = False
    workers: int | None = None  # None: min(4, CPUs)
    dist_timeout: float = 300.0  # seconds a rank waits for the others before giving up

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)


FIELDS: dict[str, dataclasses.Field[Any]] = {f.name: f for f in dataclasses.fields(TrainConfig)}
_HINTS = typing.get_type_hints(TrainConfig)


def recipes_dir() -> Path:
    return Path(str(resources.files("resnetcli") / "configs"))


def recipe_names() -> list[str]:
    folder = recipes_dir()
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def find_config(name_or_path: str) -> Path:
    """A YAML file path, or the name of a shipped recipe (resnetcli/configs/NAME.yaml)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    recipe = recipes_dir() / f"{name_or_path.removesuffix('.yaml')}.yaml"
    if recipe.is_file():
        return recipe
    known = ", ".join(recipe_names()) or "(none)"
    raise UsageError(f"config '{name_or_path}' is neither a file nor a shipped recipe; recipes: {known}")


def _check(name: str, value: Any, hint: Any) -> tuple[bool, Any]:
    """Is `value` acceptable for a field typed `hint`? Returns (ok, value coerced where harmless)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for arm in typing.get_args(hint):
            ok, coerced = _check(name, value, arm)
            if ok:
                return True, coerced
        return False, value
    if origin is Literal:
        return value in typing.get_args(hint), value
    if hint is type(None):
        return value is None, value
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        if isinstance(value, bool):
            return False, value
        if isinstance(value, (int, float)):
            return True, float(value)
        return False, value
    if hint is str:
        return isinstance(value, str), value
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            return False, value
        return True, {str(k): v for k, v in value.items()}
    return True, value


def _type_name(hint: Any) -> str:
    text = str(hint).replace("typing.", "")
    return text.replace("<class '", "").replace("'>", "")


def validate(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Check keys and types of a partial config; one UsageError line naming the key and its source."""
    checked: dict[str, Any] = {}
    for key, value in values.items():
        norm = str(key).replace("-", "_")
        if norm not in FIELDS:
            import difflib

            close = difflib.get_close_matches(norm, list(FIELDS), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise UsageError(f"unknown config key '{key}' in {where}{hint}")
        ok, coerced = _check(norm, value, _HINTS[norm])
        if not ok:
            raise UsageError(
                f"config key '{key}' in {where} must be {_type_name(_HINTS[norm])}, got {value!r}"
            )
        checked[norm] = coerced
    return checked


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A config file's validated keys (safe_load only)."""
    path = Path(path)
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read config {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"config {path} is not valid YAML: {' '.join(str(exc).split())}") from exc
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise UsageError(f"config {path} must be a mapping of option: value, not a {type(data).__name__}")
    return validate(data, str(path))


def resolve(
    *layers: tuple[Mapping[str, Any], str],
) -> TrainConfig:
    """Merge validated layers (lowest precedence first) over the defaults."""
    merged: dict[str, Any] = {}
    for values, where in layers:
        for key, value in validate(values, where).items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}  # option maps merge key by key
            else:
                merged[key] = value
    return TrainConfig(**merged)


def config_layers(config_file: str | None, flags: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], str]]:
    """The validated YAML file (if any) and command-line layers, lowest precedence first."""
    layers: list[tuple[Mapping[str, Any], str]] = []
    if config_file:
        path = find_config(config_file)
        layers.append((load_yaml(path), str(path)))
    layers.append((validate(flags, "the command line"), "the command line"))
    return layers


def resolve_light(config_file: str | None, flags: Mapping[str, Any]) -> TrainConfig:
    """defaults < YAML file < flags, without looking at any checkpoint (no torch import)."""
    return resolve(*config_layers(config_file, flags))

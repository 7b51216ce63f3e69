"""The training configuration: one validated model holding every option of `resnetcli train`.

Every field's type, range and finiteness is declared here and checked when a config (or one layer of it)
is built, so a bad value is one line naming the option and where it came from, before any work starts.
Each field's description is also the `train --help` text, followed by its default read from here.

Precedence, lowest first: the defaults < the checkpoint's config (when resuming) < a YAML file
(--config, a path or a shipped recipe name) < the flags the user actually typed. Everything here is plain
Python (no torch), so `--print-config` answers at once.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from pydantic.dataclasses import dataclass

from resnetcli.errors import UsageError
from resnetcli.options import load_yaml as parse_yaml

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
#: the run logger every run has, whatever --logger says (resnetcli/loggers)
ALWAYS_LOGGER = "csv"
#: strict: a YAML string "0.1" is not a number, true is not 1; no nan or inf anywhere
_STRICT = ConfigDict(strict=True, allow_inf_nan=False)
_LOTS = 1_000_000  # an upper bound for counts that only guards against typos like 1e30


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _comma_list(value: Any) -> Any:
    """'stem,layer1' (a flag, or YAML written like one) as ['stem', 'layer1']."""
    return [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value


@dataclass(config=_STRICT)
class TrainConfig:
    """Every option of a training run (the resolved copy is written to RUN_DIR/config.yaml)."""

    # what to train on, and what
    data: Annotated[str | None, Field(
        description="Processed folder, image folder, CIFAR folder, or dataset name (cifar10...).")] = None
    data_options: dict[str, Any] = Field(default_factory=dict, description="Options for the dataset builder.")
    val_split: Annotated[str, Field(
        description="Split used for validation: auto (val, else test), a split name, or none.")] = "auto"
    arch: Annotated[str | None, Field(description="Architecture (see `resnetcli list architectures`).")] = None
    arch_options: dict[str, Any] = Field(default_factory=dict, description="Architecture options.")
    # fine-tuning (resnetcli/pretrained.py, resnetcli/engine/freeze.py)
    pretrained: Annotated[str | None, Field(description=(
        "Start from these weights: a torchvision weights name (IMAGENET1K_V1, IMAGENET1K_V2, DEFAULT), a .pth or "
        ".safetensors file, or another run's checkpoint. The classifier is new for the data's classes."))] = None
    pretrained_strict: Annotated[bool, Field(description=(
        "Refuse --pretrained weights unless every tensor but the classifier matches by name and shape."))] = True
    freeze: Annotated[list[str], BeforeValidator(_comma_list), Field(description=(
        "Stages to freeze (no gradient, BatchNorm in eval mode), e.g. stem,layer1."))] = Field(default_factory=list)
    freeze_until: Annotated[str | None, Field(description=(
        "Freeze the stem and every stage up to this one, e.g. layer3."))] = None
    unfreeze_at: Annotated[int | None, Field(ge=1, le=_LOTS, description=(
        "Epoch (from 1) from which the frozen stages train too. Default: they stay frozen."))] = None
    backbone_lr_mult: Annotated[float, Field(gt=0, le=100, description=(
        "Learning rate of everything but the classifier, as a multiple of --lr (e.g. 0.1)."))] = 1.0
    # optimization
    optimizer: Annotated[str, Field(
        description="sgd, sgd-nesterov, adam, adamw, rmsprop, or a plugin's.")] = "sgd"
    optimizer_options: dict[str, Any] = Field(default_factory=dict, description="Optimizer options.")
    lr: Annotated[float | None, Field(gt=0, le=10, description=(
        "Learning rate. Default: the optimizer's usual rate (0.1 SGD, 1e-3 Adam/AdamW, 0.01 RMSprop)."))] = None
    weight_decay: Annotated[float, Field(ge=0, le=1, description="Weight decay.")] = 1e-4
    momentum: Annotated[float | None, Field(ge=0, lt=1, description=(
        "Momentum (SGD, RMSprop). Default: the optimizer's default (0.9 for SGD)."))] = None
    decay_bn_bias: Annotated[bool, Field(description="Weight decay on biases and normalization weights.")] = True
    scheduler: Annotated[str, Field(description="constant, step, multistep, cosine, plateau, onecycle.")] = "cosine"
    sched_options: dict[str, Any] = Field(default_factory=dict, description="Scheduler options.")
    warmup_epochs: Annotated[float, Field(ge=0, le=_LOTS, description=(
        "Linear learning-rate warm-up over this many epochs (per batch); shorter than --epochs."))] = 0.0
    epochs: Annotated[int, Field(ge=1, le=_LOTS, description="Epochs to train.")] = 30
    batch_size: Annotated[int, Field(ge=1, le=65536, description="Batch size per process.")] = 128
    eval_batch_size: Annotated[int | None, Field(ge=1, le=65536, description=(
        "Validation batch size. Default: the training batch size."))] = None
    drop_last: Annotated[bool, Field(description="Drop the last incomplete training batch.")] = True
    grad_clip: Annotated[float | None, Field(gt=0, le=_LOTS, description=(
        "Clip the gradient norm to this value. Default: no clipping."))] = None
    # data pipeline and batch-level tricks
    augment: Annotated[str | None, Field(description=(
        "Pipeline name (none, cifar, caltech, imagenet, randaugment, trivialaugment, autoaugment, erasing) or "
        "an albumentations YAML file. "
        "Default: cifar up to 64 px, imagenet above."))] = None
    aug_options: dict[str, Any] = Field(default_factory=dict, description="Augmentation pipeline options.")
    image_size: Annotated[int | None, Field(ge=8, le=1024, description=(
        "Training image size. Default: the model's, capped at the data's own size."))] = None
    mixup: Annotated[float, Field(ge=0, le=100, description="Mixup with Beta(alpha, alpha), e.g. 0.2; 0 is off.")] = 0.0
    cutmix: Annotated[float, Field(ge=0, le=100, description=(
        "CutMix with Beta(alpha, alpha), e.g. 1.0; 0 is off. With --mixup too, each batch uses one of the two "
        "(p=0.5)."))] = 0.0
    label_smoothing: Annotated[float, Field(ge=0, lt=1, description=(
        "Label smoothing epsilon, e.g. 0.1; 0 is off."))] = 0.0
    # training practices (engine/early_stop.py, engine/ema.py, engine/imbalance.py; accumulation in loop.py)
    early_stop: Annotated[int | None, Field(ge=1, le=_LOTS, description=(
        "Stop after this many epochs without improvement of --early-stop-metric (best.pt is kept). "
        "Default: off."))] = None
    early_stop_metric: Annotated[Literal["val_acc", "val_loss"], Field(
        description="What --early-stop watches: val_acc (higher is better) or val_loss (lower).")] = "val_acc"
    early_stop_min_delta: Annotated[float, Field(ge=0, le=_LOTS, description=(
        "Smallest change of the metric that counts as an improvement (accuracy in percent points)."))] = 0.0
    ema: Annotated[float | None, Field(gt=0, lt=1, description=(
        "Keep an exponential moving average of the weights with this decay (e.g. 0.999), updated every "
        "optimizer step; validation, best.pt, test, export and predict use it. Default: off."))] = None
    accumulate: Annotated[int, Field(ge=1, le=4096, description=(
        "Accumulate the gradients of N batches per optimizer step (effective batch N x --batch-size); the "
        "schedule counts optimizer steps."))] = 1
    class_weights: Annotated[str | None, Field(description=(
        "Weigh the loss per class: auto (inverse frequency), effective[:BETA] (effective number of samples, "
        "beta 0.999), or a YAML/JSON/CSV file of class: weight. Default: off."))] = None
    balanced_sampler: Annotated[bool, Field(description=(
        "Draw every class equally often in each epoch (minority images repeat, majority ones are "
        "subsampled)."))] = False
    # bookkeeping
    output: Annotated[str | None, Field(description="Run folder. Default: runs/<name>.")] = None
    runs_dir: Annotated[str, Field(description="Folder that holds the runs.")] = "runs"
    name: Annotated[str | None, Field(description="Run name under runs/. Default: <arch>-<timestamp>.")] = None
    resume: Annotated[str | None, Field(description="auto (latest run's last.pt) or a checkpoint path.")] = None
    overwrite: Annotated[bool, Field(description=(
        "Start over in an --output folder that already holds a run (its checkpoints, metrics, logs and what "
        "test, export and report wrote from them are deleted)."))] = False
    checkpoint_every: Annotated[int, Field(ge=0, le=_LOTS, description=(
        "Also keep checkpoints/epoch_NNN.pt every N epochs; 0 is off."))] = 0
    checkpoint_every_steps: Annotated[int | None, Field(ge=1, le=_LOTS, description=(
        "Also write last.pt every N training batches inside an epoch (a preempted run loses at most N); "
        "resuming from it is exact. Single-process training."))] = None
    checkpoint_every_minutes: Annotated[float | None, Field(gt=0, le=_LOTS, allow_inf_nan=False, description=(
        "Also write last.pt inside an epoch every M minutes."))] = None
    log_level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(_upper), Field(
        description="DEBUG, INFO, WARNING or ERROR (console and train.log).")] = "INFO"
    log_every: Annotated[int, Field(ge=1, le=_LOTS, description="Log every N training batches.")] = 20
    tensorboard: Annotated[bool, Field(description="Write TensorBoard event files.")] = True
    loggers: Annotated[list[str], Field(description=(
        "Run loggers (entry-point group resnetcli.loggers): csv, tensorboard, mlflow or a plugin's. csv "
        "(metrics.csv + metrics.jsonl) is always on: resume and `resnetcli runs` read it."))] = Field(
        default_factory=lambda: ["csv", "tensorboard"])
    plot: Annotated[bool, Field(description="Draw the training curves.")] = True
    max_steps: Annotated[int | None, Field(ge=1, le=10**9, description=(
        "At most N training batches per epoch (smoke tests)."))] = None
    # speed and scale
    seed: Annotated[int, Field(ge=0, le=2**32 - 1, description="Random seed.")] = 0
    device: Annotated[Literal["auto", "cpu", "cuda", "mps"], Field(
        description="auto (cuda, then mps, then cpu), cpu, cuda or mps.")] = "auto"
    amp: Annotated[bool | Literal["auto"], Field(description=(
        "Mixed precision (autocast). auto: bf16 where the CPU or GPU computes it natively, fp16 with a GradScaler "
        "on other GPUs, else fp32 (engine/device.py; config.yaml records what was chosen)."))] = "auto"
    amp_dtype: Annotated[Literal["auto", "bf16", "fp16"], Field(
        description="bf16 (CPU or GPU) or fp16 (GPU, with a GradScaler); auto: the device's best.")] = "auto"
    channels_last: Annotated[bool | Literal["auto"], Field(description=(
        "NHWC memory format. auto: on CPUs and on GPUs with tensor cores."))] = "auto"
    in_memory: Annotated[bool | Literal["auto"], Field(description=(
        "Decode the images once into memory and augment whole batches on the main process (pipelines none "
        "and cifar). auto: when every image is at most 64 px and they take at most a quarter of the free "
        "memory."))] = "auto"
    compile: Annotated[bool, Field(description="torch.compile the model.")] = False
    workers: Annotated[int | None, Field(ge=0, le=64, description=(
        "DataLoader worker processes. Default: min(4, CPUs)."))] = None
    dist_timeout: Annotated[float, Field(gt=0, le=7 * 24 * 3600, description=(
        "Seconds a rank waits for the others before giving up."))] = 300.0

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        """Rules between options (a single option's range is declared on its field)."""
        if self.warmup_epochs > 0 and self.warmup_epochs >= self.epochs:
            raise ValueError(f"--warmup-epochs ({self.warmup_epochs}) must be shorter than --epochs ({self.epochs})")
        if self.mixup > 0 and self.batch_size < 2:
            raise ValueError("--mixup mixes images within a batch and needs --batch-size of at least 2")
        if self.cutmix > 0 and self.batch_size < 2:
            raise ValueError("--cutmix mixes images within a batch and needs --batch-size of at least 2")
        # csv is always on, first (resume, the plot and `resnetcli runs` read its files); recorded as such
        self.loggers = list(dict.fromkeys([ALWAYS_LOGGER, *self.loggers]))
        if self.unfreeze_at is not None and not (self.freeze or self.freeze_until):
            raise ValueError("--unfreeze-at needs stages to unfreeze: add --freeze or --freeze-until")
        stages = [*self.freeze, *([self.freeze_until] if self.freeze_until else [])]
        bad = [name for name in stages if not re.fullmatch(r"stem|layer[1-9]\d*", name)]
        if bad:
            raise ValueError(f"--freeze/--freeze-until {','.join(bad)}: stages are stem, layer1, layer2, ...")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)


FIELDS = TrainConfig.__pydantic_fields__
#: one validator per field, so a partial layer (a YAML file, the flags) is checked on its own
_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    name: TypeAdapter(Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation,
                      config=_STRICT)
    for name, info in FIELDS.items()
}
#: config keys whose command-line flag is not simply --key-with-dashes
_FLAGS = {"data_options": "--data-option", "arch_options": "--arch-option", "optimizer_options": "--opt-option",
          "sched_options": "--sched-option", "aug_options": "--aug-option"}
COMMAND_LINE = "the command line"


def flag(key: str) -> str:
    """The `train` flag that sets config key `key`."""
    return _FLAGS.get(key, "--" + key.replace("_", "-"))


def default(key: str) -> Any:
    """A field's default, as `--print-config` shows it."""
    info = FIELDS[key]
    return info.default_factory() if info.default_factory is not None else info.default  # type: ignore[call-arg]


def describe(key: str) -> str:
    """The field's description and its default, for `train --help` (one source for both)."""
    text = FIELDS[key].description or ""
    value = default(key)
    if value is True:
        return f"{text} \\[default: {flag(key)}]"
    if value is None or value is False or value == {}:
        return text  # the description says what an unset option means
    return f"{text} \\[default: {value}]"


def _type_name(key: str) -> str:
    """'int', 'float | None', 'dict[str, Any]': the field's type as written above; bool | Literal['auto'] as
    "bool or 'auto'"."""
    annotation = FIELDS[key].annotation
    if get_origin(annotation) is Union and get_origin(get_args(annotation)[-1]) is Literal:
        *types, choices = get_args(annotation)
        return " or ".join([*(t.__name__ for t in types), *map(repr, get_args(choices))])
    return str(annotation).replace("typing.", "").replace("<class '", "").replace("'>", "")


def _reason(error: Mapping[str, Any], key: str | None = None) -> str:
    """pydantic's 'Input should be greater than 0' as 'must be greater than 0'; a wrong type names the type."""
    if key is not None and str(error["type"]).endswith(("_type", "_parsing", "_from_float")):
        return f"must be {_type_name(key)}"
    message = str(error["msg"])
    message = re.sub(r"^Value error, ", "", message)
    message = re.sub(r"^Input should be", "must be", message)
    return message.replace("greater than or equal to", "at least").replace("less than or equal to", "at most")


def _bad_value(key: str, value: Any, where: str, error: Mapping[str, Any]) -> UsageError:
    name = flag(key) if where == COMMAND_LINE else f"config key '{key}' in {where}"
    return UsageError(f"{name} {_reason(error, key)}, got {value!r}")


def validate(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Check the keys, types and ranges of a partial config; one UsageError line naming the key and source."""
    checked: dict[str, Any] = {}
    for key, value in values.items():
        norm = str(key).replace("-", "_")
        if norm not in FIELDS:
            close = difflib.get_close_matches(norm, list(FIELDS), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise UsageError(f"unknown config key '{key}' in {where}{hint}")
        try:
            checked[norm] = _ADAPTERS[norm].validate_python(value)
        except ValidationError as exc:
            raise _bad_value(norm, value, where, exc.errors()[0]) from None
    return checked


def build(values: Mapping[str, Any], where: str = "the resolved config") -> TrainConfig:
    """A TrainConfig from validated values; a rule between options is one UsageError line."""
    try:
        return TrainConfig(**validate(values, where))
    except ValidationError as exc:
        raise UsageError(_reason(exc.errors()[0])) from None


def replace(config: TrainConfig, **changes: Any) -> TrainConfig:
    """A copy of `config` with `changes`, validated like any other config."""
    return build({**config.to_dict(), **changes}, "the resolved config")


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


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A config file's validated keys (safe_load only)."""
    path = Path(path)
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read config {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError:
        raise UsageError(f"config {path} is not a UTF-8 text file (give a YAML file of option: value)") from None
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
    layer_of: dict[str, int] = {}
    for n, (values, where) in enumerate(layers):
        for key, value in validate(values, where).items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}  # option maps merge key by key
            else:
                merged[key] = value
            layer_of[key] = n
    # `tensorboard: false` (the seeds' key) and --logger name the same logger: a `loggers` list from a later
    # layer that names tensorboard overrides an earlier `tensorboard: false` (--logger over a config file)
    if merged.get("tensorboard") is False and layer_of.get("loggers", -1) > layer_of["tensorboard"]:
        merged["tensorboard"] = "tensorboard" in merged["loggers"]
    return build(merged)


def config_layers(config_file: str | None, flags: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], str]]:
    """The validated YAML file (if any) and command-line layers, lowest precedence first."""
    layers: list[tuple[Mapping[str, Any], str]] = []
    if config_file:
        path = find_config(config_file)
        layers.append((load_yaml(path), str(path)))
    layers.append((validate(flags, COMMAND_LINE), COMMAND_LINE))
    return layers


def resolve_light(config_file: str | None, flags: Mapping[str, Any]) -> TrainConfig:
    """defaults < YAML file < flags, without looking at any checkpoint (no torch import)."""
    return resolve(*config_layers(config_file, flags))

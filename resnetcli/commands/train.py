"""`resnetcli train`: flags -> a TrainConfig -> resnetcli.engine.trainer.train (all work happens there).

Every flag defaults to None so that only the flags a user actually typed override the YAML config. Each
flag's help and default come from the TrainConfig field it sets (resnetcli/engine/config.py), so the help
cannot drift from what the config does.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from resnetcli.commands.common import option
from resnetcli.engine.config import describe

_DATA = "Data"
_MODEL = "Model"
_OPT = "Optimization"
_AUG = "Augmentation"
_RUN = "Run folder and checkpoints"
_SPEED = "Speed and scale"
_PRACTICE = "Early stopping, EMA, accumulation, class imbalance"
_FINETUNE = "Fine-tuning"


def _flag(key: str, *decls: str, panel: str, **settings: Any) -> Any:
    """A train flag whose help is config field `key`'s description and default."""
    return typer.Option(*decls, help=describe(key), rich_help_panel=panel, **settings)


def _options(key: str, *decls: str, panel: str, example: str) -> Any:
    """A repeatable KEY=VALUE flag filling the config's option map `key`."""
    return typer.Option(*decls, metavar="K=V", help=f"{describe(key)} KEY=VALUE, repeatable; e.g. {example}.",
                        rich_help_panel=panel)


#: train_command parameters that fill a config option map -> (config key, the flag as typed)
_OPTION_MAPS = {"data_option": ("data_options", "--data-option"), "arch_option": ("arch_options", "--arch-option"),
                "opt_option": ("optimizer_options", "--opt-option"),
                "sched_option": ("sched_options", "--sched-option"), "aug_option": ("aug_options", "--aug-option")}
#: train_command parameters whose config key is spelled differently
_KEYS = {"compile_": "compile", "logger": "loggers"}


def config_flags(values: Mapping[str, Any]) -> dict[str, Any]:
    """The config keys set by the flags a user typed (None means not typed), from parameters named as
    train_command's: the one translation for train and every command that reuses its flags (lr-find)."""
    from resnetcli.options import parse_key_values

    given: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        if name in _OPTION_MAPS:
            key, flag = _OPTION_MAPS[name]
            if value:
                given[key] = parse_key_values(value, flag)
        elif name == "logger":  # --logger tensorboard,mlflow
            given["loggers"] = [part.strip() for part in str(value).split(",") if part.strip()]
        else:
            given[_KEYS.get(name, name)] = str(value) if isinstance(value, Path) else value
    return given


def train_command(
    data: Annotated[str | None, _flag("data", "--data", "-d", panel=_DATA)] = None,
    data_option: Annotated[list[str] | None, _options(
        "data_options", "--data-option", panel=_DATA, example="root=~/data")] = None,
    val_split: Annotated[str | None, _flag("val_split", "--val-split", panel=_DATA)] = None,
    arch: Annotated[str | None, option("arch", describe("arch"), rich_help_panel=_MODEL)] = None,
    arch_option: Annotated[list[str] | None, _options(
        "arch_options", "--arch-option", panel=_MODEL, example="shortcut=A")] = None,
    pretrained: Annotated[str | None, _flag("pretrained", "--pretrained", panel=_FINETUNE, metavar="SOURCE")] = None,
    pretrained_strict: Annotated[bool | None, _flag(
        "pretrained_strict", "--pretrained-strict/--no-pretrained-strict", panel=_FINETUNE)] = None,
    freeze: Annotated[str | None, _flag("freeze", "--freeze", panel=_FINETUNE, metavar="STAGE,...")] = None,
    freeze_until: Annotated[str | None, _flag("freeze_until", "--freeze-until", panel=_FINETUNE,
                                              metavar="STAGE")] = None,
    unfreeze_at: Annotated[int | None, _flag("unfreeze_at", "--unfreeze-at", panel=_FINETUNE, metavar="EPOCH")] = None,
    backbone_lr_mult: Annotated[float | None, _flag("backbone_lr_mult", "--backbone-lr-mult", panel=_FINETUNE)] = None,
    optimizer: Annotated[str | None, _flag("optimizer", "--optimizer", panel=_OPT)] = None,
    opt_option: Annotated[list[str] | None, _options(
        "optimizer_options", "--opt-option", panel=_OPT, example="betas=[0.9,0.99]")] = None,
    scheduler: Annotated[str | None, _flag("scheduler", "--scheduler", panel=_OPT)] = None,
    sched_option: Annotated[list[str] | None, _options(
        "sched_options", "--sched-option", panel=_OPT,
        example="T_max=5 eta_min=1e-5, milestones=[0.5,0.75], monitor=val_loss")] = None,
    epochs: Annotated[int | None, _flag("epochs", "--epochs", "-e", panel=_OPT)] = None,
    batch_size: Annotated[int | None, option("batch_size", describe("batch_size"), rich_help_panel=_OPT)] = None,
    lr: Annotated[float | None, _flag("lr", "--lr", panel=_OPT)] = None,
    weight_decay: Annotated[float | None, _flag("weight_decay", "--weight-decay", "--wd", panel=_OPT)] = None,
    momentum: Annotated[float | None, _flag("momentum", "--momentum", panel=_OPT)] = None,
    decay_bn_bias: Annotated[bool | None, _flag(
        "decay_bn_bias", "--decay-bn-bias/--no-decay-bn-bias", panel=_OPT)] = None,
    warmup_epochs: Annotated[float | None, _flag("warmup_epochs", "--warmup-epochs", panel=_OPT)] = None,
    grad_clip: Annotated[float | None, _flag("grad_clip", "--grad-clip", panel=_OPT)] = None,
    label_smoothing: Annotated[float | None, _flag("label_smoothing", "--label-smoothing", panel=_OPT)] = None,
    augment: Annotated[str | None, _flag("augment", "--augment", panel=_AUG)] = None,
    aug_option: Annotated[list[str] | None, _options(
        "aug_options", "--aug-option", panel=_AUG, example="reflect=true")] = None,
    image_size: Annotated[int | None, _flag("image_size", "--image-size", panel=_AUG)] = None,
    mixup: Annotated[float | None, _flag("mixup", "--mixup", panel=_AUG, metavar="ALPHA")] = None,
    cutmix: Annotated[float | None, _flag("cutmix", "--cutmix", panel=_AUG, metavar="ALPHA")] = None,
    early_stop: Annotated[int | None, _flag("early_stop", "--early-stop", panel=_PRACTICE, metavar="PATIENCE")] = None,
    early_stop_metric: Annotated[str | None, _flag("early_stop_metric", "--early-stop-metric", panel=_PRACTICE)] = None,
    early_stop_min_delta: Annotated[float | None, _flag(
        "early_stop_min_delta", "--early-stop-min-delta", panel=_PRACTICE)] = None,
    ema: Annotated[float | None, _flag("ema", "--ema", panel=_PRACTICE, metavar="DECAY")] = None,
    accumulate: Annotated[int | None, _flag("accumulate", "--accumulate", panel=_PRACTICE, metavar="N")] = None,
    class_weights: Annotated[str | None, _flag(
        "class_weights", "--class-weights", panel=_PRACTICE, metavar="auto|effective|FILE")] = None,
    balanced_sampler: Annotated[bool | None, _flag(
        "balanced_sampler", "--balanced-sampler/--no-balanced-sampler", panel=_PRACTICE)] = None,
    config: Annotated[str | None, typer.Option(
        "--config", help="YAML config file, or a shipped recipe name (see resnetcli/configs). "
        "Flags given here override it.", rich_help_panel=_RUN)] = None,
    output: Annotated[Path | None, option("output", describe("output"), rich_help_panel=_RUN)] = None,
    name: Annotated[str | None, _flag("name", "--name", panel=_RUN)] = None,
    resume: Annotated[str | None, _flag("resume", "--resume", panel=_RUN)] = None,
    overwrite: Annotated[bool | None, _flag("overwrite", "--overwrite", panel=_RUN)] = None,
    checkpoint_every: Annotated[int | None, _flag("checkpoint_every", "--checkpoint-every", panel=_RUN)] = None,
    checkpoint_every_steps: Annotated[int | None, _flag(
        "checkpoint_every_steps", "--checkpoint-every-steps", panel=_RUN, metavar="N")] = None,
    checkpoint_every_minutes: Annotated[float | None, _flag(
        "checkpoint_every_minutes", "--checkpoint-every-minutes", panel=_RUN, metavar="M")] = None,
    log_level: Annotated[str | None, _flag("log_level", "--log-level", panel=_RUN)] = None,
    logger: Annotated[str | None, _flag("loggers", "--logger", panel=_RUN, metavar="NAME,...")] = None,
    print_config: Annotated[bool, typer.Option(
        "--print-config", help="Print the resolved config as YAML and exit.", rich_help_panel=_RUN)] = False,
    report: Annotated[bool, typer.Option(
        "--report", help="Then write the run's HTML report (RUN/report.html, `resnetcli report`).",
        rich_help_panel=_RUN)] = False,
    max_steps: Annotated[int | None, _flag("max_steps", "--max-steps", panel=_RUN)] = None,
    seed: Annotated[int | None, option("seed", describe("seed"), rich_help_panel=_SPEED)] = None,
    device: Annotated[str | None, option("device", describe("device"), rich_help_panel=_SPEED)] = None,
    amp: Annotated[bool | None, _flag("amp", "--amp/--no-amp", panel=_SPEED)] = None,
    amp_dtype: Annotated[str | None, _flag("amp_dtype", "--amp-dtype", panel=_SPEED)] = None,
    channels_last: Annotated[bool | None, _flag(
        "channels_last", "--channels-last/--no-channels-last", panel=_SPEED)] = None,
    compile_: Annotated[bool | None, _flag("compile", "--compile/--no-compile", panel=_SPEED)] = None,
    workers: Annotated[int | None, option("workers", describe("workers"), rich_help_panel=_SPEED)] = None,
    in_memory: Annotated[bool | None, _flag("in_memory", "--in-memory/--no-in-memory", panel=_SPEED)] = None,
    drop_last: Annotated[bool | None, _flag("drop_last", "--drop-last/--no-drop-last", panel=_SPEED)] = None,
) -> None:
    """Train a network; writes runs/<name>/ (config, metrics, logs, checkpoints, plot, TensorBoard)."""
    given = config_flags({k: v for k, v in locals().items() if k not in ("config", "print_config", "report")})

    if print_config:
        from resnetcli.console import out

        if "resume" in given:  # the checkpoint's config is a layer too (this reads the checkpoint)
            from resnetcli.engine.trainer import prepare_config

            resolved = prepare_config(config, given).config
        else:  # torch-free
            from resnetcli.engine.config import resolve_light

            resolved = resolve_light(config, given)
        out.print(resolved.to_yaml(), end="", markup=False, highlight=False)
        return

    from resnetcli.engine.trainer import prepare_config, train

    result = train(prepare_config(config, given))
    if result.run_dir is not None:  # rank 0 only
        _summary(result)
        if report:
            from resnetcli.console import escape, out
            from resnetcli.report import build_report

            out.print(escape(f"wrote {build_report(result.run_dir)}"))


def _summary(result: Any) -> None:
    from rich.table import Table

    from resnetcli.console import escape, out

    table = Table(title="training finished", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    best = result.best_metric
    table.add_row("best epoch", "-" if result.best_epoch is None else str(result.best_epoch))
    table.add_row("best val acc" if result.last.get("val_acc") is not None else "best train acc",
                  "-" if best is None else f"{best:.2f}%")
    if result.last:
        table.add_row("last epoch", f"{result.last['epoch']}: loss {result.last['train_loss']:.4f}"
                      + (f", val acc {result.last['val_acc']:.2f}%" if result.last.get("val_acc") is not None else ""))
    minutes, seconds = divmod(result.seconds, 60)
    table.add_row("time", f"{int(minutes)}m {seconds:.1f}s ({result.epochs_run} epochs this run)")
    if result.stop_reason:
        table.add_row("stopped", result.stop_reason)
    table.add_row("run folder", escape(str(result.run_dir)))
    for key in ("best", "last"):
        if key in result.checkpoints:
            table.add_row(f"{key} checkpoint", escape(str(result.checkpoints[key])))
    out.print(table)

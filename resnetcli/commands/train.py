"""`resnetcli train`: flags -> a TrainConfig -> resnetcli.engine.trainer.train (all work happens there).

Every flag defaults to None so that only the flags a user actually typed override the YAML config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

_DATA = "Data"
_MODEL = "Model"
_OPT = "Optimization"
_AUG = "Augmentation"
_RUN = "Run folder and checkpoints"
_SPEED = "Speed and scale"


def train_command(
    data: Annotated[str | None, typer.Option(
        "--data", "-d", help="Processed folder, image folder, CIFAR folder, or dataset name (cifar10...).",
        rich_help_panel=_DATA)] = None,
    data_option: Annotated[list[str] | None, typer.Option(
        "--data-option", metavar="K=V", help="Option for the dataset builder (repeatable), e.g. root=~/data.",
        rich_help_panel=_DATA)] = None,
    val_split: Annotated[str | None, typer.Option(
        "--val-split", help="Split used for validation: auto (val, else test), a split name, or none.",
        rich_help_panel=_DATA)] = None,
    arch: Annotated[str | None, typer.Option(
        "--arch", "-a", help="Architecture (see `resnetcli list architectures`).", rich_help_panel=_MODEL)] = None,
    arch_option: Annotated[list[str] | None, typer.Option(
        "--arch-option", metavar="K=V", help="Architecture option (repeatable), e.g. shortcut=A.",
        rich_help_panel=_MODEL)] = None,
    optimizer: Annotated[str | None, typer.Option(
        "--optimizer", help="sgd, sgd-nesterov, adam, adamw, rmsprop, or a plugin's. \\[default: sgd]",
        rich_help_panel=_OPT)] = None,
    opt_option: Annotated[list[str] | None, typer.Option(
        "--opt-option", metavar="K=V", help="Optimizer option (repeatable), e.g. betas=[0.9,0.99].",
        rich_help_panel=_OPT)] = None,
    scheduler: Annotated[str | None, typer.Option(
        "--scheduler", help="constant, step, multistep, cosine, plateau, onecycle. \\[default: cosine]",
        rich_help_panel=_OPT)] = None,
    sched_option: Annotated[list[str] | None, typer.Option(
        "--sched-option", metavar="K=V", help="Scheduler option (repeatable), e.g. T_max=5 eta_min=1e-5, "
        "milestones=[0.5,0.75], monitor=val_loss.", rich_help_panel=_OPT)] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", "-e", help="Epochs to train. \\[default: 30]",
                                               rich_help_panel=_OPT)] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", "-b", help="Batch size per process. "
                                                   "\\[default: 128]", rich_help_panel=_OPT)] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Learning rate. \\[default: 0.1 SGD, 1e-3 Adam/AdamW]",
                                             rich_help_panel=_OPT)] = None,
    weight_decay: Annotated[float | None, typer.Option("--weight-decay", "--wd", help="Weight decay. "
                                                       "\\[default: 1e-4]", rich_help_panel=_OPT)] = None,
    momentum: Annotated[float | None, typer.Option("--momentum", help="Momentum (SGD, RMSprop). \\[default: 0.9 "
                                                   "for SGD]", rich_help_panel=_OPT)] = None,
    no_decay_bn_bias: Annotated[bool | None, typer.Option(
        "--no-decay-bn-bias", help="No weight decay on biases and normalization weights.",
        rich_help_panel=_OPT)] = None,
    warmup_epochs: Annotated[float | None, typer.Option(
        "--warmup-epochs", help="Linear learning-rate warm-up over this many epochs (per batch).",
        rich_help_panel=_OPT)] = None,
    grad_clip: Annotated[float | None, typer.Option(
        "--grad-clip", help="Clip the gradient norm to this value.", rich_help_panel=_OPT)] = None,
    label_smoothing: Annotated[float | None, typer.Option(
        "--label-smoothing", help="Label smoothing epsilon, e.g. 0.1. \\[default: 0 (off)]",
        rich_help_panel=_OPT)] = None,
    augment: Annotated[str | None, typer.Option(
        "--augment", help="Pipeline name (none, cifar, caltech, imagenet) or an albumentations YAML file. "
        "\\[default: cifar up to 64 px, imagenet above]", rich_help_panel=_AUG)] = None,
    aug_option: Annotated[list[str] | None, typer.Option(
        "--aug-option", metavar="K=V", help="Pipeline option (repeatable), e.g. reflect=true.",
        rich_help_panel=_AUG)] = None,
    image_size: Annotated[int | None, typer.Option(
        "--image-size", help="Training image size. \\[default: the model's, capped at the data's own size]",
        rich_help_panel=_AUG)] = None,
    mixup: Annotated[float | None, typer.Option(
        "--mixup", metavar="ALPHA", help="Mixup with Beta(alpha, alpha), e.g. 0.2. \\[default: 0 (off)]",
        rich_help_panel=_AUG)] = None,
    config: Annotated[str | None, typer.Option(
        "--config", "-c", help="YAML config file, or a shipped recipe name (see resnetcli/configs). "
        "Flags given here override it.", rich_help_panel=_RUN)] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Run folder. \\[default: runs/<name>]", rich_help_panel=_RUN)] = None,
    name: Annotated[str | None, typer.Option(
        "--name", help="Run name under runs/. \\[default: <arch>-<timestamp>]", rich_help_panel=_RUN)] = None,
    resume: Annotated[str | None, typer.Option(
        "--resume", help="auto (latest run's last.pt) or a checkpoint path.", rich_help_panel=_RUN)] = None,
    overwrite: Annotated[bool | None, typer.Option(
        "--overwrite", help="Start over in an --output folder that already holds a run (its checkpoints, "
        "metrics and logs are deleted).", rich_help_panel=_RUN)] = None,
    checkpoint_every: Annotated[int | None, typer.Option(
        "--checkpoint-every", help="Also keep checkpoints/epoch_NNN.pt every N epochs.",
        rich_help_panel=_RUN)] = None,
    log_level: Annotated[str | None, typer.Option(
        "--log-level", help="DEBUG, INFO, WARNING or ERROR (console and train.log).", rich_help_panel=_RUN)] = None,
    print_config: Annotated[bool, typer.Option(
        "--print-config", help="Print the resolved config as YAML and exit.", rich_help_panel=_RUN)] = False,
    max_steps: Annotated[int | None, typer.Option(
        "--max-steps", help="At most N training batches per epoch (smoke tests).", rich_help_panel=_RUN)] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed. \\[default: 0]",
                                             rich_help_panel=_SPEED)] = None,
    device: Annotated[str | None, typer.Option(
        "--device", help="auto (cuda, then mps, then cpu), cpu, cuda or mps.", rich_help_panel=_SPEED)] = None,
    amp: Annotated[bool | None, typer.Option(
        "--amp/--no-amp", help="Mixed precision (autocast).", rich_help_panel=_SPEED)] = None,
    amp_dtype: Annotated[str | None, typer.Option(
        "--amp-dtype", help="bf16 (CPU or GPU) or fp16 (GPU, with a GradScaler).", rich_help_panel=_SPEED)] = None,
    channels_last: Annotated[bool | None, typer.Option(
        "--channels-last/--no-channels-last", help="NHWC memory format.", rich_help_panel=_SPEED)] = None,
    compile_: Annotated[bool | None, typer.Option(
        "--compile/--no-compile", help="torch.compile the model.", rich_help_panel=_SPEED)] = None,
    workers: Annotated[int | None, typer.Option(
        "--workers", "-j", help="DataLoader worker processes. \\[default: min(4, CPUs)]",
        rich_help_panel=_SPEED)] = None,
    drop_last: Annotated[bool | None, typer.Option(
        "--drop-last/--no-drop-last", help="Drop the last incomplete training batch. \\[default: drop]",
        rich_help_panel=_SPEED)] = None,
) -> None:
    """Train a network; writes runs/<name>/ (config, metrics, logs, checkpoints, plot, TensorBoard)."""
    from resnetcli.options import parse_key_values

    flags: dict[str, Any] = {
        "data": data, "val_split": val_split, "arch": arch, "optimizer": optimizer, "scheduler": scheduler,
        "epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay, "momentum": momentum,
        "decay_bn_bias": False if no_decay_bn_bias else None, "warmup_epochs": warmup_epochs,
        "grad_clip": grad_clip, "label_smoothing": label_smoothing, "augment": augment,
        "image_size": image_size, "mixup": mixup, "output": str(output) if output is not None else None,
        "name": name, "resume": resume, "overwrite": overwrite, "checkpoint_every": checkpoint_every,
        "log_level": log_level,
        "max_steps": max_steps, "seed": seed, "device": device, "amp": amp, "amp_dtype": amp_dtype,
        "channels_last": channels_last, "compile": compile_, "workers": workers, "drop_last": drop_last,
    }
    for key, items, flag in (("data_options", data_option, "--data-option"),
                             ("arch_options", arch_option, "--arch-option"),
                             ("optimizer_options", opt_option, "--opt-option"),
                             ("sched_options", sched_option, "--sched-option"),
                             ("aug_options", aug_option, "--aug-option")):
        if items:
            flags[key] = parse_key_values(items, flag)
    given = {k: v for k, v in flags.items() if v is not None}

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
    if result.run_dir is not None:
        _summary(result)


def _summary(result: Any) -> None:
    from rich.table import Table

    from resnetcli.console import out

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
    table.add_row("run folder", str(result.run_dir))
    for key in ("best", "last"):
        if key in result.checkpoints:
            table.add_row(f"{key} checkpoint", str(result.checkpoints[key]))
    out.print(table)

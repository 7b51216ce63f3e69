"""`resnetcli lr-find`: the learning-rate range test, with train's own data, model, optimizer and augmentation flags.

The shared flags are not listed here: they are taken from `train_command`'s signature (every flag of its Data,
Model, Optimization, Augmentation and Speed panels, less the schedule's), so they cannot drift from train's,
and turned into config keys by the same `config_flags`.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any

import typer

from resnetcli.commands import train as train_cmd
from resnetcli.commands.common import option

#: train's panels whose flags lr-find takes (the run-folder panel is train's bookkeeping), and the exceptions:
#: the schedule and the epoch count mean nothing to a sweep, --lr is replaced by --min-lr/--max-lr
_PANELS = {train_cmd._DATA, train_cmd._MODEL, train_cmd._OPT, train_cmd._AUG, train_cmd._SPEED}
_LEFT_OUT = {"val_split", "scheduler", "sched_option", "epochs", "lr", "warmup_epochs", "compile_"}
_OWN = "Learning-rate sweep"


def _train_parameters() -> list[inspect.Parameter]:
    """train_command's parameters lr-find shares (plus --config), in train's order."""
    shared = []
    for param in inspect.signature(train_cmd.train_command, eval_str=True).parameters.values():
        info = param.annotation.__metadata__[0]
        if param.name == "config" or (info.rich_help_panel in _PANELS and param.name not in _LEFT_OUT):
            shared.append(param)
    return shared


def lr_find_command(
    steps: Annotated[int, typer.Option("--steps", min=2, max=100_000, help="Training steps in the sweep.",
                                       rich_help_panel=_OWN)] = 100,
    min_lr: Annotated[float, typer.Option("--min-lr", max=10,
                                          help="Learning rate of the first step.", rich_help_panel=_OWN)] = 1e-7,
    max_lr: Annotated[float, typer.Option("--max-lr", max=1000,
                                          help="Learning rate of the last step.", rich_help_panel=_OWN)] = 10.0,
    output: Annotated[Path | None, option(
        "output", "Keep the sweep in this folder: lr_find.png, lr_find.csv, lr_find.json. Default: nothing is "
        "written.", rich_help_panel=_OWN)] = None,
    **train_flags: Any,
) -> None:
    """Sweep the learning rate exponentially over a few hundred steps and suggest one (steepest loss descent)."""
    from resnetcli.console import escape, out
    from resnetcli.engine.config import resolve_light
    from resnetcli.engine.lr_find import lr_find, write_outputs

    config_file = train_flags.pop("config", None)
    config = resolve_light(config_file, train_cmd.config_flags(train_flags))
    result = lr_find(config, steps=steps, min_lr=min_lr, max_lr=max_lr)
    out.print(f"swept lr {min_lr:.3g} → {result.lrs[-1] if result.lrs else min_lr:.3g} over {len(result.lrs)} of "
              f"{steps} steps" + (f"; stopped: {result.stopped}" if result.stopped else ""), markup=False)
    if result.suggestion is None:
        out.print("no suggestion: too few steps before the loss diverged; lower --min-lr or --max-lr", markup=False)
    else:
        out.print(f"suggested lr: {result.suggestion:.3g} (steepest descent of the smoothed loss)", markup=False)
    if output is not None:
        for path in write_outputs(result, output).values():
            out.print(escape(f"wrote {path}"))


# typer reads a command's parameters from its signature: lr-find's own, then train's shared flags
_own = [p for p in inspect.signature(lr_find_command, eval_str=True).parameters.values()
        if p.kind is not inspect.Parameter.VAR_KEYWORD]
lr_find_command.__signature__ = inspect.Signature([*_own, *_train_parameters()])  # type: ignore[attr-defined]
lr_find_command.__annotations__ = {p.name: p.annotation for p in lr_find_command.__signature__.parameters.values()}  # type: ignore[attr-defined]

"""Continuing a run: which checkpoint, which config, what may change, and restoring the state.

The rule for a changed setting on `--resume` (never "recorded in config.yaml but silently ignored"):
- `--epochs` above the epochs already done is applied: the run goes on to the new total, and the
  learning-rate schedule is rebuilt for it (as if the run had been started with that total);
- anything else that changes what is optimized (RESUME_FIXED: learning rate, optimizer, scheduler and their
  options, batch size, augmentation, seed, ...) or the network and classes is refused in one line naming
  every difference;
- what only says how to run (PER_INVOCATION: device, workers, ...) is taken from the new command line.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resnetcli.engine.checkpoint import class_changes, load_checkpoint, load_weights
from resnetcli.engine.config import TrainConfig, config_layers, resolve
from resnetcli.errors import CheckpointError

#: config keys that describe one invocation, not the run: never inherited from a resumed checkpoint
PER_INVOCATION = ("resume", "output", "name", "max_steps", "device", "workers", "overwrite")
#: config keys a resumed run must keep: changing one would silently make it a different experiment
RESUME_FIXED = ("optimizer", "optimizer_options", "lr", "weight_decay", "momentum", "decay_bn_bias", "scheduler",
                "sched_options", "warmup_epochs", "batch_size", "drop_last", "grad_clip", "mixup", "cutmix",
                "label_smoothing", "ema", "accumulate", "class_weights", "balanced_sampler",
                "augment", "aug_options", "in_memory", "image_size", "seed", "data_options", "val_split", "freeze",
                "freeze_until", "unfreeze_at", "backbone_lr_mult", "pretrained", "pretrained_strict")


@dataclass
class Prepared:
    """The resolved config and, when resuming, the checkpoint it continues."""

    config: TrainConfig
    resume_path: Path | None = None
    resume_state: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    #: the precision and data path this invocation chose and why (train fills it in; the first line shows it)
    speed: list[str] = field(default_factory=list)

    @property
    def checkpoint_epochs(self) -> int | None:
        """The total --epochs the resumed checkpoint was training towards."""
        if self.resume_state is None:
            return None
        return (self.resume_state.get("config") or {}).get("epochs")


def prepare_config(config_file: str | None, flags: Mapping[str, Any]) -> Prepared:
    """defaults < resumed checkpoint's config < YAML file < flags typed on the command line."""
    layers = config_layers(config_file, flags)
    config = resolve(*layers)
    if not config.resume:
        return Prepared(config)
    path = find_resume(config)
    if path is None:
        return Prepared(config, notes=["--resume auto found no earlier run; starting a new one"])
    state = load_checkpoint(path)
    inherited = {k: v for k, v in (state.get("config") or {}).items() if k not in PER_INVOCATION}
    config = resolve((inherited, f"checkpoint {path}"), *layers)
    changed = [f"{key} {inherited[key]!r} -> {getattr(config, key)!r}" for key in RESUME_FIXED
               if key in inherited and getattr(config, key) != inherited[key]]
    if changed:
        refuse(path, changed)
    return Prepared(config, resume_path=path, resume_state=state)


def refuse(path: Path, differences: list[str]) -> None:
    raise CheckpointError(
        f"cannot resume from {path}: it was trained with a different setup: {'; '.join(differences)}. "
        "Resume without changing them (only --epochs may grow), or start a new run (another --output)"
    )


def find_resume(config: TrainConfig) -> Path | None:
    """--resume RUN_DIR or CHECKPOINT: that run's last.pt or that file; auto: --output's last.pt if it has one,
    else the latest run's (resnetcli.runs: the same "latest run" as `test` and `predict`), else None."""
    from resnetcli.runs import RunLayout, find_checkpoint, latest_run

    assert config.resume
    if config.resume != "auto":
        return find_checkpoint(config.resume, "last", config.runs_dir, option="--resume")
    if config.output:
        last = RunLayout(config.output).last
        return last if last.is_file() else None
    run = latest_run(config.runs_dir)
    return None if run is None else RunLayout(run).last


def check_same_network(state: Mapping[str, Any], config: TrainConfig, classes: list[str], in_channels: int,
                       path: Path) -> None:
    """Refuse to resume into a different network or class set, listing every difference."""
    arch = state.get("arch") or {}
    diffs: list[str] = []
    if arch.get("name") != config.arch:
        diffs.append(f"architecture {arch.get('name')} -> {config.arch}")
    if dict(arch.get("options") or {}) != dict(config.arch_options):
        diffs.append(f"arch options {arch.get('options') or {}} -> {config.arch_options}")
    if arch.get("in_channels") not in (None, in_channels):
        diffs.append(f"input channels {arch.get('in_channels')} -> {in_channels}")
    old = list(state.get("classes") or [])
    if old != classes:
        detail = class_changes(old, classes, "missing now", "new")
        if not detail:
            detail.append("same names in a different order")
        diffs.append(f"classes differ ({len(old)} -> {len(classes)}; {'; '.join(detail)})")
    if diffs:
        refuse(path, diffs)


def replay_schedule(schedule: Any, epochs_done: int, steps_per_epoch: int, steps_after: int = 0) -> None:
    """Step a freshly built schedule through the epochs already done (and `steps_after` optimizer steps of the
    next one), as a run begun with its total would have (an extended run's schedule: its state in the
    checkpoint belongs to the old total)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about scheduler steps without optimizer steps
        schedule.start()
        for _ in range(epochs_done):
            for _ in range(steps_per_epoch):
                schedule.step_batch()
            schedule.step_epoch({})
        for _ in range(steps_after):
            schedule.step_batch()


def restore(prepared: Prepared, model: Any, optimizer: Any, schedule: Any, scaler: Any,
            steps_per_epoch: int) -> None:
    """Load the resumed checkpoint's weights, optimizer, schedule and scaler state (not the RNG: see rng.py).
    `steps_per_epoch`: this run's optimizer steps per epoch, the ones its schedule was built for."""
    state, path, config = prepared.resume_state, prepared.resume_path, prepared.config
    assert state is not None and path is not None and config.arch
    load_weights(model, state["model"], path, config.arch)  # a crafted file: one line, not a traceback
    done = int(state["epoch"])
    # the checkpoint's schedule counted its own steps per epoch: another --max-steps changes them (a OneCycle
    # stepped past the total it was built for fails mid-epoch), so its schedule is rebuilt as for --epochs
    steps_before = int(state.get("global_step", 0)) // done if done else steps_per_epoch
    # an --epochs at or below the epochs done trains nothing: a schedule replayed past its (smaller) total
    # would fail (OneCycle refuses), so the checkpoint's own state is loaded as it is
    extended = (schedule.monitor is None and config.epochs > done
                and (prepared.checkpoint_epochs not in (None, config.epochs) or steps_before != steps_per_epoch))
    try:
        if extended:
            partial = state.get("partial_epoch") or {}
            replay_schedule(schedule, done, steps_per_epoch, steps_after=int(partial.get("updates", 0)))
            rates = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
            optimizer.load_state_dict(state["optimizer"])
            for group, rate in zip(optimizer.param_groups, rates, strict=True):
                group.update(rate)  # the rebuilt schedule's rates, the checkpoint's momentum buffers
        else:
            optimizer.load_state_dict(state["optimizer"])
            if state.get("scheduler") is not None:
                schedule.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler") is not None:
            scaler.load_state_dict(state["scaler"])
    except (ValueError, KeyError) as exc:
        raise CheckpointError(
            f"cannot resume from {path}: its optimizer/scheduler state does not fit "
            f"--optimizer {config.optimizer} --scheduler {config.scheduler} ({exc})"
        ) from exc

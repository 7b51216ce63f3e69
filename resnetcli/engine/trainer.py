"""`resnetcli train` as a plain function: build the run, then `fit` it epoch by epoch.

Read top to bottom: `train` (device, process group, error translation), `build_run` (data, model, optimizer,
schedule, run folder, callbacks; or the resumed checkpoint's state), `fit` (the epoch loop: it calls the
callbacks of engine/callbacks.py and the checkpoint policy of engine/saver.py). Resolving the config and
what a resume may change live in engine/resume.py; every random-state rule in engine/rng.py.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from resnetcli.engine import distributed as D
from resnetcli.engine import lock
from resnetcli.engine.bookkeeping import close_logging, setup_logging
from resnetcli.engine.build import build_model, build_optimizer, build_schedule, check_config
from resnetcli.engine.callbacks import (
    Callback,
    Callbacks,
    EpochLine,
    MetricsFiles,
    Plot,
    ProgressBar,
)
from resnetcli.engine.checkpoint import non_finite_weight
from resnetcli.engine.config import TrainConfig, replace
from resnetcli.engine.data import (
    AugmentedSplit,
    EpochSampler,
    Loader,
    ShardSampler,
    TrainingData,
    make_loader,
    open_training_data,
)
from resnetcli.engine.device import choose_precision
from resnetcli.engine.freeze import FreezePlan, parse_stages
from resnetcli.engine.imbalance import BalancedSampler
from resnetcli.engine.loop import NonFiniteLoss, NonFiniteWeights, Stepper, amp_settings, evaluate, train_epoch
from resnetcli.engine.memory import memory_loaders
from resnetcli.engine.partial import EpochProgress, MidEpochPolicy, check_supported, with_lr
from resnetcli.engine.practices import build_practices
from resnetcli.engine.resume import Prepared, check_same_network, prepare_config, restore
from resnetcli.engine.rng import derive_seed, seed_everything, set_rng_state
from resnetcli.engine.saver import CheckpointSaver
from resnetcli.engine.state import TrainState
from resnetcli.errors import TrainingError, UsageError
from resnetcli.runs import RunLayout, run_dir_of
from resnetcli.signals import interrupt_on_termination

__all__ = ["DEFAULT_LR", "Prepared", "TrainResult", "build_model", "build_optimizer", "build_schedule",
           "check_config", "fit", "prepare_config", "train"]

#: learning rate when none is given, by optimizer (the usual starting points)
DEFAULT_LR = {"sgd": 0.1, "sgd-nesterov": 0.1, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-2}


@dataclass
class TrainResult:
    run_dir: Path | None
    epochs_run: int
    best_epoch: int | None
    best_metric: float | None
    last: dict[str, Any]
    seconds: float
    checkpoints: dict[str, Path]
    stop_reason: str | None = None  # why training ended before --epochs (early stopping)


@interrupt_on_termination()  # SIGTERM/SIGHUP end a run as Ctrl-C does: exit 143/129, last.pt resumable
def train(prepared: Prepared) -> TrainResult:
    """Run a whole training job; returns where things went and the best result."""
    started = time.perf_counter()
    check_config(prepared.config)
    dist = D.from_env()
    device = D.pick_device(prepared.config.device, dist)
    config = prepared.config
    precision = choose_precision(config.amp, config.amp_dtype, config.channels_last, device)
    prepared.config = replace(config, **precision.settings())  # "auto" decided here; config.yaml records it
    prepared.speed.append(precision.reason)
    amp = amp_settings(precision.amp, precision.amp_dtype, device)
    D.init(dist, device, prepared.config.dist_timeout)
    finished = False
    loaders: dict[str, Any] = {}
    try:
        state, stepper, loaders, callbacks, saver = build_run(prepared, dist, device, amp)
        fit(state, stepper, loaders, callbacks)
        finished = True
    except RuntimeError as exc:
        lost = D.lost_peer(exc, dist)  # another rank died: one line, not the autograd engine's traceback
        if lost is None:
            raise
        raise lost from exc
    finally:
        for loader in (loaders.get("train"), loaders.get("val")):
            if isinstance(loader, Loader):
                loader.close()  # its workers, before interrupt_on_termination gives SIGCHLD back to torch
        close_logging()
        lock.release()
        D.shutdown(finished=finished)
    return TrainResult(run_dir=state.run_dir if dist.main else None, epochs_run=state.epoch - state.start_epoch,
                       best_epoch=state.best_epoch, best_metric=state.best_metric, last=state.last_row,
                       seconds=time.perf_counter() - started, checkpoints=saver.saved,
                       stop_reason=state.stop_reason)


# ------------------------------------------------------------------------------------------ the loop


def fit(state: TrainState, stepper: Stepper, loaders: dict[str, Any], callbacks: Callback) -> None:
    """Train from state.epoch to config.epochs, calling the callbacks around every epoch."""
    config, rank = state.config, state.dist.rank
    callbacks.on_train_start(state)
    try:
        for epoch in range(state.epoch + 1, config.epochs + 1):
            if state.stop_reason:  # a callback ended the run (engine/early_stop.py)
                break
            resumed = state.partial  # the epoch a mid-epoch checkpoint stopped in (engine/partial.py), or None
            if resumed is None:
                seed_everything(derive_seed(config.seed, epoch, rank))  # epoch e draws alike, resumed or not
            loaders["sampler"].set_epoch(epoch)
            if resumed is not None:  # it continues the checkpoint's RNG state, past the batches already consumed
                loaders["sampler"].skip = resumed.step * config.batch_size
            callbacks.on_epoch_start(state, epoch)
            state.partial = None
            if state.freeze.frozen_at(epoch) != state.freeze.frozen_at(epoch - 1) or epoch == state.start_epoch + 1:
                state.freeze.apply(state.model, epoch)  # a pure function of the epoch: resumes freeze alike
                stepper.model = wrap(state.model, config, state.dist)  # DDP registers what requires grad
            lr_start, began = resumed.lr_start if resumed else state.schedule.lr(), time.perf_counter()
            result = train_epoch(stepper, loaders["train"], epoch=epoch, max_steps=config.max_steps,
                                 rng_seed=derive_seed(config.seed, epoch, rank, 1),
                                 on_progress=lambda *a: callbacks.on_progress(state, *a), start=resumed,
                                 on_step=lambda step, snap, lr=lr_start: callbacks.on_step(state, step,
                                                                                           with_lr(snap, lr)))
            training_seconds = time.perf_counter() - began
            val = evaluate(stepper, loaders["val"]) if loaders["val"] is not None else {}
            bad = non_finite_weight(state.model.state_dict())
            if bad is not None:  # checked before any checkpoint could replace a good one
                raise NonFiniteWeights(epoch, bad)
            lr_end = state.schedule.lr()
            state.schedule.step_epoch(val)
            row = end_epoch(state, epoch, result, val, lr=(lr_start, lr_end),
                            seconds=(training_seconds, time.perf_counter() - began))
            callbacks.on_epoch_end(state, row)
    except (NonFiniteLoss, NonFiniteWeights) as exc:
        raise TrainingError(
            f"{exc}; training stopped. {state.layout.last} (epoch {state.epoch}) is the "
            f"last good checkpoint. Lower --lr (it was {config.lr}), add warm-up (--warmup-epochs) or set "
            f"grad_clip, then resume with --resume {state.run_dir}"
        ) from exc
    except KeyboardInterrupt:
        state.logger.warning(
            f"interrupted in epoch {state.epoch + 1}; {state.layout.last} holds epoch {state.epoch}"
            + (" or its last checkpoint inside the next one" if config.checkpoint_every_steps
               or config.checkpoint_every_minutes else "")
            + " and resumes exactly (the partial epoch is redone from there): "
            f"resnetcli train --resume {state.run_dir}"
        )
        raise
    finally:
        callbacks.on_train_end(state)


def end_epoch(state: TrainState, epoch: int, result: dict[str, Any], val: dict[str, Any], *,
              lr: tuple[float, float], seconds: tuple[float, float]) -> dict[str, Any]:
    """Advance the counters and the best result; the epoch's metrics row. lr: at the start and the end of the
    epoch; seconds: training alone (for images/s) and the whole epoch with validation."""
    state.epoch = epoch
    state.global_step += int(result["steps"])
    metric = val.get("val_acc", result["train_acc"])
    if state.best_metric is None or (math.isfinite(metric) and metric > state.best_metric):
        state.best_metric, state.best_epoch = metric, epoch
    state.last_row = {
        "epoch": epoch, "train_loss": result["train_loss"], "train_acc": result["train_acc"],
        "val_loss": val.get("val_loss"), "val_acc": val.get("val_acc"), "val_top5": val.get("val_top5"),
        "lr": lr[0], "lr_end": lr[1], "time": round(seconds[1], 3),
        "images_per_s": round(result["images"] / seconds[0], 1) if seconds[0] > 0 else None,
        "val_k": val.get("val_k"),
    }
    return state.last_row


# ----------------------------------------------------------------------------------------- building


def build_run(prepared: Prepared, dist: D.DistInfo, device: torch.device,
              amp: tuple[torch.dtype | None, Any]) -> tuple[TrainState, Stepper, dict[str, Any], Callbacks,
                                                           CheckpointSaver]:
    """Everything `fit` needs: built fresh, or restored from the resumed checkpoint. `amp`: (autocast dtype or
    None, GradScaler or None)."""
    config = prepared.config
    assert config.data and config.arch
    data = open_training_data(config.data, config.data_options, config.val_split)
    seed_everything(config.seed)  # the model first, seeded: a run's initial weights depend only on --seed
    model = build_model(config, len(data.classes), data.source.channels)
    config = fill_defaults(config, data, model)
    plan = FreezePlan(tuple(parse_stages(model, config.freeze, config.freeze_until)), config.unfreeze_at)
    if prepared.resume_state is not None:
        assert prepared.resume_path is not None
        check_same_network(prepared.resume_state, config, data.classes, data.source.channels, prepared.resume_path)
    normalization, finetune_notes = starting_weights(config, model, data, prepared)
    loaders = build_loaders(config, data, dist, device, normalization, resuming=prepared.resume_state is not None)
    config = replace(config, in_memory=loaders["in_memory"])  # what auto decided, for config.yaml
    prepared.speed.append(loaders["path"])
    steps_per_epoch = min(len(loaders["train"]), config.max_steps or len(loaders["train"]))

    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    amp_dtype, scaler = amp
    optimizer = build_optimizer(config, model)
    schedule = build_schedule(config, optimizer, math.ceil(steps_per_epoch / config.accumulate))  # optimizer steps
    layout = RunLayout(D.broadcast_object(run_folder(config, prepared) if dist.main else None))
    logger = setup_logging(layout.log if dist.main else None, config.log_level)
    if not dist.main:
        logger.setLevel("ERROR")
    state = TrainState(
        config=config, layout=layout, dist=dist, model=model, optimizer=optimizer, schedule=schedule,
        scaler=scaler, classes=data.classes, logger=logger, steps_per_epoch=steps_per_epoch,
        normalization=normalization, freeze=plan,
        data_info={"source": data.source.name, "spec": config.data, "image_size": config.image_size,
                   "channels": data.source.channels, "augment": config.augment, "train_size": len(data.train),
                   "val_split": data.val_name, "trained_on": ["train", *data.source.given_back]},
    )
    practices = build_practices(state, data.train.labels, device)  # --ema, --early-stop, --class-weights
    if prepared.resume_state is not None:
        resume_into(state, prepared)
    else:
        schedule.start()

    stepper = Stepper(model=model, optimizer=optimizer, schedule=schedule, device=device,
                      label_smoothing=config.label_smoothing, mixup=config.mixup, cutmix=config.cutmix,
                      amp_dtype=amp_dtype,
                      scaler=scaler, channels_last=config.channels_last, grad_clip=config.grad_clip,
                      log_every=config.log_every, accumulate=config.accumulate,
                      class_weights=practices.class_weights, ema=practices.ema)
    mid_epoch = MidEpochPolicy(config.checkpoint_every_steps, config.checkpoint_every_minutes)
    check_supported(mid_epoch, distributed=dist.enabled, sampler=loaders["sampler"])
    saver = CheckpointSaver(layout, every=config.checkpoint_every, mid_epoch=mid_epoch)
    callbacks: list[Callback] = [ProgressBar(enabled=dist.main), EpochLine(), *practices.callbacks]
    if dist.main:
        from resnetcli.io import write_text

        if state.epoch < config.epochs or not layout.config.is_file():  # nothing to train: the run's own stays
            write_text(layout.config, config.to_yaml())
        from resnetcli.loggers import build_loggers

        loggers = build_loggers(config, layout, logger.warning)  # csv first: the plot draws its rows
        callbacks.extend(loggers)
        if config.plot:
            assert isinstance(loggers[0], MetricsFiles)
            callbacks.append(Plot(layout.plot, loggers[0]))
        callbacks.append(saver)  # last: last.pt is the commit point (engine/saver.py)
    announce(state, prepared, data, device, finetune_notes)
    for note in practices.notes:
        logger.info(note)
    return state, stepper, loaders, Callbacks(callbacks), saver


def wrap(model: nn.Module, config: TrainConfig, dist: D.DistInfo) -> nn.Module:
    """The network the stepper runs: `model`, under DistributedDataParallel and torch.compile when asked.

    Built again whenever freezing changes what requires grad (DDP registers those parameters when built)."""
    net: nn.Module = model
    if dist.enabled:
        device = next(model.parameters()).device
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile:
        net = torch.compile(net)
    return net


def starting_weights(config: TrainConfig, model: nn.Module, data: TrainingData,
                     prepared: Prepared) -> tuple[dict[str, list[float]], list[str]]:
    """Load --pretrained weights into `model` (not on resume: the checkpoint's weights follow); the
    normalization to train with, and what to say about it.

    Weights that carry their normalization (torchvision's ImageNet mean/std, another run's) are trained and
    evaluated with it, not the data's, since their features expect it; a resumed run keeps its checkpoint's."""
    own = {"mean": list(data.source.mean), "std": list(data.source.std)}
    if prepared.resume_state is not None:
        return dict(prepared.resume_state.get("normalization") or own), []
    if not config.pretrained:
        return own, []
    from resnetcli.pretrained import load_pretrained

    report = load_pretrained(model, config.pretrained, arch=config.arch, classes=data.classes,
                             strict=config.pretrained_strict)
    notes = [report.summary()]
    norm = report.normalization
    if norm and len(norm["mean"]) == data.source.channels:
        notes.append("normalizing with the pretrained weights' mean/std instead of the data's "
                     f"({', '.join(f'{v:.3f}' for v in own['mean'])})")
        return {"mean": list(norm["mean"]), "std": list(norm["std"])}, notes
    return own, notes


def fill_defaults(config: TrainConfig, data: TrainingData, model: nn.Module) -> TrainConfig:
    """The config with image size, augmentation, lr and workers decided (what config.yaml records)."""
    image_size = config.image_size
    if not image_size:  # the model's default input size, capped at the data's native size
        default = int(getattr(model, "default_input_size", 224) or 224)
        image_size = min(default, data.source.image_size) if data.source.image_size else default
    augment = config.augment or ("cifar" if image_size <= 64 else "imagenet")
    lr = config.lr if config.lr is not None else DEFAULT_LR.get(config.optimizer, 0.1)
    workers = config.workers if config.workers is not None else min(4, os.cpu_count() or 1)
    return replace(config, image_size=image_size, augment=augment, lr=lr, workers=workers)


def build_loaders(config: TrainConfig, data: TrainingData, dist: D.DistInfo, device: torch.device,
                  normalization: dict[str, list[float]] | None = None, *, resuming: bool = False) -> dict[str, Any]:
    """The training loader (and its epoch sampler) and the validation loader, or None. `normalization`:
    mean/std to normalize with; default: the data's own. `resuming`: a checkpoint's run continues."""
    from resnetcli.augment import build_pipeline

    per_rank = len(data.train) // dist.world
    if config.batch_size > per_rank and config.drop_last:
        raise UsageError(
            f"--batch-size {config.batch_size} is larger than the {per_rank} training images"
            f"{' per process' if dist.enabled else ''}, so every batch would be dropped; "
            "use a smaller --batch-size or --no-drop-last"
        )
    assert config.augment and config.image_size and config.workers is not None
    pin = device.type == "cuda"
    norm = normalization or {"mean": list(data.source.mean), "std": list(data.source.std)}

    def pipeline(train: bool) -> Any:
        return build_pipeline(config.augment, train=train, image_size=config.image_size, mean=norm["mean"],
                              std=norm["std"], options=config.aug_options)

    if config.balanced_sampler:
        sampler: Any = BalancedSampler(data.train.labels, rank=dist.rank, world=dist.world, seed=config.seed)
    else:
        sampler = EpochSampler(len(data.train), rank=dist.rank, world=dist.world, seed=config.seed)
    val_sampler = ShardSampler(len(data.val), rank=dist.rank, world=dist.world) if data.val is not None else None
    in_memory, path = memory_loaders(config, data, sampler, val_sampler, norm, resuming=resuming)
    if in_memory is not None:
        return {**in_memory, "sampler": sampler, "in_memory": True, "path": path}
    path = f"data through a DataLoader, {config.workers} workers, per-sample augmentation ({path})"
    train = make_loader(AugmentedSplit(data.train, pipeline(True), config.seed), batch_size=config.batch_size,
                        sampler=sampler, workers=config.workers, pin_memory=pin, drop_last=config.drop_last)
    val = None
    if data.val is not None:
        val = make_loader(AugmentedSplit(data.val, pipeline(False), config.seed),
                          batch_size=config.eval_batch_size or config.batch_size,
                          sampler=ShardSampler(len(data.val), rank=dist.rank, world=dist.world),
                          workers=config.workers, pin_memory=pin, drop_last=False)
    return {"train": train, "sampler": sampler, "val": val, "in_memory": False, "path": path}


def run_folder(config: TrainConfig, prepared: Prepared) -> Path:
    """--output, the resumed run's folder, or runs/<name>; an existing run is never started over silently."""
    if config.output:
        run_dir = Path(config.output)
    elif prepared.resume_path is not None and prepared.resume_path.parent.name == "checkpoints":
        run_dir = run_dir_of(prepared.resume_path)  # a loose checkpoint file starts a new run folder
    else:
        assert config.arch
        run_dir = Path(config.runs_dir) / (config.name or f"{config.arch}-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    layout = RunLayout(run_dir)
    lock.acquire(layout)  # before anything in it is read or replaced: one writer per run folder
    if prepared.resume_path is None and layout.last.is_file():
        if not config.overwrite:
            raise UsageError(f"{run_dir} already holds a run ({layout.last}); continue it with --resume {run_dir}, "
                             "or pass --overwrite to start it over")
        for path in layout.outputs():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    layout.checkpoints.mkdir(parents=True, exist_ok=True)
    return run_dir


def resume_into(state: TrainState, prepared: Prepared) -> None:
    """Load the checkpoint into the built pieces and take over its counters and RNG state."""
    ckpt = prepared.resume_state
    assert ckpt is not None
    restore(prepared, state.model, state.optimizer, state.schedule, state.scaler,
            steps_per_epoch=state.updates_per_epoch)
    state.start_epoch = state.epoch = int(ckpt["epoch"])
    state.best_metric, state.best_epoch = ckpt.get("best_metric"), ckpt.get("best_epoch")
    state.global_step = int(ckpt.get("global_step", 0))
    state.resumed_from = prepared.resume_path
    state.last_row = dict(ckpt.get("metrics") or {})
    if ckpt.get("partial_epoch"):  # written inside an epoch: fit goes on from there
        if prepared.checkpoint_epochs not in (None, state.config.epochs):
            raise UsageError(f"{prepared.resume_path} was written inside epoch {state.epoch + 1}; resume it with "
                             f"--epochs {prepared.checkpoint_epochs} until that epoch ends, then change --epochs")
        state.partial = EpochProgress.from_dict(ckpt["partial_epoch"])
    for part in state.parts:  # EMA, early stopping
        part.load(ckpt)
    if ckpt.get("rng"):
        set_rng_state(ckpt["rng"])


def announce(state: TrainState, prepared: Prepared, data: TrainingData, device: torch.device,
             finetune_notes: list[str]) -> None:
    """The first lines of a run: what trains on what, where, from which weights; and what a resume continues."""
    config, logger = state.config, state.logger
    for note in prepared.notes:
        logger.info(note)
    where = f"{device}" + (f" x{state.dist.world} processes" if state.dist.enabled else "")
    where += "".join(f"; {part}" for part in prepared.speed)  # precision and data path, and why
    logger.info(f"training {config.arch} on {config.data} ({data.describe()}; {len(data.classes)} classes, "
                f"{config.image_size}px, augment {config.augment}) on {where}; run folder {state.run_dir}")
    for note in finetune_notes:
        logger.info(note)
    plan = state.freeze
    if plan.stages:
        until = f" until epoch {plan.unfreeze_at}" if plan.unfreeze_at else ""
        logger.info(f"frozen{until}: {', '.join(plan.stages)} (no gradient, BatchNorm statistics kept)")
    if config.backbone_lr_mult != 1:
        logger.info(f"the classifier learns at --lr, everything else at --lr x {config.backbone_lr_mult}")
    if prepared.resume_path is None:
        return
    inside = f" and {state.partial.step} batches of epoch {state.epoch + 1}" if state.partial else ""
    logger.info(f"resumed from {prepared.resume_path} after epoch {state.epoch}{inside}")
    if prepared.checkpoint_epochs not in (None, config.epochs) and state.epoch < config.epochs:
        logger.info(f"--epochs {config.epochs} (was {prepared.checkpoint_epochs}): the learning-rate schedule "
                    f"is rebuilt for {config.epochs} epochs")
    if state.epoch >= config.epochs:
        logger.warning(f"{prepared.resume_path} has already trained {state.epoch} of --epochs {config.epochs}; "
                       "nothing to do (raise --epochs to train longer)")

"""`resnetcli train` as a plain function: resolve the config, build everything, run the epochs.

Read top to bottom: `prepare_config` (YAML + flags + resumed checkpoint), `check_config` (refuse bad
settings before any work), `train` (data, model, optimizer, schedule, run folder, the epoch loop, summary).
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from resnetcli.engine import device as devices
from resnetcli.engine import distributed as D
from resnetcli.engine.bookkeeping import Board, MetricsLog, close_logging, setup_logging, write_plot
from resnetcli.engine.build import build_model, build_optimizer, build_schedule, check_config
from resnetcli.engine.checkpoint import class_changes, load_checkpoint, save_checkpoint
from resnetcli.engine.config import TrainConfig, config_layers, resolve
from resnetcli.engine.data import AugmentedSplit, EpochSampler, ShardSampler, derive_seed, make_loader
from resnetcli.engine.loop import NonFiniteLoss, Stepper, evaluate, train_epoch
from resnetcli.errors import CheckpointError, DataError, TrainingError, UsageError

#: learning rate when none is given, by optimizer (the usual starting points)
DEFAULT_LR = {"sgd": 0.1, "sgd-nesterov": 0.1, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-2}
#: config keys that describe one invocation, not the run: never inherited from a resumed checkpoint
_PER_INVOCATION = ("resume", "output", "name", "max_steps", "device", "workers")


# ----------------------------------------------------------------------------------------- config


@dataclass
class Prepared:
    """The resolved config and, when resuming, the checkpoint it continues."""

    config: TrainConfig
    resume_path: Path | None = None
    resume_state: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


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
    inherited = {k: v for k, v in (state.get("config") or {}).items() if k not in _PER_INVOCATION}
    config = resolve((inherited, f"checkpoint {path}"), *layers)
    return Prepared(config, resume_path=path, resume_state=state)


def find_resume(config: TrainConfig) -> Path | None:
    """--resume PATH: that checkpoint (or RUN_DIR/checkpoints/last.pt); auto: the newest run's last.pt."""
    assert config.resume
    if config.resume != "auto":
        path = Path(config.resume)
        if path.is_dir():
            for candidate in (path / "checkpoints" / "last.pt", path / "last.pt"):
                if candidate.is_file():
                    return candidate
            raise CheckpointError(f"--resume {path}: no checkpoints/last.pt in that folder")
        if not path.is_file():
            raise CheckpointError(f"--resume {path}: no such checkpoint")
        return path
    if config.output:
        last = Path(config.output) / "checkpoints" / "last.pt"
        return last if last.is_file() else None
    runs = Path(config.runs_dir)
    found = sorted(runs.glob("*/checkpoints/last.pt"), key=lambda p: p.stat().st_mtime) if runs.is_dir() else []
    return found[-1] if found else None


# ----------------------------------------------------------------------------------------- device


def pick_device(name: str, dist: D.DistInfo) -> torch.device:
    """The shared device rule; on CUDA under torchrun each rank takes cuda:LOCAL_RANK."""
    device = devices.pick_device(name)
    if device.type != "cuda":
        return device
    index = dist.local_rank if dist.enabled else device.index if device.index is not None else torch.cuda.current_device()
    torch.cuda.set_device(index)
    # fixed input sizes: let cuDNN pick the fastest convolution algorithms once
    torch.backends.cudnn.benchmark = True
    return torch.device("cuda", index)


def amp_settings(config: TrainConfig, device: torch.device) -> tuple[torch.dtype | None, Any]:
    """(autocast dtype or None, GradScaler or None)."""
    if not config.amp:
        return None, None
    if config.amp_dtype == "bf16":
        return torch.bfloat16, None
    if device.type == "cpu":
        raise UsageError("--amp-dtype fp16 needs a GPU; on CPU use --amp-dtype bf16")
    return torch.float16, torch.amp.GradScaler(device.type)


# ------------------------------------------------------------------------------------------- rng


def rng_state() -> dict[str, Any]:
    """Every RNG state in plain types (python/numpy as lists) and uint8 tensors."""
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": [py_version, list(py_state), py_gauss],
        "numpy": [np_name, np_keys.tolist(), int(np_pos), int(np_has_gauss), float(np_gauss)],
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
    }
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    version, values, gauss = state["python"]
    random.setstate((version, tuple(values), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ------------------------------------------------------------------------------------------ build


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside DistributedDataParallel and torch.compile wrappers."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def choose_image_size(config: TrainConfig, native: int | None, model: nn.Module) -> int:
    """--image-size, else the model's default input size capped at the data's native size."""
    if config.image_size:
        return config.image_size
    default = int(getattr(model, "default_input_size", 224) or 224)
    return min(default, native) if native else default


def choose_val_split(config: TrainConfig, splits: list[str]) -> str | None:
    if config.val_split != "auto":
        if config.val_split in ("none", ""):
            return None
        if config.val_split not in splits:
            raise UsageError(f"--val-split '{config.val_split}' is not a split of this data: {', '.join(splits)}")
        return config.val_split
    for name in ("val", "test"):
        if name in splits:
            return name
    return None


# -------------------------------------------------------------------------------------------- run


@dataclass
class TrainResult:
    run_dir: Path | None
    epochs_run: int
    best_epoch: int | None
    best_metric: float | None
    last: dict[str, Any]
    seconds: float
    checkpoints: dict[str, Path]


def default_run_name(arch: str) -> str:
    return f"{arch}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def _run_dir(config: TrainConfig, resume_path: Path | None) -> Path:
    if config.output:
        return Path(config.output)
    if resume_path is not None and resume_path.parent.name == "checkpoints":
        return resume_path.parent.parent
    assert config.arch
    return Path(config.runs_dir) / (config.name or default_run_name(config.arch))


def _compare(state: Mapping[str, Any], config: TrainConfig, classes: list[str], in_channels: int,
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
        raise CheckpointError(
            f"cannot resume from {path}: it was trained with a different setup: {'; '.join(diffs)}. "
            "Start a new run (drop --resume or give another --output) or fix the flags"
        )


def train(prepared: Prepared) -> TrainResult:
    """Run a whole training job; returns where things went and the best result."""
    config = prepared.config
    check_config(config)
    dist = D.from_env()
    device = pick_device(config.device, dist)
    amp_dtype, scaler = amp_settings(config, device)
    D.init(dist, device, config.dist_timeout)
    try:
        return _train(prepared, config, dist, device, amp_dtype, scaler)
    except RuntimeError as exc:
        lost = D.lost_peer(exc, dist)  # another rank died: one line, not the autograd engine's traceback
        if lost is None:
            raise
        raise lost from exc
    finally:
        close_logging()
        D.shutdown()


def _train(prepared: Prepared, config: TrainConfig, dist: D.DistInfo, device: torch.device,
           amp_dtype: torch.dtype | None, scaler: Any) -> TrainResult:
    from resnetcli.augment import build_pipeline
    from resnetcli.data import open_source

    started = time.perf_counter()
    assert config.data and config.arch
    source = open_source(config.data, **config.data_options)
    splits = list(source.splits())
    if "train" not in splits:
        raise DataError(f"data {config.data} has no 'train' split (it has: {', '.join(splits)})")
    train_split = source.split("train")
    val_name = choose_val_split(config, splits)
    val_split = source.split(val_name) if val_name else None
    classes = list(source.classes)

    # the model first, seeded, so a run's initial weights depend only on --seed
    seed_everything(config.seed)
    model = build_model(config, len(classes), source.channels)
    image_size = choose_image_size(config, source.image_size, model)
    augment = config.augment or ("cifar" if image_size <= 64 else "imagenet")
    lr = config.lr if config.lr is not None else DEFAULT_LR.get(config.optimizer, 0.1)
    workers = config.workers if config.workers is not None else min(4, os.cpu_count() or 1)
    config = replace(config, image_size=image_size, augment=augment, lr=lr, workers=workers)

    per_rank = len(train_split) // dist.world
    if len(train_split) == 0:
        raise DataError(f"the train split of {config.data} is empty")
    if config.batch_size > per_rank and config.drop_last:
        raise UsageError(
            f"--batch-size {config.batch_size} is larger than the {per_rank} training images"
            f"{' per process' if dist.enabled else ''}, so every batch would be dropped; "
            "use a smaller --batch-size or --no-drop-last"
        )

    if prepared.resume_state is not None:
        assert prepared.resume_path is not None
        _compare(prepared.resume_state, config, classes, source.channels, prepared.resume_path)

    train_tf = build_pipeline(augment, train=True, image_size=image_size, mean=source.mean, std=source.std,
                              options=config.aug_options)
    eval_tf = build_pipeline(augment, train=False, image_size=image_size, mean=source.mean, std=source.std,
                             options=config.aug_options)
    pin = device.type == "cuda"
    train_sampler = EpochSampler(len(train_split), rank=dist.rank, world=dist.world, seed=config.seed)
    train_loader = make_loader(AugmentedSplit(train_split, train_tf, config.seed + 1000 * dist.rank),
                               batch_size=config.batch_size, sampler=train_sampler, workers=workers,
                               pin_memory=pin, drop_last=config.drop_last)
    val_loader = None
    if val_split is not None and len(val_split) > 0:
        val_loader = make_loader(AugmentedSplit(val_split, eval_tf, config.seed),
                                 batch_size=config.eval_batch_size or config.batch_size,
                                 sampler=ShardSampler(len(val_split), rank=dist.rank, world=dist.world),
                                 workers=workers, pin_memory=pin, drop_last=False)
    steps_per_epoch = len(train_loader)
    if config.max_steps:
        steps_per_epoch = min(steps_per_epoch, config.max_steps)

    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(config, model)
    schedule = build_schedule(config, optimizer, steps_per_epoch)

    start_epoch, best_metric, best_epoch, global_step = 0, None, None, 0
    state = prepared.resume_state
    if state is not None:
        unwrap(model).load_state_dict(state["model"])
        try:
            optimizer.load_state_dict(state["optimizer"])
            if state.get("scheduler") is not None:
                schedule.load_state_dict(state["scheduler"])
            if scaler is not None and state.get("scaler") is not None:
                scaler.load_state_dict(state["scaler"])
        except (ValueError, KeyError) as exc:
            raise CheckpointError(
                f"cannot resume from {prepared.resume_path}: its optimizer/scheduler state does not fit "
                f"--optimizer {config.optimizer} --scheduler {config.scheduler} ({exc})"
            ) from exc
        start_epoch = int(state["epoch"])
        best_metric, best_epoch = state.get("best_metric"), state.get("best_epoch")
        global_step = int(state.get("global_step", 0))
        if state.get("rng"):
            set_rng_state(state["rng"])
    else:
        schedule.start()

    net: nn.Module = model
    if dist.enabled:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if config.compile:
        net = torch.compile(net)

    stepper = Stepper(model=net, optimizer=optimizer, schedule=schedule, device=device,
                      label_smoothing=config.label_smoothing, mixup=config.mixup, amp_dtype=amp_dtype,
                      scaler=scaler, channels_last=config.channels_last, grad_clip=config.grad_clip,
                      log_every=config.log_every)

    # ---- run folder (rank 0 only writes; every rank agrees on its path)
    run_dir = D.broadcast_object(_run_dir(config, prepared.resume_path) if dist.main else None)
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    if dist.main:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    logger = setup_logging(run_dir if dist.main else None, config.log_level)
    if not dist.main:
        logger.setLevel("ERROR")
    board = None
    metrics = None
    if dist.main:
        from resnetcli.io import write_text

        write_text(run_dir / "config.yaml", config.to_yaml())
        metrics = MetricsLog(run_dir, keep_until=start_epoch)
        if config.tensorboard:
            board = Board(run_dir, purge_step=start_epoch + 1 if state is not None else None, logger=logger)
    for note in prepared.notes:
        logger.info(note)
    where = f"{device}" + (f" x{dist.world} processes" if dist.enabled else "")
    logger.info(
        f"training {config.arch} on {config.data} ({len(train_split)} train"
        f"{f', {len(val_split)} {val_name}' if val_split is not None else ', no validation split'}"
        f", {len(classes)} classes, {image_size}px, augment {augment}) on {where}; run folder {run_dir}"
    )
    if state is not None:
        logger.info(f"resumed from {prepared.resume_path} after epoch {start_epoch}")
        if start_epoch >= config.epochs:
            logger.warning(f"{prepared.resume_path} has already trained {start_epoch} of --epochs "
                           f"{config.epochs}; nothing to do (raise --epochs to train longer)")

    data_info = {
        "source": source.name, "spec": config.data, "image_size": image_size, "channels": source.channels,
        "augment": augment, "train_size": len(train_split), "val_split": val_name,
    }

    def checkpoint(epoch: int, last_row: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "epoch": epoch,
            "global_step": global_step,
            "model": unwrap(model).state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": schedule.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "best_metric": best_metric,
            "best_epoch": best_epoch,
            "rng": rng_state(),
            "classes": classes,
            "normalization": {"mean": list(source.mean), "std": list(source.std)},
            "arch": {"name": config.arch, "num_classes": len(classes), "in_channels": source.channels,
                     "options": dict(config.arch_options)},
            "data": data_info,
            "config": config.to_dict(),
            "metrics": last_row,
        }

    saved: dict[str, Path] = {}
    if state is None and dist.main:
        # epoch 0: even a run interrupted in its first epoch leaves something to resume from
        saved["last"] = save_checkpoint(checkpoint(0, None), ckpt_dir / "last.pt")
        if board is not None:
            example = torch.zeros(1, source.channels, image_size, image_size, device=device)
            board.graph(unwrap(model), example)
    elif state is not None:
        saved["last"] = ckpt_dir / "last.pt"

    from tqdm.auto import tqdm

    last_row: dict[str, Any] = {}
    completed = start_epoch
    val_acc_shown: float | None = state.get("metrics", {}).get("val_acc") if state and state.get("metrics") else None
    try:
        for epoch in range(start_epoch + 1, config.epochs + 1):
            epoch_start = time.perf_counter()
            # per-epoch seeding: epoch e draws the same numbers whether or not the run was resumed before it
            seed_everything(derive_seed(config.seed, epoch, dist.rank))
            train_sampler.set_epoch(epoch)
            lr_used = schedule.lr()
            bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch}/{config.epochs}", unit="batch",
                       disable=not dist.main, leave=True, dynamic_ncols=True)

            def show(b: Any, loss: float, acc: float, _epoch: int = epoch) -> None:
                # seed 002's postfix, in its order (set_postfix would sort keyword arguments)
                b.set_postfix(ordered_dict={
                    "epoch": _epoch, "loss": f"{loss:.4f}",
                    "val acc": "-" if val_acc_shown is None else f"{val_acc_shown:.3f}",
                    "train acc": f"{acc:.3f}", "lr": f"{schedule.lr():.4g}"}, refresh=False)

            try:
                result = train_epoch(stepper, train_loader, epoch=epoch, max_steps=config.max_steps,
                                     rng_seed=derive_seed(config.seed, epoch, dist.rank, 1), progress=bar,
                                     on_progress=show)
                global_step += int(result["steps"])
                val = evaluate(stepper, val_loader) if val_loader is not None else {}
                if val:
                    val_acc_shown = val["val_acc"]
                    show(bar, result["train_loss"], result["train_acc"])
                    bar.refresh()
            finally:
                bar.close()
            metric = val.get("val_acc", result["train_acc"])
            schedule.step_epoch(val)
            completed = epoch
            row = {"epoch": epoch, "train_loss": result["train_loss"], "train_acc": result["train_acc"],
                   "val_loss": val.get("val_loss"), "val_acc": val.get("val_acc"), "val_top5": val.get("val_top5"),
                   "lr": lr_used, "time": round(time.perf_counter() - epoch_start, 3)}
            last_row = row
            improved = best_metric is None or (math.isfinite(metric) and metric > best_metric)
            if improved:
                best_metric, best_epoch = metric, epoch
            logger.info(
                f"epoch {epoch}/{config.epochs}: loss {row['train_loss']:.4f}, train acc {row['train_acc']:.2f}%"
                + (f", val loss {row['val_loss']:.4f}, val acc {row['val_acc']:.2f}%, top-5 {row['val_top5']:.2f}%"
                   if val else "")
                + f", lr {lr_used:.4g}, {row['time']:.1f}s"
            )
            if dist.main:
                assert metrics is not None
                # last.pt goes last: it is the commit point --resume reads, so a kill -9 anywhere before it
                # redoes this epoch and rewrites the metrics row and best.pt rather than losing them
                metrics.add(row)
                if board is not None:
                    board.scalars(row)
                if config.plot:
                    write_plot(run_dir / "plot.png", metrics.rows)
                ckpt = checkpoint(epoch, row)
                if improved:
                    saved["best"] = save_checkpoint(ckpt, ckpt_dir / "best.pt")
                if config.checkpoint_every and epoch % config.checkpoint_every == 0:
                    saved[f"epoch_{epoch:03d}"] = save_checkpoint(ckpt, ckpt_dir / f"epoch_{epoch:03d}.pt")
                saved["last"] = save_checkpoint(ckpt, ckpt_dir / "last.pt")
    except NonFiniteLoss as exc:
        last = ckpt_dir / "last.pt"
        raise TrainingError(
            f"{exc}; training stopped. {last} (epoch {completed}) is the last good checkpoint. "
            f"Lower --lr (it was {config.lr}), add warm-up (--warmup-epochs) or set grad_clip, then "
            f"resume with --resume {last}"
        ) from exc
    except KeyboardInterrupt:
        last = ckpt_dir / "last.pt"
        logger.warning(
            f"interrupted in epoch {completed + 1}; {last} holds epoch {completed} and resumes exactly "
            f"(the partial epoch is redone): resnetcli train --resume {last}"
        )
        raise
    finally:
        if board is not None:
            board.close()

    if "best" not in saved and (ckpt_dir / "best.pt").is_file():
        saved["best"] = ckpt_dir / "best.pt"
    return TrainResult(run_dir=run_dir if dist.main else None, epochs_run=completed - start_epoch,
                       best_epoch=best_epoch, best_metric=best_metric, last=last_row,
                       seconds=time.perf_counter() - started, checkpoints=saved)

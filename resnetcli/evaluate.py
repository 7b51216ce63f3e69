"""Judging a trained checkpoint: find it, rebuild the network from it alone, evaluate, report, write results.

Everything `resnetcli test` needs is a plain function here; `resnetcli predict` reuses `find_checkpoint`,
`restore` and `eval_pipeline`. A checkpoint carries its architecture (name, classes, input channels,
options), class names, normalization and the evaluation pipeline's name, so no flag has to repeat them,
and a mismatch between checkpoint, network and data is refused instead of producing a wrong number.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from resnetcli.engine.checkpoint import class_changes
from resnetcli.engine.device import pick_device
from resnetcli.errors import CheckpointError, DataError, PluginError, UsageError

#: how many of the most likely classes predictions.csv lists (fewer when there are fewer classes)
TOP_K = 5
#: how many most-confused class pairs the report shows
CONFUSED_PAIRS = 5


# ------------------------------------------------------------------------------------ finding checkpoints


def latest_run(runs_dir: str | os.PathLike[str] = "runs") -> Path:
    """The run folder under `runs_dir` (or one level deeper) whose checkpoints were written most recently."""
    runs_dir = Path(runs_dir)
    newest: tuple[float, Path] | None = None
    if runs_dir.is_dir():
        # runs/<name>/ as train writes it, and one level deeper (runs/demo/run/, runs/<project>/<name>/)
        for ckpt in [*runs_dir.glob("*/checkpoints/*.pt"), *runs_dir.glob("*/*/checkpoints/*.pt")]:
            try:
                mtime = ckpt.stat().st_mtime
            except OSError:  # removed while we looked
                continue
            if newest is None or mtime > newest[0]:
                newest = (mtime, ckpt.parent.parent)
    if newest is None:
        raise CheckpointError(
            f"no trained run found under {runs_dir}/ (no {runs_dir}/<run>/checkpoints/*.pt); "
            "train one with `resnetcli train`, or pass a run folder or --checkpoint PATH"
        )
    return newest[1]


def find_checkpoint(
    run: str | os.PathLike[str] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    which: str = "last",
    runs_dir: str | os.PathLike[str] = "runs",
) -> Path:
    """The checkpoint file to use: --checkpoint, else RUN/checkpoints/<which>.pt, else the latest run's.

    `run` may also name a .pt file directly (the seed 004 evaluator took a checkpoint path).
    """
    if which not in ("last", "best"):
        raise UsageError(f"--which must be 'last' or 'best', not '{which}'")
    if checkpoint is not None and run is not None:
        raise UsageError("give either a run folder or --checkpoint, not both")
    target = Path(checkpoint if checkpoint is not None else run) if (checkpoint or run) else None
    if target is not None and target.is_file():
        return target
    if target is not None and not target.exists():
        what = "checkpoint" if checkpoint is not None or target.suffix == ".pt" else "run folder"
        raise CheckpointError(f"{what} {target} does not exist; `ls {runs_dir}` lists the runs")
    run_dir = target if target is not None else latest_run(runs_dir)
    path = run_dir / "checkpoints" / f"{which}.pt"
    if not path.is_file():
        have = sorted(p.name for p in (run_dir / "checkpoints").glob("*.pt")) if (run_dir / "checkpoints").is_dir() else []
        hint = f"it has: {', '.join(have)}" if have else "it holds no checkpoints (is it a run folder?)"
        if which == "best" and have:
            hint += " (best.pt appears once an epoch has been validated)"
        raise CheckpointError(f"{path} does not exist; {hint}")
    return path


def run_dir_of(checkpoint: Path) -> Path:
    """The run folder a checkpoint belongs to (runs/<name>/checkpoints/x.pt -> runs/<name>)."""
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent


# -------------------------------------------------------------------------------------------- restoring


@dataclass
class Restored:
    """A network rebuilt from a checkpoint, with everything needed to feed it as training did."""

    path: Path
    model: nn.Module
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_size: int
    channels: int
    arch: str
    epoch: int
    augment: str
    aug_options: dict[str, Any]
    data_spec: str | None
    data_options: dict[str, Any]
    state: dict[str, Any] = field(repr=False)


def build_network(arch: dict[str, Any], path: Path) -> nn.Module:
    """Call the registered architecture with the checkpoint's num_classes, in_channels and options."""
    from resnetcli.registry import registry

    name = str(arch.get("name"))
    try:
        entry = registry("architectures").entry(name)
    except (UsageError, PluginError) as exc:
        raise CheckpointError(
            f"checkpoint {path} was trained with architecture '{name}', which cannot be built here ({exc}); "
            "install the plugin that provides it"
        ) from None
    try:
        return entry.build(options=dict(arch.get("options") or {}), expect=nn.Module,
                           num_classes=int(arch["num_classes"]), in_channels=int(arch.get("in_channels", 3)))
    except (UsageError, KeyError) as exc:
        raise CheckpointError(
            f"checkpoint {path}: architecture '{name}' refuses the stored settings {arch} ({exc})"
        ) from None


def load_weights(model: nn.Module, weights: dict[str, torch.Tensor], path: Path, arch: str) -> None:
    """load_state_dict(strict=True), with every mismatch summarized on one line."""
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
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path}: weights do not load into '{arch}': {exc}") from None


def restore(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> Restored:
    """Rebuild network, classes, normalization and input size from a checkpoint file alone."""
    from resnetcli.engine.checkpoint import load_checkpoint

    path = Path(path)
    state = load_checkpoint(path, map_location="cpu")
    arch = state["arch"]
    classes = [str(c) for c in state["classes"]]
    if not isinstance(arch, dict) or "name" not in arch or "num_classes" not in arch:
        raise CheckpointError(f"checkpoint {path}: 'arch' must hold name and num_classes, found {arch!r}")
    if int(arch["num_classes"]) != len(classes):
        raise CheckpointError(
            f"checkpoint {path} is inconsistent: {arch['num_classes']} outputs but {len(classes)} class names"
        )
    model = build_network(arch, path)
    load_weights(model, state["model"], path, str(arch["name"]))
    model.eval().to(device)

    data = dict(state.get("data") or {})
    config = dict(state.get("config") or {})
    channels = int(arch.get("in_channels", data.get("channels", 3)))
    norm = dict(state.get("normalization") or {})
    mean = tuple(float(v) for v in norm.get("mean", [0.5] * channels))
    std = tuple(float(v) for v in norm.get("std", [0.5] * channels))
    if len(mean) != channels or len(std) != channels:
        raise CheckpointError(f"checkpoint {path}: normalization {norm} does not have {channels} channel(s)")
    image_size = data.get("image_size") or config.get("image_size") or getattr(model, "default_input_size", 224)
    return Restored(
        path=path, model=model, classes=classes, mean=mean, std=std, image_size=int(image_size),
        channels=channels, arch=str(arch["name"]), epoch=int(state.get("epoch", 0)),
        augment=str(data.get("augment") or config.get("augment") or "none"),
        aug_options=dict(config.get("aug_options") or {}),
        data_spec=data.get("spec") or config.get("data") or data.get("source"),
        data_options=dict(config.get("data_options") or {}),
        state=state,
    )


def eval_pipeline(restored: Restored) -> Callable[..., dict[str, Any]]:
    """The evaluation pipeline training validated with (resize, center crop, normalize), or `none`."""
    from resnetcli.augment import build_pipeline
    from resnetcli.console import warn

    kwargs: dict[str, Any] = {"train": False, "image_size": restored.image_size, "mean": restored.mean,
                              "std": restored.std}
    try:
        return build_pipeline(restored.augment, options=restored.aug_options, **kwargs)
    except (UsageError, PluginError) as exc:
        # a pipeline file moved away or a plugin uninstalled: its eval half is resize + crop + normalize
        warn(f"augmentation '{restored.augment}' of {restored.path} is unavailable ({exc}); "
             "evaluating with 'none' (resize, center crop, normalize)")
        return build_pipeline("none", **kwargs)


def adapt_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """HxWxC uint8 to the network's channel count (gray repeated to RGB, RGB to luma)."""
    have = image.shape[2] if image.ndim == 3 else 1
    if image.ndim == 2:
        image = image[:, :, None]
    if have == channels:
        return image
    if channels == 3:
        return np.repeat(image[:, :, :1], 3, axis=2)
    # ITU-R 601 luma, as Pillow's convert("L") computes it
    luma = image[:, :, :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.clip(np.rint(luma), 0, 255).astype(np.uint8)[:, :, None]


# -------------------------------------------------------------------------------------------- data


def open_data(restored: Restored, spec: str | None) -> Any:
    """The Source to evaluate on: --data, else the one the checkpoint was trained on."""
    from resnetcli.data import open_source

    if spec is None:
        if not restored.data_spec:
            raise UsageError(f"checkpoint {restored.path} does not record its data; pass --data SOURCE")
        try:
            return open_source(training_data_path(restored), **restored.data_options)
        except DataError as exc:
            raise DataError(
                f"the data {restored.data_spec} it was trained on cannot be opened ({exc}); "
                "pass --data SOURCE"
            ) from None
    return open_source(spec)


def training_data_path(restored: Restored) -> str:
    """The checkpoint's data spec; a relative folder is also looked for from the folder training ran in.

    Training recorded paths as typed, relative to its working folder. That folder is recovered from the
    run folder (config `output`, or `runs_dir/name`) being a suffix of where the checkpoint lies now, so
    `resnetcli test /elsewhere/runs/x` still finds `data/processed`.
    """
    from resnetcli.registry import registry

    spec = str(restored.data_spec)
    path = Path(spec)
    if path.is_absolute() or path.exists() or spec in registry("datasets"):
        return spec  # absolute, found from here, or a registered dataset name
    config = dict(restored.state.get("config") or {})
    run = config.get("output") or (
        str(Path(config.get("runs_dir") or "runs") / config["name"]) if config.get("name") else None)
    here = run_dir_of(restored.path).resolve()
    if run and not Path(run).is_absolute():
        parts = Path(run).parts
        if here.parts[-len(parts):] == parts:
            candidate = Path(*here.parts[: -len(parts)]) / path
            if candidate.exists():
                return str(candidate)
    return spec


def choose_split(source: Any, split: str | None) -> str:
    """--split, else 'test' when the data has one, else 'val'."""
    splits = list(source.splits())
    if split is not None:
        if split not in splits:
            raise UsageError(f"--split {split}: the data at {source.root} has only: {', '.join(splits)}")
        return split
    for name in ("test", "val"):
        if name in splits:
            return name
    raise UsageError(
        f"the data at {source.root} has no test or val split (it has: {', '.join(splits)}); "
        "pass --split train to evaluate on training images, or preprocess with a validation split"
    )


def label_map(checkpoint_classes: Sequence[str], data_classes: Sequence[str], path: Path, where: str) -> list[int]:
    """data label -> checkpoint output index; refuses (listing the difference) when the class sets differ."""
    ckpt, data = list(checkpoint_classes), list(data_classes)
    if ckpt == data:
        return list(range(len(data)))
    detail = class_changes(ckpt, data, "only in the checkpoint", "only in the data")
    if detail or len(set(data)) != len(data):
        if not detail:
            detail.append("the data repeats class names")
        raise CheckpointError(
            f"checkpoint {path} knows {len(ckpt)} classes but the data {where} has {len(data)} "
            f"that differ ({'; '.join(detail)}); evaluate on the data it was trained on"
        )
    # same names, other order (e.g. ids renumbered): compare by name, which is what a label means
    index = {name: i for i, name in enumerate(ckpt)}
    return [index[name] for name in data]


class EvalDataset(Dataset):
    """A Split through the evaluation pipeline, labels mapped to the checkpoint's class indices."""

    def __init__(self, split: Any, transform: Callable[..., dict[str, Any]], channels: int,
                 mapping: Sequence[int]) -> None:
        self.split = split
        self.transform = transform
        self.channels = channels
        self.mapping = list(mapping)

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image, label = self.split.load(i)
        image = adapt_channels(np.asarray(image), self.channels)
        return self.transform(image=image)["image"], self.mapping[int(label)]


# -------------------------------------------------------------------------------------------- evaluation


@dataclass
class Outputs:
    """What one pass over a split produced: per-image probabilities and the mean loss."""

    probs: np.ndarray  # N x C float32 (softmax; averaged with the flipped image under --tta-flip)
    labels: np.ndarray  # N int64, checkpoint class indices
    loss: float


@torch.inference_mode()
def forward_log_probs(model: nn.Module, images: torch.Tensor, *, tta_flip: bool = False) -> torch.Tensor:
    """Log-softmax of the logits; with tta_flip, the log of the mean probability over image and mirror image."""
    # channels_last is what oneDNN and cuDNN run fastest; the result is the same
    images = images.contiguous(memory_format=torch.channels_last)
    log_probs = torch.log_softmax(model(images).float(), dim=1)
    if tta_flip:
        flipped = torch.log_softmax(model(images.flip(3)).float(), dim=1)
        log_probs = torch.logaddexp(log_probs, flipped) - math.log(2.0)
    return log_probs


def run_model(
    model: nn.Module, dataset: Dataset, *, batch_size: int = 256, device: torch.device | str = "cpu",
    workers: int = 0, tta_flip: bool = False, progress: bool = True, desc: str = "test",
) -> Outputs:
    """One pass over `dataset` with a tqdm bar; loss is the mean cross-entropy (of the averaged probabilities)."""
    from tqdm import tqdm

    device = torch.device(device)
    model = model.to(device).to(memory_format=torch.channels_last).eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                        pin_memory=device.type == "cuda")
    all_probs: list[torch.Tensor] = []
    all_labels: list[torch.Tensor] = []
    nll, seen, correct = 0.0, 0, 0
    with tqdm(total=len(dataset), desc=desc, unit="img", disable=not progress, dynamic_ncols=True) as bar:
        for images, labels in loader:
            log_probs = forward_log_probs(model, images.to(device, non_blocking=True), tta_flip=tta_flip).cpu()
            nll += float(-log_probs.gather(1, labels.view(-1, 1)).sum())
            probs = log_probs.exp()
            all_probs.append(probs)
            all_labels.append(labels)
            seen += len(labels)
            correct += int((probs.argmax(1) == labels).sum())
            bar.update(len(labels))
            bar.set_postfix_str(f"acc {100.0 * correct / seen:.2f}%", refresh=False)
    if not all_probs:
        raise DataError("the split to evaluate holds no images")
    return Outputs(probs=torch.cat(all_probs).numpy(), labels=torch.cat(all_labels).numpy().astype(np.int64),
                   loss=nll / max(seen, 1))


def compute_metrics(probs: np.ndarray, labels: np.ndarray, classes: Sequence[str], loss: float) -> dict[str, Any]:
    """Top-1/top-k accuracy, confusion matrix (rows: true, columns: predicted), per-class P/R/F1."""
    n, c = probs.shape
    k = min(TOP_K, c)
    pred = probs.argmax(1)
    topk = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    confusion = np.zeros((c, c), dtype=np.int64)
    np.add.at(confusion, (labels, pred), 1)
    tp = np.diag(confusion).astype(np.float64)
    support = confusion.sum(1)
    predicted = confusion.sum(0)
    precision = np.divide(tp, predicted, out=np.zeros(c), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(c), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(c), where=precision + recall > 0)
    present = support > 0
    per_class = [
        {"class": classes[i], "precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
         "support": int(support[i])}
        for i in range(c)
    ]
    pairs = [(int(confusion[t, p]), t, p) for t in range(c) for p in range(c) if t != p and confusion[t, p] > 0]
    pairs.sort(key=lambda x: (-x[0], x[1], x[2]))
    confused = [
        {"true": classes[t], "predicted": classes[p], "count": count, "share_of_true": count / int(support[t])}
        for count, t, p in pairs[:CONFUSED_PAIRS]
    ]
    return {
        "samples": int(n),
        "loss": float(loss),
        "top1": float(tp.sum() / n),
        # top-5, or top-k with k = the number of classes when there are fewer ("top_k" says which)
        "top5": float((topk == labels[:, None]).any(1).mean()),
        "top_k": k,
        "correct": int(tp.sum()),
        "macro": {
            "precision": float(precision[present].mean()) if present.any() else 0.0,
            "recall": float(recall[present].mean()) if present.any() else 0.0,
            "f1": float(f1[present].mean()) if present.any() else 0.0,
        },
        "per_class": per_class,
        "most_confused": confused,
        "classes": list(classes),
        "confusion_matrix": confusion.tolist(),
    }


# -------------------------------------------------------------------------------------------- writing


def predictions_csv(idents: Sequence[str], probs: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> str:
    """ident, true class, predicted class, correct, then the top-k classes with their probabilities."""
    k = min(TOP_K, probs.shape[1])
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    header = ["ident", "true_class", "predicted_class", "correct"]
    for r in range(1, k + 1):
        header += [f"top{r}_class", f"top{r}_prob"]
    writer.writerow(header)
    for i, ident in enumerate(idents):
        row: list[Any] = [ident, classes[labels[i]], classes[order[i, 0]], int(order[i, 0] == labels[i])]
        for j in order[i]:
            row += [classes[j], f"{probs[i, j]:.6f}"]
        writer.writerow(row)
    return buf.getvalue()


def confusion_csv(confusion: Sequence[Sequence[int]], classes: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["true\\predicted", *classes])
    for name, row in zip(classes, confusion):
        writer.writerow([name, *row])
    return buf.getvalue()


def confusion_png(path: Path, confusion: Sequence[Sequence[int]], classes: Sequence[str], title: str) -> bool:
    """Row-normalized heat map with counts; False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    from resnetcli.io import atomic_path

    cm = np.asarray(confusion, dtype=np.float64)
    rates = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    c = len(classes)
    side = min(4 + 0.45 * c, 40)
    fig, ax = plt.subplots(figsize=(side + 1.5, side))
    try:
        im = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
        if c <= 40:
            ax.set_xticks(range(c), labels=classes, rotation=45, ha="right")
            ax.set_yticks(range(c), labels=classes)
            if c <= 20:
                for t in range(c):
                    for p in range(c):
                        if cm[t, p]:
                            ax.text(p, t, str(int(cm[t, p])), ha="center", va="center", fontsize=7,
                                    color="white" if rates[t, p] > 0.5 else "black")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)
    return True


def write_outputs(output: Path, metrics: dict[str, Any], idents: Sequence[str], outputs: Outputs,
                  classes: Sequence[str], title: str) -> list[Path]:
    """metrics.json, predictions.csv, confusion_matrix.csv (+ .png), each written atomically."""
    from resnetcli.io import write_json, write_text

    output.mkdir(parents=True, exist_ok=True)
    written = [output / "metrics.json", output / "predictions.csv", output / "confusion_matrix.csv"]
    write_json(written[0], metrics)
    write_text(written[1], predictions_csv(idents, outputs.probs, outputs.labels, classes))
    write_text(written[2], confusion_csv(metrics["confusion_matrix"], classes))
    if confusion_png(output / "confusion_matrix.png", metrics["confusion_matrix"], classes, title):
        written.append(output / "confusion_matrix.png")
    return written


# -------------------------------------------------------------------------------------------- report


def print_report(metrics: dict[str, Any], console: Any, *, per_class: bool = True) -> None:
    """Summary, per-class table and most confused pairs, as rich tables."""
    from rich.markup import escape
    from rich.table import Table

    summary = Table(title=escape(f"{metrics['data']}, {metrics['split']} split, {metrics['samples']} images"))
    for column in ("loss", "top-1", f"top-{metrics['top_k']}", "macro precision", "macro recall", "macro F1"):
        summary.add_column(column, justify="right")
    macro = metrics["macro"]
    summary.add_row(f"{metrics['loss']:.4f}", _pct(metrics["top1"]), _pct(metrics['top5']),
                    _pct(macro["precision"]), _pct(macro["recall"]), _pct(macro["f1"]))
    console.print(summary)
    if per_class:
        table = Table(title="per class")
        table.add_column("class", overflow="fold")
        for column in ("precision", "recall", "F1", "support"):
            table.add_column(column, justify="right")
        for row in metrics["per_class"]:
            table.add_row(escape(row["class"]), _pct(row["precision"]), _pct(row["recall"]), _pct(row["f1"]),
                          str(row["support"]))
        console.print(table)
    if metrics["most_confused"]:
        table = Table(title="most confused (true -> predicted)")
        for column, justify in (("true", "left"), ("predicted as", "left"), ("images", "right"),
                                ("share of true", "right")):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for pair in metrics["most_confused"]:
            table.add_row(escape(pair["true"]), escape(pair["predicted"]), str(pair["count"]),
                          _pct(pair["share_of_true"]))
        console.print(table)


def accuracy_line(metrics: dict[str, Any]) -> str:
    """The one line a script greps for: split, top-1 (correct/total), top-k."""
    k = metrics["top_k"]
    return (f"{metrics['split']} accuracy: top-1 {_pct(metrics['top1'])} ({metrics['correct']}/{metrics['samples']}), "
            f"top-{k} {_pct(metrics['top5'])}, loss {metrics['loss']:.4f}")


def _pct(value: float) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100.0 * value:.2f}%"


# -------------------------------------------------------------------------------------------- the command


@dataclass
class EvalResult:
    checkpoint: Path
    output: Path
    metrics: dict[str, Any]
    files: list[Path]


def default_workers() -> int:
    # decoding small images is cheap; on a 2-core machine a worker would only fight the forward pass
    cpus = os.cpu_count() or 1
    return 0 if cpus <= 2 else min(4, cpus // 2)


def evaluate_checkpoint(
    run: str | os.PathLike[str] | None = None,
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    which: str = "last",
    data: str | None = None,
    split: str | None = None,
    output: str | os.PathLike[str] | None = None,
    tta_flip: bool = False,
    batch_size: int = 256,
    device: str = "auto",
    workers: int | None = None,
    runs_dir: str | os.PathLike[str] = "runs",
    progress: bool = True,
    console: Any = None,
) -> EvalResult:
    """Evaluate a checkpoint on a split, print the report and write metrics, predictions and confusion matrix."""
    from rich.markup import escape

    from resnetcli.console import out

    console = console or out
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, not {batch_size}")
    if workers is not None and workers < 0:
        raise UsageError(f"--workers must be 0 or more, not {workers}")
    path = find_checkpoint(run, checkpoint, which, runs_dir)
    dev = pick_device(device)
    restored = restore(path, dev)
    source = open_data(restored, data)
    split_name = choose_split(source, split)
    where = data if data is not None else str(restored.data_spec)
    mapping = label_map(restored.classes, source.classes, path, where)
    split_obj = source.split(split_name)
    if len(split_obj) == 0:
        raise DataError(f"the {split_name} split of {where} is empty")
    dataset = EvalDataset(split_obj, eval_pipeline(restored), restored.channels, mapping)
    console.print(escape(
        f"testing {path} ({restored.arch}, epoch {restored.epoch}, {len(restored.classes)} classes, "
        f"{restored.image_size}px) on {where}, {split_name} split, {len(split_obj)} images"
        + (", flip TTA" if tta_flip else "")
    ))
    outputs = run_model(restored.model, dataset, batch_size=batch_size, device=dev,
                        workers=default_workers() if workers is None else workers, tta_flip=tta_flip,
                        progress=progress, desc=f"test {split_name}")
    metrics = {
        "checkpoint": str(path),
        "arch": restored.arch,
        "epoch": restored.epoch,
        "data": where,
        "split": split_name,
        "tta_flip": tta_flip,
        "image_size": restored.image_size,
        **compute_metrics(outputs.probs, outputs.labels, restored.classes, outputs.loss),
    }
    out_dir = Path(output) if output is not None else run_dir_of(path) / f"eval_{split_name}"
    idents = [split_obj.ident(i) for i in range(len(split_obj))]
    files = write_outputs(out_dir, metrics, idents, outputs, restored.classes,
                          f"{restored.arch} on {where} [{split_name}]")
    print_report(metrics, console)
    for f in files:
        console.print(escape(f"wrote {f}"))
    console.print(accuracy_line(metrics))
    return EvalResult(checkpoint=path, output=out_dir, metrics=metrics, files=files)

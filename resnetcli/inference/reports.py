"""What `test` leaves behind and prints: metrics.json, predictions.csv, the confusion matrix, the report.

Every accuracy, precision, recall and F1 arrives in percent (inference/metrics.py) and is shown as such.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from resnetcli.errors import DataError
from resnetcli.inference.metrics import topk_for
from resnetcli.io import csv_text, write_json, write_text
from resnetcli.plots import literal, new_figure, save_png


def predictions_csv(idents: Sequence[str], probs: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> str:
    """ident, true class, predicted class, correct, then the top-k classes with their probabilities."""
    k = topk_for(probs.shape[1])
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    header = ["ident", "true_class", "predicted_class", "correct"]
    for r in range(1, k + 1):
        header += [f"top{r}_class", f"top{r}_prob"]
    rows = []
    for i, ident in enumerate(idents):
        pred = int(probs[i].argmax())
        row: list[Any] = [ident, classes[labels[i]], classes[pred], int(pred == labels[i])]
        for j in order[i]:
            row += [classes[j], f"{probs[i, j]:.6f}"]
        rows.append(row)
    return csv_text(header, rows)


def confusion_csv(confusion: Sequence[Sequence[int]], classes: Sequence[str]) -> str:
    """The confusion matrix with class names: rows true, columns predicted."""
    return csv_text(["true\\predicted", *classes], ([name, *row] for name, row in zip(classes, confusion)))


def confusion_png(path: Path, confusion: Sequence[Sequence[int]], classes: Sequence[str], title: str) -> bool:
    """Row-normalized heat map with counts; False when matplotlib is not installed."""
    c = len(classes)
    side = min(4 + 0.45 * c, 40)
    fig = new_figure(side + 1.5, side)
    if fig is None:
        return False
    cm = np.asarray(confusion, dtype=np.float64)
    rates = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    ax = fig.subplots()
    im = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    if c <= 40:
        labels = [literal(name) for name in classes]
        ax.set_xticks(range(c), labels=labels, rotation=45, ha="right")
        ax.set_yticks(range(c), labels=labels)
        if c <= 20:
            for t in range(c):
                for p in range(c):
                    if cm[t, p]:
                        ax.text(p, t, str(int(cm[t, p])), ha="center", va="center", fontsize=7,
                                color="white" if rates[t, p] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(literal(title))
    save_png(fig, path)
    return True


@contextlib.contextmanager
def writing(where: Path) -> Iterator[None]:
    """An operating-system error while writing results (read-only, full disk, name too long) is one line."""
    try:
        yield
    except (OSError, RuntimeError) as exc:  # matplotlib and torch report some write failures as RuntimeError
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
        raise DataError(f"cannot write the results to {where}: {reason}; choose another --output") from None


def write_outputs(output: Path, metrics: dict[str, Any], idents: Sequence[str], probs: np.ndarray,
                  labels: np.ndarray, classes: Sequence[str], title: str) -> list[Path]:
    """metrics.json, predictions.csv, confusion_matrix.csv (+ .png), each written atomically."""
    written = [output / "metrics.json", output / "predictions.csv", output / "confusion_matrix.csv"]
    with writing(output):
        output.mkdir(parents=True, exist_ok=True)
        write_json(written[0], metrics)
        write_text(written[1], predictions_csv(idents, probs, labels, classes))
        write_text(written[2], confusion_csv(metrics["confusion_matrix"], classes))
        if confusion_png(output / "confusion_matrix.png", metrics["confusion_matrix"], classes, title):
            written.append(output / "confusion_matrix.png")
    return written


def print_report(metrics: dict[str, Any], console: Any, *, per_class: bool = True) -> None:
    """Summary, per-class table and most confused pairs, as rich tables."""
    from rich.table import Table

    from resnetcli.console import escape

    summary = Table(title=escape(f"{metrics['data']}, {metrics['split']} split, {metrics['samples']} images"))
    for column in ("loss", "top-1", f"top-{metrics['k']}", "macro precision", "macro recall", "macro F1"):
        summary.add_column(column, justify="right")
    macro = metrics["macro"]
    summary.add_row(f"{metrics['loss']:.4f}", pct(metrics["top1"]), pct(metrics["topk"]),
                    pct(macro["precision"]), pct(macro["recall"]), pct(macro["f1"]))
    console.print(summary)
    if per_class:
        table = Table(title="per class")
        table.add_column("class", overflow="fold")
        for column in ("precision", "recall", "F1", "support"):
            table.add_column(column, justify="right")
        for row in metrics["per_class"]:
            table.add_row(escape(row["class"]), pct(row["precision"]), pct(row["recall"]), pct(row["f1"]),
                          str(row["support"]))
        console.print(table)
    if metrics["most_confused"]:
        table = Table(title="most confused (true -> predicted)")
        for column, justify in (("true", "left"), ("predicted as", "left"), ("images", "right"),
                                ("share of true", "right")):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for pair in metrics["most_confused"]:
            table.add_row(escape(pair["true"]), escape(pair["predicted"]), str(pair["count"]),
                          pct(pair["share_of_true"]))
        console.print(table)


def accuracy_line(metrics: dict[str, Any]) -> str:
    """The one line a script greps for: split, top-1 (correct/total), top-k, loss."""
    return (f"{metrics['split']} accuracy: top-1 {pct(metrics['top1'])} ({metrics['correct']}/{metrics['samples']}), "
            f"top-{metrics['k']} {pct(metrics['topk'])}, loss {metrics['loss']:.4f}")


def pct(value: float | None) -> str:
    """A percentage (already 0-100) with two decimals; n/a for a missing or NaN value."""
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}%"

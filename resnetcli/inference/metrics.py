"""Classification metrics, written once: loss, top-1, top-k, per-class precision/recall/F1, confusion.

One unit everywhere: accuracies, precision, recall and F1 are PERCENT (0-100), in metrics.json, metrics.csv,
the console and a checkpoint's best_metric. Loss is the mean cross-entropy (nats). Top-k uses
k = min(5, number of classes) and is labelled with the k used ("top-4" for 4 classes).

`Tally` sums on the device batch by batch (no host sync; `reduce` takes a distributed all-reduce), for the
validation inside `train` and the progress of `test`. `compute_metrics` adds what needs every prediction
(confusion, per-class scores). Both count hits with `hits`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

#: the k of top-k accuracy (fewer when there are fewer classes: see topk_for)
TOP_K = 5
#: how many most-confused class pairs a report lists
CONFUSED_PAIRS = 5


def topk_for(num_classes: int) -> int:
    """The k of the top-k accuracy reported for `num_classes` classes: 5, or all classes when fewer."""
    return min(TOP_K, num_classes)


def percent(count: float, total: float) -> float:
    """100 * count / total; NaN when there is nothing to count."""
    return 100.0 * count / total if total else float("nan")


def hits(scores: torch.Tensor, targets: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(top-1 correct, target among the k highest scores), one bool per row; scores are logits or log-probs."""
    top1 = scores.argmax(dim=1).eq(targets)
    topk = scores.topk(k, dim=1).indices.eq(targets[:, None]).any(dim=1)
    return top1, topk


class Tally:
    """Running sums of cross-entropy, top-1 and top-k hits and samples, kept on the scores' device."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.sums = torch.zeros(4, device=device, dtype=torch.float64)  # loss, top-1, top-k, samples
        self.k: int | None = None

    def update(self, scores: torch.Tensor, targets: torch.Tensor) -> None:
        """Add a batch of scores (logits or log-probabilities: cross_entropy normalizes both alike)."""
        scores = scores.float()
        self.k = topk_for(scores.shape[1])
        top1, topk = hits(scores, targets, self.k)
        batch = torch.stack([F.cross_entropy(scores, targets, reduction="sum").double(), top1.sum().double(),
                             topk.sum().double(), torch.tensor(float(targets.shape[0]), device=scores.device,
                                                               dtype=torch.float64)])
        self.sums += batch

    def reduce(self, reducer: Callable[[torch.Tensor], torch.Tensor]) -> Tally:
        """Sums over every process (reducer: engine/distributed.py's all_reduce_sum)."""
        self.sums = reducer(self.sums)
        return self

    def result(self) -> dict[str, Any]:
        """loss (mean), top1 and topk (percent), k, samples; NaN metrics when nothing was seen."""
        loss, top1, topk, n = (float(v) for v in self.sums.tolist())
        return {"loss": loss / n if n else float("nan"), "top1": percent(top1, n), "topk": percent(topk, n),
                "k": self.k, "samples": int(n)}


def compute_metrics(probs: np.ndarray, labels: np.ndarray, classes: Sequence[str], loss: float) -> dict[str, Any]:
    """Top-1/top-k accuracy, confusion matrix (rows: true, columns: predicted), per-class P/R/F1, in percent."""
    n, c = probs.shape
    k = topk_for(c)
    scores, targets = torch.from_numpy(np.asarray(probs)), torch.from_numpy(np.asarray(labels, dtype=np.int64))
    top1, topk = hits(scores, targets, k)
    pred = scores.argmax(dim=1).numpy()
    confusion = np.zeros((c, c), dtype=np.int64)
    np.add.at(confusion, (targets.numpy(), pred), 1)
    tp = np.diag(confusion).astype(np.float64)
    support = confusion.sum(1)
    predicted = confusion.sum(0)
    precision = 100.0 * np.divide(tp, predicted, out=np.zeros(c), where=predicted > 0)
    recall = 100.0 * np.divide(tp, support, out=np.zeros(c), where=support > 0)
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
        {"true": classes[t], "predicted": classes[p], "count": count, "share_of_true": percent(count, support[t])}
        for count, t, p in pairs[:CONFUSED_PAIRS]
    ]
    return {
        "samples": int(n),
        "loss": float(loss),
        "top1": percent(int(top1.sum()), n),
        "topk": percent(int(topk.sum()), n),
        "k": k,
        "correct": int(top1.sum()),
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

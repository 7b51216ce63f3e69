"""What the report shows, read from the files a run folder already holds (nothing is recomputed but
calibration, which needs only predictions.csv's probabilities).

Every part may be missing (a run never tested, a dataset preprocessed before the doctor existed): the
loader returns None for it and the page says how to produce it.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resnetcli.runs import RunLayout

#: confidence bins of the reliability diagram and the expected calibration error
CALIBRATION_BINS = 15


@dataclass
class RunData:
    """Everything the page needs, as plain Python values."""

    run_dir: Path
    config: dict[str, Any] | None = None
    config_text: str | None = None
    epochs: list[dict[str, Any]] = field(default_factory=list)
    eval_split: str | None = None
    metrics: dict[str, Any] | None = None
    predictions: list[dict[str, str]] | None = None
    data_spec: str | None = None
    data_options: dict[str, Any] = field(default_factory=dict)  # the --data-option values that opened it
    data_dir: Path | None = None
    data_report: dict[str, Any] | None = None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _eval_dir(layout: RunLayout) -> tuple[str | None, Path | None]:
    """eval_test if the run was tested on its test split, else the newest eval_<split> folder."""
    found = [p for p in layout.run_dir.glob("eval_*") if (p / "metrics.json").is_file()]
    if not found:
        return None, None
    preferred = layout.eval_dir("test")
    chosen = preferred if preferred in found else max(found, key=lambda p: (p / "metrics.json").stat().st_mtime)
    return chosen.name[len("eval_"):], chosen


def _in_percent(metrics: Any) -> dict[str, Any] | None:
    """metrics.json in percent with `topk`/`k`, whichever version of `resnetcli test` wrote it."""
    if not isinstance(metrics, dict):
        return None
    if metrics.get("unit") == "percent":
        return metrics
    m = dict(metrics)  # older files: fractions, and top5/top_k
    m["topk"], m["k"] = 100 * float(m.pop("top5", 0.0)), m.pop("top_k", 5)
    m["top1"] = 100 * float(m.get("top1", 0.0))
    m["macro"] = {k: 100 * float(v) for k, v in (m.get("macro") or {}).items()}
    m["per_class"] = [{**c, **{k: 100 * float(c[k]) for k in ("precision", "recall", "f1")}}
                      for c in m.get("per_class") or []]
    m["most_confused"] = [{**p, "share_of_true": 100 * float(p["share_of_true"])} for p in m.get("most_confused") or []]
    return m


def _data_folder(spec: str, config: dict[str, Any], run_dir: Path) -> Path | None:
    """The data folder of a run, found the way `resnetcli test` finds it (resnetcli.inference.data)."""
    from types import SimpleNamespace

    from resnetcli.inference.data import training_data_path

    found = training_data_path(SimpleNamespace(  # type: ignore[arg-type]
        data_spec=spec, state={"config": config}, path=RunLayout(run_dir).last))
    path = Path(found)
    return path if path.is_dir() else None


def load_run(run_dir: str | os.PathLike[str], eval_dir: str | os.PathLike[str] | None = None) -> RunData:
    """Read config.yaml, metrics.jsonl, eval_<split>/ and the data's report.json of a run folder.

    `eval_dir`: the folder `resnetcli test` just wrote (its --output), instead of the run's own eval_<split>.
    """
    from resnetcli.options import load_yaml
    from resnetcli.runs_table import read_rows

    layout = RunLayout(run_dir)
    data = RunData(run_dir=layout.run_dir)
    if layout.config.is_file():
        data.config_text = layout.config.read_text(encoding="utf-8")
        loaded = load_yaml(data.config_text)
        data.config = loaded if isinstance(loaded, dict) else None
    data.epochs = read_rows(layout)
    if eval_dir is None:
        data.eval_split, eval_dir = _eval_dir(layout)
    else:
        eval_dir = Path(eval_dir)
    if eval_dir is not None:
        data.metrics = _in_percent(_read_json(eval_dir / "metrics.json"))
        if data.metrics and data.metrics.get("split"):
            data.eval_split = str(data.metrics["split"])
        pred = eval_dir / "predictions.csv"
        if pred.is_file():
            with open(pred, newline="", encoding="utf-8") as fh:
                data.predictions = list(csv.DictReader(fh))
    metrics, config = data.metrics or {}, data.config or {}
    spec = metrics.get("data") or config.get("data")
    if spec:
        data.data_spec = str(spec)
        options = metrics.get("data_options")  # what `test` opened its data with
        if not isinstance(options, dict) and str(spec) == str(config.get("data")):  # none recorded: the run's own
            options = config.get("data_options")
        data.data_options = dict(options) if isinstance(options, dict) else {}
        data.data_dir = _data_folder(str(spec), config, layout.run_dir)
        if data.data_dir is not None:
            data.data_report = _read_json(data.data_dir / "report.json")
    return data


def calibration(predictions: list[dict[str, str]], bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """Reliability bins and the expected calibration error of the top-1 confidence (Guo et al., 2017)."""
    table = [{"lo": k / bins, "hi": (k + 1) / bins, "count": 0, "correct": 0, "conf_sum": 0.0} for k in range(bins)]
    for row in predictions:
        conf = float(row["top1_prob"])
        b = table[min(int(conf * bins), bins - 1)]
        b["count"] += 1
        b["correct"] += int(row["correct"])
        b["conf_sum"] += conf
    n = sum(b["count"] for b in table)
    ece = 0.0
    out = []
    for b in table:
        acc = b["correct"] / b["count"] if b["count"] else 0.0
        conf = b["conf_sum"] / b["count"] if b["count"] else 0.0
        ece += b["count"] / max(n, 1) * abs(acc - conf)
        out.append({"lo": b["lo"], "hi": b["hi"], "count": b["count"], "accuracy": acc, "confidence": conf})
    return {"bins": out, "ece": ece, "samples": n}


def probability_of(row: dict[str, str], name: str) -> float | None:
    """The probability predictions.csv gives class `name` (None when it is not among the top-k)."""
    k = 1
    while f"top{k}_class" in row:
        if row[f"top{k}_class"] == name:
            return float(row[f"top{k}_prob"])
        k += 1
    return None

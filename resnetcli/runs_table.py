"""`resnetcli runs`: what the run folders under a runs directory hold, read from their files alone.

Per run: config.yaml (arch, data, epochs planned), metrics.jsonl (epochs done, val accuracy; the csv logger is
always on), eval_test/metrics.json (what `resnetcli test` wrote) and the
run's lock (engine/lock.py: held while a process trains it).
Nothing here imports torch or opens a checkpoint, so listing a hundred runs is instant.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from resnetcli.engine.bookkeeping import COLUMNS, STOPPED
from resnetcli.errors import UsageError
from resnetcli.options import load_yaml
from resnetcli.runs import RunLayout

#: the metrics --compare puts side by side, in the order of the metrics files
CURVES = ("train_loss", "train_acc", "val_loss", "val_acc")
_LABELS = {"train_loss": "loss", "train_acc": "acc", "val_loss": "val loss", "val_acc": "val acc"}


@dataclass
class RunInfo:
    name: str
    path: str
    arch: str | None
    data: str | None
    epochs_done: int
    epochs_planned: int | None
    best_val_acc: float | None
    last_val_acc: float | None
    test_acc: float | None
    state: str  # finished | stopped early | interrupted | running
    when: str | None  # ISO time of the run's last write
    config: dict[str, Any] = field(repr=False, default_factory=dict)
    rows: list[dict[str, Any]] = field(repr=False, default_factory=list)
    stop_reason: str | None = None  # why a run in state 'stopped early' ended before its --epochs

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["config"], data["rows"]
        return data


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_rows(layout: RunLayout) -> list[dict[str, Any]]:
    """metrics.jsonl's rows, for every reader of a finished or running run (`runs`, `report`): a torn last line,
    from a run killed mid-write, is skipped; a value that is not a number is None, so one odd file cannot stop
    a listing or a page. The `stopped` key (an early stop's reason) is kept when it is a string."""
    try:
        lines = layout.metrics_jsonl.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    rows = []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("epoch"), int):
            rows.append({k: row[k] if _is_number(row.get(k)) else None for k in COLUMNS})
            if isinstance(row.get(STOPPED), str):
                rows[-1][STOPPED] = row[STOPPED]
    return rows


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_config(layout: RunLayout) -> dict[str, Any]:
    try:
        data = load_yaml(layout.config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_run(run_dir: Path, name: str) -> RunInfo:
    """One run's row, from its files."""
    from resnetcli.engine.lock import is_running

    layout = RunLayout(run_dir)
    config, rows = read_config(layout), read_rows(layout)
    planned = config.get("epochs") if isinstance(config.get("epochs"), int) else None
    done = max((int(r["epoch"]) for r in rows), default=0)
    vals = [float(r["val_acc"]) for r in rows if r["val_acc"] is not None]
    tested = _read_json(layout.eval_dir("test") / "metrics.json")
    test_acc = tested.get("top1") if isinstance(tested, dict) else None
    stop_reason = rows[-1].get(STOPPED) if rows else None
    if is_running(layout):
        state = "running"
    elif planned is not None and done >= planned:
        state = "finished"
    elif stop_reason:
        state = "stopped early"
    else:
        state = "interrupted"
    stamps = [p.stat().st_mtime for p in (layout.last, layout.metrics_jsonl, layout.config) if p.is_file()]
    return RunInfo(
        name=name, path=str(run_dir), arch=config.get("arch"), data=config.get("data"), epochs_done=done,
        epochs_planned=planned, best_val_acc=max(vals) if vals else None,
        last_val_acc=rows[-1].get("val_acc") if rows else None,
        test_acc=float(test_acc) if _is_number(test_acc) else None, state=state,
        when=datetime.fromtimestamp(max(stamps)).isoformat(timespec="seconds") if stamps else None,
        config=config, rows=rows, stop_reason=stop_reason if state == "stopped early" else None,
    )


def find_runs(runs_dir: str | os.PathLike[str]) -> list[RunInfo]:
    """Every run folder (one holding config.yaml) at depth 1 or 2 under `runs_dir`, newest first."""
    root = Path(runs_dir)
    if not root.is_dir():
        raise UsageError(f"{root} is not a folder of runs (train writes runs/<name>/); pass the runs folder")
    found = {p.parent for pattern in ("*/config.yaml", "*/*/config.yaml") for p in root.glob(pattern)}
    runs = [read_run(d, d.relative_to(root).as_posix()) for d in found]
    return sorted(runs, key=lambda r: (r.when or "", r.name), reverse=True)


def find_run(name_or_path: str, runs_dir: str | os.PathLike[str]) -> RunInfo:
    """A run by folder path, or by its name under `runs_dir`."""
    for candidate in (Path(name_or_path), Path(runs_dir) / name_or_path):
        if RunLayout(candidate).config.is_file():
            return read_run(candidate, name_or_path)
    raise UsageError(f"no run '{name_or_path}' (neither a run folder nor a run under {runs_dir}/); "
                     f"`resnetcli runs {runs_dir}` lists them")


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_diff(a: RunInfo, b: RunInfo) -> dict[str, tuple[Any, Any]]:
    """The config keys (option maps by their own keys) whose values differ, with A's and B's values."""
    fa, fb = _flatten(a.config), _flatten(b.config)
    skip = {"output", "name", "resume", "overwrite"}  # where a run went, not how it trained
    return {k: (fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb))
            if fa.get(k) != fb.get(k) and k not in skip}


def curves(a: RunInfo, b: RunInfo) -> list[dict[str, Any]]:
    """One row per epoch either run reached: each run's CURVES at that epoch (None where it has none)."""
    by_epoch = [{int(r["epoch"]): r for r in run.rows} for run in (a, b)]
    epochs = sorted(set(by_epoch[0]) | set(by_epoch[1]))
    return [{"epoch": e, "a": {k: by_epoch[0].get(e, {}).get(k) for k in CURVES},
             "b": {k: by_epoch[1].get(e, {}).get(k) for k in CURVES}} for e in epochs]


# ------------------------------------------------------------------------------------------- showing


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}%"


def _num(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def runs_table(runs: list[RunInfo], title: str) -> Any:
    """The rich table of `resnetcli runs` (every user string escaped: a run name may hold '[')."""
    from rich.table import Table

    from resnetcli.console import escape

    table = Table(title=escape(title), title_justify="left")
    for column in ("name", "arch", "data", "epochs", "best val", "last val", "test", "state", "when"):
        table.add_column(column, justify="right" if column in ("epochs", "best val", "last val", "test") else "left",
                         overflow="fold")
    style = {"finished": "green", "stopped early": "green", "interrupted": "yellow", "running": "cyan"}
    for run in runs:
        table.add_row(escape(run.name), escape(str(run.arch or "-")), escape(str(run.data or "-")),
                      f"{run.epochs_done}/{run.epochs_planned if run.epochs_planned is not None else '?'}",
                      _pct(run.best_val_acc), _pct(run.last_val_acc), _pct(run.test_acc),
                      f"[{style[run.state]}]{run.state}[/]", (run.when or "-").replace("T", " "))
    return table


def compare_tables(a: RunInfo, b: RunInfo) -> list[Any]:
    """Two rich tables: the configs' differences, then the metric curves epoch by epoch, side by side."""
    from rich.table import Table

    from resnetcli.console import escape

    diff = Table(title=f"config: {escape(a.name)} (A) vs {escape(b.name)} (B)", title_justify="left")
    for column in ("option", "A", "B"):
        diff.add_column(column, overflow="fold")
    for key, (va, vb) in config_diff(a, b).items():
        diff.add_row(escape(key), escape(repr(va) if va is None else str(va)),
                     escape(repr(vb) if vb is None else str(vb)))
    if not diff.rows:
        diff.add_row("(no differences)", "", "")
    metrics = Table(title="metrics per epoch", title_justify="left")
    metrics.add_column("epoch", justify="right")
    for side in ("A", "B"):
        for key in CURVES:
            metrics.add_column(f"{side} {_LABELS[key]}", justify="right")
    for row in curves(a, b):
        cells = [str(row["epoch"])]
        for side in ("a", "b"):
            values = row[side]
            cells += [_num(values["train_loss"]), _pct(values["train_acc"]), _num(values["val_loss"]),
                      _pct(values["val_acc"])]
        metrics.add_row(*cells)
    return [diff, metrics]


def compare_png(path: Path, a: RunInfo, b: RunInfo) -> bool:
    """Both runs' loss and accuracy per epoch (train dashed, val solid) as a PNG; False without matplotlib."""
    from resnetcli.plots import literal, new_figure, save_png

    fig = new_figure(12, 4)
    if fig is None:
        return False
    rows = curves(a, b)
    epochs = [row["epoch"] for row in rows]
    ax_loss, ax_acc = fig.subplots(1, 2)
    for side, run, color in (("a", a, "C0"), ("b", b, "C1")):
        name = literal(run.name)
        for ax, key, style in ((ax_loss, "train_loss", "--"), (ax_loss, "val_loss", "-"),
                               (ax_acc, "train_acc", "--"), (ax_acc, "val_acc", "-")):
            values = [math.nan if row[side][key] is None else float(row[side][key]) for row in rows]
            ax.plot(epochs, values, style, color=color, marker="o", label=f"{side.upper()} {name}: {_LABELS[key]}")
    for ax, label in ((ax_loss, "loss"), (ax_acc, "accuracy (%)")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    save_png(fig, path)
    return True


def compare_json(a: RunInfo, b: RunInfo) -> dict[str, Any]:
    return {"a": a.to_json(), "b": b.to_json(),
            "config_diff": {k: {"a": va, "b": vb} for k, (va, vb) in config_diff(a, b).items()},
            "epochs": curves(a, b)}

"""The run folder: where `train` writes and `test`/`predict`/`train --resume auto` read, written down once.

    RUN/config.yaml  metrics.csv  metrics.jsonl  train.log  plot.png  tensorboard/  mlruns/
    RUN/checkpoints/{last,best,epoch_NNN}.pt
    RUN/eval_<split>/  export/  report.html  (what `resnetcli test`, `export` and `report` write)

"The latest run" is one rule for every command: the run folder under `runs_dir`, at depth one
(`runs/<name>`, as `train` writes) or two (`runs/demo/run`, `runs/<project>/<name>`), whose
`checkpoints/last.pt` was written most recently.
"""

from __future__ import annotations

import os
from pathlib import Path

from resnetcli.errors import CheckpointError, UsageError

#: the checkpoint names a run folder holds besides epoch_NNN.pt
WHICH = ("last", "best")


class RunLayout:
    """The paths inside one run folder (nothing is created or checked here)."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)

    def __repr__(self) -> str:
        return f"RunLayout({str(self.run_dir)!r})"

    @property
    def config(self) -> Path:
        return self.run_dir / "config.yaml"

    @property
    def metrics_csv(self) -> Path:
        return self.run_dir / "metrics.csv"

    @property
    def metrics_jsonl(self) -> Path:
        return self.run_dir / "metrics.jsonl"

    @property
    def log(self) -> Path:
        return self.run_dir / "train.log"

    @property
    def plot(self) -> Path:
        return self.run_dir / "plot.png"

    @property
    def lock(self) -> Path:
        """Locked while a training process writes the run (engine/lock.py)."""
        return self.run_dir / ".lock"

    @property
    def tensorboard(self) -> Path:
        return self.run_dir / "tensorboard"

    @property
    def mlruns(self) -> Path:
        """The mlflow logger's local file store."""
        return self.run_dir / "mlruns"

    @property
    def export(self) -> Path:
        return self.run_dir / "export"

    @property
    def report(self) -> Path:
        return self.run_dir / "report.html"

    @property
    def checkpoints(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def last(self) -> Path:
        """The commit point: written last after every epoch (engine/saver.py)."""
        return self.checkpoints / "last.pt"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.pt"

    def epoch(self, n: int) -> Path:
        return self.checkpoints / f"epoch_{n:03d}.pt"

    def checkpoint(self, which: str) -> Path:
        """checkpoints/last.pt or checkpoints/best.pt."""
        if which not in WHICH:
            raise UsageError(f"--which must be 'last' or 'best', not '{which}'")
        return self.checkpoints / f"{which}.pt"

    def eval_dir(self, split: str) -> Path:
        return self.run_dir / f"eval_{split}"

    def outputs(self) -> list[Path]:
        """What a run and the commands that read it write here, which `train --overwrite` deletes: left behind,
        an old test score, export or MLflow history would be reported as the new run's. Not config.yaml (the new
        run writes its own) nor the lock (held by the writer that deletes)."""
        return [self.checkpoints, self.tensorboard, self.mlruns, self.export, self.metrics_csv, self.metrics_jsonl,
                self.plot, self.log, self.report, *sorted(p for p in self.run_dir.glob("eval_*") if p.is_dir())]


def run_dir_of(checkpoint: str | os.PathLike[str]) -> Path:
    """The run folder a checkpoint belongs to (RUN/checkpoints/x.pt -> RUN; a loose x.pt -> its folder)."""
    checkpoint = Path(checkpoint)
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent


def latest_run(runs_dir: str | os.PathLike[str] = "runs") -> Path | None:
    """The run folder (depth 1 or 2 under `runs_dir`) whose last.pt is newest; None when there is none."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return None
    newest: tuple[float, str, Path] | None = None
    for pattern in ("*/checkpoints/last.pt", "*/*/checkpoints/last.pt"):
        for last in runs_dir.glob(pattern):
            try:
                mtime = last.stat().st_mtime
            except OSError:  # removed while we looked
                continue
            # equal mtimes (coarse file systems) are broken by path, so the answer does not depend on glob order
            key = (mtime, str(last), last.parent.parent)
            if newest is None or key[:2] > newest[:2]:
                newest = key
    return None if newest is None else newest[2]


def find_checkpoint(
    run_or_ckpt: str | os.PathLike[str] | None = None,
    which: str = "last",
    runs_dir: str | os.PathLike[str] = "runs",
    *,
    option: str | None = None,
) -> Path:
    """A checkpoint file: `run_or_ckpt` itself when it is a file, else RUN/checkpoints/<which>.pt.

    With no `run_or_ckpt`, the latest run under `runs_dir` (see `latest_run`). `option`: the flag the path was
    given with (--checkpoint, --resume: a file or a run folder), which a missing path's message names.
    """
    if which not in WHICH:  # refused before looking at any file
        raise UsageError(f"--which must be 'last' or 'best', not '{which}'")
    if run_or_ckpt is not None:
        target = Path(run_or_ckpt)
        if target.is_file():
            return target
        if not target.exists():
            what = ("checkpoint" if target.suffix in (".pt", ".pth")
                    else f"{option} (a checkpoint file or run folder)" if option else "run folder")
            raise CheckpointError(f"{what} {target} does not exist; `ls {runs_dir}` lists the runs")
        run_dir = target
    else:
        found = latest_run(runs_dir)
        if found is None:
            raise CheckpointError(
                f"no trained run found under {runs_dir}/ (no {runs_dir}/<run>/checkpoints/last.pt); "
                "train one with `resnetcli train`, or pass a run folder or --checkpoint PATH"
            )
        run_dir = found
    layout = RunLayout(run_dir)
    path = layout.checkpoint(which)
    if not path.is_file():
        folder = layout.checkpoints
        have = sorted(p.name for p in folder.glob("*.pt")) if folder.is_dir() else []
        hint = f"it has: {', '.join(have)}" if have else "it holds no checkpoints (is it a run folder?)"
        if which == "best" and have:
            hint += " (best.pt appears once an epoch has been validated)"
        raise CheckpointError(f"{path} does not exist; {hint}")
    return path

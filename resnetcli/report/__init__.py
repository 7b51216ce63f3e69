"""`resnetcli report`: one self-contained HTML page per run (see page.py for what it shows)."""

from __future__ import annotations

import os
from pathlib import Path

from resnetcli.errors import CheckpointError
from resnetcli.io import write_text
from resnetcli.runs import RunLayout, latest_run


def build_report(
    run: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    *,
    runs_dir: str | os.PathLike[str] = "runs",
    eval_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the report of `run` (default: the latest run under runs_dir) atomically; returns its path.

    `eval_dir` names the evaluation to show (what `test --report` just wrote, wherever --output put it);
    by default the run's eval_test/, else its newest eval_<split>/.
    """
    from resnetcli.report.collect import load_run
    from resnetcli.report.page import render
    from resnetcli.report.thumbs import Thumbnails

    run_dir = report_folder(run, runs_dir)
    data = load_run(run_dir, eval_dir)
    thumbs = Thumbnails(data.data_spec, data.data_dir, data.eval_split, data.data_options)
    path = Path(output) if output is not None else RunLayout(run_dir).report
    write_text(path, render(data, thumbs.uri))
    return path


def report_folder(run: str | os.PathLike[str] | None, runs_dir: str | os.PathLike[str] = "runs") -> Path:
    """The run folder a report is about (default: the latest run); one error line when there is none."""
    if run is None:
        found = latest_run(runs_dir)
        if found is None:
            raise CheckpointError(f"no trained run found under {runs_dir}/; train one with `resnetcli train` "
                                  "or pass a run folder")
        return found
    run_dir = Path(run)
    if not run_dir.is_dir():
        raise CheckpointError(f"run folder {run_dir} does not exist; `ls {runs_dir}` lists the runs")
    if not (run_dir / "config.yaml").is_file() and not (run_dir / "metrics.jsonl").is_file():
        raise CheckpointError(f"{run_dir} is not a run folder (no config.yaml or metrics.jsonl in it)")
    return run_dir

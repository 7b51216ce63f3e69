"""`resnetcli test [RUN_DIR]`: evaluate a trained checkpoint and write its report (resnetcli/evaluate.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from resnetcli.commands.common import Device, option


def test_command(
    run_dir: Annotated[
        Path | None,
        typer.Argument(
            help="A run folder (runs/<name>) or a checkpoint file. Default: the most recent run under --runs-dir.",
            show_default=False,
        ),
    ] = None,
    checkpoint: Annotated[
        Path | None, option("checkpoint", "Checkpoint file to evaluate (instead of RUN_DIR).")
    ] = None,
    which: Annotated[
        Literal["last", "best"], typer.Option(help="Which checkpoint of the run: the last epoch's or the best one.")
    ] = "last",
    data: Annotated[
        str | None,
        typer.Option(help="Data to evaluate on (dataset name or folder). Default: what the checkpoint was trained on."),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(help="Split to evaluate: test, val or train. Default: test if the data has one, else val."),
    ] = None,
    output: Annotated[
        Path | None,
        option("output", "Folder for metrics.json, predictions.csv and the confusion matrix. "
               "Default: <run>/eval_<split>."),
    ] = None,
    tta_flip: Annotated[
        bool, typer.Option("--tta-flip", help="Average predictions over each image and its mirror image.")
    ] = False,
    batch_size: Annotated[int, option("batch_size", "Images per forward pass.")] = 256,
    device: Device = "auto",
    workers: Annotated[
        int | None, option("workers", "DataLoader worker processes. Default: 0 on 1-2 CPUs, else half of them (max 4).")
    ] = None,
    runs_dir: Annotated[Path, typer.Option(help="Where runs live, for finding the latest one.")] = Path("runs"),
    report: Annotated[
        bool, typer.Option("--report", help="Then write the run's HTML report (RUN/report.html, `resnetcli report`).")
    ] = False,
) -> None:
    """Evaluate a checkpoint: loss, top-1/top-k, per-class precision/recall/F1, the most confused classes.

    Top-k is top-5, or the class count when fewer; all figures in percent."""
    from resnetcli.evaluate import evaluate_checkpoint

    if report:  # a checkpoint outside a run folder has no run to report on: said before the work, not after
        from resnetcli.evaluate import checkpoint_to_test
        from resnetcli.report import report_folder
        from resnetcli.runs import run_dir_of

        report_folder(run_dir_of(checkpoint_to_test(run_dir, checkpoint, which, runs_dir)), runs_dir)
    result = evaluate_checkpoint(
        run_dir, checkpoint=checkpoint, which=which, data=data, split=split, output=output, tta_flip=tta_flip,
        batch_size=batch_size, device=device, workers=workers, runs_dir=runs_dir,
    )
    if report:
        from resnetcli.console import escape, out
        from resnetcli.report import build_report
        from resnetcli.runs import run_dir_of

        # the evaluation just written, wherever --output put it and whatever its split
        out.print(escape(f"wrote {build_report(run_dir_of(result.checkpoint), eval_dir=result.output)}"))

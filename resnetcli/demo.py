"""The main job a newcomer runs first (`make demo`): Fashion-MNIST from images to an evaluated ResNet, on a CPU.

    python -m resnetcli.demo [--workdir runs/demo] [--epochs N] ...

It uses only files already on the machine (Debian's dataset-fashion-mnist package, or --root DIR holding
the four idx files), and the same commands a user types, each printed before it runs:

1. export the 70,000 images to a class-per-folder PNG tree (train/ and test/), as a user's photos would be;
2. `resnetcli preprocess` it (28x28 kept, a stratified validation split out of train, test/ as the test split);
3. `resnetcli train` a small CIFAR-style ResNet with SGD + one-cycle for a few epochs, with progress bars;
4. `resnetcli test --tta-flip` the last checkpoint on the full 10,000-image test split;
5. `resnetcli summarize` the network;

and ends by printing where everything was written and the test accuracy. Steps 1-2 are skipped when their
output is already complete, so a second run goes straight to training.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

#: written last into the exported tree: its presence means the export finished (step 1 is then skipped)
_DONE = ".export-complete"

#: the demo's network and training recipe (config keys), shared with benchmarks/demo_epoch_bench.py
ARCH = "cifar_resnet"
ARCH_OPTIONS = {"depth": 14}
EPOCHS = 4
BATCH_SIZE = 128
LR = 0.2
# four epochs underfit rather than overfit (train accuracy stays below validation's), so flips only, no crops
# and no label smoothing: 92.30% on the test set (92.61% with --tta-flip), where pad-2 crops and label smoothing
# 0.1 gave 91.11% after three epochs (README, "The main job")
RECIPE = {"optimizer": "sgd-nesterov", "scheduler": "onecycle", "weight_decay": 5e-4, "label_smoothing": 0.0,
          "image_size": 28, "augment": "cifar", "aug_options": {"padding": 0}}

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})


def class_folder(index: int, name: str) -> str:
    """'N.name': keeps Fashion-MNIST's label order (preprocess's label pattern strips the "N." prefix) and
    replaces the "/" of "T-shirt/top", which cannot be part of a folder name."""
    return f"{index}.{name.replace('/', '_').replace(chr(92), '_')}"


def _write_pngs(folder: Path, names: list[str], images: np.ndarray) -> None:
    from PIL import Image

    for name, image in zip(names, images):
        # compress_level=1: these 28x28 files are read once by preprocess; speed beats size
        Image.fromarray(image[:, :, 0], "L").save(folder / name, compress_level=1)


def export_png_tree(output: Path, root: Path | None = None, workers: int | None = None) -> dict[str, int]:
    """Write Fashion-MNIST's train and test images as output/{train,test}/<N.class>/<index>.png."""
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    from resnetcli.data import ArraySplit, open_source
    from resnetcli.io import atomic_dir

    source = open_source("fashion-mnist", root=root) if root is not None else open_source("fashion-mnist")
    folders = [class_folder(i, c) for i, c in enumerate(source.classes)]
    counts: dict[str, int] = {}
    # the whole tree appears at once (renamed into place), so an interrupted export is simply redone
    with atomic_dir(output, replace=True) as tmp:
        jobs = []
        for split_name in ("train", "test"):
            split = source.split(split_name)
            images = split.images if isinstance(split, ArraySplit) else np.stack(
                [split.load(i)[0] for i in range(len(split))])
            labels = np.asarray(split.labels)
            for k, folder in enumerate(folders):
                (tmp / split_name / folder).mkdir(parents=True, exist_ok=True)
                index = np.flatnonzero(labels == k)
                for chunk in np.array_split(index, max(1, len(index) // 1000)):
                    jobs.append((tmp / split_name / folder, [f"{i:05d}.png" for i in chunk], images[chunk]))
            counts[split_name] = len(split)
        with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool, \
                tqdm(total=sum(counts.values()), desc="export", unit="img", dynamic_ncols=True) as bar:
            for job, _ in zip(jobs, pool.map(_write_pngs, *zip(*jobs))):
                bar.update(len(job[1]))
        (tmp / _DONE).write_text(json.dumps(counts) + "\n", encoding="utf-8")
    return counts


def recipe_flags() -> list[str]:
    """RECIPE as `resnetcli train` flags (precision and the in-memory data path are train's own choice)."""
    from resnetcli.engine.config import flag

    args: list[str] = []
    for key, value in RECIPE.items():
        if isinstance(value, dict):
            for name, option in value.items():
                args += [flag(key), f"{name}={option}"]
        else:
            args += [flag(key), str(value)]
    return args


def _say(text: str) -> None:
    from resnetcli.console import err, escape

    err.print(f"\n[bold cyan]==>[/] {escape(text)}")


def _run(args: list[str]) -> None:
    """Run `resnetcli ARGS` as a user would type it; stop the demo on the first failure."""
    from resnetcli.console import err, escape

    err.print(f"[dim]$ resnetcli {escape(' '.join(shlex.quote(a) for a in args))}[/]")
    done = subprocess.run([sys.executable, "-m", "resnetcli", *args], check=False)
    if done.returncode != 0:
        err.print(f"[bold red]demo stopped:[/] `resnetcli {args[0]}` exited with status {done.returncode}")
        raise typer.Exit(done.returncode)


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m {seconds % 60:04.1f}s"


@app.command()
def main(
    workdir: Annotated[Path, typer.Option(help="Where the images, the dataset and the run go.")] = Path("runs/demo"),
    root: Annotated[
        Path | None,
        typer.Option(help="Folder with Fashion-MNIST's idx files. "
                     "Default: Debian's /usr/share/datasets/fashion-mnist."),
    ] = None,
    arch: Annotated[str, typer.Option(help="Architecture to train.")] = ARCH,
    arch_option: Annotated[list[str] | None, typer.Option(help="Architecture option (repeatable).")] = None,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = EPOCHS,
    batch_size: Annotated[int, typer.Option(help="Training batch size.")] = BATCH_SIZE,
    lr: Annotated[float, typer.Option(help="Peak learning rate of the one-cycle schedule.")] = LR,
    workers: Annotated[int, typer.Option(help="DataLoader workers for training and testing.")] = 1,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Fashion-MNIST end to end on the CPU: export, preprocess, train, test, summarize."""
    from rich.table import Table

    from resnetcli.console import err, escape, out
    from resnetcli.errors import ResnetCliError

    started = time.perf_counter()
    default_options = [f"{key}={value}" for key, value in ARCH_OPTIONS.items()] if arch == ARCH else []
    arch_options = arch_option if arch_option is not None else default_options
    images = workdir / "fashion-mnist-png"
    dataset = workdir / "fashion-mnist"
    run_dir = workdir / "run"
    report = run_dir / "eval_test"

    _say(f"1/5 export Fashion-MNIST to a class-per-folder PNG tree in {images}")
    if (images / _DONE).is_file():
        err.print("already exported (delete the folder to redo)")
    else:
        try:
            counts = export_png_tree(images, root)
        except ResnetCliError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}")
            err.print("install it with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), "
                      "or pass --root DIR holding train-images-idx3-ubyte.gz and the other idx files")
            raise typer.Exit(exc.exit_code) from None
        err.print(f"wrote {counts['train']} train and {counts['test']} test images")

    _say(f"2/5 preprocess into {dataset} (28x28 kept, 10% of train held out for validation)")
    if (dataset / "report.json").is_file() and (dataset / "test.csv").is_file():
        err.print("already preprocessed (delete the folder to redo)")
    else:
        _run(["preprocess", "--input", str(images / "train"), "--test-input", str(images / "test"),
              "--output", str(dataset), "--size", "28", "--val-split", "0.1", "--seed", str(seed), "--force"])

    _say(f"3/5 train {arch} for {epochs} epochs on the CPU into {run_dir}")
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)  # the demo's own run folder: a rerun trains afresh
    train_args = ["train", "--data", str(dataset), "--arch", arch]
    for option in arch_options:
        train_args += ["--arch-option", option]
    train_args += [*recipe_flags(), "--epochs", str(epochs), "--batch-size", str(batch_size), "--lr", str(lr),
                   "--workers", str(workers), "--seed", str(seed), "--output", str(run_dir)]
    _run(train_args)

    _say("4/5 test the last checkpoint on the 10,000 test images, each averaged with its mirror image")
    _run(["test", str(run_dir), "--split", "test", "--tta-flip", "--output", str(report), "--workers", str(workers)])

    _say("5/5 summarize the network")
    # preprocess decides the channel count (it writes what the images hold); the network was built for it
    channels = json.loads((dataset / "report.json").read_text(encoding="utf-8")).get("channels", 3)
    summary = ["summarize", "--arch", arch, "--num-classes", "10", "--input-size", "28",
               "--in-channels", str(channels)]
    for option in arch_options:
        summary += ["--arch-option", option]
    _run(summary)

    metrics = json.loads((report / "metrics.json").read_text(encoding="utf-8"))
    table = Table(title=f"Fashion-MNIST demo finished in {_minutes(time.perf_counter() - started)}", show_header=False)
    table.add_column("what")
    table.add_column("where", overflow="fold")
    for what, where in (
        ("images (class-per-folder PNG)", images),
        ("processed dataset", dataset),
        ("run folder (config, logs, metrics, plot)", run_dir),
        ("checkpoints", run_dir / "checkpoints"),
        ("test report (metrics, predictions, confusion)", report),
    ):
        table.add_row(what, escape(str(where)))
    out.print(table)
    from resnetcli.evaluate import accuracy_line

    out.print(f"[bold]{escape(accuracy_line(metrics))}[/]")


if __name__ == "__main__":  # pragma: no cover
    app()

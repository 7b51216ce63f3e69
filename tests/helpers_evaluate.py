"""One tiny run trained once per test session through the real `resnetcli train`, for test and predict tests."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from resnetcli.cli import app

#: class folder names; one with a space and one with a comma so CSV quoting is exercised
CLASSES = ("red", "green shirt", "blue,bag")
SIZE = 16
#: images per class in each split
PER_SPLIT = {"train": 8, "val": 3, "test": 4}


@dataclass(frozen=True)
class TrainedRun:
    """A finished run in workdir/runs/<name> trained on the image tree at data (train/ val/ test/)."""

    workdir: Path
    run: Path
    data: Path

    @property
    def last(self) -> Path:
        return self.run / "checkpoints" / "last.pt"


def write_tree(root: Path, classes: tuple[str, ...] = CLASSES, size: int = SIZE, seed: int = 0) -> Path:
    """root/{train,val,test}/<class>/<i>.png: a class colour and an asymmetric ramp, plus noise."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 60, size, dtype=np.float32)[None, :, None]  # left-right asymmetry for --tta-flip
    for split, count in PER_SPLIT.items():
        for k, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                base = np.full((size, size, 3), 40.0, dtype=np.float32)
                base[..., k % 3] = 190.0
                img = np.clip(base + ramp + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(folder / f"{i}.png")
    return root


def train_once(factory: pytest.TempPathFactory) -> TrainedRun:
    """Train (once per session: the result is kept in the session's base temp folder) a 1-epoch cifar_resnet."""
    workdir = factory.getbasetemp() / "evaluate-session"
    data = workdir / "images"
    done = workdir / "runs" / "tiny" / "checkpoints" / "best.pt"
    if not done.is_file():
        shutil.rmtree(workdir, ignore_errors=True)
        write_tree(data)
        result = CliRunner().invoke(app, [
            "train", "--data", str(data), "--arch", "cifar_resnet", "--arch-option", "depth=8",
            "--arch-option", "width=4", "--image-size", str(SIZE), "--epochs", "1", "--batch-size", "8",
            "--lr", "0.05", "--workers", "0",
            "--device", "cpu", "--seed", "0", "--output", str(workdir / "runs" / "tiny"),
        ])
        assert result.exit_code == 0, result.output
        assert done.is_file(), result.output
    return TrainedRun(workdir=workdir, run=workdir / "runs" / "tiny", data=data)

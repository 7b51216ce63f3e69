"""Fixtures for the training tests: tiny real image folders, a quick way to run the engine in-process, a Ctrl-C
in the middle of an epoch, a pretrained weights file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

#: flags every quick in-process run shares: tiny, single-process, no extras
QUICK: dict[str, Any] = {
    "arch": "resnet20", "epochs": 2, "batch_size": 4, "workers": 0, "device": "cpu", "max_steps": 2,
    "tensorboard": False, "plot": False, "log_level": "WARNING", "scheduler": "constant", "seed": 3,
}


def write_images(root: Path, classes: int = 3, per_class: int = 8, size: int = 16, channels: int = 3,
                 seed: int = 0) -> Path:
    """root/<class k>/<i>.png: a class colour plus noise, so a network can tell classes apart."""
    rng = np.random.default_rng(seed)
    for k in range(classes):
        folder = root / f"c{k}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            base = np.zeros((size, size, channels), dtype=np.float32)
            base[..., k % channels] = 180.0 + 20.0 * (k // channels)
            img = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
            Image.fromarray(img[..., 0] if channels == 1 else img).save(folder / f"{i}.png")
    return root


def run_engine(data: Path, output: Path | None, **flags: Any) -> Any:
    """Train in this process through the same path as the CLI (prepare_config + train)."""
    from resnetcli.engine.trainer import prepare_config, train

    given = {**QUICK, "data": str(data), "output": None if output is None else str(output), **flags}
    given = {k: v for k, v in given.items() if v is not None}
    config_file = given.pop("config", None)
    return train(prepare_config(config_file, given))


def interrupt_in_epoch(monkeypatch: pytest.MonkeyPatch, stop_epoch: int) -> None:
    """Epoch `stop_epoch` runs one real batch (so the weights move), then Ctrl-C."""
    import resnetcli.engine.trainer as trainer

    real = trainer.train_epoch

    def interrupted(stepper, batches, *, epoch, **kwargs):  # type: ignore[no-untyped-def]
        if epoch == stop_epoch:
            real(stepper, batches, epoch=epoch, **{**kwargs, "max_steps": 1})
            raise KeyboardInterrupt
        return real(stepper, batches, epoch=epoch, **kwargs)

    monkeypatch.setattr(trainer, "train_epoch", interrupted)


def torchvision_resnet18(path: Path) -> tuple[Path, dict[str, Any]]:
    """A torchvision resnet18 state dict (1000 classes, seeded random weights: never downloaded) saved at `path`
    as torchvision users save one; returns (path, the state dict)."""
    import torch
    import torchvision

    torch.manual_seed(1)
    state = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(state, path)
    return path, state

"""`predict --model model.onnx`: an exported ONNX file run with onnxruntime, fed as its model card says.

The card's preprocessing (decode to its channels, smaller side to `resize` with Pillow's bicubic filter,
center crop, scale, normalize) is done here with numpy, the way any deployment would; the forward pass,
batching, flip TTA and top-k are predict's own (inference/run.py), so both paths print the same classes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from resnetcli.errors import CheckpointError, UsageError


@dataclass
class Deployed:
    """An exported model ready to predict with: the runtime as a module, its classes and preprocessing."""

    path: Path
    model: nn.Module
    classes: list[str]
    transform: Any
    channels: int
    side: int
    card: dict[str, Any] = field(repr=False)


class OnnxModule(nn.Module):
    """onnxruntime behind nn.Module's call, so predict's forward pass runs it unchanged (CPU tensors)."""

    def __init__(self, path: Path, session: Any) -> None:
        from resnetcli.export.formats import onnx_forward

        super().__init__()
        self._forward = onnx_forward(path, session)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self._forward(images))


class CardTransform:
    """Center crop, scale to 0-1, normalize, HWC -> CHW: the card's preprocessing after the resize.

    Called like an albumentations pipeline (`transform(image=arr)["image"]`) so predict's dataset takes it.
    """

    def __init__(self, crop: int, mean: list[float], std: list[float], scale: float = 1 / 255) -> None:
        self.crop = crop
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        self.scale = np.float32(scale)

    def __call__(self, *, image: np.ndarray) -> dict[str, torch.Tensor]:
        arr = image[:, :, None] if image.ndim == 2 else image
        h, w = arr.shape[:2]
        if h < self.crop or w < self.crop:
            raise ValueError(f"image of {w}x{h} is smaller than the {self.crop}px crop")
        top, left = (h - self.crop) // 2, (w - self.crop) // 2
        arr = arr[top:top + self.crop, left:left + self.crop].astype(np.float32)
        arr = (arr * self.scale - self.mean) / self.std
        return {"image": torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))}


def open_onnx(path: str | os.PathLike[str]) -> Deployed:
    """Load an exported .onnx file and its card (beside it, else the copy in the file's metadata)."""
    from resnetcli.export.card import read_card
    from resnetcli.export.formats import CARD_KEY, check_installed, onnx_session

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model file {path} does not exist")
    if path.suffix.lower() != ".onnx":
        raise UsageError(f"--model {path}: predict runs exported .onnx files; for a checkpoint use --checkpoint")
    check_installed(["onnx"])
    try:
        session = onnx_session(path)
    except Exception as exc:  # onnxruntime's own exception types (InvalidProtobuf, Fail, ...) are not exported
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path} is not an ONNX model onnxruntime can load ({first})") from None
    card = read_card(path, session.get_modelmeta().custom_metadata_map.get(CARD_KEY))
    outputs = session.get_outputs()[0].shape
    if len(outputs) == 2 and isinstance(outputs[1], int) and outputs[1] != len(card["classes"]):
        raise UsageError(f"{path} gives {outputs[1]} class scores but its model card names {len(card['classes'])} "
                         "classes; export it again with `resnetcli export`")
    pre = card["preprocessing"]
    return Deployed(
        path=path, model=OnnxModule(path, session), classes=[str(c) for c in card["classes"]],
        transform=CardTransform(int(pre["crop"]), pre["mean"], pre["std"], float(pre.get("scale", 1 / 255))),
        channels=int(card["input"]["channels"]), side=int(pre["resize"]), card=card,
    )

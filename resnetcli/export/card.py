"""The model card: a small JSON file beside each exported model saying how to feed it and what it is.

    architecture   name, options, num_classes, in_channels
    classes        output index -> class name
    input          NCHW float32, channels, height = width = image_size, batch dimension dynamic
    preprocessing  decode (RGB or grayscale), resize the smaller side to `resize` (bicubic, antialiased),
                   center-crop `crop`, divide by 255, subtract mean, divide by std (per channel)
    output         logits; softmax gives probabilities
    training       data, epochs, the settings that shaped the network
    metrics        percent: best and last validation top-1, and `resnetcli test`'s result when there is one
    file           name, format (onnx, torchscript, pt2, safetensors) and sha256 of the model file
    verification   the runtime that ran the file back, on which images, and its largest logit difference

`predict --model` reads the card to preprocess exactly as the checkpoint path does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from resnetcli.errors import UsageError

CARD_FORMAT = "resnetcli-model-card"
CARD_VERSION = 1
#: the eval transforms a card can describe; anything else in a checkpoint's eval pipeline is warned about
DESCRIBED = {"SmallestMaxSize", "CenterCrop", "Normalize", "ToTensorV2"}
#: the training settings worth carrying to deployment
_TRAINING_KEYS = ("epochs", "optimizer", "lr", "batch_size", "scheduler", "augment", "seed", "pretrained")


def card_path(model_file: str | os.PathLike[str]) -> Path:
    """model.onnx -> model.onnx.json."""
    path = Path(model_file)
    return path.with_name(path.name + ".json")


def build_card(restored: Any, pipeline: Any) -> dict[str, Any]:
    """The card of a restored checkpoint (inference/restore.py's Restored) and its evaluation pipeline."""
    from resnetcli import __version__
    from resnetcli.console import warn
    from resnetcli.inference.files import pre_resize_side

    state = restored.state
    arch = dict(state["arch"])
    names = [type(t).__name__ for t in getattr(pipeline, "transforms", []) or []]
    extra = [n for n in names if n not in DESCRIBED]
    if extra:
        warn(f"the evaluation pipeline of {restored.path} also does {', '.join(extra)}, which the model card "
             "cannot describe; predict --model applies only resize, center crop and normalization")
    config = dict(state.get("config") or {})
    metrics = dict(state.get("metrics") or {})
    return {
        "format": CARD_FORMAT,
        "version": CARD_VERSION,
        "architecture": {"name": restored.arch, "options": dict(arch.get("options") or {}),
                         "num_classes": len(restored.classes), "in_channels": restored.channels},
        "classes": list(restored.classes),
        "input": {"layout": "NCHW", "dtype": "float32", "channels": restored.channels,
                  "height": restored.image_size, "width": restored.image_size, "batch": "dynamic",
                  "name": "image"},
        "preprocessing": {
            "color": "RGB" if restored.channels == 3 else "grayscale",
            "resize": pre_resize_side(pipeline, restored.image_size), "interpolation": "bicubic",
            "crop": restored.image_size, "scale": 1 / 255,
            "mean": list(restored.mean), "std": list(restored.std),
        },
        "output": {"name": "logits", "meaning": "unnormalized class scores; softmax gives probabilities"},
        "training": {
            "data": restored.data_spec, "epochs": restored.epoch, "augment": restored.augment,
            **{k: config[k] for k in _TRAINING_KEYS if config.get(k) is not None and k not in ("epochs", "augment")},
            **{k: v for k, v in dict(state.get("data") or {}).items() if k in ("source", "train_size", "channels")},
        },
        "metrics": _metrics(restored, state, metrics),
        "checkpoint": str(restored.path),
        "exported_by": f"resnetcli {__version__}",
    }


def _metrics(restored: Any, state: dict[str, Any], last: dict[str, Any]) -> dict[str, Any]:
    from resnetcli.runs import RunLayout, run_dir_of

    found: dict[str, Any] = {"unit": "percent"}
    if state.get("best_metric") is not None:
        found["best_val_top1"] = float(state["best_metric"])
        found["best_epoch"] = state.get("best_epoch")
    if last.get("val_acc") is not None:
        found["last_val_top1"] = float(last["val_acc"])
    test = RunLayout(run_dir_of(restored.path)).eval_dir("test") / "metrics.json"
    if test.is_file():
        try:
            data = json.loads(test.read_text(encoding="utf-8"))
            found["test"] = {k: data[k] for k in ("top1", "topk", "k", "samples", "split", "checkpoint") if k in data}
        except (OSError, json.JSONDecodeError):
            pass  # a report that cannot be read is left out, not fatal to exporting
    return found


def read_card(model_file: str | os.PathLike[str], embedded: str | None = None) -> dict[str, Any]:
    """The card beside `model_file` (or `embedded`, the copy inside the file); one error line if neither."""
    from pydantic import ValidationError

    from resnetcli.engine.checkpoint import Normalization, describe

    path = card_path(model_file)
    text = path.read_text(encoding="utf-8") if path.is_file() else embedded
    if text is None:
        raise UsageError(f"{model_file} has no model card ({path.name} beside it); export it with `resnetcli export`")
    try:
        card = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"model card {path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise UsageError(f"{path} is not a resnetcli model card")
    if card.get("version", 0) > CARD_VERSION:
        raise UsageError(f"model card {path} has version {card['version']}; this resnetcli reads up to {CARD_VERSION}")
    try:
        pre, classes = card["preprocessing"], card["classes"]
        channels = int(card["input"]["channels"])
        if len(pre["mean"]) != channels or len(pre["std"]) != channels or channels not in (1, 3):
            raise ValueError("mean/std do not match the 1 or 3 input channels")
        if not isinstance(classes, list) or not classes:
            raise ValueError("classes is not a list of class names")
        resize, crop = int(pre["resize"]), int(pre["crop"])
        if not 1 <= crop <= resize:  # the crop is cut from the resized image
            raise ValueError(f"crop {crop} is not between 1 and resize {resize}")
        # predict divides by std: the checkpoint's rule (finite mean, finite positive std)
        Normalization.model_validate({"mean": pre["mean"], "std": pre["std"]})
    except ValidationError as exc:
        raise UsageError(f"model card {path} has an invalid normalization: {describe(exc)}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"model card {path} is incomplete or inconsistent ({exc})") from None
    return card

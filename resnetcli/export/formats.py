"""One writer per export format. Each writes to a temporary path, loads what it wrote back with the runtime
that will run it, and returns the largest difference from PyTorch's logits on the verification images.

    onnx          torch.onnx (the torch.export-based exporter; needs onnxscript), run back with onnxruntime
    torchscript   torch.jit.trace, run back with torch.jit.load (deprecated by PyTorch; kept for libtorch users)
    pt2           torch.export program (torch.export.save), run back with torch.export.load
    safetensors   the state_dict; the card rides along in the file's metadata (load_pretrained reads it)
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from resnetcli.errors import UsageError

#: what each format needs beyond resnetcli's own dependencies (the `export` extra)
NEEDS: dict[str, tuple[str, ...]] = {
    "onnx": ("onnx", "onnxscript", "onnxruntime"),
    "torchscript": (),
    "pt2": (),
    "safetensors": ("safetensors",),
}
FILENAMES = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt", "pt2": "model.pt2",
             "safetensors": "model.safetensors"}
#: what ran the exported file back, for the printed check
RUNTIMES = {"onnx": "onnxruntime", "torchscript": "torch.jit.load", "pt2": "torch.export.load",
            "safetensors": "the rebuilt network"}
#: metadata key under which ONNX and safetensors files carry their model card
CARD_KEY = "resnetcli"

#: an exported file's forward pass: NCHW float batch -> logits
Forward = Callable[[torch.Tensor], np.ndarray]


def check_installed(formats: list[str]) -> None:
    """Refuse, before any work, a format whose packages are missing."""
    import importlib.util

    missing = sorted({m for f in formats for m in NEEDS[f] if importlib.util.find_spec(m) is None})
    if missing:
        raise UsageError(
            f"exporting {', '.join(formats)} needs {', '.join(missing)}: pip install 'resnetcli[export]'"
        )


def _batch_dim() -> Any:
    return torch.export.Dim("batch", min=1, max=4096)


def write_onnx(model: nn.Module, example: torch.Tensor, path: Path, card: dict[str, Any]) -> Forward:
    """model.onnx with a dynamic batch dimension and the card in its metadata; returns onnxruntime's forward."""
    import onnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on decompositions are not the user's concern
        torch.onnx.export(model, (example,), str(path), dynamo=True, external_data=False, verbose=False,
                          input_names=["image"], output_names=["logits"], dynamic_shapes=({0: _batch_dim()},))
    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, {CARD_KEY: json.dumps(card)})
    onnx.save(proto, str(path))
    card["opset"] = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    return onnx_forward(path)


def onnx_session(path: Path) -> Any:
    """An onnxruntime session on the CPU."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: its warnings about unused initializers are noise
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_forward(path: Path, session: Any = None) -> Forward:
    """A function from an NCHW batch to onnxruntime's logits."""
    session = session or onnx_session(path)
    name = session.get_inputs()[0].name

    def forward(images: torch.Tensor) -> np.ndarray:
        batch = np.ascontiguousarray(images.detach().cpu().numpy(), dtype=np.float32)
        return session.run(None, {name: batch})[0]

    return forward


def write_torchscript(model: nn.Module, example: torch.Tensor, path: Path, card: dict[str, Any]) -> Forward:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated; the card and README say so
        traced = torch.jit.trace(model, example, check_trace=False)
        torch.jit.save(traced, str(path), _extra_files={f"{CARD_KEY}.json": json.dumps(card)})
        loaded = torch.jit.load(str(path), map_location="cpu")
    return _torch_forward(loaded)


def write_pt2(model: nn.Module, example: torch.Tensor, path: Path, card: dict[str, Any]) -> Forward:
    program = torch.export.export(model, (example,), dynamic_shapes=({0: _batch_dim()},))
    # through file objects: torch.export checks a path's suffix, and the temporary name ends in .tmp
    with open(path, "wb") as fh:
        torch.export.save(program, fh, extra_files={f"{CARD_KEY}.json": json.dumps(card)})
    with open(path, "rb") as fh:
        return _torch_forward(torch.export.load(fh).module())


def write_safetensors(model: nn.Module, example: torch.Tensor, path: Path, card: dict[str, Any]) -> Forward:
    from safetensors.torch import load_file, save

    from resnetcli.inference.restore import build_network

    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    path.write_bytes(save(tensors, metadata={CARD_KEY: json.dumps(card)}))  # into the file atomic_path made
    arch = card["architecture"]
    rebuilt = build_network(arch, path)
    rebuilt.load_state_dict(load_file(str(path)), strict=True)
    return _torch_forward(rebuilt.eval())


def _torch_forward(module: Any) -> Forward:
    def forward(images: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return module(images).float().numpy()

    return forward


WRITERS: dict[str, Callable[[nn.Module, torch.Tensor, Path, dict[str, Any]], Forward]] = {
    "onnx": write_onnx, "torchscript": write_torchscript, "pt2": write_pt2, "safetensors": write_safetensors,
}

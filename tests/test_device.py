"""One device rule for train, test and predict."""

from __future__ import annotations

import pytest
import torch

from resnetcli.engine.device import pick_device
from resnetcli.errors import UsageError


def test_auto_and_cpu() -> None:
    assert pick_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available() and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        expected = "mps"
    assert pick_device("auto").type == expected


@pytest.mark.parametrize("name", ["tpu", "gpu", ""])
def test_unknown_device_names_are_refused(name: str) -> None:
    with pytest.raises(UsageError, match="--device must be auto, cpu, cuda or mps"):
        pick_device(name)


def test_cuda_without_cuda_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ("cuda", "cuda:1"):
        with pytest.raises(UsageError, match=f"--device {name}: no CUDA device"):
            pick_device(name)

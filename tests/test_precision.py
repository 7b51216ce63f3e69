"""default_precision: the fastest safe settings per device, decided from what the hardware says it can do."""

from __future__ import annotations

import io

import pytest
import torch

from resnetcli.engine import device as device_module
from resnetcli.engine.device import choose_precision, default_precision


def _cpu_reports(monkeypatch: pytest.MonkeyPatch, caps: dict[str, object] | None, cpuinfo: str = "") -> None:
    if caps is None:
        monkeypatch.delattr(torch.cpu, "get_capabilities", raising=False)
    else:
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: caps)
    # device.py's own name `open` shadows the builtin for that module only
    monkeypatch.setattr(device_module, "open", lambda *args, **kwargs: io.StringIO(cpuinfo), raising=False)


@pytest.mark.parametrize(("caps", "cpuinfo", "bf16"), [
    ({"avx512_bf16": True, "amx_bf16": False, "avx2": True}, "", True),
    ({"avx512_bf16": False, "amx_bf16": True}, "", True),
    ({"avx512_bf16": False, "amx_bf16": False, "avx512_f": True}, "flags : avx512_bf16", False),  # torch decides
    ({"avx2": True}, "flags\t\t: fpu sse avx2 avx512f avx512_bf16\n", True),  # torch does not know: cpuinfo
    (None, "processor : 0\nFeatures : fp asimd bf16 sve\n", True),  # Arm with BF16, older torch
    (None, "flags : fpu sse avx2 avx512f\n", False),
    (None, "", False),
])
def test_cpu_uses_bf16_only_where_it_is_native(monkeypatch: pytest.MonkeyPatch, caps: dict[str, object] | None,
                                               cpuinfo: str, bf16: bool) -> None:
    _cpu_reports(monkeypatch, caps, cpuinfo)
    choice = default_precision(torch.device("cpu"))
    assert choice.amp_dtype == (torch.bfloat16 if bf16 else None)
    assert choice.channels_last
    assert not choice.needs_grad_scaler
    assert choice.reason.startswith("bf16 autocast + channels_last" if bf16 else "fp32 + channels_last")


def test_capability_detection_failure_means_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> dict[str, object]:
        raise RuntimeError("cpuinfo unavailable")

    monkeypatch.setattr(torch.cpu, "get_capabilities", broken)
    monkeypatch.setattr(device_module, "open", lambda *a, **k: (_ for _ in ()).throw(OSError("no /proc")),
                        raising=False)
    assert default_precision(torch.device("cpu")).amp_dtype is None


@pytest.mark.parametrize(("bf16", "capability", "dtype", "channels_last"), [
    (True, (9, 0), torch.bfloat16, True),
    (False, (7, 5), torch.float16, True),
    (False, (6, 1), torch.float16, False),
])
def test_cuda_prefers_bf16_else_fp16_with_a_scaler(monkeypatch: pytest.MonkeyPatch, bf16: bool,
                                                   capability: tuple[int, int], dtype: torch.dtype,
                                                   channels_last: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: bf16)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: "Some GPU")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: capability)
    choice = default_precision(torch.device("cuda", 0))
    assert choice.amp_dtype == dtype
    assert choice.channels_last == channels_last
    assert choice.needs_grad_scaler == (dtype == torch.float16)
    assert "Some GPU" in choice.reason and ("GradScaler" in choice.reason) == choice.needs_grad_scaler


def test_mps_stays_fp32() -> None:
    choice = default_precision(torch.device("mps"))
    assert choice.amp_dtype is None and not choice.channels_last


def _cuda_reports(monkeypatch: pytest.MonkeyPatch, bf16: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: bf16)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: "Some GPU")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: (7, 5))


@pytest.mark.parametrize(("bf16", "dtype", "scaler"), [(True, "bf16", False), (False, "fp16", True)])
def test_auto_on_cuda_is_bf16_else_fp16_with_a_grad_scaler(monkeypatch: pytest.MonkeyPatch, bf16: bool, dtype: str,
                                                          scaler: bool) -> None:
    from resnetcli.engine.loop import amp_settings

    _cuda_reports(monkeypatch, bf16)
    device = torch.device("cuda", 0)
    choice = choose_precision("auto", "auto", "auto", device)
    assert (choice.amp, choice.amp_dtype, choice.channels_last) == (True, dtype, True)
    autocast_dtype, grad_scaler = amp_settings(choice.amp, choice.amp_dtype, device)
    assert autocast_dtype == (torch.bfloat16 if bf16 else torch.float16)
    assert (grad_scaler is not None) == scaler


@pytest.mark.parametrize("native", [True, False])
def test_auto_on_cpu_follows_default_precision_and_flags_override_it(monkeypatch: pytest.MonkeyPatch,
                                                                     native: bool) -> None:
    _cpu_reports(monkeypatch, {"avx512_bf16": native, "avx2": True})
    cpu = torch.device("cpu")
    auto = choose_precision("auto", "auto", "auto", cpu)
    assert (auto.amp, auto.amp_dtype, auto.channels_last) == (native, "bf16", True)
    assert auto.reason == default_precision(cpu).reason
    off = choose_precision(False, "auto", False, cpu)  # --no-amp --no-channels-last
    assert (off.amp, off.channels_last) == (False, False)
    assert off.reason.startswith("fp32: as set (--amp/--no-amp, --channels-last; auto would be ")
    asked = choose_precision("auto", "bf16", "auto", cpu)  # --amp-dtype alone asks for autocast
    assert (asked.amp, asked.amp_dtype) == (True, "bf16")
    assert asked.settings() == {"amp": True, "amp_dtype": "bf16", "channels_last": True}

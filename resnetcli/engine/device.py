"""Which device to run on, and at which precision: one rule for train, test and predict."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from resnetcli.errors import UsageError


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def pick_device(name: str = "auto") -> torch.device:
    """auto: cuda, then mps, then cpu; an explicit device that is not there is one UsageError line."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu"
    if name not in ("cpu", "cuda", "mps") and not name.startswith("cuda:"):
        raise UsageError(f"--device must be auto, cpu, cuda or mps, not '{name}'")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: no CUDA device is available (use --device auto or cpu)")
    if name == "mps" and not _mps_available():
        raise UsageError("--device mps: Apple's MPS backend is not available here (use --device auto or cpu)")
    return torch.device(name)


class Precision(NamedTuple):
    """How to train on a device: autocast dtype (None: fp32), memory format, and why, for the run's first line."""

    amp_dtype: torch.dtype | None
    channels_last: bool
    reason: str

    @property
    def needs_grad_scaler(self) -> bool:
        """fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none."""
        return self.amp_dtype == torch.float16


#: CPU features with native bfloat16 arithmetic: x86's AVX512-BF16 and AMX, Arm's BF16 extension
_BF16_FEATURES = ("avx512_bf16", "amx_bf16", "bf16")


def _cpu_features() -> set[str]:
    """The CPU's feature names: torch's own detection where it has it, else /proc/cpuinfo's flags."""
    get_capabilities = getattr(torch.cpu, "get_capabilities", None)  # torch >= 2.3
    if get_capabilities is not None:
        try:
            caps = get_capabilities()
        except Exception:  # a detection failure is "unknown", never a failed run
            caps = {}
        if any(feature in caps for feature in _BF16_FEATURES):
            return {name for name, value in caps.items() if value is True}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):  # x86, Arm
                    return set(value.split())
    except OSError:  # not Linux
        pass
    return set()


def default_precision(device: torch.device) -> Precision:
    """The fastest safe settings for `device`.

    CPU: channels_last, with bf16 autocast where the CPU computes bfloat16 natively (elsewhere bf16 is
    emulated and slower than fp32). CUDA: bf16 autocast where the GPU supports it natively,
    else fp16 with a GradScaler; channels_last on GPUs with tensor cores. MPS: fp32.
    """
    if device.type == "cpu":
        native = sorted(_cpu_features() & set(_BF16_FEATURES))
        if native:
            return Precision(torch.bfloat16, True, f"bf16 autocast + channels_last: the CPU computes bfloat16 "
                                                   f"natively ({', '.join(native)})")
        # channels_last is exact (a memory layout) and oneDNN's convolutions prefer it on every x86 CPU
        return Precision(None, True, "fp32 + channels_last: the CPU has no native bfloat16 (AVX512-BF16, AMX "
                                     "or Arm BF16), where bf16 would be emulated and slower")
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        name = torch.cuda.get_device_name(index)
        tensor_cores = torch.cuda.get_device_capability(index) >= (7, 0)
        layout = " + channels_last" if tensor_cores else ""
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return Precision(torch.bfloat16, tensor_cores, f"bf16 autocast{layout}: {name} supports bfloat16")
        return Precision(torch.float16, tensor_cores,
                         f"fp16 autocast with a GradScaler{layout}: {name} has no native bfloat16")
    return Precision(None, False, f"fp32: mixed precision is not used by default on {device.type}")


class PrecisionChoice(NamedTuple):
    """--amp / --amp-dtype / --channels-last with "auto" decided for a device (what config.yaml records), and
    why, for the run's first line."""

    amp: bool
    amp_dtype: str
    channels_last: bool
    reason: str

    def settings(self) -> dict[str, Any]:
        """The config keys this choice sets."""
        return {"amp": self.amp, "amp_dtype": self.amp_dtype, "channels_last": self.channels_last}


_DTYPE_NAMES = {torch.bfloat16: "bf16", torch.float16: "fp16"}


def choose_precision(amp: bool | str, amp_dtype: str, channels_last: bool | str,
                     device: torch.device) -> PrecisionChoice:
    """Each setting left at "auto" takes default_precision(device)'s value; one that is set wins.

    An explicit --amp-dtype with --amp left at auto asks for autocast in that dtype."""
    best = default_precision(device)
    set_by_user = [name for name, value in (("--amp/--no-amp", amp), ("--amp-dtype", amp_dtype),
                                            ("--channels-last", channels_last)) if value != "auto"]
    if amp == "auto":
        amp = best.amp_dtype is not None or amp_dtype != "auto"
    if amp_dtype == "auto":
        amp_dtype = _DTYPE_NAMES.get(best.amp_dtype, "bf16")  # type: ignore[arg-type]
    if channels_last == "auto":
        channels_last = best.channels_last
    if not set_by_user:
        return PrecisionChoice(bool(amp), amp_dtype, bool(channels_last), best.reason)
    chosen = (f"{amp_dtype} autocast" if amp else "fp32") + (" + channels_last" if channels_last else "")
    default = best.reason.split(":")[0]
    why = f"as set ({', '.join(set_by_user)}" + ("" if chosen == default else f"; auto would be {default}") + ")"
    return PrecisionChoice(bool(amp), amp_dtype, bool(channels_last), f"{chosen}: {why}")

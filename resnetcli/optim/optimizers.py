"""Built-in optimizers: thin builders over torch.optim with the defaults the seeds and papers used.

Each builder names every option it takes (no **kwargs), so the registry entry can list them when a user
passes one it does not take.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from resnetcli.errors import UsageError

Params = Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]]

#: option -> (lowest, highest, whether the lowest is allowed, whether the highest is), as the papers define them
_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "lr": (0.0, math.inf, False, False),
    "weight_decay": (0.0, math.inf, True, False),
    "momentum": (0.0, 1.0, True, True),
    "dampening": (0.0, 1.0, True, True),
    "alpha": (0.0, 1.0, True, True),
    "beta": (0.0, 1.0, True, False),
    "eps": (0.0, math.inf, False, False),
}


def _checked(optimizer: str, **values: Any) -> dict[str, Any]:
    """The builder's options, each a finite number in its documented range (betas: two), else one UsageError line.

    torch accepts momentum 5 or dampening -1e30 and trains on nonsense; this says which option, which value.
    """
    for key, value in values.items():
        if key == "betas":
            if not isinstance(value, (list, tuple)) or len(value) != 2:
                raise UsageError(f"optimizer '{optimizer}' option betas must be two numbers in [0, 1), not {value!r}")
            values[key] = tuple(_number(optimizer, "beta", v) for v in value)
        elif key in ("nesterov", "amsgrad", "centered"):
            if not isinstance(value, bool):
                raise UsageError(f"optimizer '{optimizer}' option {key} must be true or false, not {value!r}")
        else:
            values[key] = _number(optimizer, key, value)
    return values


def _number(optimizer: str, key: str, value: Any) -> float:
    low, high, low_ok, high_ok = _RANGES[key]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (low <= value if low_ok else low < value) and (value <= high if high_ok else value < high)
    if not ok:
        span = f"{'[' if low_ok else '('}{low:g}, {high:g}{']' if high_ok else ')'}"
        name = "betas" if key == "beta" else key
        raise UsageError(f"optimizer '{optimizer}' option {name} must be a finite number in {span}, not {value!r}")
    return float(value)


def sgd(
    params: Params, *, lr: float, weight_decay: float = 0.0, momentum: float = 0.9, nesterov: bool = False,
    dampening: float = 0.0,
) -> torch.optim.Optimizer:
    """SGD with momentum (0.9 by default), as in the ResNet paper."""
    return torch.optim.SGD(params, **_checked("sgd", lr=lr, weight_decay=weight_decay, momentum=momentum,
                                                  nesterov=nesterov, dampening=dampening))


def sgd_nesterov(
    params: Params, *, lr: float, weight_decay: float = 0.0, momentum: float = 0.9, dampening: float = 0.0
) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum (0.9 by default), seed 002's optimizer."""
    return torch.optim.SGD(params, nesterov=True, **_checked("sgd-nesterov", lr=lr, weight_decay=weight_decay,
                                                             momentum=momentum, dampening=dampening))


def adam(
    params: Params, *, lr: float, weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8, amsgrad: bool = False,
) -> torch.optim.Optimizer:
    """Adam (L2 weight decay added to the gradient), seed 002's second run."""
    return torch.optim.Adam(params, **_checked("adam", lr=lr, weight_decay=weight_decay, betas=betas, eps=eps,
                                               amsgrad=amsgrad))


def adamw(
    params: Params, *, lr: float, weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8, amsgrad: bool = False,
) -> torch.optim.Optimizer:
    """AdamW (decoupled weight decay)."""
    return torch.optim.AdamW(params, **_checked("adamw", lr=lr, weight_decay=weight_decay, betas=betas, eps=eps,
                                                amsgrad=amsgrad))


def rmsprop(
    params: Params, *, lr: float, weight_decay: float = 0.0, alpha: float = 0.99, momentum: float = 0.0,
    eps: float = 1e-8, centered: bool = False,
) -> torch.optim.Optimizer:
    """RMSprop."""
    return torch.optim.RMSprop(params, **_checked("rmsprop", lr=lr, weight_decay=weight_decay, alpha=alpha,
                                                  momentum=momentum, eps=eps, centered=centered))

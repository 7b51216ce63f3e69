"""Built-in optimizers: thin builders over torch.optim with the defaults the seeds and papers used.

Each builder names every option it takes (no **kwargs), so the registry entry can list them when a user
passes one it does not take.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

Params = Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]]


def sgd(
    params: Params, *, lr: float, weight_decay: float = 0.0, momentum: float = 0.9, nesterov: bool = False,
    dampening: float = 0.0,
) -> torch.optim.Optimizer:
    """SGD with momentum (0.9 by default), as in the ResNet paper."""
    return torch.optim.SGD(
        params, lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov, dampening=dampening,
    )


def sgd_nesterov(
    params: Params, *, lr: float, weight_decay: float = 0.0, momentum: float = 0.9, dampening: float = 0.0
) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum (0.9 by default), seed 002's optimizer."""
    return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=True,
                           dampening=dampening)


def adam(
    params: Params, *, lr: float, weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8, amsgrad: bool = False,
) -> torch.optim.Optimizer:
    """Adam (L2 weight decay added to the gradient), seed 002's second run."""
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, betas=tuple(betas), eps=eps,
                            amsgrad=amsgrad)


def adamw(
    params: Params, *, lr: float, weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8, amsgrad: bool = False,
) -> torch.optim.Optimizer:
    """AdamW (decoupled weight decay)."""
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=tuple(betas), eps=eps,
                             amsgrad=amsgrad)


def rmsprop(
    params: Params, *, lr: float, weight_decay: float = 0.0, alpha: float = 0.99, momentum: float = 0.0,
    eps: float = 1e-8, centered: bool = False,
) -> torch.optim.Optimizer:
    """RMSprop."""
    return torch.optim.RMSprop(
        params, lr=lr, weight_decay=weight_decay, alpha=alpha, momentum=momentum, eps=eps, centered=centered
    )

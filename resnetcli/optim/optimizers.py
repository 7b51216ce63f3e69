"""Built-in optimizers: thin builders over torch.optim with the defaults the seeds and papers used."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

Params = Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]]


def sgd(
    params: Params, *, lr: float, weight_decay: float = 0.0, momentum: float = 0.9, nesterov: bool = False,
    dampening: float = 0.0, **options: Any,
) -> torch.optim.Optimizer:
    """SGD with momentum (0.9 by default), as in the ResNet paper."""
    return torch.optim.SGD(
        params, lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov, dampening=dampening,
        **options,
    )


def sgd_nesterov(
    params: Params, *, lr: float, weight_decay: float = 0.0, momentum: float = 0.9, **options: Any
) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum (0.9 by default), seed 002's optimizer."""
    return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=True, **options)


def adam(
    params: Params, *, lr: float, weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8, **options: Any,
) -> torch.optim.Optimizer:
    """Adam (L2 weight decay added to the gradient), seed 002's second run."""
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, betas=tuple(betas), eps=eps, **options)


def adamw(
    params: Params, *, lr: float, weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8, **options: Any,
) -> torch.optim.Optimizer:
    """AdamW (decoupled weight decay)."""
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=tuple(betas), eps=eps, **options)


def rmsprop(
    params: Params, *, lr: float, weight_decay: float = 0.0, alpha: float = 0.99, momentum: float = 0.0,
    eps: float = 1e-8, **options: Any,
) -> torch.optim.Optimizer:
    """RMSprop."""
    return torch.optim.RMSprop(
        params, lr=lr, weight_decay=weight_decay, alpha=alpha, momentum=momentum, eps=eps, **options
    )

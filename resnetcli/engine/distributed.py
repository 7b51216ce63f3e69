"""torchrun support: process-group setup from the environment, metric reduction, rank-0-only writing.

A collective that waits longer than the configured timeout raises instead of hanging, so a rank that
dies takes the others down with an error rather than leaving them blocked forever.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from resnetcli.errors import TrainingError, UsageError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world: int = 1

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def from_env() -> DistInfo:
    """WORLD_SIZE / RANK / LOCAL_RANK as torchrun sets them; a single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    return DistInfo(rank=int(os.environ.get("RANK", "0")), local_rank=int(os.environ.get("LOCAL_RANK", "0")),
                    world=world)


def init(info: DistInfo, device: torch.device, timeout_s: float) -> None:
    if not info.enabled or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    kwargs: dict[str, Any] = {}
    if device.type == "cuda":
        kwargs["device_id"] = device
    try:
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s), **kwargs)
    except (RuntimeError, ValueError) as exc:  # DistNetworkError and DistStoreError are RuntimeErrors
        addr, port = os.environ.get("MASTER_ADDR", "?"), os.environ.get("MASTER_PORT", "?")
        text = str(exc)
        if "EADDRINUSE" in text or "address already in use" in text.lower():
            raise UsageError(
                f"cannot start the distributed run: port {port} on {addr} is already in use "
                "(another run?); pick a free one, e.g. torchrun --master_port PORT"
            ) from exc
        raise TrainingError(
            f"process {info.rank} of {info.world} could not join the distributed run at {addr}:{port} "
            f"({_first_line(text)}); check that every process started and can reach it"
        ) from exc


def _first_line(text: str) -> str:
    """The gist of a torch.distributed message: its first line, without a '[source.cc:123]' prefix or advice."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return "no reason given"
    gist = re.sub(r"^\[[^\]]*\]\s*", "", lines[0]).split(". This is typically")[0]
    return gist[:300]


#: what gloo and NCCL say when another process died or stopped answering in the middle of a collective
_LOST_PEER = re.compile(r"gloo|nccl|connection (reset|closed|refused)|closed by peer|timed out|timeout|"
                        r"broken pipe|socket", re.IGNORECASE)


def lost_peer(exc: BaseException, info: DistInfo) -> TrainingError | None:
    """One-line TrainingError for a collective that failed because another process died or hung, else None.

    Under torchrun the agent also stops the surviving processes; without it (each process started by hand or by
    a cluster scheduler) this is what the survivors report instead of a traceback from the autograd engine.
    """
    if not info.enabled or not isinstance(exc, RuntimeError) or not _LOST_PEER.search(str(exc)):
        return None
    return TrainingError(
        f"process {info.rank} of {info.world}: another process of the distributed run stopped or became "
        f"unreachable ({_first_line(str(exc))}); the last complete epoch is in checkpoints/last.pt: "
        "start all processes again with --resume auto"
    )


def pick_device(name: str, info: DistInfo) -> torch.device:
    """The shared device rule (engine/device.py); on CUDA under torchrun each rank takes cuda:LOCAL_RANK."""
    from resnetcli.engine.device import pick_device as shared_rule

    device = shared_rule(name)
    if device.type != "cuda":
        return device
    if info.enabled:
        index = info.local_rank
    else:
        index = device.index if device.index is not None else torch.cuda.current_device()
    torch.cuda.set_device(index)
    # fixed input sizes: let cuDNN pick the fastest convolution algorithms once
    torch.backends.cudnn.benchmark = True
    return torch.device("cuda", index)


def shutdown(*, finished: bool = False) -> None:
    """Leave the process group; after a finished run, only once every rank is done with it."""
    if dist.is_available() and dist.is_initialized():
        if finished:
            # a rank that tears gloo down while a peer is still in its last collective can make that peer
            # abort at exit ("terminate called without an active exception"); after a failure a peer may be
            # gone, so no barrier then
            dist.barrier()
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum across ranks in place (a no-op in a single process)."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_object(obj: Any) -> Any:
    """Rank 0's value of a picklable object, on every rank."""
    if dist.is_available() and dist.is_initialized():
        holder = [obj]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]
    return obj


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()

"""Training-step throughput: the engine's loop (resnetcli.engine.loop.train_epoch) vs a hand-written one.

Same model (resnet20, 10 classes), same 32x32 batches already in memory, same batch size and optimizer
(SGD momentum 0.9, weight decay 1e-4). Variants run interleaved, repeated, and the median is reported, so
a noisy shared machine hurts every variant alike; the best and the median of the repeats are printed.

    .venv/bin/python benchmarks/train_bench.py                 # default and fastest CPU settings
    .venv/bin/python benchmarks/train_bench.py --compile       # also torch.compile (slow to warm up)

Goals (issue 5): engine default >= 0.95x the plain loop; engine fastest >= 1.2x plain fp32.

Measured 2026-11-23 on the 2-core CI machine while other jobs ran (load ~4-5), hence one thread and process
CPU time (`--threads 1 --clock cpu --repeats 10 --compile`), img/s best / median of 10:
    plain loop fp32                   198.9 / 167.5   1.00x / 1.00x
    engine default                    198.4 / 160.2   1.00x / 0.96x
    engine channels_last              233.5 / 192.3   1.17x / 1.15x
    engine compile + channels_last    243.7 / 208.6   1.23x / 1.25x
Wall-clock figures on that loaded machine swung by up to 1.7x between identical variants, so they are not quoted.
"""

from __future__ import annotations

import argparse
import copy
import io
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from resnetcli.engine.config import TrainConfig
from resnetcli.engine.loop import Stepper, train_epoch
from resnetcli.engine.trainer import build_optimizer, build_schedule
from resnetcli.registry import get


def make_batches(n: int, batch: int, size: int, classes: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(batch, 3, size, size, generator=g), torch.randint(0, classes, (batch,), generator=g))
            for _ in range(n)]


def plain_loop(model: torch.nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> Callable[[], None]:
    """What one writes by hand: forward, loss, zero_grad, backward, step."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    model.train()

    def run() -> None:
        for x, y in batches:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return run


def engine_loop(model: torch.nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]],
                **settings: Any) -> Callable[[], None]:
    """The engine's own step: its optimizer/schedule builders and train_epoch, progress bar included."""
    channels_last = settings.get("channels_last", False)
    config = TrainConfig(arch="resnet20", optimizer="sgd", lr=0.1, weight_decay=1e-4, scheduler="cosine",
                         epochs=10, channels_last=channels_last)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = build_optimizer(config, model)
    schedule = build_schedule(config, opt, len(batches))
    schedule.start()
    net = torch.compile(model) if settings.get("compile") else model
    stepper = Stepper(model=net, optimizer=opt, schedule=schedule, device=torch.device("cpu"),
                      amp_dtype=torch.bfloat16 if settings.get("bf16") else None, channels_last=channels_last)
    sink = io.StringIO()

    def run() -> None:
        bar = tqdm(total=len(batches), file=sink, mininterval=0.5)
        def show(steps: int, loss: float, acc: float) -> None:  # what the engine's ProgressBar callback does
            bar.set_postfix(loss=f"{loss:.4f}", acc=f"{acc:.2f}", refresh=False)
            bar.update(steps - bar.n)

        train_epoch(stepper, batches, epoch=1, on_progress=show)
        bar.close()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=2, help="timed training steps per repeat")
    parser.add_argument("--repeats", type=int, default=12)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall time, or this process's CPU time (steadier on a machine shared with other jobs)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--bf16", action="store_true", help="also time bf16 autocast (needs CPU bf16 support)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base = get("architectures", "resnet20")(num_classes=10)
    batches = make_batches(args.steps, args.batch_size, 32, 10)

    variants: dict[str, Callable[[], None]] = {
        "plain loop (fp32)": plain_loop(copy.deepcopy(base), batches),
        "engine default": engine_loop(copy.deepcopy(base), batches),
        "engine channels_last": engine_loop(copy.deepcopy(base), batches, channels_last=True),
    }
    if args.bf16:
        variants["engine channels_last + bf16"] = engine_loop(copy.deepcopy(base), batches, channels_last=True,
                                                              bf16=True)
    if args.compile:
        variants["engine compile + channels_last"] = engine_loop(copy.deepcopy(base), batches, channels_last=True,
                                                                 compile=True)
    for run in variants.values():  # warm-up: allocator, oneDNN primitives, compilation
        run()
    rates: dict[str, list[float]] = {name: [] for name in variants}
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    names = list(variants)
    for r in range(args.repeats):
        # rotate the order every round so no variant always follows the same one
        for name in names[r % len(names):] + names[:r % len(names)]:
            run = variants[name]
            start = clock()
            run()
            rates[name].append(args.steps * args.batch_size / (clock() - start))
    # best of the repeats (as timeit does: other load only ever slows a run down), and the median
    plain_best = max(rates["plain loop (fp32)"])
    plain_median = statistics.median(rates["plain loop (fp32)"])
    print(f"resnet20, 32x32, batch {args.batch_size}, {args.steps} steps x {args.repeats} repeats, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.clock} clock")
    print(f"{'variant':32s} {'best img/s':>10s} {'vs plain':>8s} {'median img/s':>12s} {'vs plain':>8s}")
    for name, values in rates.items():
        best, median = max(values), statistics.median(values)
        print(f"{name:32s} {best:10.1f} {best / plain_best:7.2f}x {median:12.1f} {median / plain_median:7.2f}x")


if __name__ == "__main__":
    main()

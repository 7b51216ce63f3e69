"""Training-step throughput: plain PyTorch loops against the engine's step, in one run.

Same model (resnet20, 10 classes), same 32x32 batches already in memory, same batch size and optimizer
(SGD momentum 0.9, weight decay 1e-4). Printed in one run:
  plain fp32            forward, loss, zero_grad, backward, step, written by hand
  plain channels_last   the same in NHWC memory format
  plain fastest         channels_last + bf16 autocast, by hand
  engine default        the step `resnetcli train` builds (engine.trainer.build_run) from TrainConfig's defaults,
                        whose precision "auto" is what engine.device.default_precision picks for this CPU
  engine fastest        the engine with --channels-last --amp --amp-dtype bf16
Variants run interleaved and repeated, so a noisy shared machine hurts every one alike; the best and the
median of the repeats are printed, relative to plain fp32.

    .venv/bin/python benchmarks/train_bench.py
    .venv/bin/python benchmarks/train_bench.py --threads 1 --clock cpu   # steadier on a loaded machine
    .venv/bin/python benchmarks/train_bench.py --compile                 # also torch.compile (slow warm-up)

bf16 is fast only where the CPU computes it natively (AVX512-BF16 or AMX); elsewhere it is emulated, and
default_precision keeps fp32 there. Measured 2026-11-23 on the 2-core AMD EPYC VM (AVX2, no AVX-512, so no
native bf16) at load average 8-11, `--threads 1 --clock cpu --steps 2 --repeats 4`, img/s best / median:
    plain fp32                   138.1 / 132.8   1.00x / 1.00x
    plain channels_last          172.7 / 159.3   1.25x / 1.20x
    plain fastest (cl + bf16)     14.7 /  14.2   0.11x / 0.11x   (emulated bf16: 9x slower here)
    engine, fp32                 129.3 / 127.5   0.94x / 0.96x   (the default before precision "auto")
    engine default               157.1 / 149.5   1.14x / 1.13x   (auto: fp32 + channels_last on this CPU)
    engine fastest (cl + bf16)    16.1 /  15.4   0.12x / 0.12x
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from resnetcli.engine.build import build_optimizer, build_schedule
from resnetcli.engine.config import TrainConfig, replace
from resnetcli.engine.device import choose_precision, default_precision
from resnetcli.engine.loop import Stepper, amp_settings, train_epoch
from resnetcli.registry import get

PLAIN = "plain fp32"


def make_batches(n: int, batch: int, size: int, classes: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(batch, 3, size, size, generator=g), torch.randint(0, classes, (batch,), generator=g))
            for _ in range(n)]


def plain_loop(model: torch.nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]], *,
               channels_last: bool = False, bf16: bool = False) -> Callable[[], None]:
    """What one writes by hand: forward, loss, zero_grad, backward, step (optionally NHWC and bf16 autocast)."""
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    model.train()

    def run() -> None:
        for x, y in batches:
            x = x.contiguous(memory_format=memory_format)
            with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
                loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return run


def engine_loop(model: torch.nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]],
                **options: Any) -> Callable[[], None]:
    """The engine's step, built from a TrainConfig as engine.trainer.build_run builds it, progress hook included.

    `options` are TrainConfig fields (channels_last, amp, amp_dtype, compile), as `resnetcli train` flags set them.
    """
    device = torch.device("cpu")
    config = TrainConfig(arch="resnet20", optimizer="sgd", lr=0.1, weight_decay=1e-4, scheduler="cosine",
                         epochs=10, **options)
    # "auto" settings decided as engine.trainer.train decides them
    config = replace(config, **choose_precision(config.amp, config.amp_dtype, config.channels_last, device).settings())
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    amp_dtype, scaler = amp_settings(config.amp, config.amp_dtype, device)
    optimizer = build_optimizer(config, model)
    schedule = build_schedule(config, optimizer, len(batches))
    schedule.start()
    net = torch.compile(model) if config.compile else model
    stepper = Stepper(model=net, optimizer=optimizer, schedule=schedule, device=device,
                      label_smoothing=config.label_smoothing, mixup=config.mixup, cutmix=config.cutmix,
                      amp_dtype=amp_dtype, scaler=scaler, channels_last=config.channels_last,
                      grad_clip=config.grad_clip, log_every=config.log_every)
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
    parser.add_argument("--compile", action="store_true", help="also time the engine with torch.compile")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base = get("architectures", "resnet20")(num_classes=10)
    batches = make_batches(args.steps, args.batch_size, 32, 10)
    chosen = default_precision(torch.device("cpu"))
    fastest = {"channels_last": True, "amp": True, "amp_dtype": "bf16"}

    variants: dict[str, Callable[[], None]] = {
        PLAIN: plain_loop(copy.deepcopy(base), batches),
        "plain channels_last": plain_loop(copy.deepcopy(base), batches, channels_last=True),
        "plain fastest (cl + bf16)": plain_loop(copy.deepcopy(base), batches, channels_last=True, bf16=True),
        "engine default": engine_loop(copy.deepcopy(base), batches),
        "engine fastest (cl + bf16)": engine_loop(copy.deepcopy(base), batches, **fastest),
    }
    if args.compile:
        variants["engine compile + cl + bf16"] = engine_loop(copy.deepcopy(base), batches, compile=True, **fastest)
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
    plain_best = max(rates[PLAIN])
    plain_median = statistics.median(rates[PLAIN])
    print(f"resnet20, 32x32, batch {args.batch_size}, {args.steps} steps x {args.repeats} repeats, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.clock} clock")
    print(f"default_precision(cpu): {chosen.reason}")
    print(f"{'variant':32s} {'best img/s':>10s} {'vs plain':>8s} {'median img/s':>12s} {'vs plain':>8s}")
    for name, values in rates.items():
        best, median = max(values), statistics.median(values)
        print(f"{name:32s} {best:10.1f} {best / plain_best:7.2f}x {median:12.1f} {median / plain_median:7.2f}x")


if __name__ == "__main__":
    main()

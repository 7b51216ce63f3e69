"""The demo's training epoch through the engine against a plain in-memory PyTorch loop, in one run.

Both train the demo's network (resnetcli.demo: cifar_resnet, its depth and recipe) on the demo's processed
Fashion-MNIST (28x28 gray, 54,000 training images) with the same batch size, optimizer, weight decay, label
smoothing, learning-rate schedule and the precision `resnetcli train` picks for this CPU:
  engine   what `resnetcli train` runs: the data path build_loaders chooses (in memory here: decoded once,
           the recipe's flip, and pad-crop when it pads, per image and normalization as one gather per batch),
           the Stepper built as build_run builds it, train_epoch with its progress hook;
  plain    what one writes by hand with the images already a normalized float tensor in memory: shuffle,
           slice, flip half the batch, forward, loss, zero_grad, backward, step, scheduler step.
Variants alternate, `--steps` batches each, repeated; best and median of the repeats, engine relative to
plain. The processed dataset is the demo's (`make demo` writes runs/demo/fashion-mnist), or --data.

    .venv/bin/python benchmarks/demo_epoch_bench.py --data runs/demo/fashion-mnist
    .venv/bin/python benchmarks/demo_epoch_bench.py --clock cpu --threads 1    # steadier on a loaded machine
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from resnetcli.demo import ARCH, ARCH_OPTIONS, BATCH_SIZE, EPOCHS, LR, RECIPE
from resnetcli.engine import distributed as D
from resnetcli.engine.build import build_model, build_optimizer, build_schedule
from resnetcli.engine.config import replace, resolve_light
from resnetcli.engine.data import open_training_data
from resnetcli.engine.device import choose_precision
from resnetcli.engine.loop import Stepper, amp_settings, train_epoch
from resnetcli.engine.trainer import build_loaders, fill_defaults


def engine_epoch(data_dir: str, steps: int) -> tuple[Callable[[], None], str, Any]:
    """`steps` batches of the demo's epoch as `resnetcli train` runs them, the data path it chose, and its
    training batches (the decoded images, for the plain loop)."""
    device = torch.device("cpu")
    config = resolve_light(None, {**RECIPE, "data": data_dir, "arch": ARCH, "arch_options": ARCH_OPTIONS,
                                  "batch_size": BATCH_SIZE, "lr": LR, "epochs": EPOCHS, "workers": 0})
    config = replace(config, **choose_precision(config.amp, config.amp_dtype, config.channels_last, device).settings())
    data = open_training_data(data_dir, {}, "auto")
    torch.manual_seed(0)
    model = build_model(config, len(data.classes), data.source.channels)
    config = fill_defaults(config, data, model)
    loaders = build_loaders(config, data, D.DistInfo(), device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    amp_dtype, scaler = amp_settings(config.amp, config.amp_dtype, device)
    optimizer = build_optimizer(config, model)
    schedule = build_schedule(config, optimizer, len(loaders["train"]))
    schedule.start()
    stepper = Stepper(model=model, optimizer=optimizer, schedule=schedule, device=device,
                      label_smoothing=config.label_smoothing, amp_dtype=amp_dtype, scaler=scaler,
                      channels_last=config.channels_last, log_every=config.log_every)
    epoch = iter(range(1, 10**6))

    def run() -> None:
        bar = tqdm(total=steps, file=io.StringIO(), mininterval=0.5)

        def show(done: int, loss: float, acc: float) -> None:  # what the ProgressBar callback does
            bar.set_postfix(loss=f"{loss:.4f}", acc=f"{acc:.2f}", refresh=False)
            bar.update(done - bar.n)

        e = next(epoch)
        loaders["sampler"].set_epoch(e)
        train_epoch(stepper, loaders["train"], epoch=e, max_steps=steps, on_progress=show)
        bar.close()

    precision = "bf16 autocast" if amp_dtype is not None else "fp32"
    return run, f"{loaders['path']}; {precision}{' + channels_last' if config.channels_last else ''}", loaders["train"]


def plain_epoch(data_dir: str, steps: int, decoded: Any) -> Callable[[], None]:
    """The same network and recipe written by hand over a normalized float tensor already in memory."""
    device = torch.device("cpu")
    config = resolve_light(None, {**RECIPE, "data": data_dir, "arch": ARCH, "arch_options": ARCH_OPTIONS,
                                  "batch_size": BATCH_SIZE, "lr": LR, "epochs": EPOCHS})
    best = choose_precision("auto", "auto", "auto", device)
    data = open_training_data(data_dir, {}, "auto")
    mean = torch.tensor(data.source.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.source.std).view(1, -1, 1, 1)
    images = ((decoded.images.float() / 255 - mean) / std).contiguous(
        memory_format=torch.channels_last if best.channels_last else torch.contiguous_format)
    labels = decoded.labels
    torch.manual_seed(0)
    model = build_model(config, len(data.classes), data.source.channels)
    if best.channels_last:
        model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9, nesterov=True, weight_decay=RECIPE["weight_decay"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=EPOCHS * len(images) // BATCH_SIZE)
    smoothing = float(RECIPE.get("label_smoothing", 0.0))
    model.train()

    def run() -> None:
        order = torch.randperm(len(images))
        for step in range(steps):
            index = order[step * BATCH_SIZE:(step + 1) * BATCH_SIZE]
            x, y = images[index], labels[index]
            flip = torch.rand(len(x)) < 0.5
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
            with torch.autocast("cpu", dtype=torch.bfloat16) if best.amp else torch.autocast("cpu", enabled=False):
                loss = F.cross_entropy(model(x), y, label_smoothing=smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="runs/demo/fashion-mnist", help="the demo's processed Fashion-MNIST")
    parser.add_argument("--steps", type=int, default=20, help="training batches per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall time, or this process's CPU time (steadier on a machine shared with other jobs)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.process_time()
    engine, path, decoded = engine_epoch(args.data, args.steps)
    setup = time.process_time() - started
    if not hasattr(decoded, "images"):
        raise SystemExit(f"the engine did not take the in-memory path ({path}): nothing to compare with")
    variants = {"plain in-memory loop": plain_epoch(args.data, args.steps, decoded), "engine (resnetcli train)": engine}
    for run in variants.values():  # warm-up: allocator, oneDNN primitives
        run()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    rates: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(args.repeats):
        for name in names[r % 2:] + names[:r % 2]:
            start = clock()
            variants[name]()
            rates[name].append(args.steps * BATCH_SIZE / (clock() - start))
    print(f"{ARCH} {ARCH_OPTIONS}, Fashion-MNIST 28x28, batch {BATCH_SIZE}, {args.steps} steps x "
          f"{args.repeats} repeats, torch {torch.__version__}, {torch.get_num_threads()} threads, {args.clock} clock")
    print(f"engine: {path}; opening and decoding the data took {setup:.1f} s of CPU")
    plain_best, plain_median = max(rates[names[0]]), statistics.median(rates[names[0]])
    print(f"{'variant':28s} {'best img/s':>10s} {'vs plain':>8s} {'median img/s':>12s} {'vs plain':>8s}")
    for name in names:
        best, median = max(rates[name]), statistics.median(rates[name])
        print(f"{name:28s} {best:10.1f} {best / plain_best:7.2f}x {median:12.1f} {median / plain_median:7.2f}x")
    epoch = 54000 / statistics.median(rates[names[1]])
    print(f"an epoch of 54000 images through the engine at the median rate: {epoch:.0f} s")


if __name__ == "__main__":
    main()

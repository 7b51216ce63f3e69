"""Early stopping, EMA of weights, gradient accumulation, class weights and the balanced sampler: each
checked by its effect (engine/early_stop.py, engine/ema.py, engine/loop.py, engine/imbalance.py)."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers_train import run_engine, write_images
from torch import nn

from resnetcli.engine import trainer
from resnetcli.engine.checkpoint import load_checkpoint
from resnetcli.engine.ema import WeightAverage
from resnetcli.engine.imbalance import BalancedSampler, class_weights, effective_number
from resnetcli.engine.loop import Stepper, evaluate, train_epoch
from resnetcli.errors import CheckpointError, DataError, UsageError
from resnetcli.runs_table import read_run


def _tiny_net(seed: int = 0) -> nn.Module:
    """Conv + linear, no BatchNorm: a batch of 16 and two of 8 must give the same gradient."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))


def _batches(sizes: list[int], seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(sum(sizes), 3, 8, 8, generator=gen)
    targets = torch.randint(0, 3, (sum(sizes),), generator=gen)
    out, start = [], 0
    for size in sizes:
        out.append((images[start:start + size], targets[start:start + size]))
        start += size
    return out


def _train(batches: list[Any], accumulate: int, **stepper: Any) -> tuple[nn.Module, dict[str, Any]]:
    model = _tiny_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    step = Stepper(model=model, optimizer=optimizer, schedule=None, device=torch.device("cpu"),
                   accumulate=accumulate, **stepper)
    return model, train_epoch(step, batches, epoch=1)


# ------------------------------------------------------------------------------------- accumulation


@pytest.mark.parametrize("sizes, merged", [([8, 8, 8, 8], [16, 16]), ([8, 8, 8], [16, 8])])
def test_accumulating_2_batches_of_8_equals_batches_of_16(sizes: list[int], merged: list[int]) -> None:
    """The last, shorter window (one batch of 8) is one optimizer step over its own batch."""
    small = _batches(sizes)
    big = [(torch.cat([x for x, _ in small[i:i + 2]]), torch.cat([y for _, y in small[i:i + 2]]))
           for i in range(0, len(small), 2)]
    assert [len(y) for _, y in big] == merged
    accumulated, result = _train(small, accumulate=2)
    plain, plain_result = _train(big, accumulate=1)
    assert result["steps"] == plain_result["steps"] == len(merged)
    assert result["batches"] == len(sizes)
    for a, b in zip(accumulated.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    # through the fp16 path's GradScaler too (scaled by a power of two, unscaled once per window)
    scaled, _ = _train(small, accumulate=2, scaler=torch.amp.GradScaler("cpu", init_scale=1024.0))
    for a, b in zip(scaled.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    # and not a no-op: one step per batch would have moved the weights elsewhere
    per_batch, _ = _train(small, accumulate=1)
    assert not torch.allclose(next(per_batch.parameters()), next(plain.parameters()), atol=1e-4)


def test_the_schedule_counts_optimizer_steps_not_batches(tmp_path: Path) -> None:
    """4 batches an epoch, --accumulate 2: 2 optimizer steps an epoch; a per-step cosine reaches 0 exactly
    at the run's last optimizer step (counting batches, it would stop half way)."""
    data = write_images(tmp_path / "data", classes=2, per_class=8)
    run = tmp_path / "run"
    run_engine(data, run, accumulate=2, max_steps=None, epochs=2, scheduler="cosine",
               sched_options={"interval": "step"}, val_split="none")
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["global_step"] == 2 * 2  # 16 images / batch 4 = 4 batches -> 2 steps, for 2 epochs
    assert last["metrics"]["lr_end"] == pytest.approx(0.0, abs=1e-12)


# ---------------------------------------------------------------------------------------------- EMA


def test_ema_weights_equal_the_closed_form_average_after_k_steps() -> None:
    decay, k = 0.8, 5
    model = _tiny_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.3)
    ema = WeightAverage(model, decay)
    step = Stepper(model=model, optimizer=optimizer, schedule=None, device=torch.device("cpu"), ema=ema)
    raw = []
    for batch in _batches([4] * k):
        train_epoch(step, [batch], epoch=1)
        raw.append({n: p.detach().clone() for n, p in model.named_parameters()})
    assert int(ema.average.n_averaged) == k
    averaged = dict(ema.module.named_parameters())
    for name in averaged:
        # W_1, then W_t = d W_{t-1} + (1 - d) w_t: w_1 weighs d^(k-1), w_t (t >= 2) weighs (1 - d) d^(k-t)
        expected = decay ** (k - 1) * raw[0][name]
        for t in range(2, k + 1):
            expected = expected + (1 - decay) * decay ** (k - t) * raw[t - 1][name]
        torch.testing.assert_close(averaged[name], expected, rtol=0, atol=1e-6)
        assert not torch.allclose(averaged[name], raw[-1][name])  # it is an average, not the last weights
    # validation reads the average, not the raw weights
    val = _batches([6], seed=9)
    with_ema = evaluate(step, val)
    step.ema = None
    without = evaluate(step, val)
    step.model = ema.module
    assert evaluate(step, val) == with_ema != without


def test_an_ema_run_saves_the_average_as_model_and_the_raw_weights_for_resume(tmp_path: Path) -> None:
    data = write_images(tmp_path / "data", classes=2, per_class=4)
    run = tmp_path / "run"
    run_engine(data, run, ema=0.5, epochs=1, val_split="none")
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["ema"]["decay"] == 0.5 and last["ema"]["n_averaged"] == 2  # max_steps 2
    assert last["ema"]["weights"].keys() == last["model"].keys()
    differs = [k for k, v in last["model"].items() if v.is_floating_point()
               and not torch.equal(v, last["ema"]["weights"][k])]
    assert differs  # `model` (what test/export/predict load) is the average, not the training weights
    # resuming into another --ema is refused: it would be a different run
    with pytest.raises(CheckpointError, match="ema 0.5 -> 0.9"):
        run_engine(data, run, ema=0.9, epochs=2, val_split="none", resume=str(run))


# ---------------------------------------------------------------------------------- early stopping


def _scripted_val(monkeypatch: pytest.MonkeyPatch, accs: list[float]) -> None:
    """Validation returns accs[epoch - 1] (and a loss that falls as accuracy rises)."""
    calls = iter(accs)

    def fake(stepper: Any, batches: Any) -> dict[str, Any]:
        acc = next(calls)
        return {"val_loss": 1.0 - acc / 100, "val_acc": acc, "val_top5": 100.0, "val_k": 2}

    monkeypatch.setattr(trainer, "evaluate", fake)


@pytest.mark.parametrize("flags, accs, stop_epoch, best", [
    ({"early_stop": 2}, [50, 60, 60, 55, 90, 90], 4, (60.0, 2)),
    ({"early_stop": 3}, [50, 60, 60, 55, 61, 40, 40, 40], 8, None),  # 61 > 60 resets: runs to the end
    ({"early_stop": 2, "early_stop_min_delta": 5.0}, [50, 54, 53, 90], 3, (50.0, 1)),
    ({"early_stop": 1, "early_stop_metric": "val_loss"}, [50, 70, 65, 90], 3, (0.3, 2)),
])
def test_early_stopping_stops_at_the_epoch_its_patience_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: dict[str, Any], accs: list[float], stop_epoch: int,
    best: tuple[float, int] | None,
) -> None:
    data = write_images(tmp_path / "data", classes=2, per_class=4)
    run = tmp_path / "run"
    _scripted_val(monkeypatch, accs + [0.0] * 8)
    epochs = 8 if best is None else 6
    result = run_engine(data, run, epochs=epochs, val_split="auto", data_options={"val_split": 0.25}, **flags)
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    listed = read_run(run, "run")  # what `resnetcli runs` shows, read without torch
    if best is None:
        assert result.stop_reason is None and last["epoch"] == 8
        assert (listed.state, listed.stop_reason) == ("finished", None)
        return
    assert (listed.state, listed.stop_reason) == ("stopped early", result.stop_reason)
    assert result.epochs_run == stop_epoch and last["epoch"] == stop_epoch
    saved = last["early_stop"]
    assert (saved["best"], saved["best_epoch"]) == (pytest.approx(best[0]), best[1])
    assert saved["bad_epochs"] == flags["early_stop"]
    label = "val loss" if flags.get("early_stop_metric") == "val_loss" else "val acc"
    assert result.stop_reason.startswith(f"stopped early at epoch {stop_epoch}: {label} has not improved by "
                                         f"{flags.get('early_stop_min_delta', 0.0):g} for {flags['early_stop']} epochs")
    assert load_checkpoint(run / "checkpoints" / "best.pt")["epoch"] == max(range(1, stop_epoch + 1),
                                                                           key=lambda e: (accs[e - 1], -e))
    # resuming a run that stopped early stays stopped (a kill after its last save must not train on)
    again = run_engine(data, None, epochs=epochs, val_split="auto", data_options={"val_split": 0.25},
                       resume=str(run), **flags)
    assert again.epochs_run == 0 and again.stop_reason == result.stop_reason
    assert read_run(run, "run").state == "stopped early"


def test_a_stopped_run_resumed_with_more_patience_is_no_longer_listed_as_stopped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The early stop's mark belongs to the run that stopped: resumed with more patience and then interrupted,
    the run is interrupted; resumed to its end, it is finished, and no row keeps the old mark."""
    import json

    from helpers_train import interrupt_in_epoch

    data = write_images(tmp_path / "data", classes=2, per_class=4)
    run = tmp_path / "run"
    _scripted_val(monkeypatch, [50, 60, 60, 55] + [70] * 8)
    flags = {"epochs": 6, "val_split": "auto", "data_options": {"val_split": 0.25}}
    assert run_engine(data, run, early_stop=2, **flags).stop_reason is not None
    assert read_run(run, "run").state == "stopped early"
    interrupt_in_epoch(monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        run_engine(data, None, early_stop=10, resume=str(run), **flags)
    assert (read_run(run, "run").state, read_run(run, "run").stop_reason) == ("interrupted", None)
    monkeypatch.undo()
    _scripted_val(monkeypatch, [70] * 8)
    run_engine(data, None, early_stop=10, resume=str(run), **flags)
    assert read_run(run, "run").state == "finished"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5, 6] and not any("stopped" in r for r in rows)


def test_early_stopping_without_validation_is_one_usage_error(tmp_path: Path) -> None:
    data = write_images(tmp_path / "data", classes=2, per_class=4)
    with pytest.raises(UsageError, match="no validation split"):
        run_engine(data, tmp_path / "run", early_stop=2, val_split="none")


# ------------------------------------------------------------------------------------ class weights


def test_auto_class_weights_are_inverse_frequency_normalised() -> None:
    labels = [0] * 10 + [1] * 1 + [2] * 5
    weights = class_weights("auto", labels, ["a", "b", "c"])
    # w_c = N / (C n_c): 16/30, 16/3, 16/15; the mean weight over the 16 samples is 1
    assert weights == pytest.approx([16 / 30, 16 / 3, 16 / 15])
    assert sum(w * n for w, n in zip(weights, [10, 1, 5], strict=True)) / 16 == pytest.approx(1.0)


def test_effective_number_weights_follow_cui_et_al() -> None:
    counts, beta = [100, 10], 0.99
    raw = [(1 - beta) / (1 - beta**n) for n in counts]
    weights = effective_number(counts, beta)
    assert weights[1] / weights[0] == pytest.approx(raw[1] / raw[0])
    assert class_weights("effective:0.99", [0] * 100 + [1] * 10, ["a", "b"]) == pytest.approx(weights)
    # beta -> 0 is no reweighting at all; near 1 it approaches inverse frequency
    assert effective_number(counts, 1e-9) == pytest.approx([1.0, 1.0])
    assert effective_number(counts, 1 - 1e-9)[1] / effective_number(counts, 1 - 1e-9)[0] == pytest.approx(10, rel=1e-3)


@pytest.mark.parametrize("name, text", [
    ("w.yaml", "b: 2.5\na: 1\n"), ("w.json", '{"a": 1, "b": 2.5}'), ("w.csv", "class,weight\na,1\nb,2.5\n"),
])
def test_class_weights_from_a_file(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text)
    assert class_weights(str(tmp_path / name), [0, 1], ["a", "b"]) == [1.0, 2.5]


@pytest.mark.parametrize("text, problem", [
    ("a: 1\n", "no weight for 1 class"), ("a: 1\nb: 1\nz: 2\n", "'z' is not a class"),
    ("a: 1\nb: 0\n", "finite number > 0"), ("a: 1\nb: .nan\n", "finite number > 0"),
    ("a: 1\nb: -2\n", "finite number > 0"), ("a: 1\nb: heavy\n", "finite number > 0"), ("- 1\n- 2\n", "must map"),
])
def test_bad_class_weight_files_are_one_data_error(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "w.yaml").write_text(text)
    with pytest.raises(DataError, match=problem):
        class_weights(str(tmp_path / "w.yaml"), [0, 1], ["a", "b"])


def test_a_binary_class_weight_file_is_one_data_error(tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_bytes(b"a: 1\nb: \xd0\xff\n")
    with pytest.raises(DataError, match="not a UTF-8 text file"):
        class_weights(str(tmp_path / "w.yaml"), [0, 1], ["a", "b"])


def test_class_weights_change_the_loss(tmp_path: Path) -> None:
    data = write_images(tmp_path / "data", classes=2, per_class=4)
    (tmp_path / "w.yaml").write_text("c0: 1\nc1: 5\n")
    plain = run_engine(data, tmp_path / "a", epochs=1, val_split="none")
    weighted = run_engine(data, tmp_path / "b", epochs=1, val_split="none", class_weights=str(tmp_path / "w.yaml"))
    assert weighted.last["train_loss"] != plain.last["train_loss"]
    with pytest.raises(UsageError, match="no such file"):
        run_engine(data, tmp_path / "c", epochs=1, class_weights=str(tmp_path / "missing.yaml"))


# ------------------------------------------------------------------------------------- balanced sampler


def test_balanced_sampler_draws_classes_uniformly_from_a_10_to_1_set() -> None:
    labels = [0] * 1000 + [1] * 100 + [2] * 300
    sampler = BalancedSampler(labels, rank=0, world=1, seed=7)
    sampler.set_epoch(1)
    drawn = [i for i, _ in sampler]
    assert len(drawn) == len(labels)
    per_class = Counter(labels[i] for i in drawn)
    for count in per_class.values():
        assert abs(count - len(labels) / 3) <= 0.05 * len(labels) / 3
    # the minority class cycles through all of its images before repeating one
    minority = Counter(i for i in drawn if labels[i] == 1)
    assert set(minority) == set(range(1000, 1100)) and max(minority.values()) - min(minority.values()) <= 1
    # deterministic under (seed, epoch), different across epochs and seeds
    again = BalancedSampler(labels, rank=0, world=1, seed=7)
    again.set_epoch(1)
    assert [i for i, _ in again] == drawn
    again.set_epoch(2)
    assert [i for i, _ in again] != drawn
    assert all(epoch == 2 for _, epoch in again)
    other = BalancedSampler(labels, rank=0, world=1, seed=8)
    other.set_epoch(1)
    assert [i for i, _ in other] != drawn


def test_balanced_sampler_shards_one_draw_across_ranks() -> None:
    labels = [0] * 50 + [1] * 5
    shards = []
    for rank in range(3):
        sampler = BalancedSampler(labels, rank=rank, world=3, seed=0)
        sampler.set_epoch(4)
        shards.append([i for i, _ in sampler])
    assert {len(s) for s in shards} == {math.ceil(55 / 3)}
    interleaved = [shards[r][j] for j in range(19) for r in range(3)]
    sampler = BalancedSampler(labels, rank=0, world=3, seed=0)
    sampler.set_epoch(4)
    whole = sampler.draw()  # padded to a multiple of the world (3 x 19), like DistributedSampler
    assert interleaved == whole and len(whole) == 57
    assert sorted(Counter(labels[i] for i in whole).values()) == [28, 29]


def test_a_balanced_run_trains_on_balanced_batches(tmp_path: Path) -> None:
    data = write_images(tmp_path / "data", classes=2, per_class=4)
    for extra in range(12):  # c0 4x larger than c1
        (data / "c0" / f"x{extra}.png").write_bytes((data / "c0" / f"{extra % 4}.png").read_bytes())
    result = run_engine(data, tmp_path / "run", epochs=1, balanced_sampler=True, val_split="none",
                        class_weights="auto")
    assert result.epochs_run == 1

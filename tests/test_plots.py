"""resnetcli/plots.py: every PNG writer draws on one Agg figure and saves atomically."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("matplotlib")


def _png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_plot_is_a_png_with_nothing_left_beside_it(tmp_path: Path) -> None:
    from resnetcli.engine.bookkeeping import write_plot
    from resnetcli.engine.lr_find import LrFindResult
    from resnetcli.engine.lr_find import write_plot as write_lr_plot
    from resnetcli.inference.reports import confusion_png

    rows = [{"epoch": e, "train_loss": 1 / e, "val_loss": None, "train_acc": 10 * e, "val_acc": None,
             "val_top5": None, "lr": 0.1, "lr_end": 0.1} for e in (1, 2)]
    assert write_plot(tmp_path / "plot.png", rows)
    sweep = LrFindResult(min_lr=1e-4, max_lr=1e-2, steps=3, lrs=[1e-4, 1e-3, 1e-2], losses=[2.0, 1.5, 3.0],
                         smoothed=[2.0, 1.8, 2.2], suggestion=1e-3)
    assert write_lr_plot(tmp_path / "lr_find.png", sweep)
    assert confusion_png(tmp_path / "cm.png", [[3, 1], [0, 2]], ["cat", "dog"], "test")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cm.png", "lr_find.png", "plot.png"]
    assert all(_png(p) for p in tmp_path.iterdir())


def test_a_failed_save_keeps_the_previous_picture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.figure import Figure

    from resnetcli.plots import new_figure, save_png

    path = tmp_path / "plot.png"
    path.write_bytes(b"previous")

    def broken(self: Figure, *args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    fig = new_figure(2, 2)
    assert fig is not None
    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(OSError):
        save_png(fig, path)
    assert path.read_bytes() == b"previous" and [p.name for p in tmp_path.iterdir()] == ["plot.png"]


def test_class_names_with_dollar_signs_are_drawn_as_typed(tmp_path: Path) -> None:
    """A pair of '$' is matplotlib's math text; a class folder named '$5_to_$10' failed `test` with a traceback."""
    from resnetcli.inference.reports import confusion_png
    from resnetcli.plots import literal

    classes = ["$5_to_$10", r"$\frac$"]
    assert confusion_png(tmp_path / "cm.png", [[2, 0], [1, 1]], classes, "resnet on /data/$a_b$ [test]")
    assert _png(tmp_path / "cm.png")
    assert literal("$5_to_$10") == r"\$5_to_\$10"

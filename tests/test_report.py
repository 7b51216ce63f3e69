"""`resnetcli report`: one self-contained HTML page per run, every section present, nothing fetched."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from helpers_evaluate import TrainedRun, train_once, write_tree
from typer.testing import CliRunner

from resnetcli.cli import app
from resnetcli.report.page import SECTIONS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    return train_once(tmp_path_factory)


@pytest.fixture(scope="module")
def tested_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run as the README tells it: preprocess (with the doctor), train 1 epoch, `resnetcli test`."""
    work = tmp_path_factory.mktemp("report")
    write_tree(work / "images")
    runner = CliRunner()
    steps = [
        ["preprocess", "--input", str(work / "images"), "--output", str(work / "data"), "--workers", "1"],
        ["train", "--data", str(work / "data"), "--arch", "cifar_resnet", "--arch-option", "depth=8",
         "--arch-option", "width=4", "--image-size", "16", "--epochs", "2", "--batch-size", "8", "--workers", "0",
         "--device", "cpu", "--output", str(work / "run")],
        ["test", str(work / "run"), "--device", "cpu", "--workers", "0"],
    ]
    for args in steps:
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    return work / "run"


class _Page(HTMLParser):
    """Collects ids, headings, and every attribute that could point somewhere."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.headings: list[str] = []
        self.links: list[str] = []
        self.images = 0
        self._in_h2 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(values["id"])
        for key in ("src", "href", "xlink:href", "action", "data"):
            if values.get(key):
                self.links.append(values[key])
        self.images += tag == "img"
        self._in_h2 = tag == "h2"

    def handle_data(self, data: str) -> None:
        if self._in_h2:
            self.headings.append(data)
            self._in_h2 = False


def _parse(path: Path) -> tuple[str, _Page]:
    text = path.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    page.close()
    return text, page


def _assert_self_contained(text: str, page: _Page) -> None:
    assert not re.search(r"https?://|//cdn|url\(", text, re.IGNORECASE)
    assert all(link.startswith(("data:image/png;base64,", "#")) for link in page.links), page.links


def test_report_of_a_tested_run_has_every_section(tested_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", str(tested_run), "--output", str(out)])
    assert result.exit_code == 0, result.output
    text, page = _parse(out)
    assert {sid for sid, _ in SECTIONS} <= page.ids
    assert [title for _, title in SECTIONS] == page.headings
    _assert_self_contained(text, page)
    assert "not available" not in text  # preprocessed, trained, tested: every part found
    assert "Data doctor" in text and "redundant images" in text
    assert page.images > 0  # thumbnails of the confused pairs and the top-loss gallery
    assert "Expected calibration error" in text and text.count("<svg") >= 5  # 3 curves, heat map, reliability
    for name in ("red", "green shirt", "blue,bag"):  # the per-class table
        assert f"<td>{name}</td>" in text
    assert sorted(tmp_path.iterdir()) == [out]  # written through a temporary file, nothing left beside it


def test_report_of_an_untested_run_says_what_to_run(trained: TrainedRun, tmp_path: Path) -> None:
    run = tmp_path / "untested"
    shutil.copytree(trained.run, run, ignore=shutil.ignore_patterns("eval_*"))
    result = CliRunner().invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    text, page = _parse(run / "report.html")
    assert {sid for sid, _ in SECTIONS} <= page.ids
    assert text.count("not available: the run was never tested: run `resnetcli test` first") == 4
    assert "not available: no report.json beside the data" in text  # trained on a raw folder
    assert "<polyline" in text  # the training curves need no test


def test_a_failed_report_keeps_the_previous_file(tested_run: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "keep.html"
    out.write_text("previous")

    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("render failed")

    monkeypatch.setattr("resnetcli.report.page.render", broken)
    with pytest.raises(RuntimeError):
        from resnetcli.report import build_report

        build_report(tested_run, out)
    assert out.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.html"]


def test_report_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 4
    assert "error:" in result.output and "not a run folder" in result.output


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)")
def test_report_renders_in_headless_chromium_without_console_errors(tested_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "page.html"
    assert CliRunner().invoke(app, ["report", str(tested_run), "--output", str(out)]).exit_code == 0
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
            "--window-size=1280,2000"]
    shot = tmp_path / "page.png"
    run = subprocess.run([*base, f"--screenshot={shot}", out.as_uri()], capture_output=True, text=True,
                         timeout=120, check=False)
    assert shot.is_file() and shot.stat().st_size > 10_000, run.stderr[-2000:]
    dom = subprocess.run([*base, "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=120,
                         check=False)
    logs = run.stderr + dom.stderr
    # page errors and Content-Security-Policy refusals are logged as CONSOLE messages
    assert not re.search(r"Uncaught|CONSOLE.*(error|Refused)|Refused to", logs, re.IGNORECASE), logs[-3000:]
    for sid, title in SECTIONS:
        assert f'id="{sid}"' in dom.stdout and title in dom.stdout
    assert 'class="sort"' in dom.stdout  # the table-sorting script ran to its end


def test_test_with_report_writes_the_page_into_the_run(trained: TrainedRun, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained.run, run, ignore=shutil.ignore_patterns("eval_*", "report.html"))
    result = CliRunner().invoke(app, ["test", str(run), "--device", "cpu", "--workers", "0", "--report"])
    assert result.exit_code == 0, result.output
    text, page = _parse(run / "report.html")
    assert "never tested" not in text and {sid for sid, _ in SECTIONS} <= page.ids


def test_test_with_report_shows_the_evaluation_it_just_wrote(trained: TrainedRun, tmp_path: Path) -> None:
    """--output elsewhere and another split: the page shows that result, not the run's older eval_test."""
    run = tmp_path / "run"
    shutil.copytree(trained.run, run, ignore=shutil.ignore_patterns("eval_*", "report.html"))
    runner = CliRunner()
    assert runner.invoke(app, ["test", str(run), "--device", "cpu", "--workers", "0"]).exit_code == 0
    elsewhere = tmp_path / "val-eval"
    result = runner.invoke(app, ["test", str(run), "--split", "val", "--output", str(elsewhere), "--device", "cpu",
                                 "--workers", "0", "--report"])
    assert result.exit_code == 0, result.output
    text, _ = _parse(run / "report.html")
    assert "<th>split</th><td>val</td>" in text and "val accuracy" in text
    assert "<th>split</th><td>test</td>" not in text


def test_train_with_report_writes_the_page_into_the_run(tmp_path: Path) -> None:
    write_tree(tmp_path / "images")
    run = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "train", "--data", str(tmp_path / "images"), "--arch", "cifar_resnet", "--arch-option", "depth=8",
        "--arch-option", "width=4", "--image-size", "16", "--epochs", "1", "--max-steps", "2", "--batch-size", "8",
        "--workers", "0", "--device", "cpu", "--output", str(run), "--report"])
    assert result.exit_code == 0, result.output
    assert f"wrote {run / 'report.html'}" in result.output.replace("\n", "")
    text, page = _parse(run / "report.html")
    assert {sid for sid, _ in SECTIONS} <= page.ids and "<polyline" in text  # the curves of the epoch just run
    config = (run / "config.yaml").read_text()
    assert not re.search(r"^report:", config, re.MULTILINE)  # a command's action, not a training setting


def test_values_read_from_the_run_and_the_data_cannot_inject_markup(tmp_path: Path) -> None:
    """report.json travels with a dataset and metrics.json with a run: the page escapes what they hold (the
    page allows inline scripts, for its table sorting)."""
    from resnetcli.report.collect import RunData
    from resnetcli.report.page import doctor_html, render

    evil = "<script>alert(1)</script>"
    assert evil not in doctor_html({"images": evil, "near_threshold": evil})
    pair = {"true": "a", "predicted": "b", "count": evil, "share_of_true": 50.0}
    run = RunData(run_dir=tmp_path, metrics={"most_confused": [pair]}, predictions=[], data_spec="x",
                  data_report={"doctor": {"images": evil}})
    page = render(run, lambda ident: None)
    assert evil not in page and "&lt;script&gt;" in page
    untested = render(RunData(run_dir=tmp_path, data_spec="data/<odd>&"), lambda ident: None)
    assert "(data/&lt;odd&gt;&amp;)" in untested  # escaped once, not twice


def test_a_metrics_file_with_odd_values_still_gives_a_page(trained: TrainedRun, tmp_path: Path) -> None:
    """metrics.jsonl is read by the one reader `runs` uses: values that are not numbers are gaps, not a traceback."""
    run = tmp_path / "odd"
    shutil.copytree(trained.run, run, ignore=shutil.ignore_patterns("eval_*", "report.html"))
    (run / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": 1.5, "val_acc": "high", "lr": "fast", '
                                       '"time": "x"}\n{"epoch": 2, "train_loss": 0.5, "val_acc": 40.0}\n')
    result = CliRunner().invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    text, page = _parse(run / "report.html")
    assert {sid for sid, _ in SECTIONS} <= page.ids and "40.00% (epoch 2)" in text


def test_test_with_report_of_a_loose_checkpoint_is_refused_before_testing(trained: TrainedRun, tmp_path: Path) -> None:
    from helpers_cli import one_error_line

    loose = tmp_path / "loose.pt"
    shutil.copy(trained.last, loose)
    result = CliRunner().invoke(app, ["test", "--checkpoint", str(loose), "--device", "cpu", "--workers", "0",
                                      "--report"])
    assert "is not a run folder" in one_error_line(result, 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loose.pt"]  # nothing tested, nothing written


def test_a_crafted_ident_gives_no_thumbnail_not_an_error(tmp_path: Path) -> None:
    from PIL import Image

    from resnetcli.report.thumbs import Thumbnails

    (tmp_path / "a").mkdir()
    Image.new("RGB", (8, 8), "red").save(tmp_path / "a" / "ok.png")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    thumbs = Thumbnails("folder", tmp_path, "test")
    assert thumbs.uri("a/ok.png").startswith("data:image/png;base64,")
    for ident in ("a/ok\x00.png", "../outside.png", "loop/x.png"):
        assert thumbs._file_image(ident) is None


def test_thumbnails_of_a_registered_dataset_use_the_runs_data_options(tmp_path: Path) -> None:
    """A run trained on `--data cifar10 --data-option root=DIR` shows its images, read from DIR."""
    from test_sources import write_cifar10_py

    from resnetcli.report.thumbs import Thumbnails

    write_cifar10_py(tmp_path / "elsewhere")
    assert Thumbnails("cifar10", None, "test", {"root": str(tmp_path / "elsewhere")}).uri("index:0").startswith(
        "data:image/png;base64,")
    assert Thumbnails("cifar10", None, "test", {"root": str(tmp_path / "nowhere")}).uri("index:0") is None


@pytest.mark.parametrize("recorded, evaluated, expected", [
    ({"root": "/tested"}, "cifar10", {"root": "/tested"}),  # what `test` opened its data with
    (None, "cifar10", {"root": "/trained"}),  # an older metrics.json on the run's own data: the run's options
    (None, "cifar100", {}),  # other data, nothing recorded: no options of the run's
])
def test_the_report_opens_the_evaluated_data_with_the_options_that_test_used(
        tmp_path: Path, recorded: dict | None, evaluated: str, expected: dict) -> None:
    import json

    from resnetcli.report.collect import load_run

    run = tmp_path / "run"
    (run / "eval_test").mkdir(parents=True)
    (run / "config.yaml").write_text("data: cifar10\ndata_options: {root: /trained}\n")
    metrics = {"data": evaluated, "split": "test", "unit": "percent",
               **({"data_options": recorded} if recorded is not None else {})}
    (run / "eval_test" / "metrics.json").write_text(json.dumps(metrics))
    assert load_run(run).data_options == expected

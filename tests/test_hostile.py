"""A hostile user, class by class (issue 11): every failure is one `error:` line with its documented exit code and
no traceback, and no user data is lost. Each class is one parametrized test; the cases are the hostile inputs.

Classes: --force over folders resnetcli did not write; OS errors while writing outputs, in every command that
writes; markup and terminal escapes in user text; sizes with no upper bound; YAML alias bombs; DataLoader worker
errors; unwritable stdout, ASCII locales and Ctrl-C during start-up; SIGTERM/SIGHUP/kill -9 during preprocess;
odd class folders (duplicates, newlines, links to an ancestor or outside) and odd files for predict.
Crafted checkpoints are in test_checkpoint.py and bad settings in test_config.py.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from helpers_cli import one_error_line
from helpers_evaluate import CLASSES, TrainedRun, train_once
from PIL import Image
from typer.testing import CliRunner

from resnetcli.cli import app
from resnetcli.options import MAX_YAML_CHARS

if TYPE_CHECKING:
    from helpers_forker import Forker

runner = CliRunner()
QUIET = ["--workers", "0", "--device", "cpu", "--log-level", "WARNING"]
TINY_NET = ["--arch", "cifar_resnet", "--arch-option", "depth=8", "--arch-option", "width=2", "--image-size", "16",
            "--batch-size", "8"]
RESNETCLI = [sys.executable, "-m", "resnetcli"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    return train_once(tmp_path_factory)


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory, trained: TrainedRun) -> Path:
    out = tmp_path_factory.mktemp("hostile") / "processed"
    result = runner.invoke(app, ["preprocess", "-i", str(trained.data / "train"), "-o", str(out), "--size", "16",
                                 "--workers", "1"])
    assert result.exit_code == 0, result.output
    return out


def _run(argv: list[str], **env: str) -> subprocess.CompletedProcess:
    """The real console entry point in a fresh interpreter (what a user's shell runs)."""
    return subprocess.run(RESNETCLI + argv, capture_output=True, text=True, env={**os.environ, **env}, timeout=300)


def fails_in_one_line(result: Any, codes: tuple[int, ...]) -> str:
    """For commands that print progress before they fail: a documented exit code, no traceback, and exactly one
    'error:' line on stderr, the last thing the command printed."""
    assert result.exit_code in codes, (result.exit_code, result.output)
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    return errors[0]


def _flat(text: str) -> str:
    """Printed text without whitespace and table borders: a long cell folds over several lines."""
    return re.sub(r"[\s\u2500-\u257f]", "", text)


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


# ------------------------------------------------------------------ data loss: --force replaces only our folders


@pytest.mark.parametrize("lookalike", ["report.json", "categories.csv", "train.csv", "rgb_val.json"])
def test_force_never_replaces_a_folder_preprocess_did_not_write(trained: TrainedRun, tmp_path: Path,
                                                                lookalike: str) -> None:
    """A user's folder that merely holds a file named like one of ours keeps every file, --force or not."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / lookalike).write_text("{}\n")
    (out / "thesis.tex").write_text("three years of work\n")
    for force in ([], ["--force"]):
        line = one_error_line(runner.invoke(app, ["preprocess", "-i", str(trained.data / "train"), "-o", str(out),
                                                  "--size", "16", "--workers", "1", *force]), 3)
        assert "is not a resnetcli dataset" in line and ".resnetcli-dataset" in line, line
    assert (out / "thesis.tex").read_text() == "three years of work\n"
    assert sorted(p.name for p in out.iterdir()) == sorted([lookalike, "thesis.tex"])
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]  # no temporary folder left beside it


def test_force_replaces_a_folder_preprocess_wrote(processed: Path, tmp_path: Path, trained: TrainedRun) -> None:
    """The control: the marker is what makes a folder replaceable, and the new dataset carries it too."""
    import shutil

    out = shutil.copytree(processed, tmp_path / "data")
    assert (out / ".resnetcli-dataset").read_text().startswith("resnetcli processed dataset, format ")
    result = runner.invoke(app, ["preprocess", "-i", str(trained.data / "train"), "-o", str(out), "--size", "16",
                                 "--workers", "1", "--force", "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert (out / ".resnetcli-dataset").is_file() and json.loads((out / "report.json").read_text())["seed"] == 5


# --------------------------------------------------------- OS errors while writing outputs, every writing command


def _long_name(tmp: Path) -> str:
    return str(tmp / ("x" * 300))  # ENAMETOOLONG: one path component over 255 bytes


def _under_a_file(tmp: Path) -> str:
    (tmp / "a-file").write_text("not a folder\n")
    return str(tmp / "a-file" / "out")  # ENOTDIR (root ignores permissions, not this)


def _read_only_mount(tmp: Path) -> str:
    return "/proc/resnetcli-out"  # proc refuses new entries, to root too


PLACES = {"name-too-long": _long_name, "under-a-file": _under_a_file, "read-only-mount": _read_only_mount}


def _writing_commands(trained: TrainedRun, processed: Path, out: str) -> dict[str, list[str]]:
    image = next((trained.data / "test" / CLASSES[0]).glob("*.png"))
    return {
        "preprocess": ["preprocess", "-i", str(trained.data / "train"), "-o", out, "--size", "16", "--workers", "1"],
        "train": ["train", "--data", str(trained.data / "train"), *TINY_NET, "--epochs", "1", "--output", out, *QUIET],
        "test": ["test", "--checkpoint", str(trained.last), "--data", str(trained.data), "--output", out],
        "predict": ["predict", str(image), "--checkpoint", str(trained.last), "--output", out + "/p.csv"],
        "export": ["export", str(trained.last), "--format", "safetensors", "--output", out],
        "report": ["report", str(trained.run), "--output", out + "/report.html"],
        "lr-find": ["lr-find", "--data", str(trained.data / "train"), *TINY_NET, "--steps", "3", "--output", out,
                    "--workers", "0", "--device", "cpu"],
        "doctor": ["doctor", str(processed), "--output", out + "/doctor.json"],
    }


@pytest.mark.parametrize("place", sorted(PLACES))
@pytest.mark.parametrize("command", ["preprocess", "train", "test", "predict", "export", "report", "lr-find",
                                     "doctor"])
def test_an_output_that_cannot_be_written_is_one_error_line(trained: TrainedRun, processed: Path, tmp_path: Path,
                                                            command: str, place: str) -> None:
    out = PLACES[place](tmp_path)
    argv = _writing_commands(trained, processed, out)[command]
    line = fails_in_one_line(runner.invoke(app, argv), (2, 3, 4))  # usage, data or checkpoint: documented
    assert re.search(r"Not a directory|File name too long|No such file|Permission denied|Operation not permitted|"
                     r"Read-only|cannot", line), line


@pytest.mark.parametrize("command", ["preprocess", "test", "predict", "report", "doctor"])
def test_a_full_disk_is_one_error_line(trained: TrainedRun, processed: Path, tmp_path: Path, command: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Every write through resnetcli.io (and preprocess's image writes) fails as a full disk would."""
    import builtins

    real_open = builtins.open
    out = tmp_path / "out"

    def full_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if any(c in mode for c in "wxa") and str(file).startswith(str(tmp_path)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))
        return real_open(file, mode, *args, **kwargs)

    argv = _writing_commands(trained, processed, str(out))[command]
    monkeypatch.setattr(builtins, "open", full_open)
    monkeypatch.setattr(Path, "write_text", lambda self, *a, **k: full_open(self, "w"))
    result = runner.invoke(app, argv)
    monkeypatch.undo()
    line = fails_in_one_line(result, (3, 4))
    assert "No space left on device" in line, line


@pytest.mark.slow
def test_a_file_size_limit_is_an_error_not_truncated_images(trained: TrainedRun, tmp_path: Path) -> None:
    """ulimit -f: the kernel cuts writes short (SIGXFSZ ignored, as shells under a limit often run): preprocess
    must fail naming an image, not report success over truncated JPEGs."""
    out = tmp_path / "out"
    code = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))\n"
        "sys.argv = ['resnetcli'] + sys.argv[1:]\n"
        "from resnetcli.__main__ import main\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", code, "preprocess", "-i", str(trained.data / "train"), "-o",
                             str(out), "--size", "16", "--workers", "1"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 3, result.stderr
    line = _one_line(result.stderr)
    assert re.search(r"error: cannot write \S+\.jpg .*(File too large|bytes written)", line), line
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == []


# ------------------------------------------------------------------ user text printed through rich


HOSTILE_NAMES = ["[bold]x[/]", "[/]", "a[/b]c", "\x1b[31mred", "bell\x07", "[link=https:x]y"]


def _shown_inert(text: str, name: str) -> None:
    assert "\x1b" not in text and "\x07" not in text, repr(text)
    from resnetcli.console import printable

    assert _flat(printable(name)) in _flat(text), (printable(name), text)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_names_with_markup_or_escapes_are_printed_inert(trained: TrainedRun, tmp_path: Path, name: str) -> None:
    """A file and a folder so named: predict's table and preprocess's summary show them literally, and print no
    control character (the work is done first: a crash here would lose it)."""
    folder = tmp_path / f"in{name}"  # a '/' in the name: folders within folders, as a path can hold it
    image = folder / f"img{name}.png"
    image.parent.mkdir(parents=True)
    Image.open(next((trained.data / "test" / CLASSES[0]).glob("*.png"))).save(image)
    result = runner.invoke(app, ["predict", str(image), "--checkpoint", str(trained.last)])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    _shown_inert(result.stdout, f"img{name}.png")

    out = tmp_path / f"out{name}"
    result = runner.invoke(app, ["preprocess", "-i", str(trained.data / "train"), "-o", str(out), "--size", "16",
                                 "--workers", "1"])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    _shown_inert(result.stdout, str(out))
    # and in an error line: a missing input so named
    line = one_error_line(runner.invoke(app, ["preprocess", "-i", str(folder / "gone"), "-o", str(tmp_path / "o")]),
                          3)
    _shown_inert(line, str(folder / "gone"))


def test_a_run_named_with_markup_and_escapes_finishes_and_prints_it_inert(trained: TrainedRun, tmp_path: Path) -> None:
    """The summary table after training names the run folder: a '[/]' there crashed rich after the work was done."""
    run = tmp_path / "run[/]\x1b[2J" / "x"
    result = runner.invoke(app, ["train", "--data", str(trained.data / "train"), *TINY_NET, "--epochs", "1",
                                 "--max-steps", "1", "--output", str(run), "--workers", "0", "--device", "cpu"])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    assert (run / "checkpoints" / "last.pt").is_file()
    assert "\x1b" not in result.output and _flat(r"run[/]\x1b[2J") in _flat(result.stdout), result.stdout


def test_list_survives_an_oddly_named_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """A third party's entry and distribution named with markup and an escape: listed literally, the rest too."""
    import dataclasses

    from resnetcli.registry import registry

    found = registry("optimizers")
    odd = dataclasses.replace(found.entries["sgd"], name="[/]odd\x1b[2J", distribution="evil[bold]dist")
    monkeypatch.setitem(found.entries, odd.name, odd)
    result = runner.invoke(app, ["list", "optimizers"])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    flat = "".join(result.stdout.split())
    assert "\x1b" not in result.stdout and r"[/]odd\x1b[2J" in flat and "evil[bold]dist" in flat, result.stdout
    assert "sgd" in result.stdout


# ------------------------------------------------------------------ sizes with no upper bound


@pytest.mark.parametrize("argv, pattern", [
    (["preprocess", "-i", "{data}", "-o", "{tmp}/out", "--size", "100000"], r"--size allows sides up to 4096"),
    (["preprocess", "-i", "{data}", "-o", "{tmp}/out", "--size", "16x900000"], r"--size allows sides up to 4096"),
    (["preprocess", "-i", "{data}", "-o", "{tmp}/out", "--size", "99999999999999999999"], r"--size allows"),
    (["train", "--image-size", "100000", "--print-config"], r"--image-size must be at most 1024"),
    (["train", "--arch", "cifar_resnet", "--arch-option", "depth=100004", "--data", "{data}", "--output",
      "{tmp}/run", *QUIET], r"depth is at most 1202"),
    (["summarize", "--arch", "cifar_resnet", "--arch-option", "depth=100004"], r"depth is at most 1202"),
    (["summarize", "--arch", "cifar_resnet", "--arch-option", "width=100000"], r"width must be an integer from 1"),
    (["lr-find", "--data", "{data}", "--arch", "cifar_resnet", "--image-size", "99999", "--device", "cpu"],
     r"--image-size must be at most 1024"),
])
def test_sizes_beyond_any_memory_are_refused_up_front(trained: TrainedRun, tmp_path: Path, argv: list[str],
                                                       pattern: str) -> None:
    argv = [a.replace("{data}", str(trained.data / "train")).replace("{tmp}", str(tmp_path)) for a in argv]
    line = one_error_line(runner.invoke(app, argv), 2)
    assert re.search(pattern, line), line
    assert not (tmp_path / "out").exists() and not (tmp_path / "run").exists()


def _strip(path: Path, size: tuple[int, int]) -> Path:
    Image.new("RGB", size, (200, 30, 30)).save(path)
    return path


@pytest.mark.parametrize("size", [(1, 3000), (3000, 1), (2, 30000)])
def test_a_thin_strip_image_is_skipped_and_reported_never_the_end_of_a_run(trained: TrainedRun, tmp_path: Path,
                                                                          size: tuple[int, int]) -> None:
    import shutil

    data = shutil.copytree(trained.data / "train", tmp_path / "images")
    strip = _strip(data / CLASSES[0] / "strip.png", size)
    result = runner.invoke(app, ["preprocess", "-i", str(data), "-o", str(tmp_path / "out"), "--size", "64",
                                 "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert f"skipped {strip}: {size[0]}x{size[1]} pixels is more elongated than 100:1" in result.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [s["file"] for s in report["skipped"]] == [str(strip)]
    result = runner.invoke(app, ["predict", str(strip), str(next((data / CLASSES[1]).glob("0.png"))),
                                 "--checkpoint", str(trained.last)])
    assert result.exit_code == 0, result.output
    assert "more elongated than 100:1" in result.stderr and "0.png" in result.stdout
    if size == (1, 3000):  # training on the raw folder sets it aside before the first epoch (header check)
        result = runner.invoke(app, ["train", "--data", str(data), *TINY_NET, "--epochs", "1", "--max-steps", "1",
                                     "--output", str(tmp_path / "run"), *QUIET])
        assert result.exit_code == 0, result.output
        assert "strip.png" in result.stderr and "more elongated than 100:1" in result.stderr, result.stderr


def test_resizing_past_the_pixel_limit_is_a_skip_not_an_allocation() -> None:
    """Within the aspect limit, a --size that would make more pixels than the bomb limit is refused per image."""
    from resnetcli.data.images import BadImage, resize_array

    with pytest.raises(BadImage, match="exceeds the decompression-bomb limit"):
        resize_array(np.zeros((10, 900, 3), np.uint8), 4096)  # 4096 x 368640 pixels: 4.5 GB
    assert resize_array(np.zeros((10, 900, 3), np.uint8), 20).shape == (20, 1800, 3)


# ------------------------------------------------------------------ YAML alias bombs


def _laughs(levels: int) -> str:
    text = 'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for i in range(1, levels):
        text += f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n"
    return text


@pytest.mark.parametrize("text, pattern", [
    (_laughs(9), r"aliases expand to more than 100000 values"),
    (_laughs(6), r"aliases expand to more than 100000 values"),
    ("a: &a [*a]\n", r"recursive"),
    ("aug_options: &x {k: *x}\n", r"recursive"),
    ("epochs: 1\n# " + "x" * MAX_YAML_CHARS + "\n", rf"more than the {MAX_YAML_CHARS} a config may have"),
])
def test_a_yaml_bomb_is_refused_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str,
                                            pattern: str) -> None:
    from resnetcli import options

    def never(self: object, node: object) -> None:
        raise AssertionError("a refused document was built into Python values")

    monkeypatch.setattr(options._SafeLoader, "construct_document", never)  # refused, never expanded
    config = tmp_path / "bomb.yaml"
    config.write_text(text)
    line = one_error_line(runner.invoke(app, ["train", "--config", str(config), "--print-config"]), 2)
    assert re.search(pattern, line) and str(config) in line, line


def test_a_config_with_ordinary_aliases_still_loads(tmp_path: Path) -> None:
    config = tmp_path / "ok.yaml"
    config.write_text("sched_options: &s {step_size: 3}\naug_options: {}\nepochs: 4\n")
    result = runner.invoke(app, ["train", "--config", str(config), "--print-config"])
    assert result.exit_code == 0 and "epochs: 4" in result.stdout, result.output


# ------------------------------------------------------------------ an error inside a DataLoader worker


@pytest.mark.parametrize("raised, code, message", [
    ("DataError('image x.png vanished')", 3, "image x.png vanished"),
    ("OSError(5, 'Input/output error', 'x.png')", 3, "[Errno 5] Input/output error: 'x.png'"),
])
def test_an_error_inside_a_dataloader_worker_is_one_clean_line(monkeypatch: pytest.MonkeyPatch, raised: str,
                                                               code: int, message: str) -> None:
    """torch re-raises a worker's exception with the worker's whole traceback in its message: the line keeps only
    the worker's own message. The exception is made by torch's own wrapper, as a real worker's is."""
    import torch.utils.data
    from torch._utils import ExceptionWrapper

    from resnetcli.errors import DataError

    class Failing(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 2

        def __getitem__(self, i: int) -> Any:
            raise eval(raised, {"DataError": DataError})

    def summarize_arch(*args: Any, **kwargs: Any) -> None:
        from resnetcli.engine.data import Loader

        loader = Loader(Failing(), num_workers=1, persistent_workers=True)  # as train's loaders are
        try:
            next(iter(loader))
        finally:  # the worker ends now (left to a later test's garbage collection, it took 5 s to join)
            loader.close()

    import resnetcli.summary

    monkeypatch.setattr(resnetcli.summary, "summarize_arch", summarize_arch)
    assert ExceptionWrapper  # the mechanism named in the docstring
    line = one_error_line(runner.invoke(app, ["summarize", "--arch", "resnet20"]), code)
    assert line == f"error: {message}", line


# ------------------------------------------------------------------ stdout, locale and Ctrl-C at start-up


@pytest.mark.parametrize("argv", [["list"], ["summarize", "--arch", "resnet20"], ["--version"]])
def test_stdout_that_cannot_be_written_is_one_error_line(forker: Forker, argv: list[str]) -> None:
    if argv[0] == "summarize":  # imports torch: a fork-server child (the same main()), where it is imported already
        result = forker.invoke(argv, stdout="/dev/full")
    else:  # a fresh interpreter, to its very end (where a stdout left unflushed would be a traceback)
        with open("/dev/full", "w") as full:
            result = subprocess.run(RESNETCLI + argv, stdout=full, stderr=subprocess.PIPE, text=True, timeout=300)
    assert result.returncode == 3, result.stderr
    assert "No space left on device" in _one_line(result.stderr)


@pytest.mark.parametrize("env", [{"LC_ALL": "C", "LANG": "C"}, {"PYTHONIOENCODING": "ascii"}])
def test_non_ascii_names_in_an_ascii_only_locale(trained: TrainedRun, tmp_path: Path, env: dict[str, str]) -> None:
    image = tmp_path / "chat-été-猫.png"
    Image.open(next((trained.data / "test" / CLASSES[0]).glob("*.png"))).save(image)
    result = _run(["predict", str(image), "--checkpoint", str(trained.last)], COLUMNS="1000", **env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "chat-" in result.stdout
    result = _run(["preprocess", "-i", str(tmp_path / "manqué-猫"), "-o", str(tmp_path / "o")], **env)
    assert result.returncode == 3 and "manqu" in _one_line(result.stderr)


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.05, 0.15, 0.3])
def test_ctrl_c_during_start_up_is_quiet(delay: float) -> None:
    """SIGINT while resnetcli is still importing typer, rich and its commands (what the console script's main()
    does first): 'interrupted' and 130, or the command's own handling: never a traceback. (A signal inside
    Python's own start-up or the import of the 20-line resnetcli/__main__.py is the interpreter's to report.)
    The child holds SIGINT blocked until main() starts importing the CLI, so a signal sent at once is delivered
    there, not in the few bytecodes of this test's own code before main() (which is the interpreter's too)."""
    code = ("import signal, sys\nfrom resnetcli.__main__ import main\n"  # 20 lines: typer and rich come next
            "class Unblock:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'resnetcli.cli':\n"
            "            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})\n"
            "sys.meta_path.insert(0, Unblock())\n"
            "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})\n"
            "sys.stderr.write('ready\\n'); sys.stderr.flush()\n"
            "sys.argv = ['resnetcli', 'summarize', '--arch', 'resnet20']\nmain()\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stderr is not None and proc.stderr.readline() == "ready\n"
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    stderr = proc.stderr.read()
    proc.wait(timeout=120)
    assert "Traceback" not in stderr, stderr
    assert proc.returncode in (130, 1, 0), (proc.returncode, stderr)  # 1: click's 'Aborted!'; 0: it finished first
    if proc.returncode:
        assert _one_line(stderr).startswith(("interrupted", "Aborted")), stderr


# ------------------------------------------------------------------ signals and kill -9 during preprocess


def _noise_png(seed: int, height: int = 600, width: int = 800) -> bytes:
    """A valid RGB PNG of noise, stored (zlib level 0, no row filter). Pillow's writer spends 30 ms of filter
    choice on each such image, ten times this; Pillow and OpenCV decode it like any other PNG."""
    import struct
    import zlib

    pixels = np.random.default_rng(seed).integers(0, 255, (height, width * 3), dtype=np.uint8)
    rows = np.concatenate([np.zeros((height, 1), np.uint8), pixels], axis=1).tobytes()  # filter byte 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 0))
            + chunk(b"IEND", b""))


def test_the_hand_written_noise_png_decodes_to_its_pixels(tmp_path: Path) -> None:
    (tmp_path / "n.png").write_bytes(_noise_png(3, 5, 7))
    expected = np.random.default_rng(3).integers(0, 255, (5, 7 * 3), dtype=np.uint8).reshape(5, 7, 3)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "n.png")), expected)


@pytest.fixture(scope="module")
def many_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Enough large, distinct images that preprocess with two workers is still busy well after its first write."""
    root = tmp_path_factory.mktemp("many") / "images"
    for k in range(2):
        (root / f"c{k}").mkdir(parents=True)
        for i in range(100):  # 200 in all: a second of two workers' decoding, where the signal lands in 0.1 s
            (root / f"c{k}" / f"{i}.png").write_bytes(_noise_png(100 * k + i))
    return root


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_a_signal_during_preprocess_cleans_up_in_one_line(many_images: Path, tmp_path: Path, sig: int,
                                                          code: int) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen(RESNETCLI + ["preprocess", "-i", str(many_images), "-o", str(out), "--size", "64",
                                         "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".out.*.partial/train/*.jpg")) and time.monotonic() < deadline:
        time.sleep(0.05)  # until the workers write images
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr
    lines = [line for line in stderr.splitlines() if line.strip() and "preprocess:" not in line]  # tqdm's bar
    assert "Traceback" not in stderr and len(lines) == 1 and lines[0].startswith("interrupted"), stderr
    assert not stdout.strip()
    assert list(tmp_path.iterdir()) == [], list(tmp_path.iterdir())  # no dataset, no .partial folder


def test_the_next_run_reclaims_what_a_killed_one_left(trained: TrainedRun, tmp_path: Path) -> None:
    """kill -9 cannot be cleaned up after: the temporary folder names its process, and the next run removes
    those whose process is gone (never a live process's)."""
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs (reaped)
    left = tmp_path / f".out.{dead.pid}.abc123.partial"
    (left / "train").mkdir(parents=True)
    (left / "train" / "half.jpg").write_bytes(b"\xff\xd8")
    old = tmp_path / f".out.old-{dead.pid}"
    old.mkdir()
    alive = tmp_path / f".out.{os.getpid()}.xyz789.partial"  # this test's own process: still running
    alive.mkdir()
    result = runner.invoke(app, ["preprocess", "-i", str(trained.data / "train"), "-o", str(tmp_path / "out"),
                                 "--size", "16", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert not left.exists() and not old.exists() and alive.is_dir()


@pytest.mark.slow
def test_kill_9_during_preprocess_then_the_next_run_finishes_clean(many_images: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = ["preprocess", "-i", str(many_images), "-o", str(out), "--size", "32", "--workers", "2"]
    proc = subprocess.Popen(RESNETCLI + argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".out.*.partial/train/*.jpg")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(os.getpgid(proc.pid), 0)  # still there
    proc.kill()
    proc.wait()
    time.sleep(0.5)  # the orphaned workers notice their parent is gone
    assert list(tmp_path.glob(".out.*.partial"))  # kill -9 leaves it: nothing can run on SIGKILL
    result = _run(argv)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# ------------------------------------------------------------------ odd class folders and odd files


def _write_categories(processed: Path, tmp_path: Path, rows: list[tuple[str, int]]) -> Path:
    import shutil

    data = shutil.copytree(processed, tmp_path / "data")
    with (data / "categories.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows([("name", "id"), *rows])
    return data


@pytest.mark.parametrize("command", ["train", "test", "doctor"])
def test_duplicate_class_names_in_categories_csv_are_refused(trained: TrainedRun, processed: Path, tmp_path: Path,
                                                             command: str) -> None:
    data = _write_categories(processed, tmp_path, [(CLASSES[0], 0), (CLASSES[1], 1), (CLASSES[0], 2)])
    argv = {"train": ["train", "--data", str(data), *TINY_NET, "--epochs", "1", "--output", str(tmp_path / "r"),
                      *QUIET],
            "test": ["test", "--checkpoint", str(trained.last), "--data", str(data)],
            "doctor": ["doctor", str(data)]}[command]
    line = one_error_line(runner.invoke(app, argv), 3)
    assert f"class name '{CLASSES[0]}' appears twice" in line and "categories.csv, row 4" in line, line


def test_a_class_folder_whose_name_holds_a_newline_keeps_its_images(trained: TrainedRun, tmp_path: Path) -> None:
    import shutil

    data = tmp_path / "images"
    shutil.copytree(trained.data / "train" / CLASSES[0], data / "two\nlines")
    shutil.copytree(trained.data / "train" / CLASSES[1], data / "plain")
    result = runner.invoke(app, ["preprocess", "-i", str(data), "-o", str(tmp_path / "out"), "--size", "16",
                                 "--workers", "1", "--val-split", "0"])
    assert result.exit_code == 0, result.output
    with (tmp_path / "out" / "categories.csv").open(newline="") as fh:
        assert [row[0] for row in csv.reader(fh)][1:] == ["plain", "two\nlines"]
    assert json.loads((tmp_path / "out" / "report.json").read_text())["written"] == 16


@pytest.mark.parametrize("target", ["root", "parent", "outside"])
def test_a_class_folder_linking_to_an_ancestor_or_outside_is_skipped_with_a_warning(
    trained: TrainedRun, tmp_path: Path, target: str
) -> None:
    import shutil

    data = shutil.copytree(trained.data / "train", tmp_path / "images")
    secret = tmp_path / "elsewhere"
    secret.mkdir()
    _strip(secret / "private.png", (16, 16))
    link = data / "zz-phantom"
    link.symlink_to({"root": data, "parent": tmp_path, "outside": secret}[target], target_is_directory=True)
    result = runner.invoke(app, ["preprocess", "-i", str(data), "-o", str(tmp_path / "out"), "--size", "16",
                                 "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert f"warning: skipped {link}: a folder link to" in result.stderr, result.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["classes"] == len(CLASSES) and report["written"] == 8 * len(CLASSES)
    # training on the raw folder agrees (its header check sets the same link aside)
    result = runner.invoke(app, ["train", "--data", str(data), *TINY_NET, "--epochs", "1", "--max-steps", "1",
                                 "--output", str(tmp_path / "run"), *QUIET])
    assert result.exit_code == 0, result.output
    assert "zz-phantom" in result.stderr and "folder link" in result.stderr


def test_a_link_inside_a_class_folder_to_its_ancestor_is_not_followed(trained: TrainedRun, tmp_path: Path) -> None:
    import shutil

    data = shutil.copytree(trained.data / "train", tmp_path / "images")
    (data / CLASSES[0] / "loop").symlink_to(data, target_is_directory=True)
    result = runner.invoke(app, ["preprocess", "-i", str(data), "-o", str(tmp_path / "out"), "--size", "16",
                                 "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out" / "report.json").read_text())["written"] == 8 * len(CLASSES)


@pytest.mark.parametrize("kind", ["dangling", "fifo"])
def test_predict_warns_about_dangling_links_and_fifos(trained: TrainedRun, tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    Image.open(next((trained.data / "test" / CLASSES[0]).glob("*.png"))).save(folder / "good.png")
    odd = folder / "odd.png"
    if kind == "dangling":
        odd.symlink_to(tmp_path / "gone.png")
    else:
        os.mkfifo(odd)
    # wide enough that the table never folds the (long, temporary) path of good.png
    result = runner.invoke(app, ["predict", str(folder), "--checkpoint", str(trained.last)], env={"COLUMNS": "1000"})
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "odd.png" in warnings[0], result.stderr
    assert "good.png" in result.stdout

"""The CLI shell: commands, --version, --verbose, one-line errors, and a torch-free --help."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from typer.testing import CliRunner

from resnetcli import __version__
from resnetcli.cli import app

COMMANDS = ["preprocess", "train", "test", "predict", "summarize", "list"]
BIN = Path(sys.executable).parent
runner = CliRunner()


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"resnetcli {__version__}"


def test_console_script_and_module_both_run() -> None:
    script = subprocess.run([str(BIN / "resnetcli"), "--help"], capture_output=True, text=True, check=False)
    module = subprocess.run([sys.executable, "-m", "resnetcli", "--help"], capture_output=True, text=True, check=False)
    for proc in (script, module):
        assert proc.returncode == 0, proc.stderr
        for command in COMMANDS:
            assert command in proc.stdout


def test_help_imports_no_torch() -> None:
    # The help screen renders every command's signature, so this also checks no command module imports torch.
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from resnetcli.cli import app\n"
        "r = CliRunner().invoke(app, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "heavy = sorted(m for m in ('torch', 'torchvision', 'albumentations', 'numpy', 'cv2') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == ""


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["preprocess", "--help"], ["list", "datasets"]])
def test_start_up_imports_no_torch_nor_the_training_config(args: list[str]) -> None:
    # the pydantic TrainConfig (train's generated flags) costs more than these commands should take in all
    code = (
        "import sys\n"
        "from resnetcli.cli import main\n"
        f"sys.argv = ['resnetcli', *{args!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "heavy = [m for m in ('torch', 'resnetcli.engine.config', 'resnetcli.commands.train') if m in sys.modules]\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().endswith("HEAVY="), proc.stderr


def test_help_shows_each_command_s_own_help() -> None:
    """The help screen's one-line helps (read from source) are the docstrings' first lines of the commands."""
    import typer

    root = typer.main.get_command(app)
    listed = runner.invoke(app, ["--help"], env={"COLUMNS": "400"}).output
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        assert command.name == name
        first = (command.help or "").strip().splitlines()[0]
        assert first in listed, name


def test_domain_error_is_one_red_line_without_traceback() -> None:
    result = runner.invoke(app, ["list", "architecturez"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "unknown registry kind 'architecturez'" in lines[0]
    assert "did you mean architectures" in lines[0]
    assert "Traceback" not in result.output


def test_verbose_shows_the_traceback() -> None:
    proc = subprocess.run(
        [str(BIN / "resnetcli"), "--verbose", "list", "architecturez"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr
    assert "unknown registry kind" in proc.stderr


def test_builtins_are_registered_through_entry_points() -> None:
    for group in ("architectures", "augmentations", "optimizers", "schedulers", "datasets"):
        eps = entry_points(group=f"resnetcli.{group}")
        assert len(eps) > 0, group
        assert any(ep.dist is not None and ep.dist.metadata["Name"] == "resnetcli" for ep in eps)


def test_list_shows_builtins_with_distribution() -> None:
    result = runner.invoke(app, ["list", "optimizers"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in ("sgd", "sgd-nesterov", "adam", "adamw", "rmsprop"):
        assert f" {name} " in result.output
    assert "resnetcli" in result.output
    assert "broken" not in result.output


def test_shell_completion_is_offered() -> None:
    result = runner.invoke(app, ["--help"])
    assert "--install-completion" in result.output
    env = {**os.environ, "_RESNETCLI_COMPLETE": "complete_bash", "COMP_WORDS": "resnetcli li", "COMP_CWORD": "1"}
    proc = subprocess.run([str(BIN / "resnetcli")], env=env, capture_output=True, text=True, check=False)
    assert "list" in proc.stdout


def _short_flag_meanings() -> dict[str, dict[str, str]]:
    """short flag -> {command: the long flag it stands for}, read from the click command tree typer builds."""
    import typer

    root = typer.main.get_command(app)
    commands = {"resnetcli": root, **root.commands}  # type: ignore[attr-defined]
    meanings: dict[str, dict[str, str]] = {}
    for name, command in commands.items():
        for param in command.params:
            flags = [*param.opts, *param.secondary_opts]
            long = next((f for f in flags if f.startswith("--")), param.name)
            for short in (f for f in flags if len(f) == 2 and f[0] == "-" and f[1] != "-"):
                meanings.setdefault(short, {})[name] = long
    return meanings


def test_no_short_flag_has_two_meanings() -> None:
    meanings = _short_flag_meanings()
    clashes = {short: uses for short, uses in meanings.items() if len(set(uses.values())) > 1}
    assert not clashes
    assert set(meanings["-o"].values()) == {"--output"} and set(meanings["-c"].values()) == {"--checkpoint"}
    assert {"train", "test", "predict", "preprocess"} <= set(meanings["-o"])


def test_shared_options_keep_their_flags_in_every_command() -> None:
    """An option of resnetcli/commands/common.py never appears with other short flags than the shared ones."""
    from resnetcli.commands.common import FLAGS

    meanings = _short_flag_meanings()
    for flags in FLAGS.values():
        long, shorts = flags[0], set(flags[1:])
        for short, uses in meanings.items():
            if long in uses.values():
                assert short in shorts, (long, short, uses)


def test_a_bad_flag_is_one_error_line() -> None:
    result = runner.invoke(app, ["train", "--epochz", "3"])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: No such option: --epochz"), result.stderr
    assert "resnetcli train --help" in lines[0]


def test_cli_imports_no_private_typer_module() -> None:
    source = (Path(__file__).parents[1] / "resnetcli").rglob("*.py")
    assert not [p.name for p in source if "typer._" in p.read_text(encoding="utf-8")]


@pytest.mark.parametrize("args, code, start", [
    (["train"], 2, "error: no data given: pass --data"),
    (["predict"], 2, "error: Missing argument 'images'."),
    (["--verbose"], 2, "error: Missing command."),
])
def test_a_command_without_its_arguments_is_one_error_line(args: list[str], code: int, start: str) -> None:
    from helpers_cli import one_error_line

    assert one_error_line(runner.invoke(app, args), code).startswith(start)


def test_resnetcli_alone_shows_the_help() -> None:
    result = runner.invoke(app, [])
    assert result.exit_code == 2 and "Usage: resnetcli" in result.output and "error:" not in result.output


@pytest.mark.parametrize("where", ["option", "config file"])
def test_a_path_holding_nul_is_one_usage_line_wherever_it_comes_from(tmp_path: Path, where: str) -> None:
    """The OS refuses NUL in a path with a ValueError (not an OSError): from a flag or a config file's value."""
    from helpers_cli import one_error_line

    if where == "option":
        argv = ["test", "--checkpoint", str(tmp_path / "a\x00b")]
    else:
        (tmp_path / "c.yaml").write_text('output: "' + str(tmp_path) + '/o\\0x"\n')
        from conftest import make_image_folder

        make_image_folder(tmp_path / "d", 2, 4, 8)
        argv = ["train", "--config", str(tmp_path / "c.yaml"), "--data", str(tmp_path / "d"), "--arch", "resnet20",
                "--batch-size", "2", "--image-size", "8", "--workers", "0"]
    line = one_error_line(runner.invoke(app, argv), 2)
    assert line == "error: a path holds a NUL byte, which no file name can contain", line


def test_each_command_is_built_once_per_process_and_runs_again() -> None:
    """Typer reads a command's signature on every build; an app called in-process many times builds it once."""
    from resnetcli.cli import COMMANDS, _Commands

    first = _Commands(COMMANDS)["summarize"]
    assert _Commands(COMMANDS)["summarize"] is first
    for _ in range(2):  # the same command object parses a second call afresh
        result = runner.invoke(app, ["summarize", "--arch", "resnet20", "--format", "json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["arch"] == "resnet20"
    bad = runner.invoke(app, ["summarize", "--arch", "resnet20", "--image-size", "0"])
    assert bad.exit_code == 2

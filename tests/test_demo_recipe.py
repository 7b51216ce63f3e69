"""The demo's recipe (resnetcli/demo.py RECIPE, which benchmarks/demo_epoch_bench.py times) is what its
`resnetcli train` command line sets."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from resnetcli.cli import app
from resnetcli.demo import RECIPE, recipe_flags


def test_the_demo_command_line_sets_exactly_its_recipe() -> None:
    result = CliRunner().invoke(app, ["train", *recipe_flags(), "--print-config"])
    assert result.exit_code == 0, result.output
    config = yaml.safe_load(result.output)
    assert {key: config[key] for key in RECIPE} == RECIPE
    assert (config["amp"], config["channels_last"], config["in_memory"]) == ("auto", "auto", "auto")


def test_each_command_the_demo_runs_is_shown_as_typed(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A --workdir holding markup (`/tmp/a[/]`) is shown in the echoed command line, not read as a tag."""
    import subprocess

    from resnetcli import demo

    ran: list[list[str]] = []
    monkeypatch.setattr(demo.subprocess, "run",
                        lambda argv, check: (ran.append(argv), subprocess.CompletedProcess(argv, 0))[1])
    demo._run(["preprocess", "-i", "/tmp/a[/]", "-o", "/tmp/b[bold]x"])
    assert ran and ran[0][-4:] == ["-i", "/tmp/a[/]", "-o", "/tmp/b[bold]x"]
    assert "$ resnetcli preprocess -i '/tmp/a[/]' -o '/tmp/b[bold]x'" in capsys.readouterr().err

"""The demo's recipe (resnetcli/demo.py RECIPE, which benchmarks/demo_epoch_bench.py times) is what its
`resnetcli train` command line sets."""

from __future__ import annotations

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

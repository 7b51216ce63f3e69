"""YAML and KEY=VALUE reading (resnetcli/options.py): hostile documents are one usage line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_cli import one_error_line
from typer.testing import CliRunner

from resnetcli.cli import app
from resnetcli.options import YamlTooLarge, load_yaml, parse_key_values

DEEP = "a: " + "[" * 5000 + "]" * 5000 + "\n"


def test_deeply_nested_yaml_is_refused_as_too_large() -> None:
    with pytest.raises(YamlTooLarge, match="nest too deeply"):
        load_yaml(DEEP)
    assert load_yaml("a: " + "[" * 20 + "]" * 20) == {"a": [[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]}


def test_a_deeply_nested_config_is_one_usage_line(tmp_path: Path) -> None:
    config = tmp_path / "deep.yaml"
    config.write_text(DEEP)
    line = one_error_line(CliRunner().invoke(app, ["train", "--config", str(config), "--print-config"]), 2)
    assert "nest too deeply" in line and str(config) in line, line


def test_key_values_parse_as_yaml_scalars_and_lists() -> None:
    assert parse_key_values(["depth=74", "plain=true", "betas=[0.9,0.99]", "eps=1e-8", "name=", "my-key=x"],
                            "--x") == {"depth": 74, "plain": True, "betas": [0.9, 0.99], "eps": 1e-8, "name": "",
                                       "my_key": "x"}
    assert parse_key_values(["depth=" + "[" * 5000], "--x") == {"depth": "[" * 5000}  # not YAML: kept as text


@pytest.mark.parametrize("item", ["depth", "=3", " =3"])
def test_an_item_without_a_key_is_one_usage_line(item: str) -> None:
    line = one_error_line(CliRunner().invoke(app, ["train", "--arch-option", item, "--print-config"]), 2)
    assert f"--arch-option expects KEY=VALUE, got '{item}'" in line, line

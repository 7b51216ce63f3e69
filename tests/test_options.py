"""YAML and KEY=VALUE reading (resnetcli/options.py): hostile documents are one usage line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_cli import one_error_line
from typer.testing import CliRunner

from resnetcli import options
from resnetcli.cli import app
from resnetcli.options import MAX_FLOW_DEPTH, YamlTooLarge, load_yaml, parse_key_values

DEEP = "a: " + "[" * 5000 + "]" * 5000 + "\n"


def test_deeply_nested_yaml_is_refused_as_too_large(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_yaml("a: " + "[" * 20 + "]" * 20) == {"a": [[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]}
    deepest = load_yaml("a: " + "{b: " * MAX_FLOW_DEPTH + "1" + "}" * MAX_FLOW_DEPTH)
    for _ in range(MAX_FLOW_DEPTH + 1):  # "a", then MAX_FLOW_DEPTH "b"s
        deepest = deepest["a" if "a" in deepest else "b"]
    assert deepest == 1
    # brackets inside strings and comments are text, not nesting: they neither refuse nor hide a document
    assert load_yaml("# " + "[" * 500 + "\nname: '" + "{" * 500 + "'\n") == {"name": "{" * 500}
    assert load_yaml("- " * 300 + "x") is not None  # block nesting is not bracket nesting
    with pytest.raises(YamlTooLarge, match="nest too deeply"):  # block nesting past what the reader can recurse
        load_yaml("- " * 3000 + "x")

    fetched = [0]
    fetch = options._SafeLoader.fetch_more_tokens

    def counting(self: options._SafeLoader) -> None:
        fetched[0] += 1
        fetch(self)

    monkeypatch.setattr(options._SafeLoader, "fetch_more_tokens", counting)
    too_deep = [DEEP, "a: " + "[" * (MAX_FLOW_DEPTH + 1) + "]" * (MAX_FLOW_DEPTH + 1), "{" * 5000,
                "a: " + '["]",' * 5000 + "]" * 5000]  # quoted closers do not close anything
    for text in too_deep:
        fetched[0] = 0
        with pytest.raises(YamlTooLarge, match=f"more than {MAX_FLOW_DEPTH} `\\[` or `{{`"):
            load_yaml(text)
        # refused as the scanner opens one collection too many, not after reading thousands of levels
        assert fetched[0] <= 4 * MAX_FLOW_DEPTH, (text[:20], fetched[0])  # a few tokens a level


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

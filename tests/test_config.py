"""The training config is validated where it is built: every numeric option's type, range and finiteness,
from the command line, a YAML file or a resumed checkpoint's config, as one `error:` line naming the option.
`--print-config` is used throughout, so nothing trains."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from helpers_cli import one_error_line
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from resnetcli.cli import app
from resnetcli.engine.config import FIELDS, TrainConfig, describe, flag, resolve, validate
from resnetcli.errors import UsageError

runner = CliRunner()

#: every numeric option of `train` -> the values it must refuse (0 only where 0 is not allowed)
BAD_NUMBERS: dict[str, list[str]] = {
    "epochs": ["0", "-1", "nan", "inf", "1e30"],
    "batch_size": ["0", "-1", "nan", "inf", "1e30"],
    "lr": ["0", "-1", "nan", "inf", "1e30"],
    "weight_decay": ["-1", "nan", "inf", "1e30"],
    "momentum": ["-1", "1", "nan", "inf", "1e30"],
    "warmup_epochs": ["-1", "nan", "inf", "1e30"],
    "grad_clip": ["0", "-1", "nan", "inf", "1e30"],
    "label_smoothing": ["-1", "1", "nan", "inf", "1e30"],
    "mixup": ["-1", "nan", "inf", "1e30"],
    "cutmix": ["-1", "nan", "inf", "1e30"],
    "image_size": ["0", "-1", "4", "nan", "1e30", "100000"],
    "checkpoint_every": ["-1", "nan", "1e30"],
    "checkpoint_every_steps": ["0", "-1", "nan", "1e30"],
    "checkpoint_every_minutes": ["0", "-1", "nan", "inf", "1e30"],
    "max_steps": ["0", "-1", "nan", "1e30"],
    "seed": ["-1", "nan", "1e30"],
    "workers": ["-1", "65", "nan", "1e30"],
    "unfreeze_at": ["0", "-1", "nan", "1e30"],
    "backbone_lr_mult": ["0", "-1", "nan", "inf", "1e30"],
    "early_stop": ["0", "-1", "nan", "1e30"],
    "early_stop_min_delta": ["-1", "nan", "inf", "1e30"],
    "ema": ["0", "1", "-1", "nan", "inf"],
    "accumulate": ["0", "-1", "nan", "1e30"],
}
CASES = [(key, value) for key, values in BAD_NUMBERS.items() for value in values]


def test_every_numeric_field_is_covered() -> None:
    """A numeric field added to TrainConfig without bad values here fails this test."""
    numeric = {name for name, info in FIELDS.items()
               if any(t in str(info.annotation) for t in ("int", "float"))}
    assert numeric - {"eval_batch_size", "log_every", "dist_timeout"} == set(BAD_NUMBERS)


@pytest.mark.parametrize("key, value", CASES)
def test_a_bad_number_on_the_command_line_is_one_line_naming_the_flag(key: str, value: str) -> None:
    line = one_error_line(runner.invoke(app, ["train", flag(key), value, "--print-config"]), 2)
    assert f"'{flag(key)}'" in line or line.startswith(f"error: {flag(key)} "), line


@pytest.mark.parametrize("key, value", CASES)
def test_a_bad_number_in_a_yaml_file_is_one_line_naming_the_key_and_file(key: str, value: str,
                                                                          tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    yaml_value = {"nan": ".nan", "inf": ".inf"}.get(value, value)
    config.write_text(f"{key}: {yaml_value}\n")
    line = one_error_line(runner.invoke(app, ["train", "--config", str(config), "--print-config"]), 2)
    assert f"config key '{key}' in {config} must be " in line, line


@pytest.mark.parametrize("key, value", [
    ("dist_timeout", "0"), ("dist_timeout", ".nan"), ("dist_timeout", "-1"), ("dist_timeout", "1e30"),
    ("log_every", "0"), ("log_every", "1.5"), ("eval_batch_size", "0"), ("eval_batch_size", "1e30"),
])
def test_options_without_a_flag_are_checked_in_yaml_too(key: str, value: str, tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(f"{key}: {value}\n")
    line = one_error_line(runner.invoke(app, ["train", "--config", str(config), "--print-config"]), 2)
    assert f"config key '{key}' in {config} must be " in line, line


@pytest.mark.parametrize("key, value", [("lr", math.nan), ("momentum", -1.0), ("epochs", 0), ("seed", -3)])
def test_a_bad_value_in_a_resumed_checkpoint_config_names_the_checkpoint(key: str, value: float) -> None:
    with pytest.raises(UsageError, match=rf"config key '{key}' in checkpoint runs/x/last\.pt must be "):
        resolve(({key: value}, "checkpoint runs/x/last.pt"), ({"epochs": 5}, "the command line"))


@pytest.mark.parametrize("flags, message", [
    (["--epochs", "3", "--warmup-epochs", "3"], "--warmup-epochs (3.0) must be shorter than --epochs (3)"),
    (["--mixup", "0.2", "--batch-size", "1"], "--mixup mixes images within a batch and needs --batch-size"),
])
def test_rules_between_options_are_checked_on_the_merged_config(flags: list[str], message: str) -> None:
    line = one_error_line(runner.invoke(app, ["train", *flags, "--print-config"]), 2)
    assert message in line


def test_warmup_set_in_yaml_is_checked_against_epochs_from_the_flags(tmp_path: Path) -> None:
    config = tmp_path / "warm.yaml"
    config.write_text("warmup_epochs: 5\n")
    ok = runner.invoke(app, ["train", "--config", str(config), "--epochs", "6", "--print-config"])
    assert ok.exit_code == 0 and "warmup_epochs: 5.0" in ok.stdout
    one_error_line(runner.invoke(app, ["train", "--config", str(config), "--epochs", "5", "--print-config"]), 2)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_lr_is_accepted_exactly_when_positive_finite_and_at_most_10(lr: float) -> None:
    ok = math.isfinite(lr) and 0 < lr <= 10
    try:
        assert validate({"lr": lr}, "the command line") == {"lr": lr} and ok
    except UsageError as exc:
        assert not ok and str(exc).startswith("--lr must be "), exc


def test_building_a_config_directly_validates_too() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        TrainConfig(lr=math.inf)
    assert TrainConfig(log_level="debug").log_level == "DEBUG"


def test_help_shows_the_defaults_of_the_config_itself() -> None:
    """Each train flag's help is its config field's description plus the field's default, read from there."""
    import typer

    command = typer.main.get_command(app).commands["train"]  # type: ignore[attr-defined]
    helps = {opt: param.help for param in command.params for opt in param.opts}
    shown = 0
    for key in FIELDS:
        if flag(key) in helps and "option" not in key:
            assert helps[flag(key)] == describe(key), key
            value = TrainConfig().to_dict()[key]
            if value is not None and value is not False:
                expected = flag(key) if value is True else value
                assert f"\\[default: {expected}]" in helps[flag(key)], key
                shown += 1
    assert shown >= 15
    rendered = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "250"}).output
    assert f"[default: {TrainConfig().epochs}]" in rendered and "\\[default" not in rendered


def test_a_config_file_that_is_not_text_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_bytes(b"epochs: 2\nlr: \xd0\xff\n")
    line = one_error_line(runner.invoke(app, ["train", "--config", str(config), "--print-config"]), 2)
    assert f"config {config} is not a UTF-8 text file" in line

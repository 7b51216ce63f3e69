"""Property-based tests (hypothesis) over the CLI's numeric and path options and the printing of user text.

For any value, a command either succeeds or prints exactly one `error:` line with a documented exit code (README,
"Exit codes"): never a traceback. Each example uses a cheap command (`train --print-config` resolves and validates
the whole training config without data or torch work), so the suite stays quick.
"""

from __future__ import annotations

import io
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from resnetcli.cli import app

runner = CliRunner()
DOCUMENTED = {0, 2, 3, 4, 5, 6}
FAST = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

#: any float a user could type, the awkward ones included
floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 1e308, -1e-320]))
ints = st.one_of(st.integers(), st.sampled_from([0, -1, 2**31, 2**63, 10**30]))
numbers_as_text = st.one_of(floats.map(repr), ints.map(str), st.text(max_size=12))
#: text for one path component: anything a file name can hold (no '/'), NUL and escapes included
names = st.text(st.characters(blacklist_characters="/", blacklist_categories=("Cs",)), min_size=1, max_size=40)


def success_or_one_error_line(result: Any) -> None:
    assert result.exit_code in DOCUMENTED, (result.exit_code, result.output)
    assert "Traceback" not in result.output, result.output
    if result.exit_code:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error: ")]
        assert len(errors) == 1 and lines[-1] == errors[0], result.stderr


TRAIN_NUMBERS = ["--lr", "--momentum", "--weight-decay", "--mixup", "--warmup-epochs", "--label-smoothing",
                 "--epochs", "--batch-size", "--image-size", "--seed", "--grad-clip", "--max-steps", "--workers"]


@FAST
@given(flag=st.sampled_from(TRAIN_NUMBERS), value=numbers_as_text)
def test_any_value_of_a_numeric_training_option(flag: str, value: str) -> None:
    result = runner.invoke(app, ["train", flag, value, "--print-config"])
    success_or_one_error_line(result)
    if result.exit_code == 0:  # what was accepted is finite: no NaN setting reaches a run
        for line in result.stdout.splitlines():
            _, _, raw = line.partition(":")
            try:
                number = float(raw)
            except ValueError:
                continue
            assert math.isfinite(number), line


@FAST
@given(size=numbers_as_text, val=numbers_as_text, quality=numbers_as_text, workers=numbers_as_text)
def test_any_value_of_preprocess_numbers(tmp_path_factory: pytest.TempPathFactory, size: str, val: str, quality: str,
                                          workers: str) -> None:
    tmp = tmp_path_factory.mktemp("numbers")
    result = runner.invoke(app, ["preprocess", "-i", str(tmp / "missing"), "-o", str(tmp / "out"), "--size", size,
                                 "--val-split", val, "--quality", quality, "--workers", workers])
    success_or_one_error_line(result)
    assert result.exit_code != 0  # the input is missing
    assert not (tmp / "out").exists()


@FAST
@given(flag=st.sampled_from(["--input-size", "--num-classes", "--in-channels"]), value=numbers_as_text)
def test_any_value_of_a_summarize_size(flag: str, value: str) -> None:
    success_or_one_error_line(runner.invoke(app, ["summarize", "--arch", "resnet20", flag, value]))


@FAST
@given(source=names, target=names)
def test_any_path_for_preprocess(tmp_path_factory: pytest.TempPathFactory, source: str, target: str) -> None:
    from resnetcli.registry import registry

    assume(source not in (".", "..") and target not in (".", ".."))
    assume(source not in registry("datasets").names())  # a dataset's name would download it
    tmp = tmp_path_factory.mktemp("paths")
    result = runner.invoke(app, ["preprocess", "-i", str(tmp / source), "-o", str(tmp / "out" / target)])
    success_or_one_error_line(result)
    assert result.exit_code in (2, 3), result.output  # nothing there to preprocess


@FAST
@given(name=names)
def test_any_path_for_a_checkpoint_or_a_config(tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    assume(name not in (".", ".."))
    tmp = tmp_path_factory.mktemp("checkpoint")
    result = runner.invoke(app, ["test", "--checkpoint", str(tmp / name)])
    success_or_one_error_line(result)
    # no such checkpoint (4); a NUL byte can be in no path at all, so the option itself is refused (2)
    assert result.exit_code == (2 if "\x00" in name else 4), result.output
    result = runner.invoke(app, ["train", "--config", str(tmp / name), "--print-config"])
    success_or_one_error_line(result)
    assert result.exit_code == 2


@FAST
@given(text=st.text(max_size=300))
def test_any_yaml_config_text(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    config = tmp_path_factory.mktemp("yaml") / "config.yaml"
    config.write_text(text, encoding="utf-8", errors="surrogatepass")
    success_or_one_error_line(runner.invoke(app, ["train", "--config", str(config), "--print-config"]))


#: what rich reads in markup: tags, backslash escapes, emoji codes; mixed into the generated text
_MARKUP = st.sampled_from(["[", "]", "\\", "[/]", "[bold]", "[b]x[/b]", "[link=x]", ":smile:", ":+1:", "[red]"])


_TEXT = st.lists(st.one_of(st.text(st.characters(blacklist_characters="\t")), _MARKUP)).map("".join)
#: where a message puts user text: inside a style, at the end, before plain text, two of them side by side
_PLACES = ["[bold]{}[/]", "{}", "{} and on", "[red]error:[/] {}", "{} [bold]more[/]", "{}{}",
           "config: {} (A) vs {} (B)"]


@settings(max_examples=300, deadline=None)
@given(first=_TEXT, second=_TEXT, place=st.sampled_from(_PLACES))
@example(first="\\[", second="", place="[bold]{}[/]")  # found by this test: rich showed `\[` as `[`
@example(first="a\\\\\\", second="", place="[bold]{}[/]")  # three trailing backslashes escaped the closing tag
@example(first="a:smile:b", second="", place="{}")  # an emoji code became a face
@example(first="r[bold", second="x]", place="config: {} (A) vs {} (B)")  # the next text's `]` closed a tag
def test_any_text_prints_literally_and_inert(first: str, second: str, place: str) -> None:
    """console.escape: the tool's consoles show the text as written (markup, backslashes before `[` and emoji codes
    never applied, `[/]` never a crash), with every terminal control character replaced by a visible escape,
    wherever the text sits in a message and whatever follows it (tabs excepted: rich expands them, by design)."""
    from resnetcli.console import escape, new_console, printable

    texts = [first, second][:place.count("{}")]
    buffer = io.StringIO()
    new_console(file=buffer, width=10_000, color_system=None).print(place.format(*map(escape, texts)), end="")
    shown = buffer.getvalue()
    plain = place.replace("[bold]", "").replace("[red]", "").replace("[/]", "")
    assert shown == plain.format(*map(printable, texts))
    assert not any((ord(c) < 32 and c not in "\t\n") or 0x7f <= ord(c) <= 0x9f for c in shown), repr(shown)


def test_printable_spells_out_escapes() -> None:
    from resnetcli.console import printable

    assert printable("a\x1b[31mb\x07\r\u202e") == "a\\x1b[31mb\\x07\\x0d\\u202e"
    assert printable("tab\tand\nnewline stay") == "tab\tand\nnewline stay"


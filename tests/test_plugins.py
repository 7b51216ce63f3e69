"""Third-party plugins: built in a temp dir, installed with `pip install --target`, found through PYTHONPATH."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from helpers_forker import Forker

ASSETS = Path(__file__).parent / "assets" / "plugins"
README = Path(__file__).parents[1] / "README.md"
RESNETCLI = str(Path(sys.executable).parent / "resnetcli")


def _install(names: list[str], tmp_path: Path) -> Path:
    """Copy each asset plugin to a temp dir and pip-install it (no deps) into one target folder."""
    target = tmp_path / "site"
    sources = []
    for name in names:
        src = tmp_path / "src" / name
        shutil.copytree(ASSETS / name, src)
        sources.append(str(src))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), *sources],
        check=True,
        capture_output=True,
    )
    return target


def _run(args: list[str], site: Path, forker: Forker | None = None) -> subprocess.CompletedProcess[str]:
    """`resnetcli ARGS` with the plugins' folder on PYTHONPATH: a fresh interpreter, or with `forker` a child of
    the tests' fork server (torch already imported: seconds less per command that builds a network)."""
    env = {"PYTHONPATH": str(site), "COLUMNS": "250"}
    if forker is None:
        return subprocess.run([RESNETCLI, *args], env={**os.environ, **env}, capture_output=True, text=True,
                              check=False)
    return forker.invoke(args, env=env)


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _install(["tinyplug", "brokenplug", "clashplug", "raiseplug"], tmp_path_factory.mktemp("plugins"))


def test_installed_plugin_appears_in_list(plugin_site: Path) -> None:
    proc = _run(["list", "architectures"], plugin_site)
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if " tinynet " in line)
    assert "tinyplug" in row and "TinyNet" in row


def test_plugin_architecture_summarizes(plugin_site: Path, forker: Forker) -> None:
    proc = _run(["summarize", "--arch", "tinynet", "--num-classes", "7", "--format", "json"], plugin_site, forker)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    width = 8
    expected = (3 * width * 9 + 2 * width) + (width * width * 9 + 2 * width) + (width * 7 + 7)
    assert summary["arch"] == "tinynet"
    assert summary["total_params"] == expected


def test_broken_plugin_is_reported_and_the_rest_works(plugin_site: Path, forker: Forker) -> None:
    proc = _run(["list", "architectures"], plugin_site)
    broken = [line for line in proc.stdout.splitlines() if line.startswith("broken:")]
    assert any("brokennet" in line and "brokenplug" in line and "ImportError" in line for line in broken)
    # other commands are unaffected, including one that loads a built-in architecture
    ok = _run(["summarize", "--arch", "tinynet", "--format", "json"], plugin_site, forker)
    assert ok.returncode == 0, ok.stderr
    failing = _run(["summarize", "--arch", "brokennet"], plugin_site, forker)
    assert failing.returncode == 5
    assert "brokenplug" in failing.stderr and "Traceback" not in failing.stderr


def test_name_registered_twice_names_both_distributions(plugin_site: Path, forker: Forker) -> None:
    proc = _run(["summarize", "--arch", "resnet20"], plugin_site, forker)
    assert proc.returncode == 5
    assert "'clashplug'" in proc.stderr and "'resnetcli'" in proc.stderr
    listing = _run(["list", "architectures"], plugin_site)
    assert any("resnet20" in line and "clashplug" in line for line in listing.stdout.splitlines()
               if line.startswith("broken:"))


def test_entry_that_is_not_callable_is_refused(plugin_site: Path, forker: Forker) -> None:
    proc = _run(["summarize", "--arch", "notcallable"], plugin_site, forker)
    assert proc.returncode == 5
    assert "not a callable" in proc.stderr and "clashplug" in proc.stderr


def _error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def test_plugin_builder_that_raises_is_one_line_naming_its_distribution(plugin_site: Path, forker: Forker) -> None:
    proc = _run(["summarize", "--arch", "raisenet"], plugin_site, forker)
    assert proc.returncode == 5
    line = _error_line(proc)
    assert "architecture 'raisenet' from distribution 'raiseplug' failed" in line
    assert "RuntimeError: raisenet cannot build width 8" in line


def test_plugin_option_it_does_not_take_lists_the_ones_it_does(plugin_site: Path, forker: Forker) -> None:
    proc = _run(["summarize", "--arch", "tinynet", "--arch-option", "widht=4"], plugin_site, forker)
    assert proc.returncode == 2
    line = _error_line(proc)
    assert "architecture 'tinynet' from distribution 'tinyplug' does not take option(s) widht" in line
    assert line.endswith("it takes: width")


def test_readme_plugin_example_is_the_tested_one() -> None:
    """The README's "Write a plugin" files are exactly the ones this module installs."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Write a plugin", 1)[1]
    blocks = dict(re.findall(r"```(?:toml|python)\n# (\S+)\n(.*?)```", section, flags=re.S))
    for name in ("pyproject.toml", "tinyplug.py"):
        assert blocks[name] == (ASSETS / "tinyplug" / name).read_text(encoding="utf-8"), name

"""`resnetcli list` reads descriptions from source: no torch, no plugin module imported, broken plugins reported."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from resnetcli.plugin_docs import SourceProblem, source_description
from resnetcli.registry import GROUPS, registry

if TYPE_CHECKING:
    from helpers_forker import Forker

ASSETS = Path(__file__).parent / "assets" / "plugins"
RESNETCLI = str(Path(sys.executable).parent / "resnetcli")


def _fake_install(site: Path, name: str, entries: dict[str, str]) -> None:
    """What pip leaves behind, without pip: the module beside a .dist-info with METADATA and entry points."""
    info = site / f"{name}-0.0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.1\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entries.items())
    (info / "entry_points.txt").write_text(f"[resnetcli.architectures]\n{lines}")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    shutil.copy(ASSETS / "brokenplug" / "brokenplug.py", site)
    _fake_install(site, "brokenplug", {"brokennet": "brokenplug:build"})
    shutil.copy(ASSETS / "tinyplug" / "tinyplug.py", site)
    _fake_install(site, "tinyplug", {"tinynet": "tinyplug:build"})
    return site


def test_list_imports_neither_torch_nor_any_entry(site: Path) -> None:
    check = textwrap.dedent("""
        import sys
        from typer.testing import CliRunner
        from resnetcli.cli import app
        result = CliRunner().invoke(app, ["list"], env={"COLUMNS": "250"})
        assert result.exit_code == 0, result.output
        assert " resnet20 " in result.output and " tinynet " in result.output, result.output
        imported = [m for m in ("torch", "tinyplug", "brokenplug", "resnetcli.models.zoo",
                                "resnetcli_bag_of_tricks.zoo", "resnetcli.optim.optimizers") if m in sys.modules]
        assert not imported, imported
        print("checked")
    """)
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "checked" in proc.stdout, proc.stdout + proc.stderr


def _run(args: list[str], site: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site), "COLUMNS": "250"}
    return subprocess.run([RESNETCLI, *args], env=env, capture_output=True, text=True, check=False)


def test_broken_plugin_is_listed_as_broken_with_its_distribution(site: Path) -> None:
    proc = _run(["list", "architectures"], site)
    assert proc.returncode == 0, proc.stderr
    broken = [line for line in proc.stdout.splitlines() if line.startswith("broken:")]
    assert len(broken) == 1
    assert "brokennet" in broken[0] and "'brokenplug'" in broken[0]
    assert "ImportError: brokenplug needs a library that is not installed" in broken[0]
    row = next(line for line in proc.stdout.splitlines() if " tinynet " in line)
    assert "tinyplug" in row and "TinyNet: two 3x3 convolutions" in row


def test_verbose_list_imports_entries_and_shows_the_real_error(forker: Forker, site: Path) -> None:
    # importing every entry imports torch: a fork-server child, where it is imported already
    proc = forker.invoke(["--verbose", "list", "architectures"], env={"PYTHONPATH": str(site), "COLUMNS": "250"})
    assert proc.returncode == 0, proc.stderr
    broken = [line for line in proc.stdout.splitlines() if line.startswith("broken:")]
    assert len(broken) == 1 and "failed to load" in broken[0] and "ImportError" in broken[0]
    row = next(line for line in proc.stdout.splitlines() if " tinynet " in line)
    assert "tinyplug:build" in row  # the entry point column


@pytest.mark.parametrize("kind", list(GROUPS))
def test_source_descriptions_match_the_loaded_docstrings(kind: str) -> None:
    for entry in registry(kind):
        doc = (entry.load().__doc__ or "").strip()
        assert source_description(entry.value) == (doc.splitlines()[0] if doc else ""), entry.value


@pytest.fixture()
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    files = {
        "pkg/__init__.py": '"""P."""\nfrom .impl import build as again\nfrom .impl import *\n',
        "pkg/impl.py": textwrap.dedent('''
            """Impl."""
            import os

            class Thing:
                """A thing."""
                def make(self):
                    """Make it.

                    Details.
                    """

            def build():
                """Build it."""

            def bare():
                pass

            made = Thing()
            try:
                from pkg.fast import quick
            except ImportError:
                def quick():
                    """Slow."""
        '''),
        "pkg/fast.py": 'def quick():\n    """Fast."""\n',
        "raising.py": 'raise ImportError("needs foo")\n',
        "syntax.py": "def f(:\n",
        "badparent/__init__.py": "raise RuntimeError\n",
        "badparent/sub.py": 'def f():\n    """F."""\n',
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


@pytest.mark.parametrize(("value", "expected"), [
    ("pkg.impl:build", "Build it."),
    ("pkg.impl:Thing", "A thing."),
    ("pkg.impl:Thing.make", "Make it."),
    ("pkg.impl:bare", ""),
    ("pkg.impl:made", ""),  # an assignment: its docstring would be its type's
    ("pkg.impl:quick", "Fast."),  # the try body, not the fallback
    ("pkg:again", "Build it."),  # re-exported under another name
    ("pkg:build", "Build it."),  # through a star import
    ("pkg.impl:os", None),  # a module: import decides
    ("pkg.impl:missing", None),
])
def test_source_description_reads_without_importing(modules: Path, value: str, expected: str | None) -> None:
    assert source_description(value) == expected
    assert not any(m == "pkg" or m.startswith("pkg.") for m in sys.modules)


@pytest.mark.parametrize(("value", "reason"), [
    ("raising:f", "module raising raises ImportError: needs foo on import"),
    ("syntax:f", "SyntaxError in"),
    ("nowhere.at.all:f", "no module named 'nowhere'"),
    ("pkg.nosub:f", "no module named 'pkg.nosub'"),
    ("badparent.sub:f", "module badparent raises RuntimeError on import"),
])
def test_source_shows_an_import_that_would_fail(modules: Path, value: str, reason: str) -> None:
    with pytest.raises(SourceProblem, match=reason.replace("(", r"\(")):
        source_description(value)

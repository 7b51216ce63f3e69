"""The one-error-line check every bad-input test uses."""

from __future__ import annotations

from typing import Any


def one_error_line(result: Any, code: int, *, warnings: int = 0) -> str:
    """stderr is one 'error:' line (after `warnings` 'warning:' lines, one per skipped file, where the command
    promises them), nothing went to stdout, and the exit code is `code`."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == warnings + 1, result.stderr
    assert all(line.startswith("warning: ") for line in lines[:-1]), result.stderr
    assert lines[-1].startswith("error: "), result.stderr
    assert not result.stdout.strip(), result.stdout
    return lines[-1]

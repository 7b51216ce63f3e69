"""The one exception type users see: raised deep, printed once at the CLI boundary as one line."""

from __future__ import annotations


class ResnetCliError(Exception):
    """A problem the user can fix. Printed as one red line (no traceback unless --verbose).

    Keep the message to one line saying what was wrong, which file or value, and what to do.
    """

    #: process exit code; the README's "Exit codes" table lists them
    exit_code: int = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(ResnetCliError):
    """An impossible or unknown setting, refused before any work starts."""

    exit_code = 2


class DataError(ResnetCliError):
    """Input data (images, CSVs, dataset files) is missing or unusable."""

    exit_code = 3


class CheckpointError(ResnetCliError):
    """A checkpoint is missing, truncated, unsafe, or does not match the model or data."""

    exit_code = 4


class PluginError(ResnetCliError):
    """A registry entry failed to load, is ambiguous, or is not callable."""

    exit_code = 5


class TrainingError(ResnetCliError):
    """Training had to stop (for example, a non-finite loss); the last good checkpoint is kept."""

    exit_code = 6

"""The `resnetcli` command line: a thin Typer shell over plain functions.

Nothing here imports torch: `resnetcli --help` must answer at once. Each command lives in its own module
(resnetcli/commands/), imported only when that command runs; the help screen reads the commands' one-line
helps from their source.
"""

from __future__ import annotations

import contextlib
import importlib
import re
import sys
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperCommand, TyperGroup

from resnetcli import __version__
from resnetcli.errors import DataError, ResnetCliError, UsageError

#: set by the --verbose callback; read when an error reaches the CLI boundary
_state = {"verbose": False, "interrupted": False}


def verbose() -> bool:
    return _state["verbose"]


#: Typer vendors click and exports only BadParameter of its exceptions; the usage error it derives from is
#: what every bad or missing option and unknown command raises (public API, no import of its private modules)
_ParseError: Any = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


#: command -> the function behind it (resnetcli/commands/), in the order a user meets them. A command's module
#: is imported only when that command runs: train's flags are generated from the pydantic TrainConfig, whose
#: import alone costs more than the whole of `resnetcli --help`, `--version` or `list` should.
COMMANDS = {
    "preprocess": "resnetcli.commands.preprocess:preprocess_command",
    "train": "resnetcli.commands.train:train_command",
    "lr-find": "resnetcli.commands.lr_find:lr_find_command",
    "test": "resnetcli.commands.test:test_command",
    "predict": "resnetcli.commands.predict:predict_command",
    "export": "resnetcli.commands.export:export_command",
    "summarize": "resnetcli.commands.summarize:summarize_command",
    "report": "resnetcli.commands.report:report_command",
    "doctor": "resnetcli.commands.doctor:doctor_command",
    "list": "resnetcli.commands.listing:list_command",
    "runs": "resnetcli.commands.runs:runs_command",
}


#: target -> its command, built once per process: Typer re-reads a function's signature and annotations on every
#: build (18 ms for train's), and a program calling the app in-process (CliRunner, a notebook) runs it many times
_BUILT: dict[str, TyperCommand] = {}


class _Commands(Mapping[str, TyperCommand]):
    """The commands of COMMANDS, each built by Typer from its function the first time it is looked up."""

    def __init__(self, targets: Mapping[str, str]) -> None:
        self._targets = dict(targets)

    def __getitem__(self, name: str) -> TyperCommand:
        target = self._targets[name]
        if target not in _BUILT:
            module, _, function = target.partition(":")
            single = typer.Typer(rich_markup_mode="rich", add_completion=False)
            single.command(name)(getattr(importlib.import_module(module), function))
            _BUILT[target] = typer.main.get_command(single)  # one command and no callback: a TyperCommand
        return _BUILT[target]

    def __iter__(self) -> Iterator[str]:
        return iter(self._targets)

    def __len__(self) -> int:
        return len(self._targets)

    def summary(self, name: str) -> TyperCommand | None:
        """A stand-in with the command's name and one-line help, read from its source without importing it."""
        from resnetcli.plugin_docs import SourceProblem, source_description

        if name not in self._targets:
            return None
        if self._targets[name] in _BUILT:
            return _BUILT[self._targets[name]]
        try:
            help_ = source_description(self._targets[name])
        except SourceProblem:
            help_ = None
        if help_ is None:  # the source cannot tell (never for our own modules): build the real one
            return self[name]
        return TyperCommand(name=name, help=help_)


class _Group(TyperGroup):
    """Catches ResnetCliError once, for the console script and for CliRunner alike."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.commands = _Commands(COMMANDS)

    def get_command(self, ctx: typer.Context, cmd_name: str) -> Any:
        # What the help screen and shell completion look at: names and one-line helps, nothing imported.
        return self.commands.summary(cmd_name)

    def resolve_command(self, ctx: typer.Context, args: list[str]) -> Any:
        if args and args[0] in self.commands:  # the command that runs, the only one imported
            return args[0], self.commands[args[0]], args[1:]
        return super().resolve_command(ctx, args)  # the error for a mistyped name, with typer's suggestions

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _ParseError as exc:
            # one line like every other error, instead of a usage block and a boxed message
            where = exc.ctx.command_path if exc.ctx is not None else "resnetcli"
            report_error(ResnetCliError(f"{exc.format_message()} (see `{where} --help`)"))
            raise typer.Exit(exc.exit_code) from None
        except ResnetCliError as exc:
            report_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except (OSError, MemoryError) as exc:  # what no command foresaw: a disk, a device, memory
            report_error(DataError(_os_error_line(exc)))
            raise typer.Exit(DataError.exit_code) from None
        except ValueError as exc:
            # the OS refuses a path holding NUL with a ValueError, not an OSError: from an option or a config
            # file's value, wherever the path is first used
            if "null byte" not in str(exc):
                raise
            report_error(UsageError("a path holds a NUL byte, which no file name can contain"))
            raise typer.Exit(UsageError.exit_code) from None
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP where a command asks (resnetcli/signals.py)
            from resnetcli.console import err
            from resnetcli.signals import exit_code

            err.print(f"[red]interrupted{f' ({exc})' if str(exc) else ''}[/]")
            _state["interrupted"] = True
            raise typer.Exit(exit_code(exc)) from None

    def list_commands(self, ctx: typer.Context) -> list[str]:
        # In the order a user meets them, not alphabetical.
        return list(self.commands)


def _os_error_line(exc: OSError | MemoryError) -> str:
    if isinstance(exc, MemoryError):
        return "out of memory; use a smaller --batch-size, --image-size or network"
    where = " ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    return f"{exc.strerror or exc}{f': {where}' if where else ''}"


#: how torch re-raises an exception from a DataLoader worker: its message, then the worker's whole traceback
_WORKER = "Original Traceback (most recent call last):"


def _without_worker_traceback(text: str) -> str:
    """The worker's own message, without torch's 'Caught X in DataLoader worker process N. Original Traceback'."""
    if _WORKER not in text:
        return text
    last = [line for line in text.split(_WORKER, 1)[1].splitlines() if line.strip()][-1]
    kind, sep, message = last.partition(": ")  # 'resnetcli.errors.DataError: what went wrong'
    return message if sep and re.fullmatch(r"[\w.]+", kind) else last


def report_error(exc: BaseException) -> None:
    from resnetcli.console import err, escape

    if verbose():
        err.print_exception(show_locals=False)
    message = " ".join(_without_worker_traceback(str(exc)).split())  # one line, whatever the raiser wrote
    err.print(f"[bold red]error:[/] {escape(message)}")


app = typer.Typer(
    name="resnetcli",
    cls=_Group,
    rich_markup_mode="rich",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="From a folder of images (or a standard dataset) to a trained, evaluated ResNet.",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"resnetcli {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    verbose_: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show full tracebacks and debug logging.")
    ] = False,
) -> None:
    """From a folder of images (or a standard dataset) to a trained, evaluated ResNet."""
    _state["verbose"] = verbose_


def main() -> None:
    """Console-script entry point."""
    for stream in (sys.stdout, sys.stderr):  # an ASCII-only locale: escape what it cannot show, never crash
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        app(prog_name="resnetcli")
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:  # a second Ctrl-C while the first one's clean-up was being reported
        code = 130
    except OSError as exc:  # in what runs before any command (--version, --help): a stdout at /dev/full
        report_error(DataError(_os_error_line(exc)))
        code = DataError.exit_code
    else:
        code = 0
    # stdout is flushed here, not at interpreter exit, where a failure (`> /dev/full`) is a traceback
    try:
        sys.stdout.flush()
    except OSError as exc:
        if not code:  # else the command's own error line already said it
            report_error(DataError(f"cannot write the output to stdout: {exc.strerror or exc}"))
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the unwritten rest goes nowhere
        code = code or DataError.exit_code
    except KeyboardInterrupt:
        code = 130
    if code == 130 and not _state["interrupted"]:  # typer turns Ctrl-C outside a command into a silent 130
        sys.stderr.write("interrupted\n")
    if _state["interrupted"]:
        _end_now(code)
    sys.exit(code)


def _end_now(code: int) -> NoReturn:
    """Exit without the interpreter's teardown, after a command was stopped by a signal.

    What the stopped command keeps is on disk by now (train: last.pt, train.log, the lock released). A signal
    sent to the whole process group (Ctrl-C in a terminal, a batch scheduler) kills the loader's workers too, and
    the threads that talked to them then race the interpreter's teardown: seen as 'Fatal Python error:
    PyThreadState_Get' (exit -6) or a stray KeyboardInterrupt (exit -2) instead of the documented code.
    """
    import logging
    import os

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code if isinstance(code, int) else 1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

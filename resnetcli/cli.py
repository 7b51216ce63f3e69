"""The `resnetcli` command line: a thin Typer shell over plain functions.

Nothing here imports torch: `resnetcli --help` must answer at once, and each command imports only
what it uses, inside its own module (resnetcli/commands/).
"""

from __future__ import annotations

import re
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from resnetcli import __version__
from resnetcli.errors import DataError, ResnetCliError

#: set by the --verbose callback; read when an error reaches the CLI boundary
_state = {"verbose": False}


def verbose() -> bool:
    return _state["verbose"]


#: Typer vendors click and exports only BadParameter of its exceptions; the usage error it derives from is
#: what every bad or missing option and unknown command raises (public API, no import of its private modules)
_ParseError: Any = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


class _Group(TyperGroup):
    """Catches ResnetCliError once, for the console script and for CliRunner alike."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _ParseError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # `resnetcli train` alone: help, as typer prints it
                raise  # (typer itself recognises this one by name, without importing it)
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
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP where a command asks (resnetcli/signals.py)
            from resnetcli.console import err
            from resnetcli.signals import exit_code

            err.print(f"[red]interrupted{f' ({exc})' if str(exc) else ''}[/]")
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


def _register() -> None:
    # Each command lives in its own module; importing them is cheap (typer + pathlib only).
    from resnetcli.commands import export, listing, lr_find, predict, preprocess, runs, summarize, test, train

    app.command("preprocess")(preprocess.preprocess_command)
    app.command("train")(train.train_command)
    app.command("lr-find")(lr_find.lr_find_command)
    app.command("test")(test.test_command)
    app.command("predict")(predict.predict_command)
    app.command("export")(export.export_command)
    app.command("summarize")(summarize.summarize_command)
    from resnetcli.commands import doctor, report

    app.command("report")(report.report_command)
    app.command("doctor")(doctor.doctor_command)
    app.command("list")(listing.list_command)
    app.command("runs")(runs.runs_command)


_register()


def main() -> None:
    """Console-script entry point."""
    for stream in (sys.stdout, sys.stderr):  # an ASCII-only locale: escape what it cannot show, never crash
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        app(prog_name="resnetcli")
    except SystemExit as exc:
        code = exc.code
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
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The `resnetcli` command line: a thin Typer shell over plain functions.

Nothing here imports torch: `resnetcli --help` must answer at once, and each command imports only
what it uses, inside its own module (resnetcli/commands/).
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from resnetcli import __version__
from resnetcli.errors import ResnetCliError

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
        except KeyboardInterrupt:
            from resnetcli.console import err

            err.print("[red]interrupted[/]")
            raise typer.Exit(130) from None

    def list_commands(self, ctx: typer.Context) -> list[str]:
        # In the order a user meets them, not alphabetical.
        return list(self.commands)


def report_error(exc: BaseException) -> None:
    from rich.markup import escape

    from resnetcli.console import err

    if verbose():
        err.print_exception(show_locals=False)
    message = " ".join(str(exc).split())  # one line, whatever the raiser wrote
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
    app(prog_name="resnetcli")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

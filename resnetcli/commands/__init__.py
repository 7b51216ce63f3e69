"""One module per subcommand: Typer signatures that hand off to plain functions elsewhere in the package.

These modules must not import torch at import time (`resnetcli --help` imports all of them).
"""

"""YAML reading and KEY=VALUE options given on the command line (for example --arch-option shortcut=B)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from resnetcli.errors import UsageError


class _SafeLoader(yaml.SafeLoader):
    """safe_load, but `1e-5` is a float: PyYAML follows YAML 1.1, which wants a dot (`1.0e-5`)."""


_SafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    """yaml.safe_load with YAML 1.2's reading of exponent floats; never constructs Python objects."""
    return yaml.load(text, Loader=_SafeLoader)  # noqa: S506 - _SafeLoader is a SafeLoader


def parse_key_values(items: list[str] | None, flag: str) -> dict[str, Any]:
    """Turn ["depth=74", "plain=true"] into {"depth": 74, "plain": True}; values are YAML scalars or lists."""
    result: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{flag} expects KEY=VALUE, got '{item}'")
        try:
            value = load_yaml(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        result[key.strip().replace("-", "_")] = value
    return result

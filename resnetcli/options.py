"""Parsing KEY=VALUE options given on the command line (for example --arch-option shortcut=B)."""

from __future__ import annotations

from typing import Any

import yaml

from resnetcli.errors import UsageError


def parse_key_values(items: list[str] | None, flag: str) -> dict[str, Any]:
    """Turn ["depth=74", "plain=true"] into {"depth": 74, "plain": True}; values are YAML scalars or lists."""
    result: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{flag} expects KEY=VALUE, got '{item}'")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        result[key.strip().replace("-", "_")] = value
    return result

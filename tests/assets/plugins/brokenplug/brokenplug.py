"""A plugin whose module raises on import: resnetcli must report it and keep working."""

raise ImportError("brokenplug needs a library that is not installed")

"""Entry-point registry: architectures, augmentations, optimizers, schedulers and datasets.

resnetcli's own built-ins are declared in its pyproject.toml under the same entry-point groups a
third-party plugin uses, so every run exercises the plugin mechanism. Discovery reads metadata only;
an entry's module is imported the first time that entry is used, and a failure to import is reported
with the distribution's name instead of taking the whole tool down (as flake8's plugin finder does).
"""

from __future__ import annotations

import difflib
import importlib.metadata as md
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from resnetcli.errors import PluginError, UsageError

#: kind (as typed on the command line) -> entry-point group
GROUPS: dict[str, str] = {
    "architectures": "resnetcli.architectures",
    "augmentations": "resnetcli.augmentations",
    "optimizers": "resnetcli.optimizers",
    "schedulers": "resnetcli.schedulers",
    "datasets": "resnetcli.datasets",
}

_SINGULAR = {
    "architectures": "architecture",
    "augmentations": "augmentation",
    "optimizers": "optimizer",
    "schedulers": "scheduler",
    "datasets": "dataset",
}


@dataclass
class Entry:
    """One registered name: where it comes from, loaded on first use."""

    kind: str
    name: str
    value: str  # "module:attr", as declared
    distribution: str
    _ep: md.EntryPoint = field(repr=False)
    _loaded: Any = field(default=None, repr=False)

    def load(self) -> Callable[..., Any]:
        if self._loaded is None:
            try:
                obj = self._ep.load()
            except Exception as exc:  # a plugin may raise anything on import
                raise PluginError(
                    f"{_SINGULAR[self.kind]} '{self.name}' from distribution '{self.distribution}' "
                    f"failed to load ({self.value}): {type(exc).__name__}: {exc}"
                ) from exc
            if not callable(obj):
                raise PluginError(
                    f"{_SINGULAR[self.kind]} '{self.name}' from distribution '{self.distribution}' "
                    f"points at {self.value}, which is a {type(obj).__name__}, not a callable"
                )
            self._loaded = obj
        return self._loaded

    def description(self, *, load: bool = False) -> str:
        """First line of the entry's docstring: read from its module's source without importing it, unless
        `load`, already loaded, or the source cannot tell (then the entry is imported)."""
        if not load and self._loaded is None:
            from resnetcli.plugin_docs import SourceProblem, source_description

            try:
                found = source_description(self.value)
            except SourceProblem as exc:
                raise PluginError(
                    f"{_SINGULAR[self.kind]} '{self.name}' from distribution '{self.distribution}' "
                    f"cannot load ({self.value}): {exc} (read from its source; `resnetcli --verbose list` "
                    "imports it)"
                ) from None
            if found is not None:
                return found
        doc = getattr(self.load(), "__doc__", None) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""


@dataclass
class Registry:
    """The entries of one kind, found through importlib.metadata."""

    kind: str
    entries: dict[str, Entry]
    #: names declared by more than one distribution -> those distributions; such names are refused
    conflicts: dict[str, list[str]]

    def names(self) -> list[str]:
        return sorted(self.entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries[name] for name in self.names())

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def entry(self, name: str) -> Entry:
        if name in self.conflicts:
            dists = " and ".join(f"'{d}'" for d in self.conflicts[name])
            raise PluginError(
                f"{_SINGULAR[self.kind]} '{name}' is registered by both {dists}; "
                "uninstall one of them to use this name"
            )
        if name not in self.entries:
            raise UsageError(unknown_name_message(_SINGULAR[self.kind], name, self.names()))
        return self.entries[name]

    def get(self, name: str) -> Callable[..., Any]:
        """The loaded callable registered under `name`."""
        return self.entry(name).load()


def unknown_name_message(what: str, name: str, known: list[str]) -> str:
    """'unknown architecture 'resnet5'; did you mean resnet50, resnet56? known: ...' on one line."""
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    listing = ", ".join(known) if known else "(none registered)"
    return f"unknown {what} '{name}'{hint} Known: {listing}"


def _distribution_name(ep: md.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return _metadata_name(dist) if dist is not None else "<unknown distribution>"


@cache
def _metadata_name(dist: md.Distribution) -> str:
    # one METADATA parse per distribution, not per entry: the parse was most of `resnetcli list`'s own time
    return dist.metadata["Name"]


@cache
def registry(kind: str) -> Registry:
    """Discover (without importing anything) every entry of `kind`."""
    if kind not in GROUPS:
        raise UsageError(unknown_name_message("registry kind", kind, sorted(GROUPS)))
    found: dict[str, list[Entry]] = {}
    for ep in md.entry_points(group=GROUPS[kind]):
        entry = Entry(kind=kind, name=ep.name, value=ep.value, distribution=_distribution_name(ep), _ep=ep)
        found.setdefault(ep.name, []).append(entry)
    entries: dict[str, Entry] = {}
    conflicts: dict[str, list[str]] = {}
    for name, candidates in found.items():
        dists = sorted({c.distribution for c in candidates})
        if len(dists) > 1:
            conflicts[name] = dists
        else:
            entries[name] = candidates[0]
    return Registry(kind=kind, entries=entries, conflicts=conflicts)


def get(kind: str, name: str) -> Callable[..., Any]:
    """Shorthand: the loaded callable for `name` in `kind` (for example get("architectures", "resnet50"))."""
    return registry(kind).get(name)

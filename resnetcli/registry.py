"""Entry-point registry: architectures, augmentations, optimizers, schedulers and datasets.

resnetcli's own built-ins are declared in its pyproject.toml under the same entry-point groups a
third-party plugin uses, so every run exercises the plugin mechanism. Discovery reads metadata only;
an entry's module is imported the first time that entry is used, and a failure to import is reported
with the distribution's name instead of taking the whole tool down (as flake8's plugin finder does).

Every caller builds an entry the same way, `Entry.build(*args, options=..., **fixed)`: the entry reads its
builder's signature once when it loads, refuses options the builder does not take (UsageError naming what
it takes), and reports a third-party builder's own failure as one PluginError line naming its distribution.
"""

from __future__ import annotations

import difflib
import importlib.metadata as md
import inspect
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from resnetcli.errors import PluginError, ResnetCliError, UsageError

#: kind (as typed on the command line) -> entry-point group
GROUPS: dict[str, str] = {
    "architectures": "resnetcli.architectures",
    "augmentations": "resnetcli.augmentations",
    "optimizers": "resnetcli.optimizers",
    "schedulers": "resnetcli.schedulers",
    "datasets": "resnetcli.datasets",
    "loggers": "resnetcli.loggers",
}

_SINGULAR = {
    "architectures": "architecture",
    "augmentations": "augmentation",
    "optimizers": "optimizer",
    "schedulers": "scheduler",
    "datasets": "dataset",
    "loggers": "logger",
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
    #: keyword names the builder takes, read from its signature when it loads
    _params: tuple[str, ...] = field(default=(), repr=False)
    #: the names positional arguments fill, in order
    _positional: tuple[str, ...] = field(default=(), repr=False)
    #: the builder takes **kwargs (or has no readable signature): any option is passed through to it
    _takes_any: bool = field(default=False, repr=False)

    @property
    def label(self) -> str:
        """"optimizer 'adam' from distribution 'resnetcli'", the way every message names an entry."""
        return f"{_SINGULAR[self.kind]} '{self.name}' from distribution '{self.distribution}'"

    def load(self) -> Callable[..., Any]:
        if self._loaded is None:
            try:
                obj = self._ep.load()
            except (Exception, SystemExit) as exc:  # a plugin may raise anything on import, even parse sys.argv
                raise PluginError(f"{self.label} failed to load ({self.value}): {type(exc).__name__}: {exc}") from exc
            if not callable(obj):
                raise PluginError(
                    f"{self.label} points at {self.value}, which is a {type(obj).__name__}, not a callable"
                )
            self._params, self._positional, self._takes_any = _keywords(obj)
            self._loaded = obj
        return self._loaded

    def accepts(self, option: str) -> bool:
        """Does the builder take the keyword `option`?"""
        self.load()
        return self._takes_any or option in self._params

    def build(
        self, *args: Any, options: Mapping[str, Any] | None = None, expect: type | None = None, **fixed: Any
    ) -> Any:
        """Call the builder with the caller's `args`/`fixed` arguments and the user's `options`.

        Options it does not take are a UsageError listing the ones it does (the caller's own arguments
        excluded); a third-party builder that raises is one PluginError line; `expect` checks the result.
        """
        builder = self.load()
        options = dict(options or {})
        taken = set(self._positional[: len(args)]) | set(fixed)
        unknown = sorted(k for k in options if k in taken or not self.accepts(k))
        if unknown:
            accepted = [p for p in self._params if p not in taken]
            more = " (and any keyword its builder forwards)" if self._takes_any else ""
            raise UsageError(
                f"{self.label} does not take option(s) {', '.join(unknown)}; "
                f"it takes: {', '.join(accepted) or 'none'}{more}"
            )
        try:
            result = builder(*args, **fixed, **options)
        except ResnetCliError:
            raise
        except (Exception, SystemExit) as exc:  # a plugin may raise anything, even sys.exit from argparse
            if self.distribution != _OWN_DISTRIBUTION:
                raise PluginError(f"{self.label} failed: {type(exc).__name__}: {exc}") from exc
            if options and isinstance(exc, (TypeError, ValueError)):  # torch refusing a value the user gave
                raise UsageError(f"{self.label} refused its options {options}: {exc}") from exc
            raise  # a bug of our own keeps its traceback
        if expect is not None and not isinstance(result, expect):
            raise PluginError(
                f"{self.label} returned a {type(result).__name__}, not a {expect.__module__}.{expect.__qualname__}"
            )
        return result

    def description(self, *, load: bool = False) -> str:
        """First line of the entry's docstring: read from its module's source without importing it, unless
        `load`, already loaded, or the source cannot tell (then the entry is imported)."""
        if not load and self._loaded is None:
            from resnetcli.plugin_docs import SourceProblem, source_description

            try:
                found = source_description(self.value)
            except SourceProblem as exc:
                raise PluginError(
                    f"{self.label} cannot load ({self.value}): {exc} (read from its source; "
                    "`resnetcli --verbose list` imports it)"
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

    def build(self, name: str, *args: Any, options: Mapping[str, Any] | None = None, expect: type | None = None,
              **fixed: Any) -> Any:
        """Shorthand for `self.entry(name).build(...)`."""
        return self.entry(name).build(*args, options=options, expect=expect, **fixed)


_OWN_DISTRIBUTION = "resnetcli"
_OPTION_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
_POSITIONAL_KINDS = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _keywords(builder: Callable[..., Any]) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """(keyword names, positional names, takes **kwargs) of a builder, read once from its signature."""
    try:
        params = inspect.signature(builder).parameters.values()
    except (TypeError, ValueError):  # some C callables have no signature: let the call decide
        return (), (), True
    keywords = tuple(p.name for p in params if p.kind in _OPTION_KINDS)
    positional = tuple(p.name for p in params if p.kind in _POSITIONAL_KINDS)
    return keywords, positional, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


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
def _entry_points(path: tuple[str, ...]) -> md.EntryPoints:
    # one scan of every distribution for all kinds (a scan per kind was most of `resnetcli list`); keyed on
    # sys.path, so that a plugin folder added to it later is still found
    return md.entry_points()


@cache
def registry(kind: str) -> Registry:
    """Discover (without importing anything) every entry of `kind`."""
    if kind not in GROUPS:
        raise UsageError(unknown_name_message("registry kind", kind, sorted(GROUPS)))
    found: dict[str, list[Entry]] = {}
    for ep in _entry_points(tuple(sys.path)).select(group=GROUPS[kind]):
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

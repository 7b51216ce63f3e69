"""An entry point's one-line description, read from its module's source without importing it.

`resnetcli list` must answer at once: importing every entry would import torch and every plugin (seconds,
and a broken plugin's side effects). The module's file is located the way `import` would locate it, but
through finders only (importlib.util.find_spec on a dotted name would import the parent packages), then
parsed with `ast`. Where the source cannot tell (an extension module, a name bound at run time), the
answer is None and the caller may import the entry instead.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from functools import cache
from importlib.machinery import ModuleSpec
from pathlib import Path

#: how many `from x import y` re-exports are followed before giving up
_MAX_HOPS = 8


class SourceProblem(Exception):
    """The source shows that importing the entry would fail; str(exc) says why."""


def source_description(value: str) -> str | None:
    """First docstring line of the object named by an entry point's value ("pkg.module:attr").

    "" when the object is found but has no docstring (or is bound by an assignment, whose docstring would
    be its type's), None when the source cannot tell; raises SourceProblem when import would fail.
    """
    module, _, attr = value.partition(":")
    module, attr = module.strip(), attr.strip()
    return _describe(module, attr.split(".") if attr else [], hops=0)


def _describe(module: str, path: list[str], hops: int) -> str | None:
    parts = module.split(".")
    for depth in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__.py and a/b/__init__.py first
        outer = _parse(".".join(parts[:depth]))
        raised = _top_level_raise(outer) if outer is not None else None
        if raised:
            raise SourceProblem(f"module {'.'.join(parts[:depth])} raises {raised} on import")
    tree = _parse(module)
    if tree is None:
        return None
    if not path:
        return _first_line(ast.get_docstring(tree))
    node = _binding(tree.body, path[0])
    if node is None and hops < _MAX_HOPS:  # maybe from a `from x import *`
        for star in (s for s in tree.body if isinstance(s, ast.ImportFrom) and s.names[0].name == "*"):
            try:
                found = _describe(_absolute(module, star, is_package=_is_package(module)), path, hops + 1)
            except SourceProblem:
                continue
            if found is not None:
                return found
    if isinstance(node, ast.ImportFrom) and hops < _MAX_HOPS:
        source = _absolute(module, node, is_package=_is_package(module))
        original = next(a.name for a in node.names if (a.asname or a.name) == path[0])
        try:
            return _describe(source, [original, *path[1:]], hops + 1)
        except SourceProblem:
            return None  # the name may be a submodule, or found another way at run time: let import decide
    for name in path[1:]:  # "module:Class.method"
        if not isinstance(node, ast.ClassDef):
            break
        node = _binding(node.body, name)
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return _first_line(ast.get_docstring(node))
    if isinstance(node, ast.Assign | ast.AnnAssign):
        return ""
    return None


def _first_line(doc: str | None) -> str:
    doc = (doc or "").strip()
    return doc.splitlines()[0] if doc else ""


def _spec(module: str) -> ModuleSpec | None:
    """The module's spec from the finders, importing nothing (not even the parent packages)."""
    loaded = sys.modules.get(module)
    if loaded is not None:
        return getattr(loaded, "__spec__", None)
    parent, _, _ = module.rpartition(".")
    if not parent:
        return importlib.util.find_spec(module)  # a top-level name: find_spec imports nothing
    parent_spec = _spec(parent)
    if parent_spec is None or parent_spec.submodule_search_locations is None:
        return None
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        spec = find(module, list(parent_spec.submodule_search_locations))
        if spec is not None:
            return spec
    return None


def _is_package(module: str) -> bool:
    spec = _spec(module)
    return spec is not None and spec.submodule_search_locations is not None


@cache  # entries of one module share its tree
def _parse(module: str) -> ast.Module | None:
    try:
        spec = _spec(module)
    except (ImportError, ValueError) as exc:  # a malformed name, or a finder that refuses it
        raise SourceProblem(f"module {module} cannot be found: {exc}") from None
    if spec is None:
        raise SourceProblem(f"ModuleNotFoundError: no module named '{module}'")
    if spec.origin is None or not spec.origin.endswith(".py"):
        return None  # a namespace package, an extension or a frozen module: no source to read
    try:
        source = importlib.util.decode_source(Path(spec.origin).read_bytes())
    except (OSError, UnicodeDecodeError, SyntaxError):
        return None
    try:
        return ast.parse(source, filename=spec.origin)
    except SyntaxError as exc:
        raise SourceProblem(f"SyntaxError in {spec.origin}, line {exc.lineno}: {exc.msg}") from None
    except ValueError:  # null bytes
        return None


def _top_level_raise(tree: ast.Module) -> str | None:
    """'ImportError: message' when the module's own body raises unconditionally."""
    for stmt in tree.body:
        if isinstance(stmt, ast.Raise) and stmt.exc is not None:
            exc = stmt.exc
            call_args = exc.args if isinstance(exc, ast.Call) else []
            name = ast.unparse(exc.func if isinstance(exc, ast.Call) else exc)
            message = ""
            if call_args and isinstance(call_args[0], ast.Constant) and isinstance(call_args[0].value, str):
                message = call_args[0].value
            return f"{name}: {message}" if message else name
    return None


def _binding(body: list[ast.stmt], name: str) -> ast.stmt | None:
    """The last top-level statement binding `name` (looking into if/try/with blocks, not functions)."""
    found: ast.stmt | None = None
    for stmt in body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if stmt.name == name:
                found = stmt
        elif isinstance(stmt, ast.ImportFrom):
            if any((a.asname or a.name) == name for a in stmt.names):
                found = stmt
        elif isinstance(stmt, ast.Import):
            if any((a.asname or a.name.partition(".")[0]) == name for a in stmt.names):
                found = None  # a module object: not a callable entry, let import say so
        elif isinstance(stmt, ast.Assign):
            if any(isinstance(t, ast.Name) and t.id == name for t in stmt.targets):
                found = stmt
        elif isinstance(stmt, ast.AnnAssign):
            if isinstance(stmt.target, ast.Name) and stmt.target.id == name and stmt.value is not None:
                found = stmt
        elif isinstance(stmt, ast.Try):
            # the try body is what normally runs; a handler's binding is the fallback
            inner = _binding(stmt.body + stmt.orelse + stmt.finalbody, name)
            if inner is None:
                inner = next(filter(None, (_binding(h.body, name) for h in stmt.handlers)), None)
            found = inner or found
        elif isinstance(stmt, ast.If | ast.With):
            found = _binding(stmt.body + getattr(stmt, "orelse", []), name) or found
    return found


def _absolute(module: str, node: ast.ImportFrom, *, is_package: bool) -> str:
    """The absolute module name of `from <node.module> import ...` written inside `module`."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
    return ".".join([*base, node.module] if node.module else base)

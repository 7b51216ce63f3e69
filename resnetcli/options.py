"""YAML reading and KEY=VALUE options given on the command line (for example --arch-option shortcut=B)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from resnetcli.errors import UsageError


class _SafeLoader(yaml.SafeLoader):
    """safe_load, but `1e-5` is a float: PyYAML follows YAML 1.1, which wants a dot (`1.0e-5`); and no flow
    collection deeper than MAX_FLOW_DEPTH (the scanner's own count: brackets in strings and comments are not)."""

    def fetch_flow_collection_start(self, TokenClass: type) -> None:  # PyYAML's signature
        if self.flow_level >= MAX_FLOW_DEPTH:
            raise YamlTooLarge(f"its collections nest too deeply (more than {MAX_FLOW_DEPTH} `[` or `{{` inside "
                               "each other)")
        super().fetch_flow_collection_start(TokenClass)  # type: ignore[misc]


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


#: a config is a screenful of settings: these bound what a hostile one can make the reader build. PyYAML reads
#: about 100,000 characters a second, so the longest document allowed is refused or read within a second.
MAX_YAML_CHARS = 100_000
MAX_YAML_NODES = 100_000
#: flow collections (`[`, `{`) inside each other; PyYAML's scanner is quadratic in this depth (5,000 took 1.2 s)
#: and its composer recursive, so the scanner refuses to open one more (_SafeLoader)
MAX_FLOW_DEPTH = 100


class YamlTooLarge(yaml.YAMLError):
    """A document larger than MAX_YAML_CHARS, nested too deeply, or whose aliases expand to more than
    MAX_YAML_NODES values."""


def _expanded_nodes(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many values `node` stands for once every alias is expanded (what a reader walking it visits)."""
    key = id(node)
    if key in memo:
        if memo[key] < 0:  # an alias inside its own anchor: endless once expanded
            raise YamlTooLarge("an alias refers to the collection that holds it (a recursive structure)")
        return memo[key]
    memo[key] = -1
    total = 1
    if isinstance(node, yaml.SequenceNode):
        total += sum(_expanded_nodes(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        total += sum(_expanded_nodes(k, memo) + _expanded_nodes(v, memo) for k, v in node.value)
    if total > MAX_YAML_NODES:
        raise YamlTooLarge(f"its aliases expand to more than {MAX_YAML_NODES} values (an alias bomb?)")
    memo[key] = total
    return total


def load_yaml(text: str) -> Any:
    """yaml.safe_load with YAML 1.2's reading of exponent floats; never constructs Python objects.

    safe_load shares aliased values, but whatever walks the result (validation, printing) expands them: a
    few hundred bytes of nested aliases ("billion laughs") stand for billions of values. Refused here, with
    over-long documents, as YamlTooLarge (a yaml.YAMLError, so callers report it as invalid YAML).
    """
    if len(text) > MAX_YAML_CHARS:
        raise YamlTooLarge(f"{len(text)} characters is more than the {MAX_YAML_CHARS} a config may have")
    loader = _SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_nodes(node, {})
        return loader.construct_document(node)
    except RecursionError:  # PyYAML composes and constructs recursively
        # block collections (`- - - x`, indentation), which the scanner's flow level does not count
        raise YamlTooLarge("its collections nest too deeply (hundreds of levels inside each other)") from None
    finally:
        loader.dispose()


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

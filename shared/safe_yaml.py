"""A YAML loader that is safe on hostile input: bounded alias expansion, and Kubernetes' scalar types.

Manifests come from git, and anyone who can push can write a "billion laughs" document: a few lines of
nested anchors and aliases that expand to 10^9 nodes as soon as anything walks the loaded structure
(the JSON encoding for the cache, the diff). PyYAML shares aliased nodes while loading, so the blow-up
only happens later, far from the file. This module counts, from the parser's event stream, how many
nodes every alias would expand to and refuses the document before it is constructed. Manifests rarely
use anchors, so a small budget costs legitimate users nothing, and files without `&` skip the check.

It also loads timestamps as strings, as Kubernetes' own YAML decoder does (a `date: 2024-01-01` in a
ConfigMap is a string to the API server, and a `datetime` would not survive JSON).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from shared.errors import StallingError

# Nodes that aliases may add on top of the document's own nodes; a billion-laughs file needs 10^9.
MAX_ALIAS_EXPANSION = 100_000
MAX_ALIASES = 10_000

_Base: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ManifestLoader(_Base):  # type: ignore[misc,valid-type]
    """libyaml's safe loader without the timestamp resolver (timestamps stay strings, as in Kubernetes)."""


ManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _Base.yaml_implicit_resolvers.items()
}


def _line(mark: Any) -> int | None:
    return int(mark.line) + 1 if mark is not None else None


def check_alias_budget(text: str, source: str, *, max_expansion: int = MAX_ALIAS_EXPANSION,
                       max_aliases: int = MAX_ALIASES) -> None:
    """Raise StallingError when the aliases in `text` would expand past the budget.

    Walks parser events only (no node graph is built): each anchored node's expanded size is recorded
    when it closes, and each alias adds the size of its anchor. Work is linear in the file size.
    """
    sizes: dict[str, int] = {}
    stack: list[list[Any]] = []  # [anchor, expanded size so far]
    expanded = 0
    aliases = 0
    try:
        for event in yaml.parse(text, Loader=_Base):
            if isinstance(event, yaml.DocumentStartEvent):
                sizes.clear()
            elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                stack.append([event.anchor, 1])
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                anchor, size = stack.pop()
                if anchor:
                    sizes[anchor] = size
                if stack:
                    stack[-1][1] += size
            elif isinstance(event, yaml.ScalarEvent):
                if event.anchor:
                    sizes[event.anchor] = 1
                if stack:
                    stack[-1][1] += 1
            elif isinstance(event, yaml.AliasEvent):
                aliases += 1
                size = sizes.get(event.anchor or "", 1)
                expanded += size
                if stack:
                    stack[-1][1] += size
                if expanded > max_expansion or aliases > max_aliases:
                    raise StallingError(
                        f"YAML aliases expand to more than {max_expansion} nodes (or more than {max_aliases} "
                        "aliases): refusing a possible alias bomb",
                        path=source, line=_line(event.start_mark))
    except yaml.YAMLError as exc:
        raise yaml_error(exc, source) from None


def yaml_error(exc: yaml.YAMLError, source: str) -> StallingError:
    """A YAML syntax error as a StallingError naming the file and line, without quoting the content."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    text = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
    return StallingError(text, path=source, line=_line(mark))


_STR_TAG = "tag:yaml.org,2002:str"


def _build(loader: Any, node: yaml.Node) -> Any:  # noqa: ANN401 - any YAML value
    """Build plain dicts/lists/scalars from a node tree: 3x faster than PyYAML's generic constructor.

    Only used for documents without anchors or merge keys, where every node is built exactly once.
    """
    if isinstance(node, yaml.ScalarNode):
        return node.value if node.tag == _STR_TAG else loader.construct_object(node)
    if isinstance(node, yaml.MappingNode):
        result = {}
        for key_node, value_node in node.value:
            key = _build(loader, key_node)
            try:
                result[key] = _build(loader, value_node)
            except TypeError:
                raise StallingError("invalid YAML: a mapping key must be a scalar", path=loader.name,
                                    line=_line(key_node.start_mark)) from None
        return result
    return [_build(loader, item) for item in node.value]


def load_all(text: str, source: str) -> Iterator[tuple[Any, int | None]]:
    """Every document of `text` with the 1-based line it starts at, after the alias budget check.

    Errors name `source` and the line.
    """
    plain = "&" not in text and "<<" not in text
    if not plain:
        check_alias_budget(text, source)
    loader = ManifestLoader(text)
    loader.name = source
    try:
        while loader.check_node():
            node = loader.get_node()
            line = _line(node.start_mark) if node is not None else None
            if plain and node is not None:
                yield _build(loader, node), line
                loader.constructed_objects = {}
            else:
                yield loader.construct_document(node), line
    except yaml.YAMLError as exc:
        raise yaml_error(exc, source) from None
    finally:
        loader.dispose()

"""Loading a user's YAML or JSON safely: bounded alias expansion, nesting and size, and Kubernetes' scalars.

Manifests come from git, and anyone who can push can write a "billion laughs" document: a few lines of
nested anchors and aliases that expand to 10^9 nodes as soon as anything walks the loaded structure
(the JSON encoding for the cache, the diff). PyYAML shares aliased nodes while loading, so the blow-up
only happens later, far from the file. This module counts, from the parser's event stream, how many
nodes every alias would expand to and refuses the document before it is constructed. Manifests rarely
use anchors, so a small budget costs legitimate users nothing, and files without `&` skip the check.

Deep nesting is refused too (`[[[[...` or 1000 nested JSON objects), with a message instead of Python's
RecursionError from whatever walks the structure next. The API's request bodies go through the same
loader with `REQUEST_LIMITS`, which also bound the node count, so one request's parse is bounded work.

It also loads timestamps as strings, as Kubernetes' own YAML decoder does (a `date: 2024-01-01` in a
ConfigMap is a string to the API server, and a `datetime` would not survive JSON).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from shared.core.errors import StallingError

# Nodes that aliases may add on top of the document's own nodes; a billion-laughs file needs 10^9.
MAX_ALIAS_EXPANSION = 100_000
MAX_ALIASES = 10_000
# Nesting of mappings and sequences; real manifests (CRD schemas included) stay well under it, and it keeps
# every recursive walk of a loaded document far from Python's recursion limit.
MAX_DEPTH = 100


class DocumentLimits(BaseModel):
    """How much structure one text may have before it is refused; `max_nodes=None` counts nothing."""

    model_config = ConfigDict(frozen=True)

    max_depth: int = Field(default=MAX_DEPTH, ge=1)
    max_nodes: int | None = Field(default=None, ge=1)
    max_alias_expansion: int = Field(default=MAX_ALIAS_EXPANSION, ge=0)
    max_aliases: int = Field(default=MAX_ALIASES, ge=0)


# Manifests from git: their size is capped in bytes per file and per app (see shared.source.manifests).
MANIFEST_LIMITS = DocumentLimits()
# A request body (an Application, a sync request): an Application has tens of nodes, a large inline Helm
# `valuesObject` thousands; aliases are rare in a hand-written request.
REQUEST_LIMITS = DocumentLimits(max_nodes=100_000, max_alias_expansion=10_000, max_aliases=1_000)

_Base: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class DocumentTooComplex(StallingError):
    """A well-formed text refused for its structure: too deep, too many nodes, or an alias bomb."""


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
    """Raise StallingError when the aliases in `text` would expand past the budget (or it nests too deep)."""
    check_structure(text, source, DocumentLimits(max_alias_expansion=max_expansion, max_aliases=max_aliases))


def check_structure(text: str, source: str, limits: DocumentLimits = MANIFEST_LIMITS) -> None:
    """Raise DocumentTooComplex when `text` passes `limits`: alias expansion, nesting depth, node count.

    Walks parser events only (no node graph is built, nothing recurses): each anchored node's expanded
    size and height are recorded when it closes, and each alias adds its anchor's. Work is linear in the
    file size and stops at the first limit passed.
    """
    anchors: dict[str, tuple[int, int]] = {}  # anchor -> (expanded nodes, height in collections)
    stack: list[list[Any]] = []  # per open collection: [anchor, expanded size so far, tallest child]
    nodes = 0
    expanded = 0
    aliases = 0

    def refuse(message: str, event: yaml.Event) -> DocumentTooComplex:
        return DocumentTooComplex(message, path=source, line=_line(event.start_mark))

    try:
        for event in yaml.parse(text, Loader=_Base):
            if isinstance(event, yaml.DocumentStartEvent):
                anchors.clear()
            elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                nodes += 1
                stack.append([event.anchor, 1, 0])
                if len(stack) > limits.max_depth:
                    raise refuse(f"YAML nesting is deeper than {limits.max_depth} levels", event)
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                anchor, size, tallest = stack.pop()
                if anchor:
                    anchors[anchor] = (size, tallest + 1)
                if stack:
                    stack[-1][1] += size
                    stack[-1][2] = max(stack[-1][2], tallest + 1)
            elif isinstance(event, yaml.ScalarEvent):
                nodes += 1
                if event.anchor:
                    anchors[event.anchor] = (1, 0)
                if stack:
                    stack[-1][1] += 1
            elif isinstance(event, yaml.AliasEvent):
                aliases += 1
                size, height = anchors.get(event.anchor or "", (1, 0))
                expanded += size
                if stack:
                    stack[-1][1] += size
                    stack[-1][2] = max(stack[-1][2], height)
                if expanded > limits.max_alias_expansion or aliases > limits.max_aliases:
                    raise refuse(f"YAML aliases expand to more than {limits.max_alias_expansion} nodes (or more "
                                 f"than {limits.max_aliases} aliases): refusing a possible alias bomb", event)
                if len(stack) + height > limits.max_depth:
                    raise refuse(f"YAML nesting is deeper than {limits.max_depth} levels (through an alias)",
                                 event)
            if limits.max_nodes is not None and nodes + expanded > limits.max_nodes:
                raise refuse(f"the document has more than {limits.max_nodes} nodes", event)
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


def _build(loader: Any, node: yaml.Node, depth_left: int) -> Any:  # noqa: ANN401 - any YAML value
    """Build plain dicts/lists/scalars from a node tree: 3x faster than PyYAML's generic constructor.

    Only used for documents without anchors or merge keys, where every node is built exactly once.
    `depth_left` is how many more levels of mappings and sequences may open.
    """
    if isinstance(node, yaml.ScalarNode):
        return node.value if node.tag == _STR_TAG else loader.construct_object(node)
    if depth_left <= 0:
        raise DocumentTooComplex(f"YAML nesting is deeper than {loader.max_depth} levels", path=loader.name,
                                 line=_line(node.start_mark))
    if isinstance(node, yaml.MappingNode):
        result = {}
        for key_node, value_node in node.value:
            key = _build(loader, key_node, depth_left - 1)
            try:
                result[key] = _build(loader, value_node, depth_left - 1)
            except TypeError:
                raise StallingError("invalid YAML: a mapping key must be a scalar", path=loader.name,
                                    line=_line(key_node.start_mark)) from None
        return result
    return [_build(loader, item, depth_left - 1) for item in node.value]


def load_all(text: str, source: str, limits: DocumentLimits = MANIFEST_LIMITS, *,
             check_all: bool = False) -> Iterator[tuple[Any, int | None]]:
    """Every document of `text` with the 1-based line it starts at, after the structure check.

    The check walks the parser's events first when `text` has anchors or merge keys, or always with
    `check_all` (needed for `limits.max_nodes`); otherwise depth is checked while building. Errors name
    `source` and the line.
    """
    plain = "&" not in text and "<<" not in text
    if check_all or not plain:
        check_structure(text, source, limits)
    loader = ManifestLoader(text)
    loader.name = source
    loader.max_depth = limits.max_depth
    try:
        while loader.check_node():
            node = loader.get_node()
            line = _line(node.start_mark) if node is not None else None
            if plain and node is not None:
                yield _build(loader, node, limits.max_depth), line
                loader.constructed_objects = {}
            else:
                yield loader.construct_document(node), line
    except yaml.YAMLError as exc:
        raise yaml_error(exc, source) from None
    finally:
        loader.dispose()


def load_document(text: str, source: str, limits: DocumentLimits = REQUEST_LIMITS) -> Any:  # noqa: ANN401
    """The one YAML document of `text` (None when it holds none), checked against `limits` in full."""
    docs = [doc for doc, _ in load_all(text, source, limits, check_all=True)]
    if len(docs) > 1:
        raise StallingError(f"expected one YAML document, found {len(docs)}", path=source)
    return docs[0] if docs else None


def load_json(data: str | bytes, source: str, limits: DocumentLimits = REQUEST_LIMITS) -> Any:  # noqa: ANN401
    """A JSON text (bytes in UTF-8/16/32), refused past `limits.max_depth` and `limits.max_nodes`."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise DocumentTooComplex(f"JSON nesting is deeper than {limits.max_depth} levels", path=source) from None
    except json.JSONDecodeError as exc:
        raise StallingError(f"invalid JSON: {exc.msg}", path=source, line=exc.lineno) from None
    except ValueError as exc:  # bytes that are no Unicode text
        raise StallingError(f"invalid JSON: {exc}", path=source) from None
    _check_tree(value, source, limits)
    return value


def _check_tree(value: Any, source: str, limits: DocumentLimits) -> None:  # noqa: ANN401
    """Depth and node count of a decoded JSON value, walked without recursion."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    nodes = 0
    while pending:
        item, depth = pending.pop()
        nodes += 1
        if limits.max_nodes is not None and nodes > limits.max_nodes:
            raise DocumentTooComplex(f"the document has more than {limits.max_nodes} nodes", path=source)
        if isinstance(item, dict | list):
            if depth >= limits.max_depth:
                raise DocumentTooComplex(f"JSON nesting is deeper than {limits.max_depth} levels", path=source)
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)

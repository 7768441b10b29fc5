"""Parsing a request body (scheduler.request_body over shared.core.safe_yaml): what is refused, and the message.

The HTTP behaviour is in test_hostile_clients.py; these pin the loader's limits one case at a time, including
the ones a plain recursive walk would turn into a RecursionError.
"""

from __future__ import annotations

import json

import pytest

from scheduler.request_body import InvalidBody, parse_document
from shared.core import safe_yaml
from shared.core.safe_yaml import REQUEST_LIMITS, DocumentLimits, DocumentTooComplex

YAML = "application/yaml"
JSON = "application/json"


def _nested_json(depth: int) -> bytes:
    return ('{"a":' * depth + "1" + "}" * depth).encode()


def _nested_yaml_block(depth: int) -> bytes:
    return "".join(" " * (2 * i) + "a:\n" for i in range(depth)).encode() + b" " * (2 * depth) + b"x\n"


@pytest.mark.parametrize(("body", "content_type", "expected"), [
    pytest.param(b"[" * 1000, YAML, "YAML nesting is deeper than 100 levels", id="yaml-open-brackets"),
    pytest.param(b"[" * 101 + b"]" * 101, YAML, "YAML nesting is deeper than 100 levels", id="yaml-101-flow"),
    pytest.param(_nested_yaml_block(101), YAML, "YAML nesting is deeper than 100 levels", id="yaml-101-block"),
    pytest.param(_nested_json(101), JSON, "JSON nesting is deeper than 100 levels", id="json-101"),
    pytest.param(_nested_json(5000), JSON, "JSON nesting is deeper than 100 levels", id="json-recursion"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, JSON, "JSON nesting is deeper than", id="json-100000"),
    pytest.param(_nested_json(101), YAML, "YAML nesting is deeper than 100 levels", id="json-as-yaml-101"),
    pytest.param(json.dumps([0] * 100_001).encode(), JSON, "more than 100000 nodes", id="json-nodes"),
    pytest.param(("[" + ", ".join(["0"] * 100_001) + "]").encode(), YAML, "more than 100000 nodes",
                 id="yaml-nodes"),
    pytest.param(b"a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [" + b", ".join([b"*a"] * 10) + b"]\nc: &c ["
                 + b", ".join([b"*b"] * 10) + b"]\nd: &d [" + b", ".join([b"*c"] * 10) + b"]\n", YAML,
                 "aliases expand to more than 10000 nodes", id="alias-bomb"),
    pytest.param(b"a: &a [[[[x]]]]\nb: " + b"[" * 97 + b"*a" + b"]" * 97 + b"\n", YAML,
                 "nesting is deeper than 100 levels (through an alias)", id="deep-through-alias"),
])
def test_refused_as_too_complex(body: bytes, content_type: str, expected: str):
    with pytest.raises(InvalidBody) as err:
        parse_document(body, content_type)
    assert err.value.message.startswith("the body is refused: "), err.value.message
    assert expected in err.value.message


@pytest.mark.parametrize(("body", "content_type", "expected"), [
    pytest.param(b"{not json", JSON, "invalid JSON", id="json-syntax"),
    pytest.param(b"{a: [", YAML, "invalid YAML", id="yaml-syntax"),
    pytest.param(b"\xff\xfe\xfd", YAML, "not UTF-8", id="yaml-bytes"),
    pytest.param(b"a: 1\n---\nb: 2\n", YAML, "expected one YAML document, found 2", id="two-documents"),
])
def test_refused_as_not_a_document(body: bytes, content_type: str, expected: str):
    with pytest.raises(InvalidBody) as err:
        parse_document(body, content_type)
    assert err.value.message.startswith("the body is not a JSON or YAML document: "), err.value.message
    assert expected in err.value.message


@pytest.mark.parametrize(("body", "content_type", "expected"), [
    pytest.param(b"", JSON, None, id="empty-json"),
    pytest.param(b"  \n", YAML, None, id="empty-yaml"),
    pytest.param(_nested_json(99), JSON, json.loads(_nested_json(99)), id="json-99-deep"),
    pytest.param(b"[" * 100 + b"]" * 100, YAML, json.loads(b"[" * 100 + b"]" * 100), id="yaml-100-deep"),
    pytest.param(b'{"dryRun": true}', "application/json; charset=utf-8", {"dryRun": True}, id="json-charset"),
    pytest.param(b"a: &a [1, 2]\nb: *a\n", None, {"a": [1, 2], "b": [1, 2]}, id="a-few-aliases"),
    pytest.param(b"date: 2024-01-01\n", YAML, {"date": "2024-01-01"}, id="timestamps-stay-strings"),
])
def test_accepted(body: bytes, content_type: str | None, expected: object):
    assert parse_document(body, content_type) == expected


def test_manifest_limits_count_no_nodes_but_keep_depth_and_aliases():
    assert safe_yaml.MANIFEST_LIMITS.max_nodes is None
    big = "[" + ", ".join(["0"] * (REQUEST_LIMITS.max_nodes + 1)) + "]"
    [(doc, line)] = list(safe_yaml.load_all(big, "big.yaml"))
    assert len(doc) == REQUEST_LIMITS.max_nodes + 1 and line == 1
    with pytest.raises(DocumentTooComplex, match="deeper than 100 levels"):
        list(safe_yaml.load_all("[" * 101 + "]" * 101, "deep.yaml"))


def test_limits_are_validated():
    with pytest.raises(ValueError, match="max_depth"):
        DocumentLimits(max_depth=0)

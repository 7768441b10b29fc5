"""Small helpers the emulator tests share: raw API calls, expected-error assertions and condition waits.

The same tests run against the emulator and a real kube-apiserver, where garbage collection, namespace
termination and CRD establishment happen later than the request: tests wait for the condition instead.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

_WARNING = re.compile(r'\d{3} \S+ ("(?:[^"\\]|\\.)*")')


def _decode(data: bytes | str | None) -> Any:
    """JSON bodies decode; the plain-text answers of unknown paths ('404 page not found') stay text."""
    try:
        return json.loads(data or b"null")
    except ValueError:
        return data.decode() if isinstance(data, bytes) else data


def request(api: client.ApiClient, method: str, path: str, body: Any = None, *, content_type: str | None = None,
            query: dict[str, str] | None = None) -> tuple[int, Any, list[str]]:
    """A raw request through the official client's transport: (status, decoded body, Warning header texts)."""
    url = api.configuration.host + path
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    headers = {"Accept": "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
    elif body is not None:
        headers["Content-Type"] = "application/json"
    try:
        response = api.call_api(method, url, header_params=headers, body=body)
        response.read()
        status, data, received = response.status, response.data, response.headers
    except client.ApiException as exc:
        status, data, received = exc.status, exc.body, exc.headers
    values = received.getlist("Warning") if received else []
    warnings = [json.loads(text) for value in values for text in _WARNING.findall(value)]
    return status, _decode(data), warnings


def send_bytes(api: client.ApiClient, method: str, path: str, data: bytes, *, content_type: str = "application/json",
               query: dict[str, str] | None = None) -> tuple[int, Any, list[str]]:
    """A body sent exactly as given (the client would re-encode it): (status, decoded body, warnings)."""
    url = api.configuration.host + path
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    headers = {"Accept": "application/json", "Content-Type": content_type}
    token = (api.configuration.api_key or {}).get("authorization")
    if token:
        headers["Authorization"] = token
    response = api.rest_client.pool_manager.request(method, url, body=data, headers=headers)
    warnings = [json.loads(text) for value in response.headers.getlist("Warning") for text in _WARNING.findall(value)]
    return response.status, _decode(response.data), warnings


def call(api: client.ApiClient, method: str, path: str, body: Any = None, *, content_type: str | None = None,
         query: dict[str, str] | None = None) -> tuple[int, Any]:
    """A raw request through the official client's transport; returns (status, decoded JSON or text)."""
    status, data, _ = request(api, method, path, body, content_type=content_type, query=query)
    return status, data


def api_error(fn: Any, *args: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    """Call fn, expecting an ApiException; return (status, decoded Status body)."""
    with pytest.raises(client.ApiException) as info:
        fn(*args, **kwargs)
    return info.value.status, json.loads(info.value.body or b"{}")


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.05) -> Any:
    """Poll until `predicate()` is truthy and return its value; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(interval)


def exists(read: Callable[..., object], *args: str) -> bool:
    """Whether a read succeeds (False on 404)."""
    try:
        read(*args)
        return True
    except client.ApiException as exc:
        if exc.status == 404:
            return False
        raise

"""Small helpers the emulator tests share: raw API calls and expected-error assertions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client


def call(api: client.ApiClient, method: str, path: str, body: Any = None, *, content_type: str | None = None,
         query: dict[str, str] | None = None) -> tuple[int, Any]:
    """A raw request through the official client's transport; returns (status, decoded JSON)."""
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
        return response.status, json.loads(response.data or b"null")
    except client.ApiException as exc:
        return exc.status, json.loads(exc.body or b"null")


def api_error(fn: Any, *args: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    """Call fn, expecting an ApiException; return (status, decoded Status body)."""
    with pytest.raises(client.ApiException) as info:
        fn(*args, **kwargs)
    return info.value.status, json.loads(info.value.body or b"{}")

"""Decoding a webhook body into a provider's typed payload, with a precise 400 for anything malformed.

Every provider module declares the few payload fields it reads as pydantic models (unknown fields are
ignored, so payload growth on the provider's side never breaks us). This module turns bytes into such a
model and turns every way that can fail (bad UTF-8, bad JSON, absurd nesting, wrong field types) into a
`WebhookError(400)` naming the field, never the payload's content.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.webhooks.event import WebhookError

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


class Payload(BaseModel):
    """Base of the payload models: ignore unknown fields, accept nothing else loosely."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


ModelT = TypeVar("ModelT", bound=Payload)


def decode_json(headers: Mapping[str, str], body: bytes, provider: str) -> dict[str, Any]:
    """The JSON object in the body; a form-encoded body's `payload` field (GitHub's and Gitea's option)."""
    content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    try:
        text = body.decode("utf-8")
        if content_type == FORM_CONTENT_TYPE:
            fields = parse_qs(text, keep_blank_values=True, max_num_fields=100)
            if "payload" not in fields:
                raise WebhookError(400, f"{provider} form-encoded body has no 'payload' field")
            text = fields["payload"][0]
        data = json.loads(text)
    except WebhookError:
        raise
    except UnicodeDecodeError:
        raise WebhookError(400, f"{provider} payload is not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise WebhookError(400, f"{provider} payload is not valid JSON: {exc.msg} at line {exc.lineno} "
                                f"column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:
        raise WebhookError(400, f"{provider} payload could not be decoded ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise WebhookError(400, f"{provider} payload must be a JSON object, not {type(data).__name__}")
    return data


def validate(model: type[ModelT], data: dict[str, Any], provider: str, event: str) -> ModelT:
    """The payload as `model`; a shape error names every offending field path (never its value)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False, include_input=False)[:5]:
            where = ".".join(str(part) for part in err["loc"]) or "(root)"
            problems.append(f"{where}: {err['msg']}")
        more = exc.error_count() - len(problems)
        suffix = f"; and {more} more" if more > 0 else ""
        detail = "; ".join(problems) + suffix
        raise WebhookError(400, f"invalid {provider} {event} payload: {detail}") from None
    except RecursionError:
        raise WebhookError(400, f"invalid {provider} {event} payload: nested too deeply") from None


class CommitFiles(Payload):
    """A pushed commit's file lists, as GitHub, GitLab, Gogs and Gitea all spell them."""

    added: list[str] | None = None
    modified: list[str] | None = None
    removed: list[str] | None = None


def collect_files(commits: list[CommitFiles] | None) -> list[str]:
    """Every path added, modified or removed by `commits`."""
    files: dict[str, None] = {}
    for commit in commits or []:
        for group in (commit.added, commit.modified, commit.removed):
            for path in group or []:
                if path:
                    files[path] = None
    return list(files)

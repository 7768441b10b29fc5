"""Secret values replaced by runs of `+` before any diff or API output, the way Argo CD shows them.

A diff of two Secrets must still say WHICH keys changed without saying what they hold. For each key,
the first distinct value (desired first, then live, then live's last-applied configuration) becomes
`++++++++`, the next distinct value 4 more `+`, and so on: equal values get equal masks, a changed
value a different one. `stringData` is masked the same way, and so is the Secret embedded in the
`kubectl.kubernetes.io/last-applied-configuration` annotation.
"""

from __future__ import annotations

import json
from typing import Any

from shared.diff.managed_fields import LAST_APPLIED_ANNOTATION
from shared.diff.normalize import is_secret

FIRST_MASK = "+" * 8
MASK_STEP = "+" * 4
# Shown instead of a last-applied annotation that cannot be parsed: nothing of it may leak.
UNPARSEABLE_MASK = FIRST_MASK

_DATA_FIELDS = ("data", "stringData")


def _value_id(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def _last_applied(obj: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    """(parsed last-applied Secret or None, present?)."""
    text = ((obj.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED_ANNOTATION)
    if text is None:
        return None, False
    try:
        parsed = json.loads(text)
    except (TypeError, json.JSONDecodeError):
        return None, True
    return (parsed if isinstance(parsed, dict) else None), True


def _with_annotation(obj: dict[str, Any], text: str) -> dict[str, Any]:
    meta = dict(obj.get("metadata") or {})
    meta["annotations"] = {**(meta.get("annotations") or {}), LAST_APPLIED_ANNOTATION: text}
    return {**obj, "metadata": meta}


def _mask_group(objects: list[dict[str, Any] | None]) -> list[dict[str, Any] | None]:
    """Mask data and stringData across `objects` (copies), sharing one value->mask map per key."""
    result: list[dict[str, Any] | None] = [None if o is None else dict(o) for o in objects]
    for field_name in _DATA_FIELDS:
        keys: dict[str, None] = {}
        for obj in result:
            section = obj.get(field_name) if obj is not None else None
            if isinstance(section, dict):
                keys.update(dict.fromkeys(section))
            elif obj is not None and section is not None:
                obj[field_name] = FIRST_MASK  # not a map: hide it whole
        for obj in result:
            if obj is not None and isinstance(obj.get(field_name), dict):
                obj[field_name] = dict(obj[field_name])
        for key in keys:
            masks: dict[str, str] = {}
            next_mask = FIRST_MASK
            for obj in result:
                section = obj.get(field_name) if obj is not None else None
                if not isinstance(section, dict) or key not in section:
                    continue
                ident = _value_id(section[key])
                mask = masks.get(ident)
                if mask is None:
                    mask = masks[ident] = next_mask
                    next_mask += MASK_STEP
                section[key] = mask
    return result


def _mask_objects(objects: list[dict[str, Any] | None]) -> list[dict[str, Any] | None]:
    # Each object may carry a last-applied Secret; it joins the group so its masks agree with the rest.
    applied: list[tuple[int, dict[str, Any] | None]] = []
    group: list[dict[str, Any] | None] = list(objects)
    for index, obj in enumerate(objects):
        if obj is None:
            continue
        parsed, present = _last_applied(obj)
        if present:
            applied.append((index, parsed))
            group.append(parsed)
    masked = _mask_group(group)
    out = masked[: len(objects)]
    for offset, (index, parsed) in enumerate(applied):
        target = out[index]
        assert target is not None
        masked_applied = masked[len(objects) + offset]
        text = UNPARSEABLE_MASK if parsed is None else json.dumps(masked_applied, separators=(",", ":"))
        out[index] = _with_annotation(target, text)
    return out


def mask_secret_pair(desired: dict[str, Any] | None, live: dict[str, Any] | None
                     ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Desired and live with Secret values masked consistently (copies); non-Secrets pass unchanged."""
    if not is_secret(desired) and not is_secret(live):
        return desired, live
    masked = _mask_objects([desired, live])
    return masked[0], masked[1]


def mask_object(obj: dict[str, Any]) -> dict[str, Any]:
    """One object for API output: a Secret's values masked (a copy), anything else unchanged."""
    if not is_secret(obj):
        return obj
    masked = _mask_objects([obj])[0]
    assert masked is not None
    return masked

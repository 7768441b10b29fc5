"""The one glob dialect (Argo CD's util/glob.Match, gobwas), one testdata file per case under
tests/testdata/globs, and proof that every place WaveCD matches an Argo CD glob answers as it does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.core.errors import StallingError
from shared.core.globs import compile_glob, glob_match
from shared.core.models import ResourceIgnoreDifferences
from shared.core.resources import ResourceKey
from shared.diff.ignore_differences import rule_matches
from shared.source import manifests

CASES = sorted((Path(__file__).parents[1] / "testdata" / "globs").glob("*.yaml"))


def _case(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_glob_case(path: Path) -> None:
    case = _case(path)
    assert glob_match(case["pattern"], case["text"], case["separators"]) is case["match"]


@pytest.mark.parametrize("path", [p for p in CASES if not _case(p)["separators"]],
                         ids=[p.stem for p in CASES if not _case(p)["separators"]])
def test_ignore_differences_and_directory_globs_use_the_same_dialect(path: Path) -> None:
    case = _case(path)
    rule = ResourceIgnoreDifferences(kind=case["pattern"] or "*", group="*")
    if case["pattern"]:
        assert rule_matches(rule, ResourceKey("apps", case["text"], "ns", "n")) is case["match"]
    try:
        compile_glob(case["pattern"])
    except ValueError:
        with pytest.raises(StallingError, match="invalid glob"):  # a directory source reports it instead
            manifests.glob_match(case["pattern"], case["text"])
    else:
        assert manifests.glob_match(case["pattern"], case["text"]) is case["match"]


def test_health_customization_keys_match_in_the_same_dialect() -> None:
    """`*.example.com/*` style keys: `*` spans the `/` between group and kind, as gobwas without separators."""
    from shared.health.lua import LuaHealthRules, LuaScript

    wildcard = LuaScript(group="*.example.com", kind="*", origin="test", text="return {status='Healthy'}")
    rules = LuaHealthRules([wildcard])
    assert rules.script_for("widgets.example.com", "Widget") is wildcard
    assert rules.script_for("apps", "Deployment") is None

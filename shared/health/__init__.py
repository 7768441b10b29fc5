"""Resource health with Argo CD's semantics: built-in rules, Lua customizations, app aggregation.

The wave gate (is this wave healthy yet?) and the app's status (health.status) both ask here. The public
API is re-exported below; the rules themselves live one module per kind (deployment.py, pod.py, ...),
the Lua runner in lua.py and WaveCD's own Lua rules under lua/<group>/<kind>/health.lua.
"""

from __future__ import annotations

from shared.health.assess import PENDING_DELETION, assess, group_kind
from shared.health.errors import HealthRuleError, InvalidObjectError
from shared.health.ignore import is_health_ignored, is_hook
from shared.health.lua import LuaHealthRules, default_lua_rules, parse_rule_key
from shared.health.status import HEALTH_ORDER, HealthStatus, HealthStatusCode, aggregate, is_worse, worst

__all__ = [
    "HEALTH_ORDER",
    "PENDING_DELETION",
    "HealthRuleError",
    "HealthStatus",
    "HealthStatusCode",
    "InvalidObjectError",
    "LuaHealthRules",
    "aggregate",
    "assess",
    "default_lua_rules",
    "group_kind",
    "is_health_ignored",
    "is_hook",
    "is_worse",
    "parse_rule_key",
    "worst",
]

"""Lua health customizations with Argo CD's script API, run in a sandboxed, bounded Lua state (lupa).

Users already hold Argo CD health scripts (`resource.customizations.health.<group_kind>` in argocd-cm, or
`<group>/<kind>/health.lua` files); WaveCD runs them unchanged: the global `obj` holds the live object
as a Lua table (lists 1-indexed), and the script returns a table with `status` and an optional `message`.

Where scripts come from, and how a rule is chosen for an object's group and kind:

* `LuaHealthRules.from_directory(root)`: files `<root>/<group>/<kind>/health.lua`, Argo CD's
  `resource_customizations` layout. The core group (``) is the folder `core` (no API group can be named
  so: CRD groups contain a dot). In folder names `_` stands for `*`, as in Argo CD:
  `_.cnrm.cloud.google.com/_/health.lua` covers every kind of every `*.cnrm.cloud.google.com` group.
* `LuaHealthRules.from_mapping({"group/Kind": script})`: keys `cert-manager.io/Certificate`, `core/Pod`
  (or `/Pod`, or just `Pod`) for the core group; Argo CD's argocd-cm spelling `cert-manager.io_Certificate`
  is accepted too. Keys may be globs, as argocd-cm's (`*.crossplane.io/*`, `ec2.aws.crossplane.io_*`);
  `_` in a part is read as `*` here too.
* `LuaHealthRules.from_argocd_cm(data)`: an argocd-cm ConfigMap's `data` as Argo CD reads it, the
  `resource.customizations.health.<group>_<kind>` keys and the older `resource.customizations` block.
* Matching is Argo CD's: one glob over the whole key `group/Kind` (`Kind` alone for the core group), so
  `*/*` covers no core kind and a lone `*` covers everything. Where several rules match, the most
  specific wins: an exact group/kind, then a literal group (with a glob kind) before a glob group, a glob
  group with more literal characters before one with fewer, then a literal kind before a glob.

The runtime is Lua 5.1 (`lupa.lua51`), the language gopher-lua implements and Argo CD runs scripts in:
`table.getn`, global `unpack`, one number type (3/1 prints "3"), `string.format("%d", 2.5)` truncates.
Not LuaJIT: its JIT-compiled loops do not call the instruction hook the time limit relies on.

The sandbox: scripts see only `obj`, the safe parts of the 5.1 base library, `string`, `table`, `math`
and, as in Argo CD, a safe `os` holding only `time` and `date` (no io, require, load, loadstring, dofile,
loadfile, getfenv, setfenv, debug, package, collectgarbage, newproxy, coroutine, string.dump; `print`
discards its output; library tables are read-only; `__gc` metatables are refused). Each script is
compiled once (text only: a binary chunk is refused) and cached; each run gets fresh globals (`setfenv`),
so Argo CD scripts that assign globals (`hs = {}`) do not leak into the next run. A run is bounded in CPU
time (an instruction-count hook that a script's own pcall cannot swallow) and the Lua state in memory
(lupa's `max_memory`). Any failure - syntax error, runtime error, timeout, memory, a result that is not
`{status=<code>}` - is Unknown health with a message saying why.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import lupa.lua51 as lupa
import yaml

from shared.core.globs import glob_match
from shared.health.errors import HealthRuleError
from shared.health.status import HealthStatus, HealthStatusCode

CORE_GROUP_DIR = "core"
WILDCARDS = frozenset({"_", "*"})
SCRIPT_FILE = "health.lua"
SHIPPED_RULES_DIR = Path(__file__).with_name("lua")

DEFAULT_TIMEOUT_SECONDS = 0.5
DEFAULT_MAX_MEMORY = 64 * 1024 * 1024
_HOOK_INSTRUCTIONS = 1000

_STATUS_BY_NAME = {code.value: code for code in HealthStatusCode}

# Trusted bootstrap, run once per Lua state. It returns (compile, run); scripts never see this code's
# locals (debug, loadstring, setfenv, os.clock), only the SAFE table through their fresh per-run environment.
_BOOTSTRAP = r"""
local loadstring, setfenv, pcall, xpcall = loadstring, setfenv, pcall, xpcall
local error, type, tostring, pairs = error, type, tostring, pairs
local rawget, rawset, setmetatable, getmetatable, sub = rawget, rawset, setmetatable, getmetatable, string.sub
local sethook, clock = debug.sethook, os.clock

local TIMEOUT = setmetatable({}, {__metatable = false})

-- Strings index the real string library through their metatable: hide it and drop string.dump.
string.dump = nil
getmetatable("").__metatable = false

local LIBRARIES = setmetatable({}, {__mode = "k"})
local function readonly(lib, name)
  local copy = {}
  for key, value in pairs(lib) do copy[key] = value end
  local proxy = {}
  LIBRARIES[proxy] = name
  return setmetatable(proxy, {
    __index = copy,
    __newindex = function() error("attempt to modify read-only library '" .. name .. "'", 2) end,
    __metatable = false,
  })
end

-- A script's pcall must not swallow the timeout: re-raise it past every protected call.
local function pass_timeout(ok, ...)
  if not ok and (...) == TIMEOUT then error(TIMEOUT, 0) end
  return ok, ...
end
local function safe_pcall(f, ...) return pass_timeout(pcall(f, ...)) end
local function safe_xpcall(f, handler)
  return pass_timeout(xpcall(f, function(e)
    if e == TIMEOUT then return TIMEOUT end
    return handler(e)
  end))
end
local function safe_setmetatable(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("__gc metamethods are not allowed in health scripts", 2)
  end
  return setmetatable(t, mt)
end
local function discard() end
-- rawset must not reach around a library's read-only guard (the proxies are shared by every run).
local function safe_rawset(t, key, value)
  local name = LIBRARIES[t]
  if name ~= nil then error("attempt to modify read-only library '" .. name .. "'", 2) end
  return rawset(t, key, value)
end

-- Argo CD's gopher-lua state: the Lua 5.1 base library (without what reaches files, other code or
-- the interpreter), table, and the safe part of os (time, date). string and math come as well.
local SAFE = {
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
  pcall = safe_pcall, xpcall = safe_xpcall, select = select, tonumber = tonumber,
  tostring = tostring, type = type, rawequal = rawequal, rawget = rawget, rawset = safe_rawset,
  setmetatable = safe_setmetatable, getmetatable = getmetatable, unpack = unpack, print = discard,
  string = readonly(string, "string"), table = readonly(table, "table"),
  math = readonly(math, "math"), os = readonly({time = os.time, date = os.date}, "os"),
  _VERSION = _VERSION,
}
local ENV_MT = {__index = SAFE, __metatable = false}

local function compile(text, name)
  if sub(text, 1, 1) == "\27" then
    return nil, name .. ": attempt to load a binary chunk (only text scripts are accepted)"
  end
  return loadstring(text, "=" .. name)
end

local function evaluate(fn, obj)
  local env = setmetatable({obj = obj}, ENV_MT)
  env._G = env  -- the script's own globals, as _G is in a plain Lua state
  setfenv(fn, env)
  local result = fn()
  if type(result) ~= "table" then return "badresult", type(result) end
  local status, message = result.status, result.message
  if type(status) ~= "string" then return "badstatus", tostring(status) end
  if message ~= nil and type(message) ~= "string" then message = tostring(message) end
  return "ok", status, message
end

local function run(fn, obj, budget)
  local deadline = clock() + budget
  sethook(function() if clock() > deadline then error(TIMEOUT, 0) end end, "", HOOK_INSTRUCTIONS)
  local ok, kind, a, b = pcall(evaluate, fn, obj)
  if not ok then
    if kind == TIMEOUT then sethook(); return "timeout" end
    local converted, text = pcall(tostring, kind)
    sethook()
    if not converted or type(text) ~= "string" then text = "error object is not a string" end
    return "error", text
  end
  sethook()
  return kind, a, b
end

return compile, run
""".replace("HOOK_INSTRUCTIONS", str(_HOOK_INSTRUCTIONS))


def _deny_attribute(obj: object, name: object, is_setting: bool) -> str:
    raise AttributeError("Python attributes are not accessible from health scripts")


class _LuaEngine:
    """One sandboxed Lua state with its compiled-script cache; evaluations are serialized by a lock."""

    def __init__(self, max_memory: int = DEFAULT_MAX_MEMORY) -> None:
        self.max_memory = max_memory
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._runtime = lupa.LuaRuntime(
            register_eval=False,
            register_builtins=False,
            attribute_filter=_deny_attribute,
            max_memory=max_memory,
        )
        self._compile, self._run = self._runtime.execute(_BOOTSTRAP)
        self._compiled: dict[tuple[str, str], tuple[Any, str | None]] = {}

    def compiled(self, name: str, text: str) -> tuple[Any, str | None]:
        """(function, None) or (None, syntax error message); compiled once per (name, text)."""
        key = (name, text)
        cached = self._compiled.get(key)
        if cached is None:
            with self._lock:
                result = self._compile(text, name)
            fn, error = result if isinstance(result, tuple) else (result, None)
            cached = (fn, None) if fn is not None else (None, str(error))
            self._compiled[key] = cached
        return cached

    def run(self, name: str, text: str, obj: Mapping[str, Any], timeout: float) -> HealthStatus:
        fn, error = self.compiled(name, text)
        if fn is None:
            return HealthStatus(HealthStatusCode.UNKNOWN, f"health script syntax error: {error}")
        with self._lock:
            try:
                table = self._to_lua(obj)
                outcome = self._run(fn, table, timeout)
            except lupa.LuaMemoryError:
                return self._memory_exceeded()
            except (lupa.LuaError, OverflowError) as exc:
                return HealthStatus(HealthStatusCode.UNKNOWN, f"health script failed: {exc}")
        kind = outcome[0] if isinstance(outcome, tuple) else outcome
        if kind == "ok":
            _, status, message = outcome
            code = _STATUS_BY_NAME.get(status)
            if code is None:
                return HealthStatus(
                    HealthStatusCode.UNKNOWN,
                    f"health script returned invalid status {status!r}; "
                    f"expected one of {', '.join(_STATUS_BY_NAME)}",
                )
            return HealthStatus(code, message or "")
        if kind == "timeout":
            return HealthStatus(HealthStatusCode.UNKNOWN, f"health script timed out after {timeout:g}s")
        if kind == "error":
            text_error = outcome[1]
            if text_error == "not enough memory":
                return self._memory_exceeded()
            return HealthStatus(HealthStatusCode.UNKNOWN, f"health script error: {text_error}")
        if kind == "badresult":
            return HealthStatus(
                HealthStatusCode.UNKNOWN,
                f"health script must return a table with a status, got {outcome[1]}",
            )
        return HealthStatus(
            HealthStatusCode.UNKNOWN, f"health script returned a status that is not a string: {outcome[1]}"
        )

    def _memory_exceeded(self) -> HealthStatus:
        return HealthStatus(
            HealthStatusCode.UNKNOWN,
            f"health script exceeded the memory limit of {self.max_memory // (1024 * 1024)} MiB",
        )

    def _to_lua(self, value: Any) -> Any:
        """JSON-like Python data as Lua values: dicts and lists become tables (lists 1-indexed)."""
        if isinstance(value, Mapping):
            return self._runtime.table_from({str(k): self._to_lua(v) for k, v in value.items()})
        if isinstance(value, list | tuple):
            return self._runtime.table_from([self._to_lua(item) for item in value])
        if value is None or isinstance(value, str | bool | float):
            return value
        if isinstance(value, int):
            return value if lupa.LUA_MININTEGER <= value <= lupa.LUA_MAXINTEGER else float(value)
        if isinstance(value, datetime | date):
            # YAML parses unquoted timestamps; the API server would have sent RFC 3339 text.
            text = value.isoformat()
            return text.replace("+00:00", "Z") if isinstance(value, datetime) else text
        return str(value)


_ENGINE: _LuaEngine | None = None
_ENGINE_LOCK = threading.Lock()


def _engine() -> _LuaEngine:
    """The process's Lua engine, created on first use and again in a forked child (prefork workers)."""
    global _ENGINE
    engine = _ENGINE
    if engine is None or engine.pid != os.getpid():
        with _ENGINE_LOCK:
            if _ENGINE is None or _ENGINE.pid != os.getpid():
                _ENGINE = _LuaEngine()
            engine = _ENGINE
    return engine


@dataclass(frozen=True, slots=True)
class LuaScript:
    """One health script: the group/kind pattern it covers, where it came from, and its text.

    `group` and `kind` are as written (`_` and `*` are wildcards, `core`/"" the core group); `pattern`
    is Argo CD's matching form, one glob over the whole key: `group/Kind`, or `Kind` for the core group.
    """

    group: str
    kind: str
    origin: str
    text: str

    @property
    def is_exact(self) -> bool:
        return not (_is_pattern(self.group) or _is_pattern(self.kind))

    @property
    def pattern(self) -> str:
        return resource_key(_glob(self.group), _glob(self.kind))

    @property
    def specificity(self) -> tuple[bool, int, bool, int]:
        """Sort key, most specific first: a literal group before a glob (and among globs, the one with
        more literal characters), then a literal kind before a glob. A core-group key that is a glob
        (`*`) spans every group, so it ranks as a glob group."""
        group, kind = _glob(self.group), _glob(self.kind)
        group_wild = _is_pattern(group) or (not group and _is_pattern(kind))
        return (group_wild, -len(group.replace("*", "")), _is_pattern(kind), -len(kind.replace("*", "")))


def resource_key(group: str, kind: str) -> str:
    """Argo CD's override key of a group/kind: `group/Kind`, or just `Kind` for the core group."""
    return f"{group}/{kind}" if group else kind


def _glob(part: str) -> str:
    """A key part as a glob: `_` stands for `*` (Argo CD's folder names cannot hold `*`)."""
    return part.replace("_", "*")


def _is_pattern(part: str) -> bool:
    return any(char in part for char in WILDCARDS)


def parse_rule_key(key: str) -> tuple[str, str]:
    """A settings key -> (group, kind); the core group is "". Raises HealthRuleError when unusable."""
    if not isinstance(key, str) or not key.strip():
        raise HealthRuleError(f"health customization key {key!r} is empty; expected 'group/Kind'")
    text = key.strip()
    if "/" in text:
        group, sep, kind = text.partition("/")
        if "/" in kind:
            raise HealthRuleError(
                f"health customization key {key!r} has more than one '/'; expected 'group/Kind'"
            )
    elif "_" in text.strip("_"):
        group, _, kind = text.rpartition("_")  # argocd-cm spelling: cert-manager.io_Certificate
    else:
        group, kind = "", text
    if not kind:
        raise HealthRuleError(f"health customization key {key!r} names no kind; expected 'group/Kind'")
    if group == CORE_GROUP_DIR:
        group = ""
    return group, kind


HEALTH_KEY_PREFIX = "resource.customizations.health."
LEGACY_CUSTOMIZATIONS_KEY = "resource.customizations"


def _legacy_health_scripts(text: Any, source: str) -> dict[str, str]:  # noqa: ANN401 - a ConfigMap value
    """`health.lua` of each entry of argocd-cm's older `resource.customizations` YAML block."""
    if not isinstance(text, str):
        raise HealthRuleError(f"{source}: {LEGACY_CUSTOMIZATIONS_KEY} must be YAML text, got {type(text).__name__}")
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise HealthRuleError(f"{source}: {LEGACY_CUSTOMIZATIONS_KEY} is not valid YAML ({exc})") from None
    if parsed is None:
        return {}
    if not isinstance(parsed, dict):
        raise HealthRuleError(f"{source}: {LEGACY_CUSTOMIZATIONS_KEY} must map 'group/Kind' to overrides")
    result: dict[str, str] = {}
    for key, override in parsed.items():
        if not isinstance(override, dict):
            raise HealthRuleError(f"{source}: {LEGACY_CUSTOMIZATIONS_KEY}.{key} must be a mapping")
        script = override.get("health.lua")
        if script is None:
            continue
        if not isinstance(script, str):
            raise HealthRuleError(f"{source}: {LEGACY_CUSTOMIZATIONS_KEY}.{key}.health.lua must be Lua text")
        result[str(key)] = script
    return result


class LuaHealthRules:
    """A set of Lua health scripts by group/kind; load once per worker process and reuse.

    `fallback`: rules consulted only when none of these match (see `merged`).
    """

    def __init__(
        self, scripts: list[LuaScript] | None = None, *, timeout: float = DEFAULT_TIMEOUT_SECONDS,
        fallback: LuaHealthRules | None = None,
    ) -> None:
        self.timeout = timeout
        self._fallback = fallback
        self._exact: dict[tuple[str, str], LuaScript] = {}
        patterns: dict[tuple[str, str], LuaScript] = {}
        for script in scripts or []:
            target = self._exact if script.is_exact else patterns
            target[(script.group, script.kind)] = script  # a later script for the same key wins
        self._patterns = sorted(patterns.values(), key=lambda script: script.specificity)
        self._resolved: dict[tuple[str, str], LuaScript | None] = {}

    # --- loading -------------------------------------------------------------------------------------

    @classmethod
    def from_directory(cls, path: str | Path) -> LuaHealthRules:
        """Scripts from `<path>/<group>/<kind>/health.lua` (group `core` = the core group, `_` = any)."""
        root = Path(path)
        if not root.is_dir():
            raise HealthRuleError(
                f"health customization directory {str(root)!r} does not exist or is not a directory"
            )
        scripts: list[LuaScript] = []
        try:
            for group_dir in sorted(p for p in root.iterdir() if p.is_dir()):
                group = "" if group_dir.name == CORE_GROUP_DIR else group_dir.name
                for kind_dir in sorted(p for p in group_dir.iterdir() if p.is_dir()):
                    file = kind_dir / SCRIPT_FILE
                    if file.is_file():
                        scripts.append(LuaScript(group, kind_dir.name, str(file.relative_to(root)),
                                                 file.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            raise HealthRuleError(f"cannot read health customizations under {str(root)!r}: {exc}") from exc
        return cls(scripts)

    @classmethod
    def from_mapping(cls, scripts: Mapping[str, str]) -> LuaHealthRules:
        """Scripts from settings, {"group/Kind": Lua text}: argocd-cm's resource.customizations.health.*"""
        if not isinstance(scripts, Mapping):
            raise HealthRuleError(f"health customizations must be a mapping of 'group/Kind' to Lua text, "
                                  f"got {type(scripts).__name__}")
        loaded: list[LuaScript] = []
        for key, text in scripts.items():
            group, kind = parse_rule_key(key)
            if not isinstance(text, str):
                raise HealthRuleError(
                    f"health customization {key!r} must be Lua text, got {type(text).__name__}"
                )
            loaded.append(LuaScript(group, kind, f"settings:{key}", text))
        return cls(loaded)

    @classmethod
    def from_argocd_cm(cls, data: Mapping[str, Any], source: str = "argocd-cm") -> LuaHealthRules:
        """Scripts from an argocd-cm ConfigMap's `data`, both of Argo CD's spellings:
        `resource.customizations.health.<group>_<kind>` (Lua text; the key may be a glob, `ec2.aws.crossplane.io_*`)
        and the older `resource.customizations` (YAML: `group/Kind: {health.lua: ...}`). The per-key
        spelling wins over the older block for the same key, as in Argo CD. Other keys are ignored."""
        if not isinstance(data, Mapping):
            raise HealthRuleError(f"{source}: data must be a mapping, got {type(data).__name__}")
        scripts: dict[str, LuaScript] = {}
        legacy = data.get(LEGACY_CUSTOMIZATIONS_KEY)
        if legacy is not None:
            for key, text in _legacy_health_scripts(legacy, source).items():
                group, kind = parse_rule_key(key)
                scripts[resource_key(group, kind)] = LuaScript(group, kind, f"{source}:{key}", text)
        for name, text in data.items():
            if not isinstance(name, str) or not name.startswith(HEALTH_KEY_PREFIX):
                continue
            key = name[len(HEALTH_KEY_PREFIX):]
            if not isinstance(text, str):
                raise HealthRuleError(f"{source}: {name} must be Lua text, got {type(text).__name__}")
            group, kind = parse_rule_key(key)
            scripts[resource_key(group, kind)] = LuaScript(group, kind, f"{source}:{name}", text)
        return cls(list(scripts.values()))

    @classmethod
    def from_argocd_cm_path(cls, path: str | Path) -> LuaHealthRules:
        """The health scripts of argocd-cm as a worker finds it: the ConfigMap's manifest (a YAML or JSON file,
        as `kubectl get configmap argocd-cm -o yaml` prints it), or the directory a Kubernetes ConfigMap volume
        makes of it (one file per key, the key as the file name)."""
        root = Path(path)
        if root.is_dir():
            data = {entry.name: entry.read_text(encoding="utf-8") for entry in sorted(root.iterdir())
                    if entry.is_file() and not entry.name.startswith(".")}
            return cls.from_argocd_cm(data, source=str(root))
        if not root.is_file():
            raise HealthRuleError(f"argocd-cm {str(root)!r} is neither a ConfigMap file nor a mounted directory")
        from shared.core import safe_yaml  # the loader and limits every user document goes through

        docs = [doc for doc, _ in safe_yaml.load_all(root.read_text(encoding="utf-8", errors="replace"), str(root))
                if doc is not None]
        if len(docs) != 1 or not isinstance(docs[0], dict) or docs[0].get("kind") != "ConfigMap":
            raise HealthRuleError(f"{root}: expected one ConfigMap (argocd-cm)")
        return cls.from_argocd_cm(docs[0].get("data") or {}, source=str(root))

    def merged(self, other: LuaHealthRules) -> LuaHealthRules:
        """These rules overlaid with `other`'s, as Argo CD layers its resource overrides over its built-in
        scripts: any script of `other` that matches (a wildcard too) wins; these answer only the rest."""
        base = self if other._fallback is None else self.merged(other._fallback)
        return LuaHealthRules(other._own(), timeout=other.timeout, fallback=base)

    # --- lookup and evaluation -----------------------------------------------------------------------

    def _own(self) -> list[LuaScript]:
        return list(self._exact.values()) + list(self._patterns)

    def scripts(self) -> list[LuaScript]:
        """Every script, these rules' own first, then their fallback's."""
        return self._own() + (self._fallback.scripts() if self._fallback is not None else [])

    def __len__(self) -> int:
        return len(self.scripts())

    def script_for(self, group: str, kind: str) -> LuaScript | None:
        """The script that covers group/kind (most specific first), or None."""
        key = (group, kind)
        try:
            return self._resolved[key]
        except KeyError:
            pass
        found = self._exact.get(key)
        if found is None:
            wanted = resource_key(group, kind)
            found = next((s for s in self._patterns if glob_match(s.pattern, wanted)), None)
        if found is None and self._fallback is not None:
            found = self._fallback.script_for(group, kind)
        self._resolved[key] = found
        return found

    def covers(self, group: str, kind: str) -> bool:
        return self.script_for(group, kind) is not None

    def evaluate(self, obj: Mapping[str, Any], group: str, kind: str) -> HealthStatus | None:
        """The script's verdict on `obj`, or None when no script covers group/kind."""
        script = self.script_for(group, kind)
        if script is None:
            return None
        return _engine().run(f"{script.group or CORE_GROUP_DIR}/{script.kind}/{SCRIPT_FILE}", script.text,
                             obj, self.timeout)


@functools.cache
def default_lua_rules() -> LuaHealthRules:
    """WaveCD's shipped rules (shared/health/lua/), loaded once per process."""
    return LuaHealthRules.from_directory(SHIPPED_RULES_DIR)

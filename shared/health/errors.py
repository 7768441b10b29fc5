"""Typed errors of health assessment, so callers can tell bad input from a bad rule.

A rule that cannot read a live object (a field of the wrong type) is not an error for the caller: it
becomes an Unknown health with the message. These exceptions are for what the caller itself got wrong:
an object that is not a Kubernetes object, a customization key or directory that cannot be used.
"""

from __future__ import annotations

from shared.core.errors import ConfigurationError, StallingError


class InvalidObjectError(StallingError):
    """`assess` was given something that is not a Kubernetes object (no mapping, no kind)."""


class HealthRuleError(ConfigurationError):
    """A Lua health customization cannot be loaded: a bad "group/Kind" key, an unreadable directory."""


class FieldTypeError(ValueError):
    """A field of a live object has the wrong type; built-in rules turn it into Unknown health."""

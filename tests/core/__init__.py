"""Tests of shared/core: the domain's base types and rules, no I/O."""

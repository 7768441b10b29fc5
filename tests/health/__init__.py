"""Tests of shared.health: Argo CD's health rules, Lua customizations and app aggregation."""

"""Tests of sync planning: hooks, sync options, kind order and the ordered plan, driven by testdata files."""

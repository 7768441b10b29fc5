"""Tests of webhook parsing, verification, app matching and the HTTP receiver."""

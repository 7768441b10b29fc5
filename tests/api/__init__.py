"""Tests of the REST API server over real HTTP against a real Redis."""

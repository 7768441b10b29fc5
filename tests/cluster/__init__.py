"""Tests of cluster access: discovery, apply, live cache, tracking, cluster configuration."""

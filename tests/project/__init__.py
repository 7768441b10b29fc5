"""Tests of projects, clusters and repositories the Argo CD way."""

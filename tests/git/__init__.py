"""Tests of the git source: repository cache, credentials, manifest loading and hostile content."""

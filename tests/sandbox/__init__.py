"""Tests of the Kubernetes API emulator, written to pass against a real cluster too."""

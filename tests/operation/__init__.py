"""Unit tests of the operation: its typed model, its state machine, and whole chains driven in-process."""

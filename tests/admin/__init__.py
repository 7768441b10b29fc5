"""Tests of `wavecd admin`: every case file under tests/testdata/admin runs through the real CLI."""

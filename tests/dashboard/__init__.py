"""Tests of the web dashboard: its pages over real HTTP, and a real browser against `wavecd up --sandbox`."""

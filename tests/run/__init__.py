"""Tests of running the whole system: `wavecd up`, its demo repository and its process supervision."""

"""End-to-end tests: `wavecd up` driven as a user drives it, on the real control plane or the emulator."""

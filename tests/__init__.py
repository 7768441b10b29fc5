"""WaveCD's test suite: unit tests of shared/ and integration tests with real Redis, workers, git and k8s."""

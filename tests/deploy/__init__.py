"""Offline tests of how WaveCD is deployed: Dockerfile, compose.yaml, k8s/ and the Application CRD."""

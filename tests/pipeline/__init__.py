"""End-to-end tests of the sync pipeline with real Redis, real workers, real git and a Kubernetes API."""

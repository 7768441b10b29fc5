"""WaveCD's domain: everything that knows git, manifests, the cluster, diff, health and locks.

It lives apart from Celery and HTTP so that every rule can be tested without a worker, and so that the
workers, the API server and the offline `wavecd admin` commands all run the very same code.
"""

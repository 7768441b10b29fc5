"""Metrics in Redis, the /metrics endpoint, worker instrumentation and structured task logs."""

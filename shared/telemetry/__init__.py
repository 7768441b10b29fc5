"""What WaveCD tells operators: Prometheus metrics under Argo CD's names and the log context of a task."""

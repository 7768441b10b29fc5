"""The Celery side of WaveCD: the app, its configuration and thin tasks that call shared/."""

"""WaveCD's state in Redis: the status store, the fenced app lock, refresh coalescing and the connection."""

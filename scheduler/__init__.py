"""What starts work: the beat tick, the webhook receiver and REST API, and the `wavecd` CLI.

Nothing here talks to git or to the cluster; it enqueues tasks and reads status.
"""

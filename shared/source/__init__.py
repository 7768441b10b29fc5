"""What git holds: the local git cache, credentials, and an app's manifests rendered at a commit."""

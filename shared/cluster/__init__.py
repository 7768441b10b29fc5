"""Access to destination clusters: the client facade, discovery, the live-object cache and Kubernetes' errors."""

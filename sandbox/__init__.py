"""WaveCD's own Kubernetes API emulator.

No cluster and no container engine exist where WaveCD's tests run, and the mock servers on PyPI break
basic API semantics, so this package serves the Kubernetes REST API on loopback with Kubernetes' own
rules. It imports nothing of the product: it is a stand-in for a kube-apiserver, nothing more.
"""

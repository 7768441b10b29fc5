"""A real Kubernetes control plane for the tests (etcd, kube-apiserver, kube-controller-manager built from their
Go modules, and a stand-in kubelet of ours), started on loopback without Docker. `scripts/kube.sh` drives it."""

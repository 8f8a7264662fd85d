"""The lab's control planes: the Kubernetes binaries (k8sbin), the processes of one site's control plane
(etcd, kube-apiserver, kube-controller-manager), their PKI, the CRDs, and a small API client for the lab's own
reads."""
